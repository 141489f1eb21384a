//! `hutch create`: leaves the container's init waiting for `start`, then exits so the init is
//! re-parented to the caller's subreaper (containerd's shim, conmon), which reaps it.

use anyhow::Result;

use super::{CreateArgs, GlobalOpts};
use crate::container::create::{create, CreateRequest};

pub fn run(global: &GlobalOpts, args: CreateArgs) -> Result<i32> {
    create(&global.root, &request(global, &args, true))?;
    Ok(0)
}

pub fn request<'a>(global: &GlobalOpts, args: &'a CreateArgs, detached: bool) -> CreateRequest<'a> {
    CreateRequest {
        id: &args.id,
        bundle: &args.bundle,
        console_socket: args.console_socket.as_deref(),
        pid_file: args.pid_file.as_deref(),
        pidfd_socket: args.pidfd_socket.as_deref(),
        systemd_cgroup: global.systemd_cgroup,
        rootless: global.rootless.is_rootless(),
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        preserve_fds: args.preserve_fds,
        detached,
    }
}
