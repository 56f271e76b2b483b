#!/usr/bin/env bash
# Benchmark: a fleet of test hosts (default 50 containers running sshd, on
# one Docker network, trusting one ed25519 key), side by side in hyperfine:
#   - `moor validate --inventory` (one process) against N parallel `ssh host
#     sh -s < probe.sh` processes (OpenSSH's default kex, and curve25519) and
#     `ansible all -m setup -f N`;
#   - `moor attach --inventory` of N fresh hosts (every host's ~/.moor and the
#     workspace emptied before each run) against N parallel `scp` of the
#     agent + `ssh sha256sum`;
#   - `moor status` of the N attached targets against N parallel `ssh uptime`.
# Then each moor command's peak RSS (GNU time).
#
#   deploy/bench/fleet.sh [HOSTS] [RUNS]      (default 50 hosts, 5 runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
n=${1:-50}
runs=${2:-5}
venv=target/bench-venv
[ -x "$venv/bin/ansible" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q ansible-core; }
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --quiet -p moor-cli
moor=$PWD/target/release/moor
agent=$PWD/target/agent/x86_64-unknown-linux-musl/agent/moor-agent
probe=$PWD/controller/src/probe/probe.sh
. deploy/bench/fleet_hosts.sh
export ANSIBLE_SSH_ARGS="-o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes -o ControlMaster=no -o ControlPersist=no"
export ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=True
inv="--inventory $work/inventory.yaml --known-hosts $work/known_hosts --parallel $n"
"$moor" validate $inv >/dev/null

hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/validate.md" \
  -n "moor validate --inventory ($n hosts)" "$moor validate --json $inv" \
  -n "$n parallel ssh sh -s < probe.sh" "$(each "ssh $ssh_opts moor@{} sh -s < $probe >/dev/null")" \
  -n "$n parallel ssh (curve25519)" "$(each "ssh $ssh_opts -o KexAlgorithms=curve25519-sha256 moor@{} sh -s < $probe >/dev/null")" \
  -n "ansible -m setup -f $n" "$venv/bin/ansible all -i $(paste -sd, "$work/ips"), -u moor --private-key $work/key -m setup -f $n" >&2

fresh="$(each "docker exec $net-\$(grep -nxF {} $work/ips | cut -d: -f1) rm -rf /home/moor/.moor"); rm -f $MOOR_WORKSPACE/moor.db $MOOR_WORKSPACE/moor.db-wal $MOOR_WORKSPACE/moor.db-shm $MOOR_WORKSPACE/workspace-id"
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/attach.md" \
  -n "moor attach --inventory ($n fresh hosts)" --prepare "$fresh" "$moor attach --json $inv" \
  -n "$n parallel scp agent + ssh sha256sum" --prepare "true" \
  "$(each "scp -q $ssh_opts $agent moor@{}: && ssh $ssh_opts moor@{} sha256sum moor-agent >/dev/null")" >&2

"$moor" attach $inv >/dev/null
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/status.md" \
  -n "moor status ($n targets)" "$moor status --json" \
  -n "$n parallel ssh uptime" "$(each "ssh $ssh_opts moor@{} uptime >/dev/null")" >&2

rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n1; }
validate_rss=$(rss "$moor" validate --json $inv)
status_rss=$(rss "$moor" status --json)
eval "$fresh"
attach_rss=$(rss "$moor" attach --json $inv)
echo; cat "$work/validate.md"; echo; cat "$work/attach.md"; echo; cat "$work/status.md"; echo
echo "peak RSS of the moor process: validate ${validate_rss} KB, attach ${attach_rss} KB, status ${status_rss} KB ($n hosts)"
echo "host: $(nproc) cores; $(ssh -V 2>&1); $("$venv/bin/ansible" --version | head -n1); agent $(stat -c %s "$agent") bytes"
