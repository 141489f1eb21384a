//! Raw system calls that nix does not wrap. Every `unsafe` block in hutch lives here, each with a
//! `// SAFETY:` line; the rest of the crate calls these safe wrappers.

pub mod bpf;
pub mod fs;
pub mod netlink;
pub mod process;
pub mod seccomp;
pub mod socket;
pub mod tty;
