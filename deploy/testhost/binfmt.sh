#!/usr/bin/env bash
# Makes this x86_64 machine run aarch64 executables (the arm64 test host and
# the aarch64 agent on it) with Debian's qemu-user-static, through the
# kernel's binfmt_misc. Registered with the F flag: the kernel opens the
# emulator at registration, so it works inside containers that lack it.
# Idempotent; needs root (deploy/prereqs.sh --tests installs qemu-user-static).
set -euo pipefail
log() { printf 'binfmt: %s\n' "$*" >&2; }
entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
[ -e "$entry" ] && grep -qx enabled "$entry" && exit 0
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
[ -r "$conf" ] || { log "qemu-user-static missing: apt-get install -y qemu-user-static (deploy/prereqs.sh --tests does)"; exit 1; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  $sudo mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
    || { log "cannot mount binfmt_misc (a container without the privilege?): run on a machine where root may"; exit 1; }
fi
if [ -e "$entry" ]; then
  echo 1 | $sudo tee "$entry" >/dev/null
else
  $sudo tee /proc/sys/fs/binfmt_misc/register < "$conf" >/dev/null
fi
grep -q '^flags: .*F' "$entry" || { log "$entry is registered without the F flag: the test host could not find the emulator"; exit 1; }
log "aarch64 executables run under $(sed -n 's/^interpreter //p' "$entry")"
