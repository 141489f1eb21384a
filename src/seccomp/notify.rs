//! Handing the `SCMP_ACT_NOTIFY` listener to a seccomp agent at `linux.seccomp.listenerPath`.
//!
//! The runtime-spec protocol: connect to the unix socket and send, in one message, the JSON of a
//! `ContainerProcessState` with the listener fd attached as `SCM_RIGHTS`; `fds` names the
//! attached descriptors (`["seccompFd"]`). Agents (runc's contrib/cmd/seccompagent, the
//! kinvolk agent) read it with a single recvmsg.

use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};

/// The spec version written when the state carries none.
const OCI_VERSION: &str = "1.3.0";

/// Sends the listener `fd` and the container process state to the agent at `listener_path`.
///
/// `state_json` is the container's OCI state (`ociVersion`, `id`, `status`, `pid`, `bundle`,
/// `annotations`); `pid` is the process the filter was loaded in (the container init, or the
/// exec'd process); `metadata` is `linux.seccomp.listenerMetadata` (omitted when empty, as in
/// runc). The fd is closed here once sent: the agent has its own copy.
pub fn send_listener(
    listener_path: &Path,
    metadata: &str,
    state_json: &serde_json::Value,
    pid: i32,
    fd: OwnedFd,
) -> Result<()> {
    let version = state_json
        .get("ociVersion")
        .and_then(|v| v.as_str())
        .unwrap_or(OCI_VERSION);
    let mut msg = serde_json::json!({
        "ociVersion": version,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state_json,
    });
    if !metadata.is_empty() {
        msg["metadata"] = serde_json::Value::from(metadata);
    }
    let payload = serde_json::to_vec(&msg).context("seccomp notify: encoding the state")?;

    let path = listener_path.display();
    let mut stream = crate::syscall::socket::connect_stream(listener_path)
        .with_context(|| format!("linux.seccomp.listenerPath: connecting to {path}"))?;
    let fds = [fd.as_raw_fd()];
    let sent = sendmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &[IoSlice::new(&payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .with_context(|| format!("seccomp notify: sending the listener fd to {path}"))?;
    // A stream socket may take part of a large state; the fd already went with the first part.
    stream
        .write_all(&payload[sent..])
        .with_context(|| format!("seccomp notify: sending the state to {path}"))?;
    Ok(())
}
