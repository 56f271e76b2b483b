#!/usr/bin/env bash
# moor end to end against a disposable local SSH host: builds moor, starts a
# throwaway test host (Ubuntu 22.04 os-release, Docker socket mounted,
# password login), validates it, attaches it (agent install, key enrollment),
# runs a small training script on it (live log, outputs downloaded), serves
# the trained model from the run's outputs as an endpoint and calls it, and
# detaches it; the host is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/prereqs.sh
# The agent for this machine's architecture only (the demo host is this
# machine's): `cargo build --release -p moor-cli` builds moor with both.
case "$(uname -m)" in
  aarch64|arm64) arch=aarch64 ;;
  *) arch=x86_64 ;;
esac
MOOR_AGENT_ARCHES=$arch cargo build --release --quiet -p moor-cli

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
# Serve the model from the run's outputs (copied on the host) with a small
# HTTP server, and call it through SSH.
mkdir -p "$work/serve"
cat > "$work/serve/server.py" <<'PY'
import http.server, json, os
w = json.load(open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.json")))["w"]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"up")
    def do_POST(self):
        xs = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["data"]
        out = json.dumps({"predictions": [round(w * x, 3) for x in xs]}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out))); self.end_headers(); self.wfile.write(out)
http.server.HTTPServer((os.environ["MOOR_ENDPOINT_ADDRESS"], int(os.environ["PORT"])), Handler).serve_forever()
PY
run endpoint create linear --target demo-vm --source-dir "$work/serve" --model "$id:model.json" -- python3 server.py
echo '{"data": [1, 2]}' > "$work/request.json"
run endpoint invoke linear --data "$work/request.json"
run endpoint delete linear
run detach demo-vm --purge
echo; echo "demo ok"
