#!/usr/bin/env bash
# moor end to end against a disposable local SSH host: builds moor, starts a
# throwaway test host (Ubuntu 22.04 os-release, Docker socket mounted, key
# login), validates it with moor, and removes the host again.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/prereqs.sh
cargo build --release --quiet -p moor-controller
image=$(deploy/testhost/build-image.sh)

work=$(mktemp -d)
name="moor-demo-$$"
cleanup() {
  docker rm -f -v "$name" >/dev/null 2>&1 || true
  docker network rm "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -C moor-demo -f "$work/id_ed25519"
docker network create --label moor.test "$name" >/dev/null
MOOR_AUTHORIZED_KEYS=$(cat "$work/id_ed25519.pub") docker run -d --label moor.test --name "$name" \
  --hostname demo-vm --network "$name" -e MOOR_AUTHORIZED_KEYS -e MOOR_OS=ubuntu-22.04 \
  -e MOOR_DOCKER_ACCESS=yes -v /var/run/docker.sock:/var/run/docker.sock "$image" >/dev/null
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/$ip/22") 2>/dev/null && break
  sleep 0.1
done

# The host is brand new, so its key is trusted by the fingerprint read from
# the host itself: the way to do it for real is to ask the machine's owner.
fingerprint=$(docker exec "$name" ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2)
export MOOR_WORKSPACE="$work/workspace"
set +e
echo "\$ moor validate --host $ip --user moor --key id_ed25519 --host-key-fingerprint $fingerprint"
target/release/moor validate --host "$ip" --user moor --key "$work/id_ed25519" --host-key-fingerprint "$fingerprint"
status=$?
echo "(exit $status)"
exit $status
