#!/usr/bin/env bash
# Builds the moor test-host image offline, with no registry:
#   1. base: a minbase debootstrap of Debian bookworm with the packages in
#      base.packages, turned into an image with `docker import`;
#   2. layer: Dockerfile (entrypoint.sh on top of the base);
#   3. with the argument `spark`, the head-node host on top of that:
#      spark/Dockerfile with pyspark from PyPI (spark/requirements.txt);
#   with the argument `dist`, the distributed-training host: steps 1 and 2
#   with dist.packages added to the base (Debian's CPU torch with gloo, Open
#   MPI and mpi4py), for the multi-node job tests;
#   with the argument `arm64`, an aarch64 host: steps 1 and 2 with
#   arm64.packages only, debootstrapped with --arch arm64 and imported as a
#   linux/arm64 image. It runs on this x86_64 machine under qemu-user-static
#   through binfmt_misc, which this script sets up (root needed) when the
#   kernel does not run aarch64 executables yet.
# Each is tagged by the sha256 of its recipe, so an unchanged recipe is a
# cache hit and a changed one rebuilds. Prints the final image tag on stdout.
#
# Usage: build-image.sh [spark|dist|arm64]
# Env: MOOR_DEBIAN_MIRROR (default: the mirror apt uses here, else deb.debian.org).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { printf 'testhost: %s\n' "$*" >&2; }

flavour=${1:-}
packages=("$here/base.packages")
prefix=moor-testhost
arch=amd64
case "$flavour" in
  ""|spark) ;;
  dist) packages+=("$here/dist.packages"); prefix=moor-testhost-dist ;;
  arm64) packages=("$here/arm64.packages"); prefix=moor-testhost-arm64; arch=arm64 ;;
  *) log "unknown flavour $flavour (only: spark, dist, arm64)"; exit 2 ;;
esac
[ "$arch" = amd64 ] || "$here/binfmt.sh"

hash_of() { cat "$@" | sha256sum | cut -c1-12; }
base_hash=$(hash_of "${packages[@]}" <(sed -n '/^# --- base recipe ---$/,/^# --- end base recipe ---$/p' "$0"))
layer_hash=$(hash_of "$here/Dockerfile" "$here/entrypoint.sh" <(echo "$base_hash"))
base_tag="$prefix-base:$base_hash"
tag="$prefix:$layer_hash"

# One build of an image family at a time on this machine (test processes
# may all ask at once); the families (the base and its spark layer, dist,
# arm64) share nothing and build side by side.
exec 9>"${TMPDIR:-/tmp}/moor-testhost-build-$prefix.lock"
flock 9

if [ "$flavour" = spark ]; then
  spark_hash=$(hash_of "$here"/spark/* <(echo "$layer_hash"))
  spark_tag="moor-testhost-spark:$spark_hash"
  if docker image inspect "$spark_tag" >/dev/null 2>&1; then
    log "cached $spark_tag"
    echo "$spark_tag"
    exit 0
  fi
fi

build_spark() {
  ctx=$(mktemp -d /var/tmp/moor-testhost-spark.XXXXXX)
  trap 'rm -rf "$ctx" ${rootfs:-}' EXIT
  cp "$here"/spark/* "$ctx"/
  log "pip install pyspark for the head-node host"
  python3 -m pip install --quiet --no-deps --disable-pip-version-check \
    --target "$ctx/site" -r "$here/spark/requirements.txt" >&2
  DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$tag" -t "$spark_tag" "$ctx" >&2
  log "built $spark_tag"
  echo "$spark_tag"
}

if docker image inspect "$tag" >/dev/null 2>&1; then
  log "cached $tag"
  if [ "$flavour" = spark ]; then build_spark; else echo "$tag"; fi
  exit 0
fi

# --- base recipe ---
if ! docker image inspect "$base_tag" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { log "debootstrap missing: apt-get install -y debootstrap"; exit 1; }
  mirror=${MOOR_DEBIAN_MIRROR:-$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?$' | head -n1 || true)}
  mirror=${mirror:-http://deb.debian.org/debian}
  include=$(cat "${packages[@]}" | grep -vE '^(#|$)' | paste -sd, -)
  rootfs=$(mktemp -d /var/tmp/moor-testhost-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap bookworm ($include) from $mirror"
  debootstrap --arch "$arch" --variant=minbase --include="$include" bookworm "$rootfs" "$mirror" >&2
  # Every host generates its own host keys and machine-id at start.
  rm -f "$rootfs"/etc/ssh/ssh_host_* "$rootfs"/etc/machine-id "$rootfs"/var/lib/dbus/machine-id
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --platform "linux/$arch" - "$base_tag" >/dev/null
  log "imported $base_tag"
fi
# --- end base recipe ---

DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$base_tag" -t "$tag" "$here" >&2
log "built $tag"
if [ "$flavour" = spark ]; then build_spark; else echo "$tag"; fi
