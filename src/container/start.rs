//! `start`: release the init blocked on exec.fifo, then run poststart hooks.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};

use super::state::{ContainerDir, State, Status, EXEC_FIFO};
use crate::hooks;

pub fn start(dir: &ContainerDir, state: &State) -> Result<()> {
    match dir.status(state) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running | Status::Paused => bail!("cannot start an already running container"),
        Status::Creating => bail!("cannot start a container that is still being created"),
    }
    release_init(dir)?;
    let poststart = state
        .hooks
        .as_ref()
        .and_then(|h| h.poststart().as_deref())
        .unwrap_or_default();
    if !poststart.is_empty() {
        let json = state.hook_state_json(Status::Running);
        hooks::run_hooks_warn("poststart", poststart, &json);
    }
    Ok(())
}

/// Writes the byte the init waits for. Opening without blocking fails with ENXIO when no
/// reader is left, i.e. the init died after create.
fn release_init(dir: &ContainerDir) -> Result<()> {
    let path = dir.path.join(EXEC_FIFO);
    let mut fifo = match fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
    {
        Ok(f) => f,
        Err(err) if err.raw_os_error() == Some(libc::ENXIO) => bail!("container not running"),
        Err(err) => return Err(err).with_context(|| format!("opening {}", path.display())),
    };
    fifo.write_all(b"0")
        .with_context(|| format!("writing to {}", path.display()))?;
    fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(())
}
