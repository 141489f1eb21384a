//! `hutch delete [--force] ID`. A forced delete of a container that does not exist succeeds:
//! containerd calls `delete` and then `delete --force` for the same id.
//!
//! `delete --force` also removes whatever a killed command left of the id: a state directory
//! never published, a container whose `create` died half-way, a state file that is unreadable.

use anyhow::Result;

use super::{DeleteArgs, GlobalOpts};
use crate::container::delete::{delete, remove_leftovers};
use crate::container::kill::kill;
use crate::container::state::validate_id;
use crate::container::state_dir::remove_stale_temp_dirs;
use crate::container::ContainerDir;

pub fn run(global: &GlobalOpts, args: DeleteArgs) -> Result<i32> {
    validate_id(&args.id)?;
    if args.force {
        remove_stale_temp_dirs(&global.root, &args.id);
    }
    let locked = match ContainerDir::try_open(&global.root, &args.id) {
        Ok(Some(dir)) => Ok(dir),
        Ok(None) => {
            // Another command holds the container, maybe running a slow hook: with --force,
            // stop the container first, without the lock, then wait for it.
            if args.force {
                stop_before_locking(global, &args.id);
            }
            ContainerDir::open(&global.root, &args.id)
        }
        Err(err) => Err(err),
    };
    let dir = match locked {
        Ok(dir) => dir,
        Err(err) if args.force && is_not_exist(&err) => return Ok(0),
        Err(err) => return Err(err),
    };
    let state = match dir.load() {
        Ok(state) => state,
        Err(err) if args.force => {
            crate::logging::warn(&format!("{err:#}"));
            remove_leftovers(dir)?;
            return Ok(0);
        }
        Err(err) => return Err(err),
    };
    delete(dir, &state, args.force)?;
    Ok(0)
}

/// Kills the container without its lock, so `--force` never waits behind a hook to stop it.
fn stop_before_locking(global: &GlobalOpts, id: &str) {
    let Ok(dir) = ContainerDir::open_unlocked(&global.root, id) else {
        return;
    };
    if let Ok(state) = dir.load() {
        let _ = kill(&dir, &state, libc::SIGKILL, true);
    }
}

fn is_not_exist(err: &anyhow::Error) -> bool {
    err.to_string().contains("container does not exist")
}
