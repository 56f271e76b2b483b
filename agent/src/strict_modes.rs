//! The folders on the way to the agent, checked as OpenSSH's `StrictModes`
//! checks a user's home: each one, from `/` to the agent's own folder, as
//! written and resolved, must belong to root or this user and be writable
//! by no one else (a root folder with the sticky bit, such as `/tmp`, is
//! fine: others cannot rename what is not theirs in it). Otherwise another
//! user could replace the agent (or its
//! socket) and run code as this user, so the agent refuses to serve from
//! there, saying which folder and what to do. Checked when the daemon
//! starts, on every `stdio` and by `hello` (what attach runs last).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use moor_proto::ErrorKind;

use crate::error::AgentError;

/// Checks every folder from `/` to `dir` (resolved, then as written); the
/// first refusal is the deepest folder.
pub fn check(dir: &Path) -> Result<(), AgentError> {
    let me = nix::unistd::getuid().as_raw();
    let resolved = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    for path in [resolved, dir.to_owned()] {
        for folder in path.ancestors() {
            check_one(folder, me)?;
        }
    }
    Ok(())
}

/// The folder of the running agent (`~/.moor/agent/<id>`).
pub fn agent_dir() -> Result<PathBuf, AgentError> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().unwrap_or(Path::new("/")).to_owned())
}

fn check_one(folder: &Path, me: u32) -> Result<(), AgentError> {
    // Following links: a link's target is what would be written.
    let Ok(meta) = std::fs::metadata(folder) else {
        return Ok(());
    };
    let why = if meta.uid() != 0 && meta.uid() != me {
        format!("it belongs to uid {}, who", meta.uid())
    } else if meta.mode() & 0o022 != 0 && !(meta.uid() == 0 && meta.mode() & 0o1000 != 0) {
        format!(
            "its mode {:o} lets other users write it: they",
            meta.mode() & 0o7777
        )
    } else {
        return Ok(());
    };
    Err(AgentError::new(
        ErrorKind::Unsafe,
        format!(
            "unsafe folder {} on the way to the agent: {why} could replace the agent",
            folder.display()
        ),
    )
    .with_fix(
        "make every folder from / to ~/.moor/agent yours or root's and writable only by its owner (chmod go-w; a link out of your home: remove it), then run `moor attach` again",
    ))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::check;

    #[test]
    fn a_folder_others_can_write_is_refused_as_written_and_through_a_link() {
        let base = tempfile::tempdir().unwrap();
        let safe = base.path().join("home/.moor/agent/id");
        std::fs::create_dir_all(&safe).unwrap();
        // Under /tmp (root's, sticky), a folder of one's own is safe.
        check(&safe).unwrap();
        let open = base.path().join("open");
        std::fs::create_dir_all(open.join("agent")).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check(&open.join("agent")).unwrap_err();
        assert_eq!(e.kind, moor_proto::ErrorKind::Unsafe);
        let named = format!("unsafe folder {} on the way", open.display());
        assert!(
            e.message.starts_with(&named) && e.message.contains("mode 777"),
            "{e}"
        );
        // A link from a safe folder to that one is refused the same.
        let link = base.path().join("home/.moor/agent/linked");
        std::os::unix::fs::symlink(open.join("agent"), &link).unwrap();
        assert!(check(&link).unwrap_err().message.starts_with(&named));
    }
}
