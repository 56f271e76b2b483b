#!/usr/bin/env bash
# moor end to end against a disposable local SSH host: builds moor, starts a
# throwaway test host (Ubuntu 22.04 os-release, Docker socket mounted,
# password login), validates it, attaches it (agent install, key enrollment),
# lists it, re-validates it without the password, detaches it, and removes
# the host again.
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

# The demo host's password: random, passed by name, never in any argv.
MOOR_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
export MOOR_PASSWORD
docker network create --label moor.test "$name" >/dev/null
docker run -d --label moor.test --name "$name" \
  --hostname demo-vm --network "$name" -e MOOR_PASSWORD -e MOOR_OS=ubuntu-22.04 \
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
moor=target/release/moor
run() { echo; echo "\$ moor $*"; "$moor" "$@"; }
run validate --host "$ip" --user moor --password-env MOOR_PASSWORD --host-key-fingerprint "$fingerprint"
run attach vm demo-vm --host "$ip" --user moor --password-env MOOR_PASSWORD
run list
unset MOOR_PASSWORD   # the workspace key is enrolled now
run validate demo-vm
run detach demo-vm --purge
echo; echo "demo ok"
