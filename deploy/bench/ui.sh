#!/usr/bin/env bash
# Benchmark of `moor ui` (issue 18, part 3) on one test host, measured in a
# real browser (headless chromium over WebDriver: tests/src/bin/ui-bench.rs):
#  - the runs page of a workspace with N runs (default 1000), from
#    navigation to its table drawn, beside `moor runs --json` (the same
#    list on the command line) and `moor runs` (the table);
#  - a log line's way from the run's print to the page, beside the same
#    line through `moor logs --follow` (stamped by a reader here);
#  - a run of 100,000 points: its page with the chart drawn, a zoom, a
#    redraw, beside `moor metrics RUN --json`.
# With warm connections (the mux), as a user's moor ui has them.
#
#   deploy/bench/ui.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-1000}
cargo build --release --quiet -p moor-cli --bin moor
cargo build --quiet -p moor-tests --bin ui-bench
moor=$PWD/target/release/moor
bench=$PWD/target/debug/ui-bench

. deploy/bench/common.sh
unset MOOR_NO_MUX
$moor attach vm bench --host "$ip" --user moor --key "$work/key" >/dev/null
mkdir -p "$work/src"
cat > "$work/src/points.py" <<'PY'
import json, os, urllib.request
uri = os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-batch"
headers = {"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"], "Content-Type": "application/json"}
for b in range(100):
    metrics = [{"key": "loss", "value": 1.0 / (b * 1000 + i + 1), "step": b * 1000 + i, "timestamp": 0} for i in range(1000)]
    body = json.dumps({"run_id": os.environ["MLFLOW_RUN_ID"], "metrics": metrics}).encode()
    urllib.request.urlopen(urllib.request.Request(uri, data=body, method="POST", headers=headers), timeout=30).read()
print("100000 points")
PY
cat > "$work/src/ticks.py" <<'PY'
import time
for _ in range(100000):
    print(f"T={int(time.time() * 1000)}", flush=True)
    time.sleep(0.1)
PY
echo "starting $runs runs (4 at a time)..." >&2
seq "$runs" | xargs -P 4 -I{} "$moor" run --target bench --source-dir "$work/src" --detach --name "r{}" -- true >/dev/null
big=$($moor run --target bench --source-dir "$work/src" --json -- python3 points.py | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
live=$($moor run --target bench --source-dir "$work/src" --detach --json -- python3 ticks.py | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
$moor ui --port 0 --json > "$work/ui.json" 2> "$work/ui.log" &
ui=$!
trap 'kill $ui 2>/dev/null; $moor cancel "$live" >/dev/null 2>&1 || true; $moor mux stop >/dev/null 2>&1 || true; cleanup' EXIT
for _ in $(seq 100); do [ -s "$work/ui.json" ] && break; sleep 0.1; done
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$work/ui.json")
"$bench" "$url" "$big" "$live" 5 | tee "$work/browser.txt"
pick() { grep "RESULT $1 " "$work/browser.txt" | cut -d' ' -f3-; }

hyperfine --warmup 1 --runs 5 --export-json "$work/cli.json" \
  "$moor runs --json" "$moor runs" "$moor metrics $big --json" > /dev/null
cli() {
  python3 - "$work/cli.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]
print("%.0f ms ± %.0f" % (r["mean"] * 1000, r["stddev"] * 1000))
PY
}
# The same log lines through `moor logs --follow`, stamped as they come.
cli_lag=$(timeout 8 "$moor" logs "$live" --follow 2>/dev/null | python3 -c '
import sys, time
lags = []
for line in sys.stdin:
    now = time.time() * 1000
    if line.startswith("T="):
        lags.append(now - int(line[2:]))
lags = sorted(lags[-40:])
print(f"{lags[len(lags) // 2]:.0f} (median of {len(lags)}; max {lags[-1]:.0f})")' || true)

echo
echo "| what (one test host, warm connections; the page in headless chromium) | moor ui | baseline |"
echo "|:---|:---|:---|"
echo "| runs page of $runs runs, navigation to table drawn | $(pick runs_page_ms) ms | \`moor runs --json\` $(cli 0), \`moor runs\` $(cli 1) |"
echo "| a log line, run's print to the page | $(pick log_line_ms) ms | \`moor logs --follow\`: $cli_lag ms |"
echo "| run of 100,000 points: page with its chart | $(pick big_run_page_ms) ms | \`moor metrics RUN --json\` $(cli 2) |"
echo "| that chart: a zoom (drag) redrawn | $(pick zoom_ms) ms | |"
echo "| that chart: one redraw (512 points) | $(pick redraw_ms) ms | |"
