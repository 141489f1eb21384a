//! What a service manager hands the runtime for the container: systemd socket activation
//! (`LISTEN_FDS`) and the readiness socket (`NOTIFY_SOCKET`), passed through as runc does.

use std::path::PathBuf;

use oci_spec::runtime::{MountBuilder, Spec};

use crate::logging;

/// Where the container finds the caller's notify socket.
const CONTAINER_NOTIFY_SOCKET: &str = "/run/notify/notify.sock";

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

/// Adds the activation environment and the notify socket to the container's config.
pub fn apply(spec: &mut Spec, listen_fds: u32) {
    let notify = notify_socket();
    if listen_fds == 0 && notify.is_none() {
        return;
    }
    let Some(process) = spec.process_mut() else {
        return;
    };
    let mut env = process.env().clone().unwrap_or_default();
    if listen_fds > 0 {
        env.retain(|kv| !kv.starts_with("LISTEN_FDS=") && !kv.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={listen_fds}"));
        env.push("LISTEN_PID=1".to_string());
    }
    if notify.is_some() {
        env.retain(|kv| !kv.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={CONTAINER_NOTIFY_SOCKET}"));
    }
    process.set_env(Some(env));
    if let Some(host_socket) = notify {
        let mount = MountBuilder::default()
            .destination(CONTAINER_NOTIFY_SOCKET)
            .typ("bind")
            .source(host_socket)
            .options(vec![
                "bind".to_string(),
                "nosuid".to_string(),
                "nodev".to_string(),
                "noexec".to_string(),
            ])
            .build();
        match mount {
            Ok(m) => {
                let mut mounts = spec.mounts().clone().unwrap_or_default();
                mounts.push(m);
                spec.set_mounts(Some(mounts));
            }
            Err(err) => logging::warn(&format!("NOTIFY_SOCKET: {err}")),
        }
    }
}

/// The caller's notify socket, when it is a path the container can be given by a bind mount
/// (an abstract socket lives in hutch's network namespace and cannot be reached from another).
fn notify_socket() -> Option<PathBuf> {
    let value = std::env::var("NOTIFY_SOCKET").ok()?;
    if value.starts_with('@') {
        logging::warn("NOTIFY_SOCKET: abstract sockets cannot be passed into a container; ignored");
        return None;
    }
    let path = PathBuf::from(value);
    path.is_absolute().then_some(path)
}
