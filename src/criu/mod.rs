//! CRIU, driven the way runc drives it: `criu swrk FD` on one end of a SOCK_SEQPACKET
//! socketpair, one protobuf `criu_req` per packet, `criu_resp` back, with `notify` packets in
//! between (CRIU's action scripts, answered over the same socket).

pub mod rpc;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, Command};

use anyhow::{bail, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use prost::Message;

pub use rpc::{CriuOpts, CriuReq, CriuReqType, CriuResp};

/// Large enough for any response CRIU sends (runc reads 10 pages).
const RESPONSE_BUFFER: usize = 10 * 4096;

/// A running `criu swrk` and hutch's end of its socket.
pub struct Swrk {
    child: Child,
    socket: Option<OwnedFd>,
}

impl Swrk {
    /// Starts `criu swrk`. `criu` is looked up in PATH, as runc does (`--criu` names another).
    pub fn start(criu: &str) -> Result<Swrk> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("socketpair for criu swrk")?;
        // criu inherits its end: the only descriptor without close-on-exec in single-threaded
        // hutch, and closed here once criu has it.
        fcntl(&theirs, FcntlArg::F_SETFD(FdFlag::empty()))
            .context("criu swrk socket: clearing close-on-exec")?;
        let child = Command::new(criu)
            .arg("swrk")
            .arg(theirs.as_raw_fd().to_string())
            .spawn()
            .with_context(|| format!("starting {criu} swrk (is criu installed?)"))?;
        drop(theirs);
        Ok(Swrk {
            child,
            socket: Some(ours),
        })
    }

    /// Sends `req` and returns CRIU's answer to it. Each `notify` packet on the way goes to
    /// `on_notify` (the script name, and the pid CRIU reports with it); CRIU waits for the
    /// answer, which is success unless `on_notify` fails.
    pub fn call(
        &mut self,
        req: &CriuReq,
        mut on_notify: impl FnMut(&str, Option<i32>) -> Result<()>,
    ) -> Result<CriuResp> {
        let socket = self
            .socket
            .as_ref()
            .context("criu swrk: connection closed")?;
        send(socket.as_raw_fd(), &req.encode_to_vec(), MsgFlags::empty())
            .context("sending a request to criu")?;
        let mut buf = vec![0u8; RESPONSE_BUFFER];
        loop {
            let n = recv(socket.as_fd().as_raw_fd(), &mut buf, MsgFlags::empty())
                .context("reading criu's response")?;
            if n == 0 {
                bail!("criu closed the connection without answering (see its log)");
            }
            let resp = CriuResp::decode(&buf[..n]).context("decoding criu's response")?;
            if resp.r#type == CriuReqType::Notify as i32 {
                let notify = resp.notify.clone().unwrap_or_default();
                let script = notify.script.as_deref().unwrap_or("");
                let outcome = on_notify(script, notify.pid);
                let answer = CriuReq {
                    r#type: CriuReqType::Notify as i32,
                    opts: None,
                    notify_success: Some(outcome.is_ok()),
                };
                send(
                    socket.as_raw_fd(),
                    &answer.encode_to_vec(),
                    MsgFlags::empty(),
                )
                .context("answering criu's notification")?;
                outcome.with_context(|| format!("criu notification {script:?}"))?;
                continue;
            }
            if !resp.success {
                let msg = resp.cr_errmsg.as_deref().unwrap_or("no message");
                let errno = resp.cr_errno.unwrap_or(0);
                bail!("criu failed: {msg} (errno {errno}); see its log");
            }
            if resp.r#type != req.r#type {
                bail!(
                    "criu answered request type {} with type {}",
                    req.r#type,
                    resp.r#type
                );
            }
            return Ok(resp);
        }
    }

    /// Closes the connection and waits for criu to exit.
    pub fn finish(mut self) -> Result<()> {
        self.socket = None;
        let status = self.child.wait().context("waiting for criu")?;
        if !status.success() {
            bail!("criu swrk exited with {status}");
        }
        Ok(())
    }
}

impl Drop for Swrk {
    fn drop(&mut self) {
        self.socket = None;
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::rpc::*;
    use prost::Message;

    /// The bytes a proto2 encoder gives for the fields set, checked by hand against the wire
    /// format: a request names its type (field 1, varint) and the options' required fd.
    #[test]
    fn request_encodes_the_fields_set_and_nothing_else() {
        let req = CriuReq {
            r#type: CriuReqType::Dump as i32,
            opts: Some(CriuOpts {
                images_dir_fd: 5,
                pid: Some(42),
                leave_running: Some(true),
                ..Default::default()
            }),
            notify_success: None,
        };
        // 08 01: type=DUMP; 12 06: opts, 6 bytes: 08 05 (fd 5), 10 2a (pid 42), 18 01 (leave).
        assert_eq!(
            req.encode_to_vec(),
            [0x08, 0x01, 0x12, 0x06, 0x08, 0x05, 0x10, 0x2a, 0x18, 0x01]
        );
    }

    #[test]
    fn response_with_notify_decodes() {
        // type=NOTIFY(6), success=true, notify{script:"post-dump"}.
        let mut bytes = vec![0x08, 0x06, 0x10, 0x01, 0x2a, 0x0b, 0x0a, 0x09];
        bytes.extend_from_slice(b"post-dump");
        let resp = CriuResp::decode(&bytes[..]).unwrap();
        assert_eq!(resp.r#type, CriuReqType::Notify as i32);
        assert!(resp.success);
        assert_eq!(resp.notify.unwrap().script.as_deref(), Some("post-dump"));
    }
}
