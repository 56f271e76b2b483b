#!/usr/bin/env bash
# Starts one disposable test host for scripts (demo, benchmarks): a private
# network and a container both called NAME, labelled moor.test, built from
# the current test-host image. Extra arguments go to `docker run` (pass
# secrets as `-e VAR`, never `-e VAR=value`). Waits for sshd, prints the
# host's address. Remove it with stop-host.sh NAME. MOOR_TESTHOST_FLAVOUR=spark
# starts the head-node host (Spark, a YARN client) instead.
#
#   ip=$(deploy/testhost/start-host.sh NAME [docker run args...])
set -euo pipefail
name=$1; shift
image=$("$(dirname "$0")/build-image.sh" ${MOOR_TESTHOST_FLAVOUR:-})
docker network create --label moor.test "$name" >/dev/null
docker run -d --label moor.test --name "$name" --hostname "$name" --network "$name" "$@" "$image" >/dev/null
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
for _ in $(seq 300); do
  if banner=$(timeout 1 bash -c "exec 3<>/dev/tcp/$ip/22 && head -c 4 <&3" 2>/dev/null) && [ "$banner" = SSH- ]; then
    echo "$ip"
    exit 0
  fi
  sleep 0.1
done
echo "start-host: sshd on $name ($ip) did not come up" >&2
docker logs "$name" >&2 || true
exit 1
