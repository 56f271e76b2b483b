#!/usr/bin/env bash
# Runs moor's whole test suite: unit tests, and integration tests against real
# OpenSSH test hosts in containers. Installs what is missing first, builds
# (or reuses) the test-host images, and removes test containers and networks
# left behind by an earlier, killed run.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/prereqs.sh --tests
deploy/testhost/sweep.sh
deploy/testhost/build-image.sh >/dev/null
deploy/testhost/build-image.sh spark >/dev/null
deploy/testhost/build-image.sh dist >/dev/null
# The arm64 host (debootstrapped under qemu: minutes the first time) builds
# while the tests compile.
arm64_log=$(mktemp)
deploy/testhost/build-image.sh arm64 >/dev/null 2>"$arm64_log" &
arm64=$!
status=0
cargo test --workspace --all-targets --no-run "$@" || status=$?
if ! wait $arm64; then
  cat "$arm64_log" >&2
  echo "test.sh: the arm64 test-host image did not build (above)" >&2
  status=1
fi
rm -f "$arm64_log"
[ $status -eq 0 ] && { cargo test --workspace --all-targets "$@" || status=$?; }
deploy/testhost/sweep.sh
exit $status
