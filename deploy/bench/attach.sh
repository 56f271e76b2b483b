#!/usr/bin/env bash
# Benchmark: `moor attach` against OpenSSH doing the same transfer, side by
# side in one hyperfine run, on one test host with one key:
#   - fresh attach (host and workspace emptied before every run) against
#     `scp agent host: && ssh host sha256sum agent`;
#   - re-attach (agent present) against `ssh host true`.
# Also prints the agent's size and the agent bytes a re-attach sends.
#
#   deploy/bench/attach.sh [RUNS]        (default 20 runs each)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-20}
cargo build --release --quiet -p moor-cli
moor=target/release/moor
agent=target/agent/x86_64-unknown-linux-musl/agent/moor-agent

. deploy/bench/common.sh
attach="$moor attach vm bench --json --host $ip --user moor --key $work/key"
fresh="docker exec $name rm -rf /home/moor/.moor; rm -f $MOOR_WORKSPACE/moor.db $MOOR_WORKSPACE/moor.db-wal $MOOR_WORKSPACE/moor.db-shm $MOOR_WORKSPACE/workspace-id"

hyperfine --warmup 2 --runs "$runs" --export-markdown "$work/fresh.md" \
  -n "moor attach (fresh)" --prepare "$fresh" "$attach" \
  -n "scp agent + ssh sha256sum" --prepare "ssh $ssh_opts moor@$ip rm -f moor-agent" \
  "scp -q $ssh_opts $agent moor@$ip: && ssh $ssh_opts moor@$ip sha256sum moor-agent" >&2
$attach >/dev/null
hyperfine --warmup 2 --runs "$runs" --export-markdown "$work/again.md" \
  -n "moor attach (agent present)" "$attach" \
  -n "ssh host true" "ssh $ssh_opts moor@$ip true" >&2
echo; cat "$work/fresh.md"; echo; cat "$work/again.md"; echo
echo "re-attach agent bytes sent: $($attach | python3 -c 'import json,sys; print(json.load(sys.stdin)["agent"]["bytes_sent"])')"
echo "agent binary: $(stat -c %s "$agent") bytes (static x86_64 musl); moor binary: $(stat -c %s "$moor") bytes"
