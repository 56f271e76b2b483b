#!/usr/bin/env bash
# Installs what building moor and its demo need on a fresh Debian/Ubuntu
# machine (run as root, or with sudo available), and checks that the Docker
# engine answers. `--tests` (deploy/test.sh, the benchmarks) adds what only
# the tests need: the other architecture's agent toolchain, qemu for the
# arm64 host, squid, openssl, chromium, pip-tools, PostgreSQL. Idempotent: installs only
# what is missing.
set -euo pipefail
log() { printf 'prereqs: %s\n' "$*" >&2; }
tests=false
[ "${1:-}" = "--tests" ] && tests=true

need=()
# Building moor and the demo: the test host's image, its SSH keys, the
# agent's musl build and its xz-packed copy, the demo's JSON reading.
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v flock >/dev/null || need+=(util-linux)
command -v cc >/dev/null || need+=(gcc)
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v xz >/dev/null || need+=(xz-utils)
command -v python3 >/dev/null || need+=(python3)
if $tests; then
  command -v ssh-agent >/dev/null || need+=(openssh-client)
  # `moor ssh`'s test runs it in a pseudo-terminal made by script(1).
  command -v script >/dev/null || need+=(bsdutils)
  # The port-forwarding benchmark fetches through both tunnels with curl.
  command -v curl >/dev/null || need+=(curl)
  # The arm64 test host and the aarch64 agent on it run under qemu
  # (deploy/testhost/binfmt.sh registers it with binfmt_misc).
  [ -r /usr/lib/binfmt.d/qemu-aarch64.conf ] || need+=(qemu-user-static)
  # Agents' packed forms are checked against the system's gzip.
  command -v gzip >/dev/null || need+=(gzip)
  # The corporate-network test: a forward proxy, and a CA made with openssl.
  command -v squid >/dev/null || need+=(squid)
  command -v openssl >/dev/null || need+=(openssl)
  # The tests download a wheelhouse (pip) for the pip-environment test.
  python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
  # `moor ui`'s tests drive a real browser over WebDriver.
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
  # The team server's tests run their own PostgreSQL cluster (initdb, pg_ctl).
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  log "installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { log "cargo missing: install Rust with rustup (https://rustup.rs)"; exit 1; }
# The agent ships as a static musl binary, built by the cli's build.rs: the
# demo builds this machine's; the tests build both.
targets=("$(uname -m)-unknown-linux-musl")
if $tests; then
  targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
  # pip-compile (pip-tools) writes the hashed lock file of the requirements test.
  if ! python3 -m piptools compile --version >/dev/null 2>&1; then
    log "installing pip-tools (pip-compile)"
    python3 -m pip install --quiet --disable-pip-version-check 'pip-tools==7.4.1'
  fi
  # The aarch64 agent's C dependencies are compiled by zig's clang
  # (deploy/cross/aarch64-linux-musl-cc), from PyPI.
  if ! python3 -m ziglang version >/dev/null 2>&1; then
    log "installing zig (PyPI ziglang) to compile the aarch64 agent's C code"
    python3 -m pip install --quiet --disable-pip-version-check 'ziglang==0.17.1'
  fi
fi
for target in "${targets[@]}"; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    log "adding the Rust target $target"
    rustup target add "$target" >/dev/null
  fi
done
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
  || { log "the Docker engine does not answer: start it (systemctl start docker) and make sure you may use it"; exit 1; }
