#!/usr/bin/env bash
# Runs moor's whole test suite: unit tests, and integration tests against real
# OpenSSH test hosts in containers. Installs what is missing first, builds
# (or reuses) the test-host image, and removes test containers and networks
# left behind by an earlier, killed run.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/prereqs.sh
deploy/testhost/sweep.sh
deploy/testhost/build-image.sh >/dev/null
deploy/testhost/build-image.sh spark >/dev/null
deploy/testhost/build-image.sh dist >/dev/null
status=0
cargo test --workspace --all-targets "$@" || status=$?
deploy/testhost/sweep.sh
exit $status
