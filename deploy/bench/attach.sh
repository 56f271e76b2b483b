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
runs=${1:-20}
deploy/prereqs.sh
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --quiet -p moor-controller
moor=target/release/moor
agent=target/agent/x86_64-unknown-linux-musl/release/moor-agent

work=$(mktemp -d)
name="moor-bench-$$"
cleanup() {
  deploy/testhost/stop-host.sh "$name"
  rm -rf "$work"
}
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N '' -C moor-bench -f "$work/key"
export MOOR_AUTHORIZED_KEYS=$(cat "$work/key.pub")
ip=$(deploy/testhost/start-host.sh "$name" -e MOOR_AUTHORIZED_KEYS -e MOOR_OS=ubuntu-22.04)

echo "$ip $(docker exec "$name" cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)" > "$work/known_hosts"
export MOOR_WORKSPACE="$work/ws"
mkdir -p "$MOOR_WORKSPACE" && cp "$work/known_hosts" "$MOOR_WORKSPACE/known_hosts"
ssh_opts="-i $work/key -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ControlMaster=no"
attach="$moor attach vm bench --json --host $ip --user moor --key $work/key"
fresh="docker exec $name rm -rf /home/moor/.moor; rm -f $MOOR_WORKSPACE/moor.db $MOOR_WORKSPACE/moor.db-wal $MOOR_WORKSPACE/moor.db-shm"

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
