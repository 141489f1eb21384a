//! hutch's integration tests: the built runtime binary, run as root on busybox bundles made by
//! `hack/mkbundle.sh`. See `common/mod.rs` for the harness.
//!
//! Run: `hack/test.sh`, or `cargo test --release --test integration`.
//! Prove the suite against runc: `HUTCH_RUNTIME=/usr/sbin/runc cargo test --release --test integration`
//! (tests of hutch-only behaviour print a SKIP line and pass trivially then).

#[macro_use]
mod common;

mod activation;
mod apparmor;
mod badinput;
mod cgroups;
mod checkpoint;
mod cli;
mod console;
mod errors;
mod exec;
mod hardening;
mod hooks;
mod isolation;
mod lifecycle;
mod mounts;
mod namespaces;
mod netdevices;
mod process;
mod propagation;
mod rootless;
mod rootless_cgroups;
mod seccomp;
mod security;
mod systemd_driver;
