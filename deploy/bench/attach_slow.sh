#!/usr/bin/env bash
# Benchmark: a fresh `moor attach` over a slow, far link (deploy/bench/
# slowlink.py: 25 ms each way, 20 Mbit/s) against OpenSSH over the same
# relay: `scp` of the agent + `ssh sha256sum`, and `scp` of the agent packed
# with xz + `ssh 'xz -dc > f && sha256sum f'`; then `moor validate` against
# `ssh host sh -s < probe.sh` over the same link. The test host gets this
# machine's `xz` (as Ubuntu hosts have it), so moor sends the xz form.
#
#   deploy/bench/attach_slow.sh [RUNS]        (default 5 runs each)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-5}
cargo build --release --quiet -p moor-cli
moor=target/release/moor
agent=target/agent/x86_64-unknown-linux-musl/agent/moor-agent

. deploy/bench/common.sh
docker cp -L /usr/bin/xz "$name:/usr/bin/xz"
xz -6 -T1 -c "$agent" > "$work/moor-agent.xz"
slow_link
scp_opts="-P $port ${slow_opts#-p $port }"
sshp="ssh $slow_opts"
attach="$moor attach vm bench --json --host 127.0.0.1 --port $port --user moor --key $work/key"
fresh="docker exec $name rm -rf /home/moor/.moor; rm -f $MOOR_WORKSPACE/moor.db $MOOR_WORKSPACE/moor.db-wal $MOOR_WORKSPACE/moor.db-shm $MOOR_WORKSPACE/workspace-id"

hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/slow.md" \
  -n "moor attach (fresh, slow link)" --prepare "$fresh" "$attach" \
  -n "scp agent + ssh sha256sum" --prepare "true" \
  "scp -q $scp_opts $agent moor@127.0.0.1: && $sshp moor@127.0.0.1 sha256sum moor-agent" \
  -n "scp agent.xz + ssh unxz + sha256sum" --prepare "true" \
  "scp -q $scp_opts $work/moor-agent.xz moor@127.0.0.1: && $sshp moor@127.0.0.1 'xz -dc moor-agent.xz > moor-agent && sha256sum moor-agent'" >&2
probe=controller/src/probe/probe.sh
hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/validate.md" \
  -n "moor validate (slow link)" "$moor validate --json --host 127.0.0.1 --port $port --user moor --key $work/key" \
  -n "ssh host sh -s < probe.sh" "$sshp moor@127.0.0.1 sh -s < $probe" \
  -n "ssh (curve25519)" "$sshp -o KexAlgorithms=curve25519-sha256 moor@127.0.0.1 sh -s < $probe" >&2
eval "$fresh"
sent=$($attach | python3 -c 'import json,sys; print(json.load(sys.stdin)["agent"]["bytes_sent"])')
echo; cat "$work/slow.md"; echo; cat "$work/validate.md"; echo
echo "agent bytes sent by moor: $sent (agent $(stat -c %s "$agent") bytes; xz form $(stat -c %s "$work/moor-agent.xz"))"
echo "link: deploy/bench/slowlink.py, 25 ms each way, 20 Mbit/s each direction"
