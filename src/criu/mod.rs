//! CRIU, driven the way runc drives it: `criu swrk FD` on one end of a SOCK_SEQPACKET
//! socketpair, one protobuf `criu_req` per packet, `criu_resp` back, with `notify` packets in
//! between (CRIU's action scripts, answered over the same socket).

pub mod mounts;
pub mod options;
pub mod rpc;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use prost::Message;

use crate::syscall::socket::recv_with_fd;

pub use rpc::{CriuOpts, CriuReq, CriuReqType, CriuResp};

/// The oldest CRIU hutch drives (runc's floor too: 3.0 brought swrk's notifications as used).
pub const MIN_VERSION: u32 = 30000;

/// Where `checkpoint` records the targets of the init's stdin, stdout and stderr, so that
/// `restore` can hand the pipes among them new ends (runc's file and format).
pub const DESCRIPTORS_FILE: &str = "descriptors.json";

/// Namespaces a config joins by path: the dump names each as external (by inode), and the
/// restore hands CRIU the config's path again under the same key, as runc's keys have it.
pub const EXTERNAL_NAMESPACES: [(LinuxNamespaceType, &str, &str); 2] = [
    (LinuxNamespaceType::Network, "net", "extRootNetNS"),
    (LinuxNamespaceType::Pid, "pid", "extRootPidNS"),
];

/// The config's namespaces joined by path that CRIU must treat as external: (kind's CRIU
/// name, inherit key, path).
pub fn joined_namespaces(spec: &Spec) -> Vec<(&'static str, &'static str, std::path::PathBuf)> {
    let configured = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    EXTERNAL_NAMESPACES
        .iter()
        .filter_map(|(kind, name, key)| {
            let ns = configured.iter().find(|n| n.typ() == *kind)?;
            let path = ns.path().as_ref().filter(|p| !p.as_os_str().is_empty())?;
            Some((*name, *key, path.clone()))
        })
        .collect()
}

/// Fails unless the installed CRIU is recent enough, naming what was found.
pub fn check_version(criu: &str) -> Result<()> {
    let version = Swrk::version(criu).context("asking criu for its version")?;
    if version < MIN_VERSION {
        bail!(
            "criu {}.{}.{} is too old: hutch needs 3.0 or newer",
            version / 10000,
            version / 100 % 100,
            version % 100
        );
    }
    Ok(())
}

/// Large enough for any response CRIU sends (runc reads 10 pages).
const RESPONSE_BUFFER: usize = 10 * 4096;

/// A running `criu swrk` and hutch's end of its socket.
pub struct Swrk {
    child: Child,
    socket: Option<OwnedFd>,
}

impl Swrk {
    /// Starts `criu swrk`. `criu` is looked up in PATH, as runc does. `passed` are descriptors
    /// criu inherits under their own numbers (what `inherit_fd` entries name). CRIU logs to its
    /// log file; its stdio is ours only for a restore (`stdio`), where the restored processes
    /// may be given it, and /dev/null otherwise, as runc has it.
    pub fn start(criu: &str, passed: &[OwnedFd], stdio: bool) -> Result<Swrk> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("socketpair for criu swrk")?;
        // criu inherits its end and the passed descriptors: the only ones without
        // close-on-exec in single-threaded hutch, and closed here once criu has them.
        for fd in std::iter::once(&theirs).chain(passed) {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
                .context("criu swrk descriptors: clearing close-on-exec")?;
        }
        let mut cmd = Command::new(criu);
        cmd.arg("swrk").arg(theirs.as_raw_fd().to_string());
        if !stdio {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {criu} swrk (is criu installed?)"))?;
        drop(theirs);
        Ok(Swrk {
            child,
            socket: Some(ours),
        })
    }

    /// The pid of `criu swrk`: on restore it joins the container's cgroups first, so what it
    /// restores is born in them.
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// CRIU's version as runc compares it: major * 10000 + minor * 100 + sublevel.
    pub fn version(criu: &str) -> Result<u32> {
        let mut swrk = Swrk::start(criu, &[], false)?;
        let resp = swrk.call(
            &CriuReq {
                r#type: CriuReqType::Version as i32,
                opts: None,
                notify_success: None,
            },
            |_| Ok(()),
        )?;
        swrk.finish(false)?;
        let v = resp
            .version
            .context("criu answered VERSION without a version")?;
        let part = |n: i32| u32::try_from(n).unwrap_or(0);
        Ok(part(v.major_number) * 10000
            + part(v.minor_number) * 100
            + part(v.sublevel.unwrap_or(0)))
    }

    /// Sends `req` and returns CRIU's answer to it. Each `notify` packet on the way goes to
    /// `on_notify`; CRIU waits for the answer, which is success unless `on_notify` fails.
    pub fn call(
        &mut self,
        req: &CriuReq,
        mut on_notify: impl FnMut(Notification) -> Result<()>,
    ) -> Result<CriuResp> {
        let socket = self
            .socket
            .as_ref()
            .context("criu swrk: connection closed")?;
        send(socket.as_raw_fd(), &req.encode_to_vec(), MsgFlags::empty())
            .context("sending a request to criu")?;
        let mut buf = vec![0u8; RESPONSE_BUFFER];
        loop {
            let received = recv_with_fd(socket.as_fd(), &mut buf, MsgFlags::empty())
                .map_err(|err| anyhow::anyhow!("reading criu's response: {err:?}"))?;
            let (n, fd) = (received.bytes, received.fd);
            if n == 0 {
                bail!("criu closed the connection without answering (see its log)");
            }
            let resp = CriuResp::decode(&buf[..n]).context("decoding criu's response")?;
            if resp.r#type == CriuReqType::Notify as i32 {
                let notify = resp.notify.clone().unwrap_or_default();
                let script = notify.script.clone().unwrap_or_default();
                let outcome = on_notify(Notification {
                    script: &script,
                    pid: notify.pid,
                    fd,
                });
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

    /// Closes the connection and waits for criu to exit. After a pre-dump CRIU waits for the
    /// series' next request and fails when the connection closes instead: that is expected
    /// (`pre_dump`), as runc treats it.
    pub fn finish(mut self, pre_dump: bool) -> Result<()> {
        self.socket = None;
        let status = self.child.wait().context("waiting for criu")?;
        if !status.success() && !pre_dump {
            bail!("criu swrk exited with {status}");
        }
        Ok(())
    }
}

/// One of CRIU's action-script notifications: its name, the pid it concerns (the restored
/// init on `setup-namespaces` and `post-restore`), and the descriptor sent with it (the pty
/// master on `orphan-pts-master`).
pub struct Notification<'a> {
    pub script: &'a str,
    pub pid: Option<i32>,
    pub fd: Option<OwnedFd>,
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
