#!/usr/bin/env bash
# Benchmark of a run's MLflow tracking endpoint (issue 18) on one test host,
# in a pip environment with mlflow-skinny (a wheelhouse built here):
#  - N `mlflow.log_metric` calls from the real client into the run's
#    endpoint, side by side with the same calls into MLflow's own tracking
#    server on the same host (`mlflow server`, the full package, SQLite
#    backend: what a user without moor runs) and into MLflow's file store
#    (`file:` URI, MLFLOW_ALLOW_FILE_STORE: no server at all, in
#    maintenance mode); a run given its own MLFLOW_TRACKING_URI gets no
#    endpoint. Timed by the script itself;
#  - a run that logs 1,000,000 points (log_batch, 1,000 a call), then
#    `moor metrics RUN` and `moor metrics RUN --json`: wall time and peak RSS.
#
#   deploy/bench/mlflow.sh [CALLS]      (default 2000)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
calls=${1:-2000}
cargo build --release --quiet -p moor-cli --bin moor
moor=$PWD/target/release/moor

. deploy/bench/common.sh
$moor attach vm bench --host "$ip" --user moor --key "$work/key" >/dev/null
wheels=$PWD/target/test-cache/wheelhouse-mlflow
mkdir -p "$wheels" "$work/src"
printf 'scikit-learn==1.5.2\nnumpy==2.1.3\nscipy==1.14.1\njoblib==1.4.2\nthreadpoolctl==3.5.0\nmlflow-skinny==3.17.2\npandas==2.2.3\n' > "$work/requirements.txt"
# Wheels for the host's CPython 3.11 on x86_64 Linux, into DIR.
wheels_for_host() {
  python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: --python-version 3.11 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 -d "$1" -r "$2"
}
wheels_for_host "$wheels" "$work/requirements.txt"
$moor env create ml --pip-requirements "$work/requirements.txt" >/dev/null
$moor env prepare ml --target bench --wheelhouse "$wheels" >/dev/null
# The baseline server: the full mlflow package in an environment of its own.
server_wheels=$PWD/target/test-cache/wheelhouse-mlflow-server
mkdir -p "$server_wheels"
echo 'mlflow==3.17.2' > "$work/server-requirements.txt"
wheels_for_host "$server_wheels" "$work/server-requirements.txt"
$moor env create mlserver --pip-requirements "$work/server-requirements.txt" >/dev/null
$moor env prepare mlserver --target bench --wheelhouse "$server_wheels" >/dev/null

cat > "$work/src/calls.py" <<'PY'
import sys, time, mlflow
n = int(sys.argv[1])
with mlflow.start_run():
    mlflow.log_metric("warm", 0)
    t = time.perf_counter()
    for i in range(n):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    dt = time.perf_counter() - t
print(f"RESULT {dt * 1000:.0f} ms for {n} calls, {dt / n * 1e6:.0f} us a call")
PY
cat > "$work/src/million.py" <<'PY'
import time, mlflow
from mlflow.entities import Metric
t = time.perf_counter()
with mlflow.start_run() as run:
    client, ts = mlflow.MlflowClient(), int(time.time() * 1000)
    for b in range(1000):
        client.log_batch(run.info.run_id, metrics=[Metric("loss", 1.0 / (b * 1000 + i + 1), ts, b * 1000 + i) for i in range(1000)])
print(f"RESULT 1000000 points in {time.perf_counter() - t:.1f} s")
PY
in_env() { $moor run --target bench --env ml --source-dir "$work/src" "$@" 2>&1 | grep RESULT; }
moor_line=$(in_env -- python calls.py "$calls")
server=$($moor run --target bench --env mlserver --source-dir "$work/src" --detach --json -- \
  mlflow server --backend-store-uri sqlite:////tmp/mlflow.db --default-artifact-root /tmp/mlflow-art \
  --host 127.0.0.1 --port 5050 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
trap '$moor cancel "$server" >/dev/null 2>&1 || true; cleanup' EXIT
docker exec "$name" sh -c 'for i in $(seq 120); do python3 -c "import urllib.request; urllib.request.urlopen(\"http://127.0.0.1:5050/health\")" 2>/dev/null && exit 0; sleep 1; done; exit 1'
server_line=$(in_env -e MLFLOW_TRACKING_URI=http://127.0.0.1:5050 -- python calls.py "$calls")
$moor cancel "$server" >/dev/null
file_line=$(in_env -e MLFLOW_ALLOW_FILE_STORE=true -e MLFLOW_TRACKING_URI=file:///tmp/mlruns -- python calls.py "$calls")
million_line=$(in_env -- python million.py)
run=$($moor runs --target bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
measure() { /usr/bin/time -f "%e s, peak RSS %M KB" "$@" > /dev/null 2> "$work/time.txt"; tail -n 1 "$work/time.txt"; }
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
metrics_text=$(measure "$moor" metrics "$run")
metrics_json=$(measure "$moor" metrics "$run" --json)

echo
echo "| what (one test host, the real MLflow client in the run) | moor | baseline |"
echo "|:---|:---|:---|"
echo "| $calls \`mlflow.log_metric\` calls | endpoint: ${moor_line#RESULT } | \`mlflow server\` (SQLite) on the host: ${server_line#RESULT }; MLflow's file store (no server): ${file_line#RESULT } |"
echo "| 1,000,000 points by log_batch | ${million_line#RESULT } | |"
echo "| \`moor metrics RUN\` of that run | $metrics_text | |"
echo "| \`moor metrics RUN --json\` (every point) | $metrics_json | |"
