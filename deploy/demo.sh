#!/usr/bin/env bash
# moor end to end against a disposable local SSH host: builds moor, starts a
# throwaway test host (Ubuntu 22.04 os-release, Docker socket mounted,
# password login), validates it, attaches it (agent install, key enrollment),
# runs a small training script on it (live log, outputs downloaded), and
# detaches it; the host is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/prereqs.sh
cargo build --release --quiet -p moor-cli

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
mkdir -p "$work/src"
cat > "$work/src/train.py" <<'PY'
import json, os, random
random.seed(0)
w, lr = 0.0, 0.1
for epoch in range(1, 6):
    xs = [random.uniform(-1, 1) for _ in range(200)]
    grad = sum(2 * (w * x - 3 * x) * x for x in xs) / len(xs)
    w -= lr * grad * 5
    print(f"epoch {epoch}: w = {w:.3f}", flush=True)
with open(os.path.join(os.environ["MOOR_OUTPUT_DIR"], "model.json"), "w") as f:
    json.dump({"w": w}, f)
PY
run run --target demo-vm --source-dir "$work/src" -- python3 train.py
id=$("$moor" runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
run download "$id" --to "$work/outputs"
echo "model: $(cat "$work/outputs/model.json")"
run detach demo-vm --purge
echo; echo "demo ok"
