//! `hutch pause ID`: freeze every process of the container (v1 freezer, v2 cgroup.freeze).

use anyhow::{bail, Result};

use super::{GlobalOpts, PauseArgs};
use crate::cgroups::Manager;
use crate::container::state::{State, Status};
use crate::container::ContainerDir;

/// The container's status with the freezer taken into account (`paused`), its state and its
/// cgroup. Shared by pause, resume, ps, events and update.
/// The cgroup is returned as a `Result` so callers can check the status first.
pub(crate) fn open(
    global: &GlobalOpts,
    id: &str,
) -> Result<(ContainerDir, State, Status, Result<Manager>)> {
    open_as(ContainerDir::open(&global.root, id)?)
}

/// [`open`] without the lock, for commands that only read (ps, events).
pub(crate) fn open_unlocked(
    global: &GlobalOpts,
    id: &str,
) -> Result<(ContainerDir, State, Status, Result<Manager>)> {
    open_as(ContainerDir::open_unlocked(&global.root, id)?)
}

fn open_as(dir: ContainerDir) -> Result<(ContainerDir, State, Status, Result<Manager>)> {
    let state = dir.load()?;
    let mut status = dir.status(&state);
    let manager = state.cgroup_manager();
    if matches!(status, Status::Running | Status::Created) {
        if let Ok(m) = &manager {
            if m.is_frozen().unwrap_or(false) {
                status = Status::Paused;
            }
        }
    }
    Ok((dir, state, status, manager))
}

pub fn run(global: &GlobalOpts, args: PauseArgs) -> Result<i32> {
    let (_dir, _state, status, m) = open(global, &args.id)?;
    match status {
        Status::Running | Status::Created => m?.freeze()?,
        // runc: pausing anything else (a paused container included) is "not running".
        _ => bail!("container not running"),
    }
    Ok(0)
}
