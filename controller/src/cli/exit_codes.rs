//! moor's exit codes, as `--help` shows them (docs/reference.md has the same table).

/// Exit codes, shown under `moor --help` and in docs/reference.md.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success: no check failed
  1  unexpected error (e.g. the workspace is not writable)
  2  usage: bad flag or argument, key file missing or unreadable
  3  the host was probed and at least one check failed
  4  authentication failed (wrong password, key or passphrase; a team
     server's token unknown, rotated or removed)
  5  host key unknown, changed, revoked, or not the expected fingerprint
     (or a team server's certificate not the pinned one)
  6  unreachable or timed out: DNS, refused, no route, not an SSH server,
     a jump host that cannot reach the next hop, a team server or its
     database out of reach
  7  taken: the machine is attached under another name or claimed by another
     workspace, the name belongs to another machine, an attach is under way,
     or (detach) runs are still going on it
  8  a step on the host failed (agent upload, claim), the agent refused,
     the host's disk is full, or a team server refused it for the role
  9  an environment failed to build (missing package, broken Dockerfile,
     no Docker engine or no access to it, disk full)";
