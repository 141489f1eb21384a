//! Which Linux security modules the host runs, and the parent's check of the config's LSM
//! fields against them.
//!
//! The check runs in the parent, before anything is created: like runc, a config that asks for
//! a label the host cannot apply is an error rather than a silently unconfined container.

use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::Process;

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Parent-side check of the LSM fields.
pub fn check_lsm(process: &Process) -> Result<()> {
    if process
        .apparmor_profile()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        && !apparmor_enabled()
    {
        bail!("process.apparmorProfile: apparmor is not enabled on this host");
    }
    if process
        .selinux_label()
        .as_ref()
        .is_some_and(|l| !l.is_empty())
        && !selinux_enabled()
    {
        bail!("process.selinuxLabel: selinux label is specified in config, but selinux is disabled or not supported");
    }
    Ok(())
}
