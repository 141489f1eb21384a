//! What a service manager hands the runtime for the container: systemd socket activation
//! (`LISTEN_FDS`), passed through as runc does, and the readiness socket (`NOTIFY_SOCKET`),
//! proxied by hutch (see [`super::notify`]).

use std::path::Path;

use anyhow::Result;
use oci_spec::runtime::Spec;

use super::notify::{self, HostSocket};

/// Socket-activation fds meant for this process (`LISTEN_PID` is ours): fds 3..3+n go to the
/// container before any `--preserve-fds` ones, and it sees `LISTEN_FDS=n LISTEN_PID=1`.
pub fn listen_fds() -> u32 {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    if !for_us {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Adds the activation environment and the notify socket's mount to the container's config;
/// `state_dir` is the container's (absolute) state directory, where the notify proxy's socket
/// will be. Returns whether the container gets a notify socket.
pub fn apply(spec: &mut Spec, listen_fds: u32, state_dir: &Path) -> Result<bool> {
    if listen_fds > 0 {
        if let Some(process) = spec.process_mut() {
            let mut env = process.env().clone().unwrap_or_default();
            env.retain(|kv| !kv.starts_with("LISTEN_FDS=") && !kv.starts_with("LISTEN_PID="));
            env.push(format!("LISTEN_FDS={listen_fds}"));
            env.push("LISTEN_PID=1".to_string());
            process.set_env(Some(env));
        }
    }
    if HostSocket::from_env().is_none() {
        return Ok(false);
    }
    notify::setup_spec(spec, state_dir)?;
    Ok(true)
}
