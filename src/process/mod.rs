//! The container's processes: the parent/child protocol, the init sequence run between
//! `clone` and `execve`, and the identity (user, rlimits, capabilities) it takes on.

pub mod attributes;
pub mod channel;
pub mod exec;
pub mod exec_path;
pub mod foreground;
pub mod identity;
pub mod init;
pub mod spawn;
pub mod terminal;
