//! The agent's one error type: a kind (the protocol's [`ErrorKind`]), the
//! cause for a person, and the fix when the agent knows one. It travels to
//! the controller as a [`WireError`] with the fix as its own field, and gives
//! the agent's command line its exit code.

use std::fmt;
use std::io;

use moor_proto::{ErrorKind, Response, WireError};

/// Why something the agent was asked to do failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentError {
    /// What kind of failure (decides the controller's handling and the exit code).
    pub kind: ErrorKind,
    /// The cause.
    pub message: String,
    /// What helps, when known.
    pub fix: Option<String>,
}

/// Result alias for the agent.
pub type Result<T, E = AgentError> = std::result::Result<T, E>;

impl AgentError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> AgentError {
        AgentError {
            kind,
            message: message.into(),
            fix: None,
        }
    }

    /// A malformed request or command line.
    pub fn usage(message: impl Into<String>) -> AgentError {
        AgentError::new(ErrorKind::BadRequest, message)
    }

    /// No such run, snapshot or environment.
    pub fn not_found(message: impl Into<String>) -> AgentError {
        AgentError::new(ErrorKind::NotFound, message)
    }

    /// The disk holding `dir` is full: "no space left in DIR (N free)", with
    /// what helps. The controller names the host.
    pub fn no_space(dir: &std::path::Path) -> AgentError {
        let free = crate::sys::free_bytes(dir)
            .map(moor_proto::human_bytes)
            .unwrap_or_else(|| "nothing".into());
        AgentError::new(
            ErrorKind::NoSpace,
            format!("no space left in {} ({free} free)", dir.display()),
        )
        .with_fix(format!(
            "free space on the disk holding {} (old runs are in ~/.moor/runs; `moor env prune` removes unused environments), then try again",
            dir.display()
        ))
    }

    /// An I/O error met while writing under `dir`: a full disk says so
    /// (see [`AgentError::no_space`]), anything else as it is.
    pub fn io_in(dir: &std::path::Path, e: io::Error) -> AgentError {
        if is_no_space(&e) {
            AgentError::no_space(dir)
        } else {
            AgentError::from(e)
        }
    }

    /// Anything else.
    pub fn internal(message: impl Into<String>) -> AgentError {
        AgentError::new(ErrorKind::Internal, message)
    }

    /// The same error with what helps.
    pub fn with_fix(mut self, fix: impl Into<String>) -> AgentError {
        self.fix = Some(fix.into());
        self
    }

    /// The same error with `context` before its cause (`context: cause`).
    pub fn context(mut self, context: impl fmt::Display) -> AgentError {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The exit code of `moor-agent` when a command ends with this error:
    /// 2 for usage, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::BadRequest => 2,
            _ => 1,
        }
    }

    /// As the wire carries it.
    pub fn to_wire(&self) -> WireError {
        WireError {
            kind: self.kind,
            message: self.message.clone(),
            fix: self.fix.clone(),
        }
    }

    /// As an error response.
    pub fn to_response(&self) -> Response {
        Response::Error {
            error: self.to_wire(),
        }
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match &self.fix {
            Some(fix) => write!(f, "; fix: {fix}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for AgentError {}

/// `e` as the answer to a request that was writing in `dir`: a full disk
/// says so (`no_space`, where and how much is free); any other error stays
/// an error.
pub fn no_space_answer(dir: &std::path::Path, e: io::Error) -> io::Result<moor_proto::Response> {
    if is_no_space(&e) {
        Ok(AgentError::no_space(dir).to_response())
    } else {
        Err(e)
    }
}

/// Whether an I/O error is a full disk (or a full quota).
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

impl From<io::Error> for AgentError {
    /// A full disk is taken to be the one holding `~/.moor`, where the agent
    /// writes; callers that know the folder use [`AgentError::io_in`].
    fn from(e: io::Error) -> AgentError {
        if is_no_space(&e) {
            return AgentError::no_space(&crate::sys::home().join(".moor"));
        }
        let kind = match e.kind() {
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        };
        AgentError::new(kind, e.to_string())
    }
}

impl From<String> for AgentError {
    fn from(message: String) -> AgentError {
        AgentError::internal(message)
    }
}

impl From<&str> for AgentError {
    fn from(message: &str) -> AgentError {
        AgentError::internal(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_travels_as_its_own_field_and_shows_after_the_cause() {
        let e = AgentError::new(ErrorKind::Busy, "1 run uses it").with_fix("cancel it");
        assert_eq!(e.to_string(), "1 run uses it; fix: cancel it");
        let wire = e.to_wire();
        assert_eq!(wire.message, "1 run uses it");
        assert_eq!(wire.fix.as_deref(), Some("cancel it"));
        assert_eq!(wire.kind, ErrorKind::Busy);
    }

    #[test]
    fn exit_codes_come_from_kinds() {
        assert_eq!(AgentError::usage("usage: moor-agent ...").exit_code(), 2);
        assert_eq!(AgentError::internal("boom").exit_code(), 1);
        assert_eq!(AgentError::not_found("no run").exit_code(), 1);
    }

    #[test]
    fn a_full_disk_names_the_folder_and_what_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let e = AgentError::io_in(dir.path(), io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(e.kind, ErrorKind::NoSpace);
        let start = format!("no space left in {} (", dir.path().display());
        assert!(e.message.starts_with(&start), "{}", e.message);
        assert!(e.message.ends_with(" free)"), "{}", e.message);
        assert!(e.fix.unwrap().contains("moor env prune"));
        let other = AgentError::io_in(dir.path(), io::Error::other("boom"));
        assert_eq!(other.kind, ErrorKind::Internal);
        assert_eq!(
            AgentError::from("x").context("spec.json").message,
            "spec.json: x"
        );
    }
}
