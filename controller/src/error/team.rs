//! The team server's refusals as moor reports them (`Error::Team`): each
//! [`Fault`] has its HTTP status, JSON kind and exit code (the local mode's
//! table), so a refusal reads the same from every command.

use super::exit;

/// A refusal as moor reports it (`Error::Team`): the fault, cause and fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Which.
    pub fault: Fault,
    /// The cause.
    pub message: String,
    /// The fix.
    pub fix: String,
}

/// Why the server refused, with the HTTP status, JSON kind and exit code
/// each has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request is malformed: unknown field, bad name, too large.
    BadRequest,
    /// No token, or one the server does not know (never made, rotated,
    /// or its user removed).
    Unauthorized,
    /// The caller's role does not allow it.
    Forbidden,
    /// What was named does not exist.
    NotFound,
    /// It exists already, or would leave the team without an admin.
    Conflict,
    /// The machine is the team's already (attached by a teammate).
    Taken,
    /// Too many failed logins from this address: try again later.
    Slowed,
    /// The server cannot reach its database; nothing was done.
    Unavailable,
    /// The server's certificate is not the one this login pinned.
    CertificateChanged,
}

impl Fault {
    /// Every fault, for looking one up by kind.
    pub const ALL: [Fault; 9] = [
        Fault::BadRequest,
        Fault::Taken,
        Fault::Unauthorized,
        Fault::Forbidden,
        Fault::NotFound,
        Fault::Conflict,
        Fault::Slowed,
        Fault::Unavailable,
        Fault::CertificateChanged,
    ];

    /// The JSON kind.
    pub fn kind(self) -> &'static str {
        match self {
            Fault::BadRequest => "bad_request",
            Fault::Unauthorized => "unauthorized",
            Fault::Forbidden => "forbidden",
            Fault::NotFound => "not_found",
            Fault::Conflict => "conflict",
            Fault::Taken => "taken",
            Fault::Slowed => "too_many_attempts",
            Fault::Unavailable => "server_unavailable",
            Fault::CertificateChanged => "server_certificate_changed",
        }
    }

    /// The fault of a kind (an unknown kind from a newer server: `None`).
    pub fn of_kind(kind: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.kind() == kind)
    }

    /// The HTTP status the server answers it with.
    pub fn status(self) -> u16 {
        match self {
            Fault::BadRequest => 400,
            Fault::Unauthorized => 401,
            Fault::Forbidden => 403,
            Fault::NotFound => 404,
            Fault::Conflict | Fault::Taken => 409,
            Fault::Slowed => 429,
            Fault::Unavailable | Fault::CertificateChanged => 503,
        }
    }

    /// moor's exit code for it (the same table as the local mode's).
    pub fn exit_code(self) -> u8 {
        match self {
            Fault::BadRequest | Fault::NotFound => exit::USAGE,
            Fault::Unauthorized => exit::AUTH,
            Fault::Forbidden => exit::REMOTE,
            Fault::Conflict | Fault::Taken => exit::TAKEN,
            Fault::Slowed | Fault::Unavailable => exit::UNREACHABLE,
            Fault::CertificateChanged => exit::HOST_KEY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_its_own_kind() {
        for fault in Fault::ALL {
            assert_eq!(Fault::of_kind(fault.kind()), Some(fault));
        }
        assert_eq!(Fault::Forbidden.exit_code(), 8);
        assert_eq!(Fault::Unavailable.exit_code(), 6);
    }
}
