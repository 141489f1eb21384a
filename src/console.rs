//! The container's terminal (`process.terminal`): the pty, and hutch's side of handing its
//! master to the caller.
//!
//! The init allocates the pty inside the container, from the container's own devpts instance,
//! binds the peer over `/dev/console` and makes it its controlling terminal and stdio
//! (`process::terminal`). The master goes back to `create` over the sync socket, and `create`
//! hands it to the caller's `--console-socket` exactly as runc does: one sendmsg whose data is the pty's name and whose
//! control part is a single SCM_RIGHTS message carrying the one fd (go-runc rejects anything
//! else). No response is read.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::rootfs::Rootfs;
use crate::syscall::tty;

/// Connects to the caller's console socket (early, so a bad path fails before any work).
pub fn connect(path: &Path) -> Result<UnixStream> {
    connect_socket(path, "--console-socket")
}

/// Connects to the caller's `--pidfd-socket`.
pub fn connect_pidfd(path: &Path) -> Result<UnixStream> {
    connect_socket(path, "--pidfd-socket")
}

fn connect_socket(path: &Path, flag: &str) -> Result<UnixStream> {
    crate::syscall::socket::connect_stream(path)
        .with_context(|| format!("{flag}: connecting to {}", path.display()))
}

/// Sends a pidfd of `pid` to the `--pidfd-socket` peer (runc ≥ 1.3), framed like the console.
pub fn send_pidfd(socket: &UnixStream, pid: nix::unistd::Pid) -> Result<()> {
    let pidfd = crate::syscall::process::pidfd_open(pid)
        .with_context(|| format!("--pidfd-socket: opening a pidfd of process {pid}"))?;
    send_master(socket, "pidfd", &pidfd).context("--pidfd-socket")
}

/// Sends one fd with a name, in the framing go-runc's recvFd expects (used for the pty master
/// and for --pidfd-socket).
pub fn send_master(socket: &UnixStream, name: &str, master: &OwnedFd) -> Result<()> {
    let iov = [IoSlice::new(name.as_bytes())];
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .context("sending a file descriptor over the socket")?;
    Ok(())
}

pub struct Pty {
    pub master: OwnedFd,
    pub peer: OwnedFd,
    pub name: String,
}

/// Allocates a pty from the container's devpts (in the init, before pivot_root).
pub fn open_pty(rootfs: &Rootfs, size: Option<(u16, u16)>) -> Result<Pty> {
    let master = rootfs.open_ptmx()?;
    tty::unlock(master.as_fd()).context("unlocking the pty")?;
    let number = tty::pty_number(master.as_fd()).context("reading the pty number")?;
    let peer = tty::open_peer(master.as_fd()).context("opening the pty peer")?;
    if let Some((rows, cols)) = size {
        tty::set_window_size(peer.as_fd(), rows, cols).context("process.consoleSize")?;
    }
    Ok(Pty {
        master,
        peer,
        name: format!("/dev/pts/{number}"),
    })
}

/// hutch's side: a pty master goes to the caller's --console-socket, or, with none (a
/// foreground `run`/`exec` relaying the caller's terminal), is kept in `kept`.
pub fn forward_master(
    socket: Option<&UnixStream>,
    name: &str,
    master: Option<OwnedFd>,
    kept: &mut Option<OwnedFd>,
) -> Result<()> {
    let master = master.context("sync protocol: a console without its fd")?;
    match socket {
        Some(socket) => send_master(socket, name, &master),
        None => {
            *kept = Some(master);
            Ok(())
        }
    }
}

/// runc's rules for `--console-socket` and `process.terminal`, for `create`, `run` and `exec`
/// alike: a terminal needs somewhere to go, and a socket needs a terminal to carry.
pub fn check_terminal_request(terminal: bool, console_socket: bool, detached: bool) -> Result<()> {
    match (terminal, console_socket, detached) {
        (true, false, true) => bail!(
            "cannot allocate tty if hutch will detach without setting console socket (process.terminal is true)"
        ),
        (false, true, _) | (_, true, false) => {
            bail!("cannot use console socket if hutch will not detach or allocate tty")
        }
        _ => Ok(()),
    }
}

/// Makes the pty peer the controlling terminal and stdio of this process, which is already
/// the leader of a session of its own (every container process is).
pub fn become_console_owner(peer: &OwnedFd) -> Result<()> {
    tty::set_controlling_terminal(peer.as_fd())
        .context("making the pty the controlling terminal")?;
    nix::unistd::dup2_stdin(peer).context("connecting stdin to the pty")?;
    nix::unistd::dup2_stdout(peer).context("connecting stdout to the pty")?;
    nix::unistd::dup2_stderr(peer).context("connecting stderr to the pty")?;
    Ok(())
}
