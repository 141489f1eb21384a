//! Receiving a descriptor over a Unix socket (SCM_RIGHTS): the one `unsafe` step, taking
//! ownership of a descriptor the kernel just installed, happens here.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// One message received by [`recv_with_fd`].
pub struct Received {
    /// Bytes of data written into the buffer.
    pub bytes: usize,
    /// The first descriptor that came with the message (any others are closed).
    pub fd: Option<OwnedFd>,
    /// The message's flags: MSG_TRUNC and MSG_CTRUNC say what was cut short.
    pub flags: MsgFlags,
}

/// Why [`recv_with_fd`] failed.
#[derive(Debug)]
pub enum RecvError {
    /// recvmsg(2) itself (EINTR included: the caller decides whether to retry).
    Call(Errno),
    /// The descriptors that came with the message could not be read (the kernel cut them
    /// short).
    Fds(Errno),
}

/// recvmsg(2) of one message into `buf`, with room for one descriptor, which arrives
/// close-on-exec (MSG_CMSG_CLOEXEC is always added to `flags`).
pub fn recv_with_fd(
    socket: BorrowedFd,
    buf: &mut [u8],
    flags: MsgFlags,
) -> Result<Received, RecvError> {
    let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg_space),
        flags | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(RecvError::Call)?;
    let mut fd = None;
    for cmsg in msg.cmsgs().map_err(RecvError::Fds)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for raw in fds {
                // SAFETY: SCM_RIGHTS just installed this fd in our table, and this message's
                // control data is read only here: we are its only owner.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    Ok(Received {
        bytes: msg.bytes,
        fd,
        flags: msg.flags,
    })
}
