//! Making a container process: one clone straight into its new namespaces (and, where the
//! kernel allows, straight into its cgroup), or, when namespaces must be joined by path, through
//! an intermediate that joins them, clones the process as hutch's sibling-turned-child
//! (CLONE_PARENT) and reports its pid.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::channel::{Channel, ToParent};
use crate::namespaces::NamespacePlan;
use crate::syscall::process::{
    self as sys, cloexec_inherited_from, clone3_fork, clone_fork, pidfd_open, CloneResult,
};

/// What `spawn` does with hutch's descriptors.
pub struct SpawnFds<'a> {
    /// The caller's fds 3 .. 3+preserve go on to the container; every one above is marked
    /// close-on-exec before the clone.
    pub preserve: u32,
    /// hutch's own descriptors the container process must never hold (the state lock, the
    /// parent's end of the sync socket, the console sockets): closed before any join.
    pub parent_only: &'a [RawFd],
}

pub struct Spawned {
    pub pid: Pid,
    /// Born in the cgroup2 directory given (CLONE_INTO_CGROUP worked).
    pub in_cgroup: bool,
}

/// The cgroup2 directory a container process is to be born in (`spawn`'s `cgroup`, for
/// clone3(CLONE_INTO_CGROUP)); `None` when there is none (a v1-only host).
pub fn open_cgroup_dir(dir: Option<&Path>) -> Result<Option<OwnedFd>> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .with_context(|| format!("opening cgroup {}", dir.display()))?;
    Ok(Some(OwnedFd::from(file)))
}

/// Clones the process that runs `child` (which never returns: it execs or exits). `before_clone` runs in the
/// intermediate after the joins (e.g. creating the time namespace). `child_ch` is the child's
/// end of the sync socket, used by the intermediate to report. Every fd hutch inherited above
/// stdio and the `preserve_fds` passed on is marked close-on-exec first.
// `child()` returns an uninhabited type, so rustc flags the `match` around it as unreachable.
#[allow(unreachable_code)]
pub fn spawn(
    namespaces: &NamespacePlan,
    cgroup: Option<BorrowedFd>,
    parent_ch: &Channel,
    child_ch: &Channel,
    fds: &SpawnFds,
    before_clone: impl FnOnce() -> Result<()>,
    child: impl FnOnce() -> Infallible,
) -> Result<Spawned> {
    cloexec_inherited_from(3 + fds.preserve)
        .context("marking inherited file descriptors close-on-exec")?;
    // The cgroup directory is a host fd the container process must not hold: it only served
    // the clone.
    let child = || -> Infallible {
        if let Some(fd) = cgroup {
            let _ = nix::unistd::close(fd.as_raw_fd());
        }
        child()
    };
    let flags = namespaces.clone_flags().bits();
    if !namespaces.needs_intermediate() {
        let (result, in_cgroup) = clone_into(flags, cgroup);
        return match result.context("cloning the container process")? {
            CloneResult::Child => match child() {},
            CloneResult::Parent(pid) => Ok(Spawned { pid, in_cgroup }),
        };
    }
    let intermediate = match clone_fork(0).context("forking to join namespaces")? {
        CloneResult::Child => {
            let mut in_cgroup = false;
            // Joined namespaces hold the container's processes, which must reach nothing of
            // hutch's: not its /proc files (non-dumpable from here on, and the process it
            // clones inherits that), nor the descriptors only the parent needs.
            let result = sys::set_dumpable(false)
                .context("prctl(PR_SET_DUMPABLE)")
                .map(|_| {
                    for fd in fds.parent_only {
                        let _ = nix::unistd::close(*fd);
                    }
                })
                .and_then(|_| namespaces.join_all())
                .and_then(|_| before_clone())
                .and_then(|_| {
                    let (result, born_in) = clone_into(flags | libc::CLONE_PARENT, cgroup);
                    in_cgroup = born_in;
                    result.context("cloning the container process")
                });
            match result {
                Ok(CloneResult::Child) => match child() {},
                Ok(CloneResult::Parent(pid)) => {
                    let _ = child_ch.send(&ToParent::InitPid {
                        pid: pid.as_raw(),
                        in_cgroup,
                    });
                    std::process::exit(0)
                }
                Err(err) => {
                    let _ = child_ch.send(&ToParent::Error(format!("{err:#}")));
                    std::process::exit(1)
                }
            }
        }
        CloneResult::Parent(pid) => pid,
    };
    let reply = await_intermediate(parent_ch, intermediate);
    let _ = waitpid(intermediate, None);
    match reply? {
        ToParent::InitPid { pid, in_cgroup } => Ok(Spawned {
            pid: Pid::from_raw(pid),
            in_cgroup,
        }),
        ToParent::Error(msg) => bail!("{msg}"),
        other => bail!("sync protocol: expected the process's pid, got {other:?}"),
    }
}

/// The intermediate's report. Its copy of the child's socket end is not the only one (hutch
/// holds one for the child it clones), so an intermediate that dies without a word (killed,
/// crashed) never shows as end-of-file: its exit is watched through a pidfd beside the socket.
fn await_intermediate(ch: &Channel, intermediate: Pid) -> Result<ToParent> {
    let pidfd = pidfd_open(intermediate).context("opening a pidfd of the intermediate process")?;
    let mut fds = [
        PollFd::new(ch.as_fd(), PollFlags::POLLIN),
        PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
    ];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(err) => return Err(err).context("waiting for the intermediate process"),
        }
        let message_waiting = fds[0].any().unwrap_or(false);
        let exited = fds[1].any().unwrap_or(false);
        if message_waiting || exited {
            // A report is sent before the intermediate exits: if there is none now, there
            // never will be.
            return match ch.try_recv::<ToParent>() {
                Some(msg) => Ok(msg),
                None => bail!("{}", intermediate_exit_reason(intermediate)),
            };
        }
    }
}

fn intermediate_exit_reason(pid: Pid) -> String {
    match waitpid(pid, None) {
        Ok(WaitStatus::Signaled(_, sig, _)) => {
            format!("the process joining the container's namespaces was killed by {sig}")
        }
        Ok(WaitStatus::Exited(_, code)) => {
            format!("the process joining the container's namespaces exited with status {code} without reporting")
        }
        _ => "the process joining the container's namespaces exited without reporting".to_string(),
    }
}

/// clone3 into `cgroup` when given; plain clone when that is not possible (older kernels,
/// seccomp-filtered clone3): the caller then moves the process itself.
fn clone_into(
    flags: libc::c_int,
    cgroup: Option<BorrowedFd>,
) -> (std::io::Result<CloneResult>, bool) {
    if let Some(fd) = cgroup {
        match clone3_fork(flags, fd) {
            Ok(r) => return (Ok(r), true),
            Err(err) => crate::logging::debug(&format!(
                "clone3(CLONE_INTO_CGROUP) failed ({err}); cloning, then moving the process"
            )),
        }
    }
    (clone_fork(flags), false)
}
