//! `hutch restore ID`: a container from a bundle whose processes come back from a checkpoint's
//! images (runc's flags and defaults). Detached (`-d`, as containerd's shim runs it), hutch
//! returns once the processes run; in the foreground it stays their parent like `run`:
//! forwards signals, waits, deletes the container and exits with the init's status.

use anyhow::Result;
use nix::unistd::Pid;

use super::{GlobalOpts, RestoreArgs};
use crate::container::create::CreateRequest;
use crate::container::delete::delete;
use crate::container::restore::{restore, RestoreRequest};
use crate::container::ContainerDir;
use crate::logging;
use crate::process::foreground::{block_signals, forward_and_wait};

pub fn run(global: &GlobalOpts, args: RestoreArgs) -> Result<i32> {
    let common = args.criu.options();
    let req = RestoreRequest {
        create: CreateRequest {
            id: &args.id,
            bundle: &args.bundle,
            console_socket: args.console_socket.as_deref(),
            pid_file: args.pid_file.as_deref(),
            pidfd_socket: None,
            systemd_cgroup: global.systemd_cgroup,
            rootless: global.rootless.is_rootless(),
            no_pivot: args.no_pivot,
            no_new_keyring: false,
            preserve_fds: 0,
            detached: args.detach,
        },
        criu: &common,
        criu_bin: global.criu.as_deref().unwrap_or("criu"),
        lsm_profile: args.lsm_profile.as_deref(),
        lsm_mount_context: args.lsm_mount_context.as_deref(),
    };
    let restored = restore(&global.root, &req)?;
    if args.detach {
        return Ok(0);
    }
    // The restored init is our child (CRIU restored it as its own sibling). Signals that came
    // before this point had their default effect on hutch; the init is unaffected by them.
    let mask = block_signals()?;
    if !args.no_subreaper {
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
    let init = Pid::from_raw(restored.state.init_pid);
    drop(restored.dir);
    let code = forward_and_wait(init, &mask, restored.console)?;
    let removed = ContainerDir::open(&global.root, &args.id)
        .and_then(|dir| delete(dir, &restored.state, true));
    if let Err(err) = removed {
        logging::warn(&format!("deleting container {}: {err:#}", args.id));
    }
    Ok(code)
}
