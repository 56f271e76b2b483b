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

work=$(mktemp -d)
name="moor-demo-$$"
cleanup() {
  deploy/testhost/stop-host.sh "$name"
  rm -rf "$work"
}
trap cleanup EXIT

# The demo host's password: random, passed by name, never in any argv.
MOOR_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
export MOOR_PASSWORD
ip=$(deploy/testhost/start-host.sh "$name" -e MOOR_PASSWORD -e MOOR_OS=ubuntu-22.04 \
  -e MOOR_DOCKER_ACCESS=yes -v /var/run/docker.sock:/var/run/docker.sock)

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
