# Sourced by the fleet benchmarks (after deploy/prereqs.sh, with n set):
# starts n test-host containers on one Docker network, trusting one fresh
# ed25519 key, removed on exit, and sets for the caller:
#   work        a temporary directory (removed on exit)
#   $work/ips   the hosts' addresses, one a line; $work/known_hosts their keys
#   $work/inventory.yaml  a SkyPilot-style inventory: pool `lab`, user moor
#   MOOR_WORKSPACE  a fresh workspace; MOOR_NO_MUX=1 (cold connections: the
#               baselines are cold `ssh` processes)
#   ssh_opts    OpenSSH options: that key, strict checking, no sharing
#   each CMD    prints a command running CMD for every host at once ({} = address)
image=$(deploy/testhost/build-image.sh)

work=$(mktemp -d)
net="moor-fleet-$$"
cleanup() {
  docker ps -aq --filter "label=moor.fleet=$net" | xargs -r docker rm -f >/dev/null
  docker network rm "$net" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N '' -C moor-bench -f "$work/key"
export MOOR_AUTHORIZED_KEYS
MOOR_AUTHORIZED_KEYS=$(cat "$work/key.pub")
docker network create --label moor.test "$net" >/dev/null
seq "$n" | xargs -P 8 -I{} docker run -d --label moor.test --label "moor.fleet=$net" \
  --name "$net-{}" --hostname "$net-{}" --network "$net" \
  -e MOOR_AUTHORIZED_KEYS -e MOOR_OS=ubuntu-22.04 "$image" >/dev/null
for i in $(seq "$n"); do
  docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$net-$i"
done > "$work/ips"
for i in $(seq "$n"); do
  ip=$(sed -n "${i}p" "$work/ips")
  for _ in $(seq 300); do
    banner=$(timeout 1 bash -c "exec 3<>/dev/tcp/$ip/22 && head -c 4 <&3" 2>/dev/null || true)
    [ "$banner" = SSH- ] && break
    sleep 0.1
  done
  echo "$ip $(docker exec "$net-$i" cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)"
done > "$work/known_hosts"
{
  echo "lab:"
  echo "  user: moor"
  echo "  identity_file: $work/key"
  echo "  hosts:"
  sed 's/^/    - /' "$work/ips"
} > "$work/inventory.yaml"
export MOOR_WORKSPACE="$work/ws" MOOR_NO_MUX=1
ssh_opts="-i $work/key -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ControlMaster=no"
each() { echo "xargs -P $n -I{} sh -c '$1' < $work/ips"; }
