#!/usr/bin/env bash
# Benchmark: warm connections (moor mux) against OpenSSH's warm
# ControlMaster, side by side in hyperfine:
#   - one target: `moor runs`, `moor status`, `moor logs RUN` through the
#     workspace's mux, against `ssh -o ControlPath=... host true` over a warm
#     master; the same moor command and `ssh true` cold, for reference;
#   - HOSTS targets: `moor status` of all of them warm, against HOSTS
#     parallel `ssh uptime` over warm masters.
#
#   deploy/bench/mux.sh [HOSTS] [RUNS]     (default 50 hosts, 20 runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
n=${1:-50}
runs=${2:-20}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --quiet -p moor-cli
moor=$PWD/target/release/moor
. deploy/bench/fleet_hosts.sh
"$moor" attach --inventory "$work/inventory.yaml" --known-hosts "$work/known_hosts" --parallel "$n" >/dev/null
ip=$(head -n1 "$work/ips")
src=$work/src
mkdir -p "$src" && echo 'print("hello")' > "$src/hello.py"
run=$("$moor" run --target lab-1 --source-dir "$src" --json -- python3 hello.py \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')

# Warm: the first command starts the mux, the next ones have it connect to
# every target; wait until all are warm.
export MOOR_NO_MUX=0
"$moor" status >/dev/null || true
for _ in $(seq 300); do
  "$moor" status >/dev/null || true
  warm=$("$moor" mux status --json | python3 -c 'import json, sys; print(sum(t["state"] == "warm" for t in json.load(sys.stdin).get("targets", [])))')
  [ "$warm" -ge "$n" ] && break
  sleep 0.2
done
echo "warm targets in the mux: $warm of $n" >&2
cm="-i $work/key -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ControlMaster=auto -o ControlPath=$work/cm-%C -o ControlPersist=600"
xargs -P "$n" -I{} ssh $cm moor@{} true < "$work/ips"

hyperfine -N --warmup 3 --runs "$runs" --export-markdown "$work/one.md" \
  -n "ssh host true (warm ControlMaster)" "ssh $cm moor@$ip true" \
  -n "moor runs --target lab-1 (warm)" "$moor runs --target lab-1 --json" \
  -n "moor status lab-1 (warm)" "$moor status lab-1 --json" \
  -n "moor logs RUN (warm)" "$moor logs $run" \
  -n "ssh host true (cold)" "ssh $ssh_opts moor@$ip true" \
  -n "moor status lab-1 --no-mux (cold)" "$moor status lab-1 --json --no-mux" >&2

hyperfine --warmup 2 --runs "$runs" --export-markdown "$work/fleet.md" \
  -n "moor status ($n warm targets)" "$moor status --json" \
  -n "$n parallel ssh uptime (warm ControlMaster)" "$(each "ssh $cm moor@{} uptime >/dev/null")" >&2

rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n1; }
status_rss=$(rss "$moor" status --json)
mux_pid=$("$moor" mux status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
mux_rss=$(grep VmHWM "/proc/$mux_pid/status" | awk '{print $2}')
echo; cat "$work/one.md"; echo; cat "$work/fleet.md"; echo
echo "peak RSS: moor status of $n warm targets ${status_rss} KB; the mux holding $n connections ${mux_rss} KB"
echo "host: $(nproc) cores; $(ssh -V 2>&1)"
"$moor" mux stop >/dev/null
