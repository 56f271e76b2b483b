//! One check's result: a stable id, pass/warn/fail/skip, what was found, and
//! a remedy for every warning and failure.

use std::borrow::Cow;

use serde::Serialize;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, but worth a look.
    Warn,
    /// Blocks using the host.
    Fail,
    /// Does not apply.
    Skip,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Check {
    /// Stable id, e.g. `disk.free` (borrowed when made here, owned when read
    /// back from the workspace).
    pub id: Cow<'static, str>,
    /// Outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (warn and fail only).
    pub remedy: Option<String>,
}

impl Check {
    fn new(
        id: &'static str,
        status: Status,
        detail: impl Into<String>,
        remedy: Option<String>,
    ) -> Self {
        Check {
            id: Cow::Borrowed(id),
            status,
            detail: detail.into(),
            remedy,
        }
    }

    /// A passed check.
    pub fn pass(id: &'static str, detail: impl Into<String>) -> Self {
        Check::new(id, Status::Pass, detail, None)
    }

    /// A skipped check.
    pub fn skip(id: &'static str, detail: impl Into<String>) -> Self {
        Check::new(id, Status::Skip, detail, None)
    }

    /// A warning, with its remedy.
    pub fn warn(id: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Self {
        Check::new(id, Status::Warn, detail, Some(remedy.into()))
    }

    /// A failure, with its remedy.
    pub fn fail(id: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Self {
        Check::new(id, Status::Fail, detail, Some(remedy.into()))
    }
}
