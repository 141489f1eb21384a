//! `hutch run`: create and start in one call. Detached, it returns once the process runs; in
//! the foreground it stays as the container's parent, forwards the signals it receives to the
//! init, reaps it, deletes the container (unless --keep) and exits with its status
//! (128+signal when the process was killed).

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{GlobalOpts, RunArgs};
use crate::container::create::create;
use crate::container::delete::delete;
use crate::container::start::start;
use crate::container::ContainerDir;
use crate::logging;

pub fn run(global: &GlobalOpts, args: RunArgs) -> Result<i32> {
    // Signals are blocked (to be read from a signalfd) before the init exists, so none is lost
    // between start and the wait loop; the init resets its mask before exec.
    let forwarded = if args.detach {
        None
    } else {
        Some(block_signals()?)
    };
    let created = create(
        &global.root,
        &super::create::request(global, &args.create, args.detach),
    )?;
    if let Err(err) = start(&created.dir, &created.state) {
        let _ = delete(created.dir, &created.state, true);
        return Err(err);
    }
    let Some(mask) = forwarded else {
        return Ok(0);
    };
    if !args.no_subreaper {
        // Orphans of a container sharing our pid namespace come to us to be reaped.
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
    let init = Pid::from_raw(created.state.init_pid);
    // Other commands (state, kill) must reach the container while it runs.
    drop(created.dir);
    let code = forward_and_wait(init, &mask)?;
    if !args.keep {
        let removed = ContainerDir::open(&global.root, &args.create.id)
            .and_then(|dir| delete(dir, &created.state, true));
        if let Err(err) = removed {
            logging::warn(&format!("deleting container {}: {err:#}", args.create.id));
        }
    }
    Ok(code)
}

fn block_signals() -> Result<SigSet> {
    let mut mask = SigSet::all();
    mask.remove(Signal::SIGKILL);
    mask.remove(Signal::SIGSTOP);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .context("blocking signals for forwarding")?;
    Ok(mask)
}

fn forward_and_wait(init: Pid, mask: &SigSet) -> Result<i32> {
    let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC).context("creating a signalfd")?;
    loop {
        if let Some(code) = reap(init)? {
            return Ok(code);
        }
        let Some(info) = sfd.read_signal().context("reading a signal")? else {
            continue;
        };
        let signo = info.ssi_signo as i32;
        if signo == libc::SIGCHLD {
            continue;
        }
        if let Ok(sig) = Signal::try_from(signo) {
            let _ = nix::sys::signal::kill(init, sig);
        }
    }
}

/// Reaps every exited child; returns the init's exit code once it has exited.
fn reap(init: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == init => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => {
                return Ok(Some(128 + sig as i32))
            }
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::ECHILD) => return Ok(Some(0)),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(err) => return Err(err).context("waiting for the container's init"),
        }
    }
}
