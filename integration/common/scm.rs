//! Receiving one unix-socket message with the file descriptors it carries (SCM_RIGHTS): the
//! console socket's pty master, a seccomp agent's listener, what reaches a notify socket.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};

/// One received message.
pub struct FdMessage {
    pub data: Vec<u8>,
    /// Every fd that came with it, owned (closed on drop).
    pub fds: Vec<OwnedFd>,
    /// Control messages of any kind: a sender that splits its fds over several shows here.
    pub cmsgs: usize,
}

/// Room for more fds than any sender should pass, so that extra fds are counted, not cut off.
const MAX_FDS: usize = 32;

/// One `recvmsg`, waiting (bounded by the socket's own timeout).
pub fn recv_with_fds(sock: &impl AsRawFd) -> Result<FdMessage, String> {
    recv(sock.as_raw_fd(), MsgFlags::empty())?
        .ok_or_else(|| "recvmsg: nothing came within the socket's timeout".to_string())
}

/// One `recvmsg` that does not wait: `Ok(None)` when nothing is queued.
pub fn try_recv_with_fds(sock: &impl AsRawFd) -> Result<Option<FdMessage>, String> {
    recv(sock.as_raw_fd(), MsgFlags::MSG_DONTWAIT)
}

/// The fds come CLOEXEC. A control buffer the kernel had to truncate is an error: the fds
/// beyond it would be lost unseen.
fn recv(fd: RawFd, flags: MsgFlags) -> Result<Option<FdMessage>, String> {
    let mut buf = vec![0u8; 65536];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    let flags = flags | MsgFlags::MSG_CMSG_CLOEXEC;
    let msg = match recvmsg::<UnixAddr>(fd, &mut iov, Some(&mut cmsg), flags) {
        Ok(m) => m,
        Err(Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(format!("recvmsg: {e}")),
    };
    let cmsgs = msg
        .cmsgs()
        .map_err(|e| format!("control message truncated ({e})"))?;
    let mut fds = Vec::new();
    let mut count = 0;
    for c in cmsgs {
        count += 1;
        if let ControlMessageOwned::ScmRights(v) = c {
            // SAFETY: SCM_RIGHTS fds are new in this process and owned by nobody else.
            fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    let n = msg.bytes;
    buf.truncate(n);
    Ok(Some(FdMessage {
        data: buf,
        fds,
        cmsgs: count,
    }))
}
