//! `start`: release the init blocked on exec.fifo, then run poststart hooks.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::state::{State, Status};
use super::state_dir::{ContainerDir, EXEC_FIFO, NO_PROCESS, START_ERROR};
use crate::hooks;

pub fn start(dir: &ContainerDir, state: &State) -> Result<()> {
    match dir.status(state) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running | Status::Paused => bail!("cannot start an already running container"),
        Status::Creating => bail!("cannot start a container that is still being created"),
    }
    if dir.path.join(NO_PROCESS).exists() {
        bail!(
            "cannot start container {}: its config.json has no `process` (the program to run), \
             which start requires",
            state.id
        );
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

/// Writes the byte the init waits for, then waits until the init has exec'd the user's
/// process or failed trying (startContainer hooks run in between).
///
/// The init holds exec.fifo open read-write, close-on-exec: once our own write end is closed,
/// the fifo hangs up exactly when the init execs or exits. A failure before exec is reported in
/// start.err.
fn release_init(dir: &ContainerDir) -> Result<()> {
    let path = dir.path.join(EXEC_FIFO);
    let watch = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
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
    drop(fifo);
    fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    // No events requested: poll reports only the hang-up, not our own byte waiting unread.
    let mut fds = [PollFd::new(watch.as_fd(), PollFlags::empty())];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(err) => return Err(err).context("waiting for the container's process to start"),
        }
    }
    let failure = fs::read_to_string(dir.path.join(START_ERROR)).unwrap_or_default();
    if !failure.is_empty() {
        bail!("{}", failure.trim_end());
    }
    Ok(())
}
