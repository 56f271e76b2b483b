#!/usr/bin/env bash
# Benchmarks of runs (issue 4), side by side with OpenSSH on one test host:
#   - `moor run --target T -- true` against `ssh host true`;
#   - submit latency over a warm connection (examples/submit_latency.rs);
#   - log streaming: `moor logs RUN` of a 256 MiB log against `ssh host cat`
#     of the same file;
#   - the agent daemon's resident memory when idle.
#
#   deploy/bench/run.sh [RUNS]        (default 20 runs each)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-20}
cargo build --release --quiet -p moor-cli --bin moor --example submit_latency
moor=target/release/moor

. deploy/bench/common.sh
mkdir -p "$work/src"
echo "print('hello')" > "$work/src/train.py"
$moor attach vm bench --host "$ip" --user moor --key "$work/key" >/dev/null
$moor run --target bench --source-dir "$work/src" -- true >/dev/null 2>&1

hyperfine --warmup 3 --runs "$runs" --export-markdown "$work/run.md" \
  -n "moor run -- true" "$moor run --target bench --source-dir $work/src -- true" \
  -n "ssh host true" "ssh $ssh_opts moor@$ip true" >&2

latency=$(target/release/examples/submit_latency bench 200)

# A 256 MiB log, then both clients read it whole.
id=$($moor run --target bench --source-dir "$work/src" --detach -- sh -c 'head -c 201326592 /dev/urandom | base64')
$moor logs "$id" --follow > /dev/null
log="/home/moor/.moor/runs/$id/log"
size=$(docker exec "$name" stat -c %s "$log")
hyperfine --warmup 1 --runs 5 --export-markdown "$work/logs.md" \
  -n "moor logs RUN" "$moor logs $id > /dev/null" \
  -n "ssh host cat log" "ssh $ssh_opts moor@$ip cat $log > /dev/null" >&2

sleep 2
rss=$(docker exec "$name" sh -c 'grep VmRSS /proc/$(cat /home/moor/.moor/agent/*/run/pid)/status')

echo; cat "$work/run.md"; echo
echo "$latency"; echo
echo "log size: $size bytes"; cat "$work/logs.md"; echo
echo "agent daemon idle: $rss"
