//! `hutch run`: create and start in one call. Detached, it returns once the process runs; in
//! the foreground it stays as the container's parent, forwards the signals it receives to the
//! init, reaps it, deletes the container (unless --keep) and exits with its status
//! (128+signal when the process was killed).

use anyhow::Result;
use nix::unistd::Pid;

use super::{GlobalOpts, RunArgs};
use crate::container::create::create;
use crate::container::delete::delete;
use crate::container::start::start;
use crate::container::ContainerDir;
use crate::logging;
use crate::process::foreground::{block_signals, forward_and_wait};

pub fn run(global: &GlobalOpts, args: RunArgs) -> Result<i32> {
    // Signals are blocked (to be read from a signalfd) before the init exists, so none is lost
    // between start and the wait loop; the init resets its mask before exec.
    let forwarded = if args.detach {
        None
    } else {
        Some(block_signals()?)
    };
    let created = create(
        &global.root,
        &super::create::request(global, &args.create, args.detach),
    )?;
    if let Err(err) = start(&created.dir, &created.state) {
        let _ = delete(created.dir, &created.state, true);
        return Err(err);
    }
    let Some(mask) = forwarded else {
        return Ok(0);
    };
    if !args.no_subreaper {
        // Orphans of a container sharing our pid namespace come to us to be reaped.
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
    let init = Pid::from_raw(created.state.init_pid);
    // Other commands (state, kill) must reach the container while it runs.
    drop(created.dir);
    let code = forward_and_wait(init, &mask, created.console)?;
    if !args.keep {
        let removed = ContainerDir::open(&global.root, &args.create.id)
            .and_then(|dir| delete(dir, &created.state, true));
        if let Err(err) = removed {
            logging::warn(&format!("deleting container {}: {err:#}", args.create.id));
        }
    }
    Ok(code)
}
