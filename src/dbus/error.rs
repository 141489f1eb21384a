//! What can go wrong talking D-Bus. One enum rather than `anyhow` so callers can tell systemd's
//! answers apart (`NoSuchUnit` is not a failure for `get_unit`, `UnitExists` may not be one for a
//! caller that retries) from a broken or silent peer; it converts into `anyhow::Error` with `?`.

use std::fmt;
use std::io;
use std::time::Duration;

/// A D-Bus failure, each variant naming the step it happened in.
#[derive(Debug)]
pub enum Error {
    /// A system call on the socket failed (connect, read, write).
    Io { step: String, source: io::Error },
    /// The peer did not answer within the connection's timeout.
    Timeout { step: String, after: Duration },
    /// The peer closed the connection.
    Closed { step: String },
    /// SASL authentication was refused, or the peer did not speak SASL.
    Auth(String),
    /// Bytes from the peer that are not D-Bus, or a value that cannot be sent as D-Bus.
    Protocol(String),
    /// The peer answered a method call with an ERROR message.
    Remote {
        /// The method called, as `interface.Member`.
        method: String,
        /// The error name, e.g. `org.freedesktop.systemd1.NoSuchUnit`.
        name: String,
        /// The peer's human-readable message (the error's first string argument), if any.
        message: String,
    },
}

impl Error {
    pub(crate) fn protocol(what: impl Into<String>) -> Self {
        Error::Protocol(what.into())
    }

    /// The D-Bus error name when the peer answered with an ERROR, e.g.
    /// `org.freedesktop.systemd1.NoSuchUnit`.
    pub fn remote_name(&self) -> Option<&str> {
        match self {
            Error::Remote { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The peer's message when it answered with an ERROR.
    pub fn remote_message(&self) -> Option<&str> {
        match self {
            Error::Remote { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { step, source } => write!(f, "D-Bus: {step}: {source}"),
            Error::Timeout { step, after } => {
                write!(f, "D-Bus: {step}: no answer within {after:?}")
            }
            Error::Closed { step } => write!(f, "D-Bus: {step}: the peer closed the connection"),
            Error::Auth(what) => write!(f, "D-Bus authentication: {what}"),
            Error::Protocol(what) => write!(f, "D-Bus protocol: {what}"),
            Error::Remote {
                method,
                name,
                message,
            } => write!(f, "D-Bus call {method} failed: {name}: {message}"),
        }
    }
}

// No `source()`: the message already carries the I/O error, and error chains (anyhow's
// `{:#}`) would print it twice.
impl std::error::Error for Error {}

/// The result of every D-Bus operation.
pub type Result<T> = std::result::Result<T, Error>;
