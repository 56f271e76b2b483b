#!/usr/bin/env bash
# Benchmark: runs with a large source (default 200 MB in 2,001 files) on one
# test host, side by side in hyperfine:
#   - a run whose source is unchanged since the last one (`moor run -- true`)
#     against `ssh host true`, and the moor process's peak RSS (GNU time);
#   - a run after one small file changed against `rsync -a` of the same
#     change (a directory rsync'd once before).
# The host's ~/.moor is a bind mount of this machine's ext4 disk.
#
#   deploy/bench/source.sh [RUNS] [MB]        (default 10 runs, 200 MB)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-10}
mb=${2:-200}
cargo build --release --quiet -p moor-cli
moor=$PWD/target/release/moor

# The host's ~/.moor on a bind mount of this machine's disk (ext4), as a
# real server's, rather than the container's overlayfs (where a hard link
# costs about 0.3 ms).
hostmoor=$(mktemp -d)
BENCH_HOST_ARGS="-v $hostmoor:/home/moor/.moor"
. deploy/bench/common.sh
trap 'cleanup; rm -rf "$hostmoor"' EXIT
docker exec "$name" chown moor: /home/moor/.moor
host_rsync
src="$work/src"
mkdir -p "$src/data"
echo "print('hello')" > "$src/train.py"
python3 - "$src/data" "$mb" <<'PY'
import os, sys
d, mb = sys.argv[1], int(sys.argv[2])
size = mb * 1024 * 1024 // 2000
for i in range(2000):
    with open(os.path.join(d, f"part-{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(size))
PY
sleep 2.5   # files older than the packing: the index may vouch for them
$moor attach vm bench --host "$ip" --user moor --key "$work/key" >/dev/null
run="$moor run --target bench --source-dir $src -- true"
$run >/dev/null 2>&1
rsync -a -e "ssh $ssh_opts" "$src/" "moor@$ip:rsync-src/"

hyperfine --warmup 2 --runs "$runs" --export-markdown "$work/unchanged.md" \
  -n "moor run -- true (unchanged $mb MB source)" "$run" \
  -n "ssh host true" "ssh $ssh_opts moor@$ip true" >&2
rss=$(/usr/bin/time -f %M $run 2>&1 >/dev/null | tail -n1)

touch_one="python3 -c \"import os,sys; open(sys.argv[1],'a').write('x')\" $src/train.py"
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/changed.md" \
  -n "moor run -- true (one file changed)" --prepare "$touch_one" "$run" \
  -n "rsync -a (one file changed)" --prepare "$touch_one" "rsync -a -e 'ssh $ssh_opts' $src/ moor@$ip:rsync-src/" >&2
$run >/dev/null 2>&1   # the last change sent; the next run is unchanged
sent=$($moor run --json --detach --target bench --source-dir "$src" -- true | python3 -c 'import json,sys; print(json.load(sys.stdin).get("snapshot_bytes_sent"))')

echo; cat "$work/unchanged.md"; echo
echo "peak RSS of moor for the unchanged run: ${rss} KB"; echo
cat "$work/changed.md"; echo
echo "source: $(du -sb "$src" | cut -f1) bytes in $(find "$src" -type f | wc -l) files; an unchanged run sent $sent snapshot bytes"
