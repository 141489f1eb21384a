//! The container process's side of `process.terminal`: allocate the pty, send its master to
//! hutch over the sync socket, and take the peer as controlling terminal and stdio; and stdio
//! that is the host's /dev/null swapped for the container's own.

use std::os::fd::{AsFd, AsRawFd};

use anyhow::{Context, Result};

use super::channel::{Channel, ToParent};
use crate::console::{become_console_owner, open_pty};
use crate::rootfs::Rootfs;

/// Allocates the pty (binding it over /dev/console for an init), hands the master to hutch
/// over the sync socket, and makes the peer this process's controlling terminal and stdio.
pub fn attach_terminal(
    rootfs: &Rootfs,
    process: &oci_spec::runtime::Process,
    channel: &Channel,
    bind_dev_console: bool,
) -> Result<()> {
    let size = process
        .console_size()
        .map(|b| (b.height() as u16, b.width() as u16));
    let pty = open_pty(rootfs, size)?;
    if bind_dev_console {
        rootfs.mount_console(pty.peer.as_fd())?;
    }
    channel.send_with_fd(
        &ToParent::Console {
            name: pty.name.clone(),
        },
        Some(pty.master.as_raw_fd()),
    )?;
    drop(pty.master);
    become_console_owner(&pty.peer)
}

/// Stdio that is the host's /dev/null (a detached `run </dev/null`) is swapped for the
/// container's own, as runc does: the init then holds no file on a host mount, which CRIU could
/// not dump (it finds no such mount in the container) and which the container has no business
/// reaching.
pub(super) fn reopen_dev_null() -> Result<()> {
    use crate::syscall::fs::is_null_device;
    use nix::sys::stat::{fstat, stat};
    let Ok(inside) = stat("/dev/null") else {
        return Ok(());
    };
    if !is_null_device(&inside) {
        return Ok(());
    }
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    for (fd, handle) in [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()]
        .into_iter()
        .enumerate()
    {
        let Ok(st) = fstat(handle) else { continue };
        if !is_null_device(&st) || (st.st_dev == inside.st_dev && st.st_ino == inside.st_ino) {
            continue;
        }
        let own = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .context("opening the container's /dev/null for stdio")?;
        match fd {
            0 => nix::unistd::dup2_stdin(&own),
            1 => nix::unistd::dup2_stdout(&own),
            _ => nix::unistd::dup2_stderr(&own),
        }
        .context("replacing stdio with the container's /dev/null")?;
    }
    Ok(())
}
