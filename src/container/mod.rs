//! Containers as hutch keeps them: one locked state directory per container under `--root`,
//! and the lifecycle operations that read and change it.

pub mod activation;
pub mod create;
pub mod delete;
pub mod exec;
mod init_files;
pub mod kill;
pub mod liveness;
pub mod notify;
pub mod pid_file;
pub mod restore;
pub mod seccomp_listener;
pub mod start;
pub mod state;
pub mod state_dir;

pub use state_dir::ContainerDir;
