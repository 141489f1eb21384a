//! A small synchronous D-Bus client: what the systemd cgroup driver needs to ask systemd for
//! transient units (issue 13), and nothing more.
//!
//! Why hutch's own and not a crate: zbus, the maintained pure-Rust client, is built around an
//! async executor with its own threads, and pulls in dozens of crates; the hutch binary has a
//! 4 MiB budget and was at 3.96 MiB without it. hutch also forks (and its children must not
//! inherit a runtime's threads, locks or wakers): this client has no threads, no locks and no
//! global state, just a blocking unix socket, so it is safe in a process that forks (it is not
//! meant for the code between fork and exec, where no socket I/O belongs). Its cost: a release
//! build that calls every [`Systemd`] method is 99,104 bytes (97 KiB) larger; unused, it is
//! dropped at link time.
//!
//! - [`value`]: the [`Value`]s hutch sends and reads;
//! - [`signature`]: type signatures, parsed and bounded;
//! - [`wire`]: the little-endian marshalling of values, and its reading (either byte order);
//! - [`message`]: headers and messages;
//! - [`conn`]: the connection: SASL `EXTERNAL`, `Hello` on a bus, calls matched by serial,
//!   signals kept while a reply is awaited, a deadline on every blocking step;
//! - [`address`]: where the buses and systemd's private sockets are;
//! - [`systemd`]: the manager calls, typed.
//!
//! Bytes from the socket are untrusted: no panic on them, messages above the spec's 128 MiB are
//! refused from their first 16 bytes, bodies hutch keeps are bounded at 16 MiB
//! ([`conn::MAX_BODY`]) and the rest are skipped unread. Unix fd passing is not negotiated.

pub mod address;
pub mod conn;
pub mod error;
pub mod message;
pub mod signature;
pub mod systemd;
pub mod value;
pub mod wire;

#[cfg(test)]
mod tests;

pub use address::Address;
pub use conn::{Auth, Connection, Transport};
pub use error::{Error, Result};
pub use message::{Kind, Message};
pub use systemd::Systemd;
pub use value::Value;
