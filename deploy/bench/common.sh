# Sourced by the benchmark scripts (after deploy/prereqs.sh): installs
# hyperfine, starts one test host
# (extra `docker run` arguments in BENCH_HOST_ARGS) that trusts a fresh
# ed25519 key, and sets for the caller:
#   work      a temporary directory, removed (with the host) on exit
#   name, ip  the host's container name and address
#   ssh_opts  OpenSSH options: that key, strict checking against a
#             known_hosts holding the host's key, no connection sharing
#   MOOR_WORKSPACE  a workspace whose known_hosts has the same key
#   MOOR_NO_MUX=1   every moor command connects by itself, as the cold
#             `ssh` baselines do (deploy/bench/mux.sh measures warm ones)
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
work=$(mktemp -d)
name="moor-bench-$$"
cleanup() {
  deploy/testhost/stop-host.sh "$name"
  rm -rf "$work"
}
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N '' -C moor-bench -f "$work/key"
export MOOR_AUTHORIZED_KEYS
MOOR_AUTHORIZED_KEYS=$(cat "$work/key.pub")
# shellcheck disable=SC2086 # BENCH_HOST_ARGS is a list of words
ip=$(deploy/testhost/start-host.sh "$name" -e MOOR_AUTHORIZED_KEYS -e MOOR_OS=ubuntu-22.04 ${BENCH_HOST_ARGS:-})
echo "$ip $(docker exec "$name" cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)" > "$work/known_hosts"
export MOOR_WORKSPACE="$work/ws" MOOR_NO_MUX=1
mkdir -p "$MOOR_WORKSPACE" && cp "$work/known_hosts" "$MOOR_WORKSPACE/known_hosts"
ssh_opts="-i $work/key -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ControlMaster=no"

# The host gets this machine's rsync (Debian's, as the host) and the one
# library it lacks, for rsync baselines.
host_rsync() {
  command -v rsync >/dev/null || { apt-get update -qq && apt-get install -y -qq rsync >/dev/null; }
  docker cp -L /usr/bin/rsync "$name:/usr/bin/rsync"
  docker cp -L /lib/x86_64-linux-gnu/libpopt.so.0 "$name:/lib/x86_64-linux-gnu/libpopt.so.0"
}

# A slow, far link to the host (deploy/bench/slowlink.py: 25 ms each way,
# 20 Mbit/s), stopped on exit; sets port (the relay's, on 127.0.0.1),
# slow_opts (OpenSSH options: -p PORT and a known_hosts naming the relay),
# and gives the workspace that known_hosts.
slow_link() {
  port=$((20000 + $$ % 10000))
  python3 deploy/bench/slowlink.py "$port" "$ip" 22 25 20 > "$work/relay.log" 2>&1 &
  relay=$!
  trap 'kill $relay 2>/dev/null; cleanup' EXIT
  for _ in $(seq 50); do grep -q ready "$work/relay.log" 2>/dev/null && break; sleep 0.1; done
  sed "s/^$ip /[127.0.0.1]:$port /" "$work/known_hosts" > "$work/kh_relay"
  cp "$work/kh_relay" "$MOOR_WORKSPACE/known_hosts"
  slow_opts="-p $port -i $work/key -o UserKnownHostsFile=$work/kh_relay -o StrictHostKeyChecking=yes -o BatchMode=yes -o ControlMaster=no"
}
