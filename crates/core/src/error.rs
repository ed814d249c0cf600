//! What kind of failure an error is, and the one place where a kind becomes
//! an exit code or an HTTP status.
//!
//! Every layer keeps its own `thiserror` enum whose variants name the
//! culprit (file, column, row, key), and says through [`HasKind`] which kind
//! each variant is. The shells never inspect variants: the CLI exits with
//! [`ErrorKind::exit_code`] and the server answers with
//! [`ErrorKind::http_status`], so the two can never disagree about whose
//! fault a failure is. An internal error (a bug, a model that cannot be
//! applied, an I/O failure on our side) is never blamed on the caller: it is
//! exit 1 or HTTP 500, with the detail in the log.

/// The kinds of failure, as the caller should read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller's input is wrong: a flag, a config key, a data file, a
    /// request field. Fix the input and retry.
    BadInput,
    /// Something the caller named does not exist (a model id, a run, an
    /// intervention, a file).
    NotFound,
    /// The request conflicts with the current state (an intervention
    /// already closed, a run already in progress, a key reused with a
    /// different request).
    Conflict,
    /// A resource we depend on is unavailable (the database is unreachable,
    /// locked, full or read-only; no model is loaded). Retry later.
    Unavailable,
    /// Our fault: a bug or a failure the caller cannot fix.
    Internal,
}

impl ErrorKind {
    /// The kind's name in error bodies and logs (`bad_input`, `not_found`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::BadInput => "bad_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    /// The command line's exit code: 2 for what the caller can fix (bad
    /// input, not found, conflict), 6 for "unavailable, retry later", 1 for
    /// our own failures. (3 is a broken audit chain and 4/5 the monitor's
    /// verdicts; those are results, not errors.)
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::BadInput | ErrorKind::NotFound | ErrorKind::Conflict => 2,
            ErrorKind::Unavailable => 6,
            ErrorKind::Internal => 1,
        }
    }

    /// The HTTP status: 422, 404, 409, 503 or 500.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadInput => 422,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An error that knows its [`ErrorKind`].
pub trait HasKind {
    /// What kind of failure this is.
    fn kind(&self) -> ErrorKind;
}
