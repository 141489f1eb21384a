//! `linux.seccomp.listenerPath`: the parent hands a container process's seccomp notify
//! listener, with the container's state, to the agent listening there, then lets the process
//! go on (for `create` and `exec` alike).

use std::os::fd::OwnedFd;

use anyhow::{Context, Result};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use super::state::{State, Status};
use crate::process::channel::{Channel, ToChild};

/// Hands a container process's seccomp notify listener to the agent at listenerPath, then
/// lets the process go on.
pub fn forward_listener(
    ch: &Channel,
    spec: &Spec,
    state: &State,
    status: Status,
    pid: Pid,
    fd: Option<OwnedFd>,
) -> Result<()> {
    let fd = fd.context("sync protocol: a seccomp listener without its fd")?;
    let config = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .context("linux.seccomp: a listener without a seccomp config")?;
    let path = config
        .listener_path()
        .as_ref()
        .context("linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs a listener path")?;
    let metadata = config.listener_metadata().clone().unwrap_or_default();
    let state_json = serde_json::to_value(state.oci_state(status))
        .context("encoding the state for the seccomp agent")?;
    crate::seccomp::send_listener(path, &metadata, &state_json, pid.as_raw(), fd)
        .context("linux.seccomp.listenerPath")?;
    ch.send(&ToChild::ListenerSent)
}
