#!/usr/bin/env bash
# Benchmarks of multi-node jobs (issue 15), on 4 distributed-training test
# hosts (build-image.sh dist) on one network:
#   - gang start: `moor run --pool four -- true` (4 nodes: held runs,
#     released together, every log followed) against a single-node
#     `moor run --target n0 -- true` on the same hosts;
#   - a torch.distributed (gloo) all-reduce on 2 nodes: `moor run
#     --distribution pytorch` against the same script started by hand with
#     `ssh` on each node (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK set by
#     hand, both in parallel, waiting for both).
#
#   deploy/bench/jobs.sh [RUNS]        (default 10 runs each)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-10}
cargo build --release --quiet -p moor-cli --bin moor
moor=$PWD/target/release/moor
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }

work=$(mktemp -d)
net="moor-bench-jobs-$$"
names=()
cleanup() {
  for n in "${names[@]}"; do docker rm -f "$n" >/dev/null 2>&1 || true; done
  docker network rm "$net" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
image=$(deploy/testhost/build-image.sh dist)
ssh-keygen -q -t ed25519 -N '' -C moor-bench -f "$work/key"
export MOOR_AUTHORIZED_KEYS
MOOR_AUTHORIZED_KEYS=$(cat "$work/key.pub")
docker network create --label moor.test "$net" >/dev/null
ips=()
for i in 0 1 2 3; do
  n="moor-bench-node$i-$$"
  names+=("$n")
  docker run -d --label moor.test --name "$n" --hostname "$n" --network "$net" \
    -e MOOR_AUTHORIZED_KEYS -e MOOR_OS=debian-12 "$image" >/dev/null
  ips+=("$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$n")")
done
: > "$work/known_hosts"
for i in 0 1 2 3; do
  for _ in $(seq 300); do
    docker exec "${names[$i]}" bash -c 'exec 3<>/dev/tcp/127.0.0.1/22 && head -c 4 <&3' 2>/dev/null | grep -q SSH- && break
    sleep 0.1
  done
  echo "${ips[$i]} $(docker exec "${names[$i]}" cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)" >> "$work/known_hosts"
done
export MOOR_WORKSPACE="$work/ws"
mkdir -p "$MOOR_WORKSPACE" && cp "$work/known_hosts" "$MOOR_WORKSPACE/known_hosts"
ssh_opts="-i $work/key -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ControlMaster=no"
for i in 0 1 2 3; do
  $moor attach vm "n$i" --host "${ips[$i]}" --user moor --key "$work/key" >/dev/null
done
$moor pool create four --target n0 --target n1 --target n2 --target n3 >/dev/null
mkdir -p "$work/src"
cat > "$work/src/allreduce.py" <<'PY'
import torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(t)
assert t.item() == dist.get_world_size() * (dist.get_world_size() + 1) / 2
dist.destroy_process_group()
PY
$moor run --pool four --source-dir "$work/src" -- true >/dev/null 2>&1

hyperfine --warmup 2 --runs "$runs" --export-markdown "$work/gang.md" \
  -n "moor run --target n0 -- true (1 node)" "$moor run --target n0 --source-dir $work/src -- true" \
  -n "moor run --pool four -- true (4 nodes)" "$moor run --pool four --source-dir $work/src -- true" \
  -n "ssh n0 true (1 node)" "ssh $ssh_opts moor@${ips[0]} true" \
  -n "ssh true on 4 nodes at once" "bash -c 'for ip in ${ips[*]}; do ssh $ssh_opts moor@\$ip true & done; wait'" >&2
[ "${BENCH_GANG_ONLY:-}" = 1 ] && { echo; cat "$work/gang.md"; exit 0; }

# The script by hand on two nodes: copied once (moor's snapshot is cached too).
for i in 0 1; do scp -q $ssh_opts "$work/src/allreduce.py" "moor@${ips[$i]}:allreduce.py"; done
port=29511
by_hand="ssh $ssh_opts moor@${ips[0]} MASTER_ADDR=${ips[0]} MASTER_PORT=$port WORLD_SIZE=2 RANK=0 python3 allreduce.py & \
ssh $ssh_opts moor@${ips[1]} MASTER_ADDR=${ips[0]} MASTER_PORT=$port WORLD_SIZE=2 RANK=1 python3 allreduce.py & wait"
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/allreduce.md" \
  -n "moor run --distribution pytorch (2 nodes)" "$moor run --target n0 --target n1 --distribution pytorch --source-dir $work/src -- python3 allreduce.py" \
  -n "ssh on each node by hand (2 nodes)" "bash -c '$by_hand'" >&2

echo; cat "$work/gang.md"; echo; cat "$work/allreduce.md"
