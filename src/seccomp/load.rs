//! Loading a compiled filter: the profile's flags as seccomp(2) flags, and the notify
//! listener when a rule needs one.

use std::os::fd::OwnedFd;

use anyhow::{anyhow, Result};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompFilterFlag};

use super::Program;
use crate::syscall::seccomp::set_mode_filter;

/// Loads `program` into the calling thread with seccomp(2) `SECCOMP_SET_MODE_FILTER` and the
/// profile's `flags`; when a rule uses `SCMP_ACT_NOTIFY`, also asks for
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` and returns the listener fd.
///
/// The caller must have set no_new_privs or hold CAP_SYS_ADMIN (the kernel's rule). Call it as
/// late as possible before exec: every syscall after it is filtered.
pub fn load(program: &Program, seccomp: &LinuxSeccomp) -> Result<Option<OwnedFd>> {
    let mut flags: libc::c_ulong = 0;
    let mut names = Vec::new();
    for flag in seccomp.flags().iter().flatten() {
        let (bit, name) = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                (libc::SECCOMP_FILTER_FLAG_TSYNC, "SECCOMP_FILTER_FLAG_TSYNC")
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                (libc::SECCOMP_FILTER_FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG")
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => (
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            ),
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => (
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            ),
        };
        flags |= bit;
        names.push(name);
    }
    if program.notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        names.push("SECCOMP_FILTER_FLAG_NEW_LISTENER");
        // The kernel refuses TSYNC with NEW_LISTENER unless TSYNC failures are reported as
        // ESRCH instead of a thread id (which would be ambiguous with the returned fd).
        if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    } else {
        // WAIT_KILLABLE_RECV only concerns notify waits, and the kernel rejects it without a
        // listener; with no notify rule it has nothing to do.
        flags &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    set_mode_filter(&program.filter, flags).map_err(|err| {
        let hint = match err.raw_os_error() {
            Some(libc::EACCES) => " (needs no_new_privs or CAP_SYS_ADMIN)",
            Some(libc::EINVAL) if flags != 0 => " (is every flag supported by this kernel?)",
            _ => "",
        };
        anyhow!(
            "seccomp(SECCOMP_SET_MODE_FILTER, flags=[{}]): {err}{hint}",
            names.join("|")
        )
    })
}
