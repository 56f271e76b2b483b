#!/usr/bin/env bash
# Benchmark of `moor download` (issue 12, item 7; issue 17): the outputs of a run
# holding SIZE_MIB (default 2048) MiB in one file plus 1,000 small ones,
# side by side with `scp -r` and `ssh HOST tar c | tar x` of the same
# folder from the same host (the test host has no rsync) (into an emptied folder each time), then the peak resident
# memory of `moor` (GNU time) and of the agent daemon (VmHWM) over one more
# download; then the same download again into the folder that has it all
# (nothing changed), side by side with `rsync -a` of the folder again.
#
#   deploy/bench/download.sh [RUNS] [SIZE_MIB]     (default 3 runs, 2048 MiB)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-3}
size=${2:-2048}
cargo build --release --quiet -p moor-cli --bin moor
moor=target/release/moor

. deploy/bench/common.sh
mkdir -p "$work/src"
$moor attach vm bench --host "$ip" --user moor --key "$work/key" >/dev/null
id=$($moor run --target bench --source-dir "$work/src" --json -- sh -c \
  "cd \"\$MOOR_OUTPUT_DIR\" && head -c $((size << 20)) /dev/urandom > big.bin && mkdir small && for i in \$(seq 1000); do echo \$i > small/\$i.txt; done" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
outputs="/home/moor/.moor/runs/$id/outputs"
dest="$work/dest"

hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/download.md" \
  --prepare "rm -rf $dest" \
  -n "moor download (${size} MiB + 1,000 files)" "$moor download $id --to $dest" \
  -n "scp -r" "scp -q -r $ssh_opts moor@$ip:$outputs $dest" \
  -n "ssh tar c | tar x" "mkdir $dest && ssh $ssh_opts moor@$ip tar -C $outputs -c . | tar -C $dest -x" >&2

pid=$(docker exec "$name" sh -c 'cat /home/moor/.moor/agent/*/run/pid')
before=$(docker exec "$name" grep VmHWM "/proc/$pid/status" | awk '{print $2}')
rm -rf "$dest"
client=$( { /usr/bin/time -f '%M' "$moor" download "$id" --to "$dest" >/dev/null; } 2>&1 | tail -1)
after=$(docker exec "$name" grep VmHWM "/proc/$pid/status" | awk '{print $2}')
host_rsync
rsync -a -e "ssh $ssh_opts" "moor@$ip:$outputs/" "$work/rsynced/"
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/again.md" \
  -n "moor download again, nothing changed" "$moor download $id --to $dest" \
  -n "rsync -a again" "rsync -a -e 'ssh $ssh_opts' moor@$ip:$outputs/ $work/rsynced/" >&2
echo; cat "$work/download.md"; echo; cat "$work/again.md"; echo
echo "peak RSS during one download of $(du -sh "$dest" | cut -f1): moor ${client} kB; agent daemon VmHWM ${after} kB (${before} kB before it)"
