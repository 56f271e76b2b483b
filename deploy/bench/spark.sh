#!/usr/bin/env bash
# Benchmark of Spark runs (issue 6), side by side on one head-node test host
# (Spark 3.5 from PyPI, Debian's OpenJDK 17): a small PySpark job (Monte
# Carlo pi, local[2]) through `moor run --spark` against copying the script
# with scp and running the same spark-submit over ssh.
#
#   deploy/bench/spark.sh [RUNS]        (default 5 runs each)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-5}
cargo build --release --quiet -p moor-cli --bin moor
moor=target/release/moor

export MOOR_TESTHOST_FLAVOUR=spark
. deploy/bench/common.sh
mkdir -p "$work/src"
cat > "$work/src/pi.py" <<'PY'
import random
from pyspark.sql import SparkSession
sc = SparkSession.builder.getOrCreate().sparkContext
n = 20000
def inside(seed):
    rng = random.Random(seed)
    return sum(rng.random() ** 2 + rng.random() ** 2 <= 1 for _ in range(n))
print("pi is roughly", 4.0 * sc.parallelize(range(4), 4).map(inside).sum() / (4 * n))
PY
submit=/usr/hdp/current/spark2-client/bin/spark-submit
$moor attach vm head --host "$ip" --user moor --key "$work/key" >/dev/null
$moor run --target head --source-dir "$work/src" --spark --spark-master 'local[2]' -- pi.py >/dev/null 2>&1

hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/spark.md" \
  -n "moor run --spark pi.py" \
  "$moor run --target head --source-dir $work/src --spark --spark-master 'local[2]' -- pi.py" \
  -n "scp pi.py + ssh spark-submit" \
  "scp -q $ssh_opts $work/src/pi.py moor@$ip:pi.py && ssh $ssh_opts moor@$ip $submit --master 'local[2]' pi.py" >&2

echo; cat "$work/spark.md"
