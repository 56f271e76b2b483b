#!/usr/bin/env bash
# Benchmark: the second `moor run` after one small file of a source changed,
# over a slow, far link (deploy/bench/slowlink.py: 25 ms each way,
# 20 Mbit/s), against `rsync -a` of the same change over the same relay;
# and a run with the source unchanged against `ssh host true` there.
#
#   deploy/bench/source_slow.sh [RUNS] [MB]      (default 5 runs, 20 MB)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-5}
mb=${2:-20}
cargo build --release --quiet -p moor-cli
moor=$PWD/target/release/moor

hostmoor=$(mktemp -d)
BENCH_HOST_ARGS="-v $hostmoor:/home/moor/.moor"
. deploy/bench/common.sh
docker exec "$name" chown moor: /home/moor/.moor
host_rsync
slow_link
trap 'kill $relay 2>/dev/null; cleanup; rm -rf "$hostmoor"' EXIT

src="$work/src"
mkdir -p "$src/data"
echo "print('hello')" > "$src/train.py"
python3 - "$src/data" "$mb" <<'PY'
import os, sys
d, mb = sys.argv[1], int(sys.argv[2])
size = mb * 1024 * 1024 // 200
for i in range(200):
    with open(os.path.join(d, f"part-{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(size))
PY
sleep 2.5
$moor attach vm slow --host 127.0.0.1 --port "$port" --user moor --key "$work/key" >/dev/null
run="$moor run --target slow --source-dir $src -- true"
$run >/dev/null 2>&1
rsync -a -e "ssh $slow_opts" "$src/" "moor@127.0.0.1:rsync-src/"

touch_one="python3 -c \"import os,sys; open(sys.argv[1],'a').write('x')\" $src/train.py"
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/changed.md" \
  -n "moor run -- true (one file changed, slow link)" --prepare "$touch_one" "$run" \
  -n "rsync -a (one file changed, slow link)" --prepare "$touch_one" "rsync -a -e 'ssh $slow_opts' $src/ moor@127.0.0.1:rsync-src/" >&2
$run >/dev/null 2>&1
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/unchanged.md" \
  -n "moor run -- true (unchanged, slow link)" "$run" \
  -n "ssh host true (slow link)" "ssh $slow_opts moor@127.0.0.1 true" >&2
echo x >> "$src/train.py"
sent=$($moor run --json --detach --target slow --source-dir "$src" -- true | python3 -c 'import json,sys; print(json.load(sys.stdin).get("snapshot_bytes_sent"))')
echo; cat "$work/changed.md"; echo; cat "$work/unchanged.md"; echo
echo "source: $(du -sb "$src" | cut -f1) bytes in $(find "$src" -type f | wc -l) files; a run after one changed file sent $sent snapshot bytes"
echo "link: deploy/bench/slowlink.py, 25 ms each way, 20 Mbit/s each direction"
