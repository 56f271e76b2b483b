#!/usr/bin/env bash
# Benchmark: the team server (issue 34), side by side in one run on ten
# test hosts (deploy/bench/fleet_hosts.sh), the server on the SQLite
# default:
#   - `moor run --target lab-1 -- true` and `moor runs --json` through
#     `moor server` against the same commands run directly on the server's
#     own workspace (the local mode, no server), both cold (each connects by
#     itself) and both warm (the workspace's warm connections);
#   - MEMBERS members submitting PER runs each (`moor run --detach`), all
#     members at once, across the ten targets through the server: each
#     submit's latency (p50, p99), every run recorded once, the server's
#     peak RSS.
#
#   deploy/bench/team.sh [RUNS] [MEMBERS] [PER]   (default 20, 20, 25)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-20}
members=${2:-20}
per=${3:-25}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
MOOR_AGENT_ARCHES=x86_64 cargo build --release --quiet -p moor-cli
moor=$PWD/target/release/moor
n=10
. deploy/bench/fleet_hosts.sh
srv=$work/srv
ws=$srv/workspace
unset MOOR_WORKSPACE
init=$("$moor" server init --data "$srv" --json)
field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
admin_token=$(echo "$init" | field admin_token)
fp=$(echo "$init" | field fingerprint)
# The operator attaches the fleet in the server's workspace directly.
MOOR_WORKSPACE=$ws "$moor" attach --inventory "$work/inventory.yaml" --known-hosts "$work/known_hosts" >/dev/null
mkdir -p "$work/src" && echo "print('hello')" > "$work/src/train.py"

port=$((30000 + $$ % 10000))
start_server() { # $1: MOOR_NO_MUX for the server's commands
  env MOOR_NO_MUX="$1" "$moor" server start --data "$srv" --listen "127.0.0.1:$port" --json > "$work/ready" 2> "$work/server.log" &
  server=$!
  for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
  url=$(field url < "$work/ready")
}
stop_server() { kill -TERM "$server"; wait "$server" || true; : > "$work/ready"; }
login() { # $1: home, $2: token
  mkdir -p "$1"
  echo "$2" | HOME=$1 "$moor" login "$url" --fingerprint "$fp" --token-stdin >/dev/null
}

start_server 1
login "$work/admin" "$admin_token"
team="env HOME=$work/admin $moor"
direct="env MOOR_WORKSPACE=$ws"
run_args="run --target lab-1 --source-dir $work/src -- true"
$team $run_args >/dev/null
hyperfine --warmup 3 --runs "$runs" --export-markdown "$work/cold.md" \
  -n "moor run -- true, direct (cold)" "$direct MOOR_NO_MUX=1 $moor $run_args" \
  -n "moor run -- true, through moor server (cold)" "$team $run_args" \
  -n "moor runs --json, direct (cold)" "$direct MOOR_NO_MUX=1 $moor runs --target lab-1 --json" \
  -n "moor runs --json, through moor server (cold)" "$team runs --target lab-1 --json" \
  -n "ssh host true (cold)" "ssh $ssh_opts moor@$(head -n1 "$work/ips") true" >&2
stop_server

start_server 0
$team $run_args >/dev/null
for _ in $(seq 50); do
  MOOR_WORKSPACE=$ws MOOR_NO_MUX=0 "$moor" mux status --json | grep -q '"warm"' && break
  sleep 0.2
done
hyperfine --warmup 3 --runs "$runs" --export-markdown "$work/warm.md" \
  -n "moor run -- true, direct (warm)" "$direct MOOR_NO_MUX=0 $moor $run_args" \
  -n "moor run -- true, through moor server (warm)" "$team $run_args" \
  -n "moor runs --json, direct (warm)" "$direct MOOR_NO_MUX=0 $moor runs --target lab-1 --json" \
  -n "moor runs --json, through moor server (warm)" "$team runs --target lab-1 --json" >&2

# The burst: MEMBERS members at once, PER detached runs each, round robin
# over the ten targets; each submit timed.
for m in $(seq "$members"); do
  token=$($team user add "m$m" --role member --json | field token)
  login "$work/m$m" "$token"
done
# Every target warm first, as a team server's would be.
for t in $(seq "$n"); do $team run --target "lab-$t" --source-dir "$work/src" -- true >/dev/null; done
burst_started=$(date +%s.%N)
pids=()
for m in $(seq "$members"); do
  (
    for i in $(seq "$per"); do
      t=$(( (m * per + i) % n + 1 ))
      s=$(date +%s%N)
      HOME=$work/m$m "$moor" run --target "lab-$t" --source-dir "$work/src" --detach --json -- true > "$work/sub-$m-$i.json"
      echo $(( ($(date +%s%N) - s) / 1000000 )) >> "$work/lat-$m"
    done
  ) &
  pids+=($!)
done
wait "${pids[@]}"
burst=$(python3 -c "import time; print(round(time.time() - $burst_started, 1))")
submitted=$(python3 -c 'import glob, json, sys; print(len({json.load(open(f))["id"] for f in glob.glob(sys.argv[1] + "/sub-*.json")}))' "$work")
recorded=$($team runs --all --json | python3 -c 'import json, sys; print(len([r for r in json.load(sys.stdin) if r.get("user", "").startswith("m")]))')
lat=$(cat "$work"/lat-* | sort -n | python3 -c 'import sys; v = [int(x) for x in sys.stdin]; print(f"p50 {v[len(v)//2]} ms, p99 {v[int(len(v)*0.99)-1]} ms, max {v[-1]} ms of {len(v)}")')
rss=$(grep VmHWM "/proc/$server/status" | awk '{print $2}')
stop_server
echo; echo "cold:"; cat "$work/cold.md"; echo; echo "warm:"; cat "$work/warm.md"; echo
echo "burst: $members members x $per runs over $n targets through the server in ${burst}s; submit latency $lat"
echo "runs: $submitted distinct ids submitted, $recorded recorded with their member's name; server peak RSS ${rss} KB"
echo "host: $(nproc) cores; $(ssh -V 2>&1)"
