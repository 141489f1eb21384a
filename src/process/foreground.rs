//! hutch staying in the foreground as a container process's parent (`run`, `exec` without
//! `--detach`): signals it receives go to the process, and its exit status becomes hutch's.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::syscall::tty;

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

/// Waits for `init`, forwarding signals to it. With `console` (a pty master hutch kept because
/// no --console-socket was given), the caller's terminal is relayed to it: raw mode while the
/// process runs (restored afterwards), window size changes forwarded on SIGWINCH.
pub fn forward_and_wait(init: Pid, mask: &SigSet, console: Option<OwnedFd>) -> Result<i32> {
    let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("creating a signalfd")?;
    let mut relay = console.map(Relay::new).transpose()?;
    loop {
        if let Some(code) = reap(init)? {
            if let Some(relay) = &mut relay {
                relay.drain_output();
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(relay) = &relay {
            relay.poll_fds(&mut fds);
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(err) => return Err(err).context("waiting for the container's process"),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let signo = info.ssi_signo as i32;
                match (signo, &relay) {
                    (libc::SIGCHLD, _) => {}
                    (libc::SIGWINCH, Some(relay)) => relay.copy_window_size(),
                    _ => {
                        let _ = crate::syscall::process::kill_raw(init, signo);
                    }
                }
            }
        }
        if let Some(relay) = &mut relay {
            relay.pump(&ready[1..]);
        }
    }
}

/// Copies between the caller's stdin/stdout and a pty master.
struct Relay {
    stdin: std::io::Stdin,
    master: OwnedFd,
    saved_termios: Option<Termios>,
    stdin_open: bool,
    master_open: bool,
}

impl Relay {
    fn new(master: OwnedFd) -> Result<Self> {
        let stdin = std::io::stdin();
        let saved_termios = match termios::tcgetattr(stdin.as_fd()) {
            Ok(saved) => {
                let mut raw = saved.clone();
                termios::cfmakeraw(&mut raw);
                termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
                    .context("putting the terminal in raw mode")?;
                Some(saved)
            }
            Err(_) => None,
        };
        fcntl(master.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .context("making the pty master non-blocking")?;
        let relay = Relay {
            stdin,
            master,
            saved_termios,
            stdin_open: true,
            master_open: true,
        };
        relay.copy_window_size();
        Ok(relay)
    }

    fn copy_window_size(&self) {
        if let Ok((rows, cols)) = tty::window_size(self.stdin.as_fd()) {
            let _ = tty::set_window_size(self.master.as_fd(), rows, cols);
        }
    }

    /// Appends stdin and the master to the poll set (in that order, when open).
    fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) {
        fds.push(PollFd::new(
            self.stdin.as_fd(),
            if self.stdin_open {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            },
        ));
        fds.push(PollFd::new(
            self.master.as_fd(),
            if self.master_open {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            },
        ));
    }

    fn pump(&mut self, ready: &[bool]) {
        let mut buf = [0u8; 8192];
        if self.stdin_open && ready.first().copied().unwrap_or(false) {
            match nix::unistd::read(self.stdin.as_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) | Err(Errno::EBADF) => self.stdin_open = false,
                Ok(n) => write_all(self.master.as_fd(), &buf[..n]),
                Err(_) => {}
            }
        }
        if self.master_open && ready.get(1).copied().unwrap_or(false) {
            self.copy_master_output(&mut buf);
        }
    }

    fn copy_master_output(&mut self, buf: &mut [u8]) {
        loop {
            match nix::unistd::read(self.master.as_fd(), buf) {
                Ok(0) | Err(Errno::EIO) => {
                    self.master_open = false;
                    return;
                }
                Ok(n) => write_all(std::io::stdout().as_fd(), &buf[..n]),
                Err(_) => return,
            }
        }
    }

    /// The process has exited: whatever it wrote last is still in the pty.
    fn drain_output(&mut self) {
        let mut buf = [0u8; 8192];
        if self.master_open {
            self.copy_master_output(&mut buf);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved_termios {
            let _ = termios::tcsetattr(self.stdin.as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

fn write_all(fd: BorrowedFd, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return,
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
