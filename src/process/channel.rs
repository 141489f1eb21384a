//! The parent/child synchronisation protocol of `create`.
//!
//! One SOCK_SEQPACKET socketpair joins the hutch process running `create` (the parent) and the
//! container's init (the child); an intermediate process, when namespaces must be joined by
//! path, uses the child's end first and exits before the init reads from it. Each message is
//! JSON, framed as one or more packets: the first starts with the payload's length (u64, little
//! endian), and payloads larger than a packet continue in the packets that follow, so a message
//! of any size (megabytes of annotations in the state handed to hooks) arrives whole, and a
//! truncated packet is an error, never a silently shortened message. A pty master (or another
//! fd) travels as SCM_RIGHTS with the first packet.
//!
//! ```text
//!  parent                                   intermediate (only for joins)    init
//!    |                                          | setns(joins), clone(init) ---> |
//!    | <------------------------------------ InitPid{pid}                        |
//!    |                                                 (init: moves itself into its v1 cgroups)
//!    | write uid/gid maps, join cgroup (when the init could not), save state     |
//!    | MountTree{i} + fd (one per idmapped mount, new user namespace only) ----> |
//!    | Proceed ----------------------------------------------------------------> |
//!    |                                              unshare cgroupns, hostname, mounts, /dev
//!    | <------------------------------------------------------------ Console + fd (terminal)
//!    | forward fd to --console-socket                                            |
//!    | <-------------------------------------------------------- MountsReady (hooks only)
//!    | prestart + createRuntime hooks                                            |
//!    | HooksDone{state} ------------------------------------------------------>  |
//!    |                           createContainer hooks, pivot_root, finalize, user, caps
//!    | <------------------------------- SeccompListener + fd (notify only), loaded filter
//!    | send it to listenerPath; ListenerSent ----------------------------------> |
//!    | <------------------------------------------------------------------ Ready |
//!    | pid file, state "created"                                                 |
//!    | Commit{state} ---------------------------------------------------------> |
//!    | exit                                          block on exec.fifo until `start`
//! ```
//! Any step of the init may answer `Error(text)` instead; the parent then undoes everything.
//! If the parent dies, the init reads end-of-file at its next receive and removes what it can
//! (the state directory), then exits: a killed `create` leaves nothing behind.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

use crate::syscall::socket::{recv_with_fd, RecvError};

#[derive(Debug, Serialize, Deserialize)]
pub enum ToParent {
    /// From the intermediate: the host pid of the process it cloned, and whether it was born
    /// in the container's cgroup2 directory.
    InitPid { pid: i32, in_cgroup: bool },
    /// The pty master follows as SCM_RIGHTS.
    Console { name: String },
    /// Mounts are done and the container's namespaces exist: prestart/createRuntime hooks may run.
    MountsReady,
    /// The seccomp notify listener follows as SCM_RIGHTS, for linux.seccomp.listenerPath; the
    /// init waits for `ListenerSent`.
    SeccompListener,
    /// The init finished setting up and waits for `start`.
    Ready,
    /// A setup step failed; the text names the step.
    Error(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum ToChild {
    /// An idmapped mount tree for `mounts[index]` follows as SCM_RIGHTS (user namespaces only).
    MountTree { index: usize },
    /// Id maps written and cgroup joined.
    Proceed,
    /// The runtime-namespace hooks have run; the state for createContainer hooks.
    HooksDone { state: String },
    /// The seccomp listener reached the agent.
    ListenerSent,
    /// `create` is complete; the state for startContainer hooks.
    Commit { state: String },
}

pub struct Channel {
    fd: OwnedFd,
}

/// Payload bytes per packet: well below a SEQPACKET socket's default send buffer, so a send
/// never fails with EMSGSIZE.
const CHUNK: usize = 32 * 1024;
const HEADER: usize = std::mem::size_of::<u64>();
/// A sanity bound on one message: a config larger than this is refused long before.
const MAX_MESSAGE: u64 = 256 * 1024 * 1024;

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("creating the create/init sync socketpair")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd<T: Serialize>(&self, msg: &T, fd: Option<RawFd>) -> Result<()> {
        let data = serde_json::to_vec(msg).context("encoding a sync message")?;
        let header = (data.len() as u64).to_le_bytes();
        let (first, rest) = data.split_at(data.len().min(CHUNK));
        let fds;
        let cmsgs: &[ControlMessage] = match fd {
            Some(fd) => {
                fds = [fd];
                &[ControlMessage::ScmRights(&fds)]
            }
            None => &[],
        };
        self.send_packet(&[IoSlice::new(&header), IoSlice::new(first)], cmsgs)?;
        for chunk in rest.chunks(CHUNK) {
            self.send_packet(&[IoSlice::new(chunk)], &[])?;
        }
        Ok(())
    }

    fn send_packet(&self, iov: &[IoSlice], cmsgs: &[ControlMessage]) -> Result<()> {
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(err) => return Err(err).context("sending a sync message"),
            }
        }
    }

    /// Receives one message; `Ok(None)` means the other side is gone.
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<(T, Option<OwnedFd>)>> {
        self.recv_flags(MsgFlags::empty())
    }

    /// A message that is already waiting, if any (the error a process sent before it exited,
    /// when a send to it failed).
    pub fn try_recv<T: for<'de> Deserialize<'de>>(&self) -> Option<T> {
        match self.recv_flags(MsgFlags::MSG_DONTWAIT) {
            Ok(Some((msg, _))) => Some(msg),
            _ => None,
        }
    }

    fn recv_flags<T: for<'de> Deserialize<'de>>(
        &self,
        flags: MsgFlags,
    ) -> Result<Option<(T, Option<OwnedFd>)>> {
        let mut packet = vec![0u8; HEADER + CHUNK];
        let (len, fd) = self.recv_packet(&mut packet, flags)?;
        if len == 0 {
            return Ok(None);
        }
        if len < HEADER {
            bail!("sync protocol: a {len}-byte packet has no length header");
        }
        let mut header = [0u8; HEADER];
        header.copy_from_slice(&packet[..HEADER]);
        let total = u64::from_le_bytes(header);
        if total > MAX_MESSAGE {
            bail!("sync protocol: a message of {total} bytes is larger than {MAX_MESSAGE}");
        }
        let total = total as usize;
        let mut data = Vec::with_capacity(total);
        data.extend_from_slice(&packet[HEADER..len]);
        while data.len() < total {
            // The rest of a message follows its first packet at once: wait for it.
            let (len, _) = self.recv_packet(&mut packet, MsgFlags::empty())?;
            if len == 0 {
                bail!(
                    "sync protocol: the other side exited after {} of {total} bytes of a message",
                    data.len()
                );
            }
            data.extend_from_slice(&packet[..len]);
        }
        if data.len() != total {
            bail!(
                "sync protocol: a message of {} bytes where the header said {total}",
                data.len()
            );
        }
        let msg = serde_json::from_slice(&data).context("decoding a sync message")?;
        Ok(Some((msg, fd)))
    }

    /// One packet into `buf`; a packet or its fds cut short by the kernel is an error.
    fn recv_packet(&self, buf: &mut [u8], flags: MsgFlags) -> Result<(usize, Option<OwnedFd>)> {
        loop {
            match recv_with_fd(self.fd.as_fd(), buf, flags) {
                Ok(msg) => {
                    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
                        bail!("sync protocol: a packet was truncated");
                    }
                    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
                        bail!("sync protocol: the fds sent with a message were truncated");
                    }
                    return Ok((msg.bytes, msg.fd));
                }
                Err(RecvError::Call(Errno::EINTR)) => continue,
                Err(RecvError::Call(err)) => return Err(err).context("receiving a sync message"),
                Err(RecvError::Fds(err)) => return Err(err).context("reading sync message fds"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_any_size_arrive_whole() {
        let (a, b) = pair().expect("socketpair");
        let big = "x".repeat(5 * 1024 * 1024 + 7);
        let sent = ToChild::Commit { state: big.clone() };
        let writer = std::thread::spawn(move || a.send(&sent).map(|_| a));
        let (msg, fd) = b.recv::<ToChild>().expect("receive").expect("a message");
        assert!(fd.is_none());
        match msg {
            ToChild::Commit { state } => assert_eq!(state, big),
            other => panic!("got {other:?}"),
        }
        writer.join().expect("writer thread").expect("send");
    }

    #[test]
    fn an_oversized_packet_is_an_error_not_a_short_message() {
        let (a, b) = pair().expect("socketpair");
        let mut raw = (40_000u64).to_le_bytes().to_vec();
        raw.extend(std::iter::repeat_n(b' ', HEADER + CHUNK));
        sendmsg::<()>(
            a.raw_fd(),
            &[IoSlice::new(&raw)],
            &[],
            MsgFlags::empty(),
            None,
        )
        .expect("raw send");
        let err = b.recv::<ToChild>().expect_err("a truncated packet");
        assert!(format!("{err:#}").contains("truncated"), "{err:#}");
    }

    #[test]
    fn end_of_file_is_none() {
        let (a, b) = pair().expect("socketpair");
        drop(a);
        assert!(b.recv::<ToChild>().expect("eof").is_none());
        assert!(b.try_recv::<ToChild>().is_none());
    }
}
