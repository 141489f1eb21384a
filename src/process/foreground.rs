//! hutch staying in the foreground as a container process's parent (`run`, `exec` without
//! `--detach`): signals it receives go to the process, and its exit status becomes hutch's.

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Blocks every catchable signal so they can be read from a signalfd. Called before the child
/// exists, so none is lost; the child resets its mask before exec.
pub fn block_signals() -> Result<SigSet> {
    let mut mask = SigSet::all();
    mask.remove(Signal::SIGKILL);
    mask.remove(Signal::SIGSTOP);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .context("blocking signals for forwarding")?;
    Ok(mask)
}

pub fn forward_and_wait(init: Pid, mask: &SigSet) -> Result<i32> {
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

/// Reaps every exited child (hutch may be a subreaper); returns the init's exit code once it has exited.
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
