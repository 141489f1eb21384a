//! `delete`: remove a stopped container (or, with force, stop it first), run poststop hooks.

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use super::kill::{kill, wait_for_exit};
use super::state::{ContainerDir, State, Status};
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
    if let Some(cg) = &state.cgroup {
        // Processes left behind (a shared pid namespace) go with the container, as in runc.
        if !cg.is_empty() {
            let _ = cg.kill_all(libc::SIGKILL);
        }
        cg.destroy()?;
    }
    dir.destroy()
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
