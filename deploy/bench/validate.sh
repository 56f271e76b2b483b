#!/usr/bin/env bash
# Benchmark: `moor validate` against OpenSSH running the same probe script
# (`ssh host sh -s < probe.sh`) on the same test host with the same key and
# strict host-key checking, side by side in one hyperfine run; Ansible's
# `ansible -m setup` on the same host as a peer figure.
#
#   deploy/bench/validate.sh [RUNS]        (default 30 runs each)
#
# Installs hyperfine (Debian) and ansible-core (PyPI, into target/bench-venv)
# when missing. Prints hyperfine's markdown table; BENCHMARKS.md keeps it.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-30}
venv=target/bench-venv
[ -x "$venv/bin/ansible" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q ansible-core; }
cargo build --release --quiet -p moor-cli

BENCH_HOST_ARGS="-e MOOR_DOCKER_ACCESS=yes -v /var/run/docker.sock:/var/run/docker.sock"
. deploy/bench/common.sh
probe=controller/src/probe/probe.sh
export ANSIBLE_SSH_ARGS="-o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes -o ControlMaster=no"
export ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_NOCOLOR=1

target/release/moor validate --host "$ip" --user moor --key "$work/key" >/dev/null
ssh $ssh_opts "moor@$ip" sh -s < "$probe" | grep -q '@@moor end'

hyperfine --warmup 3 --runs "$runs" --export-markdown "$work/table.md" \
  -n "moor validate" "target/release/moor validate --json --host $ip --user moor --key $work/key" \
  -n "ssh host sh -s < probe.sh" "ssh $ssh_opts moor@$ip sh -s < $probe" \
  -n "ssh, curve25519 kex" "ssh $ssh_opts -o KexAlgorithms=curve25519-sha256 moor@$ip sh -s < $probe" \
  -n "ansible -m setup" "$venv/bin/ansible all -i $ip, -u moor --private-key $work/key -m setup" >&2
echo
cat "$work/table.md"
echo
echo "moor binary: $(stat -c %s target/release/moor) bytes; host: $(nproc) cores; $(ssh -V 2>&1); $("$venv/bin/ansible" --version | head -n1)"
