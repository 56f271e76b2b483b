#!/usr/bin/env bash
# Benchmarks of a target behind a bastion (issue 13, item 4), side by side
# with OpenSSH's ProxyJump (`ssh -J`) over the same two hosts: a bastion on a
# network this machine reaches, and a target only on a private network the
# bastion also joins. Both clients read one ssh config (ProxyJump, keys,
# strict known_hosts) and share no connections.
#   - `moor validate --host behind` against `ssh behind true`;
#   - `moor run --target behind -- true` against `ssh behind true`.
#
#   deploy/bench/jump.sh [RUNS]        (default 20 runs each)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-20}
cargo build --release --quiet -p moor-cli --bin moor
moor=$PWD/target/release/moor
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }

work=$(mktemp -d)
bastion="moor-bench-bastion-$$"
target="moor-bench-behind-$$"
private="moor-bench-private-$$"
cleanup() {
  docker rm -f "$target" >/dev/null 2>&1 || true
  deploy/testhost/stop-host.sh "$bastion"
  docker network rm "$private" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N '' -C moor-bench -f "$work/key"
export MOOR_AUTHORIZED_KEYS
MOOR_AUTHORIZED_KEYS=$(cat "$work/key.pub")
bip=$(deploy/testhost/start-host.sh "$bastion" -e MOOR_AUTHORIZED_KEYS -e MOOR_OS=ubuntu-22.04)
docker network create --internal -o com.docker.network.bridge.inhibit_ipv4=true \
  --label moor.test "$private" >/dev/null
docker network connect "$private" "$bastion"
docker run -d --label moor.test --name "$target" --hostname "$target" --network "$private" \
  -e MOOR_AUTHORIZED_KEYS -e MOOR_OS=ubuntu-22.04 "$(deploy/testhost/build-image.sh)" >/dev/null
for _ in $(seq 300); do
  docker exec "$target" bash -c 'exec 3<>/dev/tcp/127.0.0.1/22 && head -c 4 <&3' 2>/dev/null | grep -q SSH- && break
  sleep 0.1
done

hostkey() { docker exec "$1" cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub; }
{ echo "$bip $(hostkey "$bastion")"; echo "$target $(hostkey "$target")"; } > "$work/known_hosts"
cat > "$work/config" <<CONFIG
Host bastion
  HostName $bip
Host behind
  HostName $target
  ProxyJump bastion
Host *
  User moor
  IdentityFile $work/key
  UserKnownHostsFile $work/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ControlMaster no
CONFIG
export MOOR_WORKSPACE="$work/ws"
mkdir -p "$MOOR_WORKSPACE" && cp "$work/known_hosts" "$MOOR_WORKSPACE/known_hosts"
mkdir -p "$work/src" && echo "print('hello')" > "$work/src/train.py"

ssh -F "$work/config" behind true
$moor attach vm behind --host behind --ssh-config "$work/config" >/dev/null
$moor run --target behind --source-dir "$work/src" -- true >/dev/null 2>&1

hyperfine --warmup 3 --runs "$runs" --export-markdown "$work/jump.md" \
  -n "moor validate (via bastion)" "$moor validate --host behind --ssh-config $work/config" \
  -n "moor run -- true (via bastion)" "$moor run --target behind --source-dir $work/src -- true" \
  -n "ssh -J bastion behind true" "ssh -F $work/config behind true" >&2

echo; cat "$work/jump.md"
