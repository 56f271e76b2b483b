#!/usr/bin/env bash
# Benchmark of `moor endpoint invoke` (issue 16): one POST /score to an
# endpoint on the test host (a small stdlib HTTP server, `--` CMD), side by
# side with curl through `ssh -L` made for that request (what a user without
# moor types: a tunnel, then curl), and with curl through a tunnel kept open
# (the floor: no SSH handshake at all).
#
#   deploy/bench/endpoint.sh [RUNS]     (default 30)
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/prereqs.sh --tests
runs=${1:-30}
cargo build --release --quiet -p moor-cli --bin moor
moor=$PWD/target/release/moor

. deploy/bench/common.sh
$moor attach vm bench --host "$ip" --user moor --key "$work/key" >/dev/null
mkdir -p "$work/src"
cat > "$work/src/server.py" <<'PY'
import http.server, json, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"up")
    def do_POST(self):
        data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        out = json.dumps({"predictions": [sum(r) > 10 for r in data["data"]]}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out))); self.end_headers(); self.wfile.write(out)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
PY
echo '{"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}' > "$work/request.json"
port=$($moor endpoint create bench-ep --target bench --source-dir "$work/src" --json -- python3 server.py \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["port"])')
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# One tunnel per request: ssh -f returns once the forward listens.
cat > "$work/ssh-curl.sh" <<SH
#!/usr/bin/env bash
set -e
p=\$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ssh $ssh_opts -f -o ExitOnForwardFailure=yes -L "\$p:127.0.0.1:$port" "moor@$ip" sleep 20
curl -sf -X POST -H 'Content-Type: application/json' --data @$work/request.json "http://127.0.0.1:\$p/score" >/dev/null
pkill -f -- "-L \$p:127.0.0.1" || true
SH
chmod +x "$work/ssh-curl.sh"
warm=$(free_port)
# shellcheck disable=SC2086 # ssh_opts is a list of words
ssh $ssh_opts -N -L "$warm:127.0.0.1:$port" "moor@$ip" &
warm_pid=$!
trap 'kill $warm_pid 2>/dev/null || true; $moor endpoint delete bench-ep >/dev/null 2>&1 || true; cleanup' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$warm/" && break; sleep 0.2; done

hyperfine --warmup 3 --runs "$runs" --export-markdown "$work/invoke.md" \
  -n "moor endpoint invoke" "$moor endpoint invoke bench-ep --data $work/request.json" \
  -n "ssh -f -L, then curl (a tunnel per request)" "$work/ssh-curl.sh" \
  -n "curl through a tunnel kept open (ssh -N -L)" "curl -sf -X POST -H 'Content-Type: application/json' --data @$work/request.json http://127.0.0.1:$warm/score" >&2
echo; cat "$work/invoke.md"
