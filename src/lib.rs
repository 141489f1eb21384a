//! hutch as a library: the `hutch` binary (src/main.rs) is a thin `main` over [`cli`]. The
//! library form exists so the fuzz targets (`fuzz/`) and the stable replay test can run the very
//! code the binary runs on a config; everything else stays private to the crate.

mod cgroups;
pub mod cli;
mod config;
mod console;
mod container;
mod criu;
pub mod dbus;
pub mod fuzzing;
mod hooks;
mod host_proc;
mod intel_rdt;
pub mod logging;
mod lsm;
mod namespaces;
mod netdev;
mod process;
mod rootfs;
pub mod sealed_exe;
mod seccomp;
mod signal;
mod syscall;
mod timefmt;

/// The runtime-spec version hutch implements, as `--version` and `state` report it.
pub const OCI_VERSION: &str = "1.2.1";
