#!/usr/bin/env bash
# Benchmark of `moor forward` (issue 16): a SIZE_MIB (default 200) MiB file
# served by `python3 -m http.server` on the test host's 127.0.0.1, fetched
# with curl through `moor forward` and through `ssh -N -L` (both set up once,
# in the background, before the runs), side by side; then one small request
# each (latency).
#
#   deploy/bench/forward.sh [RUNS] [SIZE_MIB]     (default 5 runs, 200 MiB)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-5}
size=${2:-200}
cargo build --release --quiet -p moor-cli --bin moor
moor=$PWD/target/release/moor

. deploy/bench/common.sh
$moor attach vm bench --host "$ip" --user moor --key "$work/key" >/dev/null
docker exec "$name" sh -c "mkdir -p /srv/www && head -c $((size << 20)) /dev/urandom > /srv/www/big.bin && echo ok > /srv/www/small.txt"
docker exec -d "$name" python3 -m http.server 8765 --bind 127.0.0.1 --directory /srv/www
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
moor_port=$(free_port)
ssh_port=$(free_port)
$moor forward bench "8765:$moor_port" 2>"$work/forward.log" &
forward_pid=$!
# shellcheck disable=SC2086 # ssh_opts is a list of words
ssh $ssh_opts -N -L "$ssh_port:127.0.0.1:8765" "moor@$ip" &
ssh_pid=$!
trap 'kill $forward_pid $ssh_pid 2>/dev/null || true; cleanup' EXIT
for p in "$moor_port" "$ssh_port"; do
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$p/small.txt" && break; sleep 0.2; done
done

hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/big.md" \
  -n "curl through moor forward (${size} MiB)" "curl -sf -o /dev/null http://127.0.0.1:$moor_port/big.bin" \
  -n "curl through ssh -L (${size} MiB)" "curl -sf -o /dev/null http://127.0.0.1:$ssh_port/big.bin" >&2
hyperfine --warmup 3 --runs 30 --export-markdown "$work/small.md" \
  -n "curl through moor forward (small)" "curl -sf -o /dev/null http://127.0.0.1:$moor_port/small.txt" \
  -n "curl through ssh -L (small)" "curl -sf -o /dev/null http://127.0.0.1:$ssh_port/small.txt" >&2
echo; cat "$work/big.md"; echo; cat "$work/small.md"
