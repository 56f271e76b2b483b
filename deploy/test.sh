#!/usr/bin/env bash
# Runs moor's whole test suite: unit tests, and integration tests against real
# OpenSSH test hosts in containers. Installs what is missing first, builds
# (or reuses) the test-host images, and removes test containers and networks
# left behind by an earlier, killed run.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/prereqs.sh --tests
deploy/testhost/sweep.sh
# The test-host images (each cached by the hash of its recipe; from nothing,
# debootstraps of minutes, the arm64 one under qemu) build side by side, one
# family each, while the tests compile.
logs=$(mktemp -d)
families=("base spark" "dist" "arm64")
pids=()
for family in "${families[@]}"; do
  (for flavour in $family; do
     [ "$flavour" = base ] && flavour=
     deploy/testhost/build-image.sh $flavour >/dev/null || exit 1
   done) 2>"$logs/${family// /-}" &
  pids+=($!)
done
status=0
cargo test --workspace --all-targets --no-run "$@" || status=$?
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    family=${families[$i]}
    cat "$logs/${family// /-}" >&2
    echo "test.sh: the $family test-host image did not build (above)" >&2
    status=1
  fi
done
rm -rf "$logs"
[ $status -eq 0 ] && { cargo test --workspace --all-targets "$@" || status=$?; }
deploy/testhost/sweep.sh
exit $status
