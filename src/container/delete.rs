//! `delete`: remove a stopped container (or, with force, stop it first), run poststop hooks.

use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::kill::{kill, signal_init, wait_for_exit};
use super::liveness::process_is_alive;
use super::state::{State, Status};
use super::state_dir::ContainerDir;
use crate::cgroups::Manager;
use crate::hooks;

pub fn delete(dir: ContainerDir, state: &State, force: bool) -> Result<()> {
    let status = dir.status(state);
    match status {
        Status::Stopped => {}
        // A created container never ran its process: deleting it needs no force (as runc).
        Status::Created | Status::Creating => stop(&dir, state)?,
        Status::Running | Status::Paused if force => stop(&dir, state)?,
        Status::Running | Status::Paused => bail!(
            "cannot delete container {} that is not stopped: {}",
            state.id,
            status.as_str()
        ),
    }
    let poststop = state
        .hooks
        .as_ref()
        .and_then(|h| h.poststop().as_deref())
        .unwrap_or_default();
    if !poststop.is_empty() {
        hooks::run_hooks_warn(
            "poststop",
            poststop,
            &state.hook_state_json(Status::Stopped),
        );
    }
    release(Some(state), state.cgroup.as_ref())?;
    dir.destroy()
}

/// Clears the way for a new container `id`: a directory a killed `create` of the id left goes,
/// with what that create made (cgroups, an orphaned init); a live container keeps the id taken.
pub fn remove_stale(root: &Path, id: &str) -> Result<()> {
    if let Some(dir) = ContainerDir::open_stale(root, id)? {
        remove_leftovers(dir)
            .with_context(|| format!("removing what a killed create of {id} left"))?;
    }
    Ok(())
}

/// Removes a container whose state cannot be used as it is: left by a `create` that was
/// killed, or unreadable. Whatever can still be trusted (the state, else the cgroup recorded
/// apart from it) names the processes and cgroups to remove.
pub fn remove_leftovers(dir: ContainerDir) -> Result<()> {
    let state = dir.load().ok();
    let cgroup = match state.as_ref().and_then(|s| s.cgroup.clone()) {
        Some(cgroup) => Some(cgroup),
        None => dir.load_cgroup(),
    };
    release(state.as_ref(), cgroup.as_ref())?;
    dir.destroy()
}

/// Kills what is left of the container (an init orphaned by a killed `create`, processes
/// of a shared pid namespace) and removes its cgroup in every hierarchy.
fn release(state: Option<&State>, cgroup: Option<&Manager>) -> Result<()> {
    if let Some(state) = state {
        if process_is_alive(Pid::from_raw(state.init_pid), state.init_start_time) {
            let _ = signal_init(state, libc::SIGKILL);
            let _ = wait_for_exit(state, 10_000);
        }
    }
    if let Some(cg) = cgroup {
        if !cg.is_empty() {
            let _ = cg.kill_all(libc::SIGKILL);
        }
        cg.destroy()?;
    }
    Ok(())
}

fn stop(dir: &ContainerDir, state: &State) -> Result<()> {
    match kill(dir, state, Signal::SIGKILL as i32, true) {
        Ok(()) => {}
        Err(err) if dir.status(state) == Status::Stopped => {
            let _ = err;
            return Ok(());
        }
        Err(err) => return Err(err),
    }
    wait_for_exit(state, 10_000)
}
