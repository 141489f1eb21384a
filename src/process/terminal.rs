//! The container process's side of `process.terminal`: allocate the pty, send its master to
//! hutch over the sync socket, and take the peer as controlling terminal and stdio.

use std::os::fd::{AsFd, AsRawFd};

use anyhow::Result;

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
