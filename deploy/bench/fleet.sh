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
deploy/prereqs.sh
n=${1:-50}
runs=${2:-5}
venv=target/bench-venv
[ -x "$venv/bin/ansible" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q ansible-core; }
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --quiet -p moor-cli
moor=$PWD/target/release/moor
agent=$PWD/target/agent/x86_64-unknown-linux-musl/agent/moor-agent
probe=$PWD/controller/src/probe/probe.sh
image=$(deploy/testhost/build-image.sh)

work=$(mktemp -d)
net="moor-fleet-$$"
cleanup() {
  docker ps -aq --filter "label=moor.fleet=$net" | xargs -r docker rm -f >/dev/null
  docker network rm "$net" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N '' -C moor-bench -f "$work/key"
export MOOR_AUTHORIZED_KEYS
MOOR_AUTHORIZED_KEYS=$(cat "$work/key.pub")
docker network create --label moor.test "$net" >/dev/null
seq "$n" | xargs -P 8 -I{} docker run -d --label moor.test --label "moor.fleet=$net" \
  --name "$net-{}" --hostname "$net-{}" --network "$net" \
  -e MOOR_AUTHORIZED_KEYS -e MOOR_OS=ubuntu-22.04 "$image" >/dev/null
for i in $(seq "$n"); do
  docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$net-$i"
done > "$work/ips"
for i in $(seq "$n"); do
  ip=$(sed -n "${i}p" "$work/ips")
  for _ in $(seq 300); do
    banner=$(timeout 1 bash -c "exec 3<>/dev/tcp/$ip/22 && head -c 4 <&3" 2>/dev/null || true)
    [ "$banner" = SSH- ] && break
    sleep 0.1
  done
  echo "$ip $(docker exec "$net-$i" cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)"
done > "$work/known_hosts"
{
  echo "lab:"
  echo "  user: moor"
  echo "  identity_file: $work/key"
  echo "  hosts:"
  sed 's/^/    - /' "$work/ips"
} > "$work/inventory.yaml"
export MOOR_WORKSPACE="$work/ws"
ssh_opts="-i $work/key -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ControlMaster=no"
export ANSIBLE_SSH_ARGS="-o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes -o ControlMaster=no -o ControlPersist=no"
export ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=True
each() { echo "xargs -P $n -I{} sh -c '$1' < $work/ips"; }
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
