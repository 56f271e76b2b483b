#!/bin/sh
# Entry point of a moor test host. Configures the host from its environment,
# then runs sshd in the foreground. Every start makes a fresh host identity
# (host keys and /etc/machine-id), so each container is its own machine.
#
#   MOOR_USER             login user (default: moor)
#   MOOR_PASSWORD         the user's password (pass it with `docker run -e
#                         MOOR_PASSWORD`, never as a value in argv)
#   MOOR_AUTHORIZED_KEYS  public key lines for ~/.ssh/authorized_keys
#   MOOR_AUTH             any | password | key | kbdint: which methods sshd offers
#   MOOR_OS               ubuntu-24.04 | ubuntu-22.04 | ubuntu-20.04 |
#                         debian-12 (the real one) | centos-7: the os-release shown
#   MOOR_DOCKER_ACCESS    yes: the user joins the group of a mounted
#                         /var/run/docker.sock (made `docker`, as on a host
#                         with Docker installed); otherwise the user cannot use it
#   MOOR_SUDO             nopasswd: passwordless sudo for the user
set -eu
user=${MOOR_USER:-moor}

os_release() {
  case "$1" in
    ubuntu-24.04) printf 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION="24.04.1 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n' ;;
    ubuntu-22.04) printf 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n' ;;
    ubuntu-20.04) printf 'NAME="Ubuntu"\nVERSION="20.04.6 LTS (Focal Fossa)"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 20.04.6 LTS"\nVERSION_ID="20.04"\nVERSION_CODENAME=focal\n' ;;
    centos-7) printf 'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\nPRETTY_NAME="CentOS Linux 7 (Core)"\n' ;;
    debian-12|"") return 1 ;;
    *) echo "unknown MOOR_OS $1" >&2; exit 64 ;;
  esac
}
if os_release "${MOOR_OS:-}" > /tmp/os-release; then
  rm -f /etc/os-release
  cp /tmp/os-release /usr/lib/os-release
  ln -s ../usr/lib/os-release /etc/os-release
fi
rm -f /tmp/os-release

# Host identity.
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -A
tr -d '-' < /proc/sys/kernel/random/uuid > /etc/machine-id

# The user. $HOME may be a tmpfs mounted by `docker run --tmpfs`.
if ! id "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$user" 2>/dev/null || useradd --shell /bin/bash "$user"
fi
home=$(getent passwd "$user" | cut -d: -f6)
mkdir -p "$home/.ssh"
if [ -n "${MOOR_AUTHORIZED_KEYS:-}" ]; then
  printf '%s\n' "$MOOR_AUTHORIZED_KEYS" > "$home/.ssh/authorized_keys"
fi
chmod 0700 "$home/.ssh"
chown -R "$user:$user" "$home"
chmod 0755 "$home"
if [ -n "${MOOR_PASSWORD:-}" ]; then
  printf '%s:%s\n' "$user" "$MOOR_PASSWORD" | chpasswd
else
  usermod -p '*' "$user"   # no password, but not locked: key login works
fi
unset MOOR_PASSWORD
if [ -S /var/run/docker.sock ]; then
  gid=$(stat -c %g /var/run/docker.sock)
  getent group "$gid" >/dev/null || groupadd --gid "$gid" docker
  if [ "${MOOR_DOCKER_ACCESS:-}" = yes ]; then
    usermod -aG "$(getent group "$gid" | cut -d: -f1)" "$user"
  fi
fi
if [ "${MOOR_SUDO:-}" = nopasswd ]; then
  echo "$user ALL=(ALL) NOPASSWD:ALL" > "/etc/sudoers.d/$user"
  chmod 0440 "/etc/sudoers.d/$user"
fi

conf=/etc/ssh/sshd_config.d/moor-testhost.conf
case "${MOOR_AUTH:-any}" in
  any)      printf 'PubkeyAuthentication yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n' ;;
  password) printf 'PubkeyAuthentication no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n' ;;
  key)      printf 'PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n' ;;
  kbdint)   printf 'PubkeyAuthentication no\nPasswordAuthentication no\nKbdInteractiveAuthentication yes\nUsePAM yes\n' ;;
  *) echo "unknown MOOR_AUTH $MOOR_AUTH" >&2; exit 64 ;;
esac > "$conf"
echo 'MaxStartups 100:30:200' >> "$conf"
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e
