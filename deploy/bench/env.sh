#!/usr/bin/env bash
# Benchmarks of environments (issue 5), on one test host with the Docker
# socket, side by side in one run:
#   - a cache-hit `moor env prepare` (conda env from a local channel) against
#     `ssh host true`, and the prepare request alone on an open connection;
#   - the first `moor run --env` (builds a Docker image) against the second
#     (cached) and against `moor run` without an environment;
#   - moor's Docker build (SSH, agent, Engine API) against `docker build` of
#     the same generated Dockerfile on the same engine.
#
#   deploy/bench/env.sh [RUNS]        (default 20 runs each; builds: 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-20}
builds=5
cargo build --release --quiet -p moor-cli --bin moor
cargo build --release --quiet -p moor-tests --example conda_channel
moor=target/release/moor
image=$(deploy/testhost/build-image.sh)

BENCH_HOST_ARGS="-v /var/run/docker.sock:/var/run/docker.sock -e MOOR_DOCKER_ACCESS=yes"
. deploy/bench/common.sh
images=()
cleanup_images() { [ ${#images[@]} -eq 0 ] || docker rmi -f "${images[@]}" >/dev/null 2>&1 || true; cleanup; }
trap cleanup_images EXIT
mkdir -p "$work/src"
target/release/examples/conda_channel "$work/channel"
printf 'channels: [conda-forge]\ndependencies:\n  - moor-hello\n' > "$work/environment.yml"
$moor attach vm bench --host "$ip" --user moor --key "$work/key" >/dev/null
$moor env create hello --conda-file "$work/environment.yml" >/dev/null
$moor env prepare hello --target bench --channel-dir "$work/channel" >/dev/null 2>&1

hyperfine --warmup 3 --runs "$runs" --export-markdown "$work/hit.md" \
  -n "moor env prepare (cache hit)" "$moor env prepare hello --target bench" \
  -n "ssh host true" "ssh $ssh_opts moor@$ip true" >&2
request=$(for _ in $(seq "$runs"); do $moor env prepare hello --target bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["prepare_ms"])'; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
first=(); second=(); plain=(); moor_build=(); docker_build=()
for i in $(seq "$builds"); do
  nonce="$$-$i-$(date +%s%N)"
  printf 'FROM %s\nRUN echo %s > /etc/moor-marker\n' "$image" "$nonce" > "$work/Dockerfile.$i"
  $moor env create "img$i" --dockerfile "$work/Dockerfile.$i" >/dev/null
  images+=("$($moor env show "img$i" --json | python3 -c 'import json,sys; print("moor-env:" + json.load(sys.stdin)["hash"][:12])')")
  t=$(date +%s%N); $moor run --target bench --env "img$i" --source-dir "$work/src" -- true >/dev/null 2>&1; first+=("$(ms "$t")")
  t=$(date +%s%N); $moor run --target bench --env "img$i" --source-dir "$work/src" -- true >/dev/null 2>&1; second+=("$(ms "$t")")
  t=$(date +%s%N); $moor run --target bench --source-dir "$work/src" -- true >/dev/null 2>&1; plain+=("$(ms "$t")")
  # The same build both ways, each with a fresh RUN layer.
  printf 'FROM %s\nRUN echo %s-m > /etc/moor-marker\n' "$image" "$nonce" > "$work/Dockerfile.m$i"
  $moor env create "m$i" --dockerfile "$work/Dockerfile.m$i" >/dev/null
  images+=("$($moor env show "m$i" --json | python3 -c 'import json,sys; print("moor-env:" + json.load(sys.stdin)["hash"][:12])')")
  t=$(date +%s%N); $moor env prepare "m$i" --target bench >/dev/null 2>&1; moor_build+=("$(ms "$t")")
  mkdir -p "$work/ctx$i"
  printf 'FROM %s\nRUN echo %s-d > /etc/moor-marker\n' "$image" "$nonce" > "$work/ctx$i/Dockerfile"
  t=$(date +%s%N); DOCKER_BUILDKIT=0 docker build -q -t "moor-bench-$$-$i" "$work/ctx$i" >/dev/null 2>&1; docker_build+=("$(ms "$t")")
  images+=("moor-bench-$$-$i")
done

echo; cat "$work/hit.md"; echo
echo "cache-hit prepare request on an open connection (median of $runs): $request ms"; echo
echo "| $builds runs each, median | ms |"
echo "|:---|---:|"
echo "| first moor run --env (builds the image) | $(printf '%s\n' "${first[@]}" | median) |"
echo "| second moor run --env (cached) | $(printf '%s\n' "${second[@]}" | median) |"
echo "| moor run without an environment | $(printf '%s\n' "${plain[@]}" | median) |"
echo "| moor env prepare (Docker build via SSH + agent + Engine API) | $(printf '%s\n' "${moor_build[@]}" | median) |"
echo "| docker build (CLI, same engine, legacy builder) | $(printf '%s\n' "${docker_build[@]}" | median) |"
