//! Shell scripts moor runs on hosts, and how it runs them safely.
//!
//! Every script is a constant. Values (ids, names, key lines) reach it only as
//! positional parameters, each quoted with [`quote`](crate::shell::quote), so nothing a user typed
//! is ever parsed as shell code. Scripts print `key=value` lines that
//! [`key_values`] reads back.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::shell::quote;
use crate::ssh::{ExecOutput, Session};
use crate::transfer::Transfer;

/// The command line that runs `script` with `args` as `$1 $2 ...`.
pub fn command(script: &str, name: &str, args: &[&str]) -> String {
    let mut cmd = format!("sh -c {} {}", quote(script), quote(name));
    for arg in args {
        cmd.push(' ');
        cmd.push_str(&quote(arg));
    }
    cmd
}

/// Runs a script; a non-zero exit is an [`Error::Remote`] carrying the
/// script's `error=` line, or its last stderr line.
pub async fn run(
    session: &Session,
    step: &'static str,
    script: &str,
    args: &[&str],
    stdin: &[u8],
    fix: &str,
) -> Result<ExecOutput> {
    run_with(session, step, script, args, stdin, fix, &Transfer::hidden()).await
}

/// [`run`], telling `progress` of the stdin sent (the agent at attach).
pub async fn run_with(
    session: &Session,
    step: &'static str,
    script: &str,
    args: &[&str],
    stdin: &[u8],
    fix: &str,
    progress: &Transfer,
) -> Result<ExecOutput> {
    let out = session
        .exec_with(&command(script, step, args), stdin, progress)
        .await?;
    if out.exit_status == Some(0) {
        return Ok(out);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut said = key_values(&stdout);
    let fix = said.remove("fix").unwrap_or_else(|| fix.to_owned());
    let cause = said
        .remove("error")
        .or_else(|| {
            stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| match (&out.exit_status, &out.exit_signal) {
            (_, Some(sig)) => format!("killed by signal {sig}"),
            (Some(code), None) => format!("exit status {code}"),
            (None, None) => "no exit status".into(),
        });
    Err(Error::Remote {
        host: session.endpoint.host.clone(),
        step,
        cause,
        fix,
    })
}

/// `key=value` lines of a script's output (the first value of each key).
pub fn key_values(output: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in output.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                map.entry(k.to_owned()).or_insert_with(|| v.to_owned());
            }
        }
    }
    map
}

/// Claims the machine and, when a key line is given, enrolls it.
/// `$1` mode (`create`: only if unclaimed; `replace`), `$2` claim JSON,
/// `$3` authorized_keys line or empty, `$4` the tag that marks moor's line.
pub const CLAIM: &str = r#"set -eu
mode=$1 claim=$2 pubkey=$3 tag=$4
umask 077
mkdir -p "$HOME/.moor"
c="$HOME/.moor/claim"
tmp="$c.tmp.$$"
printf '%s\n' "$claim" > "$tmp"
if [ "$mode" = create ]; then
  # ln fails if the claim exists: of two racing attaches, exactly one wins.
  if ln "$tmp" "$c" 2>/dev/null; then
    rm -f "$tmp"; echo claim=created
  else
    rm -f "$tmp"; echo claim=exists; printf 'current='; cat "$c"; exit 0
  fi
else
  mv -f "$tmp" "$c"; echo claim=replaced
fi
if [ -n "$pubkey" ]; then
  mkdir -p "$HOME/.ssh"; chmod 700 "$HOME/.ssh"
  ak="$HOME/.ssh/authorized_keys"
  touch "$ak"; chmod 600 "$ak"
  if grep -qF -- "$tag" "$ak"; then echo enroll=present
  else printf '%s\n' "$pubkey" >> "$ak"; echo enroll=added; fi
fi
"#;

/// Installs the agent from stdin. `$1` install id (directory name), `$2` its
/// sha256, `$3` how stdin is packed (`xz`, `gzip`, `raw`). First, as
/// OpenSSH's `StrictModes` does, refuses (exit 67) when a folder on the way
/// to the agent, as written or resolved, belongs to another user or is
/// writable by group or others: that user could replace the agent. Unpacks it with
/// the host's tool and verifies the hash of the result on the host, runs the agent (catching noexec
/// mounts and a wrong architecture), renames it into place atomically under a
/// lock, prunes all but the newest 3 versions, and prints the agent's hello.
pub const INSTALL: &str = r#"set -eu
id=$1 want=$2 packed=${3:-raw}
root="$HOME/.moor/agent"; dir="$root/$id"
umask 077
me=$(id -u)
# $1 a folder: refused (exit 67) unless it is root's or ours and writable
# by no one else (or root's with the sticky bit).
check_folder() {
  st=$(stat -L -c '%u %a' -- "$1" 2>/dev/null) || return 0
  owner=${st% *} mode=${st#* }
  fix="fix=make every folder from / to $dir yours or root's and writable only by its owner (chmod go-w; a link out of your home: remove it), then attach again"
  if [ "$owner" != 0 ] && [ "$owner" != "$me" ]; then
    refuse "unsafe folder $1 on the way to the agent: it belongs to uid $owner, who could replace the agent" "$fix"
  fi
  case $owner.$mode in
    0.[1357]???) ;; # root's and sticky (/tmp): others cannot rename what is ours
    *[2367]? | *[2367]) refuse "unsafe folder $1 on the way to the agent: mode $mode lets other users write it and replace the agent" "$fix" ;;
  esac
}
# The upload is read (and dropped) first: the sender waits for its end.
refuse() { cat >/dev/null; echo "error=$1"; echo "$2"; exit 67; }
check_path() {
  p=$1
  while :; do check_folder "$p"; [ "$p" = / ] && break; p=$(dirname -- "$p"); done
}
mkdir -p "$dir"
check_path "$(cd -- "$dir" && pwd -P)"
check_path "$dir"
sha() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  elif command -v python3 >/dev/null 2>&1; then python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
  else echo "error=no sha256sum, shasum or python3 on the host to verify the agent"; exit 69; fi
}
# Stops the daemon of the agent in $1, if its pid file names a live process
# of that very executable (a stale pid may belong to anything by now).
stop_daemon() {
  p=$(cat "$1/run/pid" 2>/dev/null) || return 0
  case $p in ''|*[!0-9]*) return 0 ;; esac
  if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$1/moor-agent" ]; then kill "$p" 2>/dev/null || true; fi
  return 0
}
if command -v flock >/dev/null 2>&1; then exec 9>"$root/.lock"; flock -w 120 9; fi
if [ -x "$dir/moor-agent" ] && [ "$(sha "$dir/moor-agent")" = "$want" ]; then
  cat >/dev/null; echo status=present
else
  rm -f "$dir"/.moor-agent.tmp.*
  tmp="$dir/.moor-agent.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  case $packed in
    xz) xz -dc > "$tmp" || { echo "error=xz could not unpack the agent upload (a full disk?)"; exit 65; } ;;
    gzip) gzip -dc > "$tmp" || { echo "error=gzip could not unpack the agent upload (a full disk?)"; exit 65; } ;;
    *) cat > "$tmp" ;;
  esac
  got=$(sha "$tmp")
  if [ "$got" != "$want" ]; then echo "error=agent upload corrupted: sha256 $got, expected $want"; exit 65; fi
  chmod 0700 "$tmp"
  if ! "$tmp" --version >/dev/null 2>&1; then
    echo "error=the agent does not run in $dir (noexec mount, or an agent for another architecture)"; exit 66
  fi
  mv -f "$tmp" "$dir/moor-agent"
  trap - EXIT
  echo status=installed
fi
touch "$dir"
# Keep the newest three versions; stop the daemon of one that goes (its runs
# keep going under their own supervisors).
ls -1t "$root" | tail -n +4 | while IFS= read -r old; do
  [ "$old" = "$id" ] && continue
  stop_daemon "$root/$old"
  rm -rf "${root:?}/$old"
done
"$dir/moor-agent" hello
"#;

/// Undoes an attach. `$1` workspace id, `$2` `1` to purge, `$3` the
/// authorized_keys tag. Removes the claim only if it is this workspace's;
/// with purge, also (when the claim was ours) the agent daemons and
/// everything under ~/.moor (agent, runs, snapshots, environments), saying
/// how many KiB that freed, and the enrolled key. Without purge, runs and
/// their logs stay.
pub const DETACH: &str = r#"set -eu
wid=$1 purge=$2 tag=$3
c="$HOME/.moor/claim"
ours=0
if [ -f "$c" ]; then
  if grep -qF "\"workspace_id\":\"$wid\"" "$c"; then rm -f "$c"; ours=1; echo claim=removed
  else echo claim=other; fi
else
  ours=1; echo claim=absent
fi
if [ "$purge" = 1 ]; then
  if [ "$ours" = 1 ]; then
    # Stop the agent daemons first (runs keep going: they have their own
    # supervisors), each only if its pid file names that agent's process.
    for d in "$HOME"/.moor/agent/*/; do
      d=${d%/}
      p=$(cat "$d/run/pid" 2>/dev/null) || continue
      case $p in ''|*[!0-9]*) continue ;; esac
      if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$d/moor-agent" ]; then kill "$p" 2>/dev/null || true; fi
    done
    before=$(du -sk "$HOME/.moor" 2>/dev/null | cut -f1) || before=0
    rm -rf "$HOME/.moor/agent"; echo agent=removed
    rm -rf "$HOME/.moor/runs" "$HOME/.moor/snapshots" "$HOME/.moor/envs"
    after=$(du -sk "$HOME/.moor" 2>/dev/null | cut -f1) || after=0
    echo freed_kib=$(( ${before:-0} - ${after:-0} ))
  fi
  ak="$HOME/.ssh/authorized_keys"
  if [ -f "$ak" ] && grep -qF -- "$tag" "$ak"; then
    tmp="$ak.moor.$$"
    grep -vF -- "$tag" "$ak" > "$tmp" || true
    chmod 600 "$tmp"; mv -f "$tmp" "$ak"; echo enroll=removed
  fi
fi
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_hostile_input() {
        for s in [
            "plain",
            "it's",
            "$(reboot)",
            "`id`",
            "a b\nc",
            "'; rm -rf / #",
            "",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), s);
        }
    }

    #[test]
    fn command_passes_arguments_verbatim() {
        let cmd = command(r#"printf '%s|' "$@""#, "t", &["a b", "$HOME", "x'y"]);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|$HOME|x'y|");
    }

    #[test]
    fn key_values_take_the_first() {
        let kv = key_values(
            "noise\nstatus=installed\nstatus=again\nerror=bad: x=y\nMOOR-AGENT/1\n{\"a\":1}\n",
        );
        assert_eq!(kv["status"], "installed");
        assert_eq!(kv["error"], "bad: x=y");
        assert_eq!(kv.len(), 2);
    }
}
