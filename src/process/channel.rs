//! The parent/child synchronisation protocol of `create`.
//!
//! One SOCK_SEQPACKET socketpair joins the hutch process running `create` (the parent) and the
//! container's init (the child); an intermediate process, when namespaces must be joined by
//! path, uses the child's end first and exits before the init reads from it. Each message is
//! one JSON-encoded packet; a pty master travels as SCM_RIGHTS beside its message.
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

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{bail, Context, Result};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

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

const MAX_MESSAGE: usize = 64 * 1024;

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

    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd<T: Serialize>(&self, msg: &T, fd: Option<RawFd>) -> Result<()> {
        let data = serde_json::to_vec(msg).context("encoding a sync message")?;
        let iov = [IoSlice::new(&data)];
        let fds;
        let cmsgs: &[ControlMessage] = match fd {
            Some(fd) => {
                fds = [fd];
                &[ControlMessage::ScmRights(&fds)]
            }
            None => &[],
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .context("sending a sync message")?;
        Ok(())
    }

    /// Receives one message; `Ok(None)` means the other side is gone.
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<(T, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
        let (len, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut received = None;
                    for cmsg in msg.cmsgs().context("reading sync message fds")? {
                        if let ControlMessageOwned::ScmRights(fds) = cmsg {
                            for raw in fds {
                                // SAFETY: SCM_RIGHTS just installed this fd in our table; we
                                // are its only owner.
                                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                                received.get_or_insert(owned);
                            }
                        }
                    }
                    break (msg.bytes, received);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(err) => return Err(err).context("receiving a sync message"),
            }
        };
        if len == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..len]).context("decoding a sync message")?;
        Ok(Some((msg, fd)))
    }

    /// Receives a message the protocol requires now; the other side's exit is an error.
    pub fn expect<T: for<'de> Deserialize<'de>>(&self, what: &str) -> Result<(T, Option<OwnedFd>)> {
        match self.recv()? {
            Some(m) => Ok(m),
            None => bail!("the other side of the sync socket exited while waiting for {what}"),
        }
    }
}
