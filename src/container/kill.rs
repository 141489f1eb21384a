//! Signalling a container's processes, and waiting for them to go.

use std::os::fd::AsFd;

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use super::liveness::process_is_alive;
use super::state::{State, Status};
use super::state_dir::ContainerDir;
use crate::syscall::process::{pidfd_open, pidfd_send_signal};

pub fn kill(dir: &ContainerDir, state: &State, signal: i32, all: bool) -> Result<()> {
    let stopped = dir.status(state) == Status::Stopped;
    match (stopped, all) {
        // The init is gone, but processes it left may still be in the cgroup (without a pid
        // namespace of its own, nothing killed them with it): runc signals them, and
        // containerd's shim relies on it when the main process of a container in a pod with
        // a shared pid namespace exits.
        (true, true) => match &state.cgroup {
            Some(cg) if cg.exists() => cg.kill_all(signal),
            _ => Ok(()),
        },
        (true, false) => bail!("container not running"),
        (false, true) => signal_all(state, signal),
        (false, false) => signal_init(state, signal),
    }
}

/// Signals the init through a pidfd opened, then checked against the recorded start time, so a
/// recycled pid is never signalled.
pub fn signal_init(state: &State, signal: i32) -> Result<()> {
    let pid = Pid::from_raw(state.init_pid);
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => bail!("container not running"),
        Err(err) => return Err(err).context("opening a pidfd for the container's init"),
    };
    if !process_is_alive(pid, state.init_start_time) {
        bail!("container not running");
    }
    match pidfd_send_signal(pidfd.as_fd(), signal) {
        Ok(()) => Ok(()),
        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => bail!("container not running"),
        Err(err) => Err(err).with_context(|| format!("sending signal {signal} to the init")),
    }
}

/// The container's cgroup, if it tracks the container's processes: not before cgroups are set
/// up, nor for a rootless container the caller could give no cgroup.
fn tracking_cgroup(state: &State) -> Option<&crate::cgroups::Manager> {
    state
        .cgroup
        .as_ref()
        .filter(|cg| !cg.hierarchies.is_empty())
}

/// Every process of the container. Without a cgroup that tracks them, the container is its
/// pid namespace: each host process in the init's pid namespace is signalled. A container that
/// shares its pid namespace has no other boundary, so only its init is signalled.
fn signal_all(state: &State, signal: i32) -> Result<()> {
    if let Some(cg) = tracking_cgroup(state) {
        return cg.kill_all(signal);
    }
    let init = Pid::from_raw(state.init_pid);
    let pids = processes(state)?;
    signal_init(state, signal)?;
    for pid in pids {
        if pid != init.as_raw() {
            let _ = crate::syscall::process::kill_raw(Pid::from_raw(pid), signal);
        }
    }
    Ok(())
}

/// Host pids of the container's processes (`ps`): its cgroup's, else those of its pid
/// namespace (see [`signal_all`]).
pub fn processes(state: &State) -> Result<Vec<i32>> {
    if let Some(cg) = tracking_cgroup(state) {
        return cg.pids();
    }
    let init = Pid::from_raw(state.init_pid);
    if !process_is_alive(init, state.init_start_time) {
        return Ok(Vec::new());
    }
    if state.shares_pid_ns {
        return Ok(vec![init.as_raw()]);
    }
    // Until it execs the user's program the init is not dumpable, and an unprivileged caller
    // may not see its namespaces: it is alone then (nothing else was started).
    let Ok(ns) = std::fs::metadata(format!("/proc/{init}/ns/pid"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
    else {
        return Ok(vec![init.as_raw()]);
    };
    Ok(pids_in_pid_namespace(ns)
        .into_iter()
        .map(Pid::as_raw)
        .collect())
}

fn pids_in_pid_namespace(ns_inode: u64) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/pid"))
                .is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == ns_inode)
        })
        .map(Pid::from_raw)
        .collect()
}

/// Waits until the init has exited (it need not be our child: a pidfd becomes readable when
/// the process terminates), at most `timeout_ms`. A killed pid-namespace init that must wait
/// for its namespace's processes to be reaped by someone else counts as exited as soon as it
/// is exiting, so the pidfd is polled in short slices with that check between them.
pub fn wait_for_exit(state: &State, timeout_ms: u64) -> Result<()> {
    let pid = Pid::from_raw(state.init_pid);
    let Ok(pidfd) = pidfd_open(pid) else {
        return Ok(());
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    loop {
        if !process_is_alive(pid, state.init_start_time) {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            bail!("container init {pid} did not exit within {timeout_ms} ms");
        }
        match poll(&mut fds, PollTimeout::from(10u8)) {
            Ok(0) => continue,
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(err) => return Err(err).context("waiting for the container's init to exit"),
        }
    }
}
