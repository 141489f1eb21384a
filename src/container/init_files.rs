//! What the init is handed from the host side: the state directory's files it holds open
//! (exec.fifo, start.err) and the rootfs directory it is cloned in.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};

use super::state_dir::{EXEC_FIFO, NO_PROCESS, START_ERROR};

/// The state directory's files the init holds open: exec.fifo, which it blocks on until
/// `start`, and start.err, where it reports a failure after `start`.
pub(super) struct InitFiles {
    pub exec_fifo: OwnedFd,
    pub start_error: fs::File,
}

impl InitFiles {
    pub(super) fn make(dir: &Path) -> Result<InitFiles> {
        let exec_fifo = make_exec_fifo(&dir.join(EXEC_FIFO))?;
        let path = dir.join(START_ERROR);
        let start_error = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(InitFiles {
            exec_fifo,
            start_error,
        })
    }
}

/// Marks a container created without `process`, so `start` refuses it without touching it.
pub(super) fn make_no_process_marker(dir: &Path) -> Result<()> {
    let path = dir.join(NO_PROCESS);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map(drop)
        .with_context(|| format!("creating {}", path.display()))
}

fn make_exec_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .with_context(|| format!("creating {}", path.display()))?;
    // Read-write, so this open never blocks and the init can always read its byte.
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok(OwnedFd::from(file))
}

/// The init is cloned from inside the rootfs: its working directory (translated into its new
/// mount namespace) then reaches the rootfs without a path lookup, which in a user namespace
/// mapping root to a non-root host uid could be refused by a directory above it.
pub(super) struct StartIn {
    rootfs: OwnedFd,
    pub rootfs_id: (u64, u64),
    caller_cwd: OwnedFd,
}

impl StartIn {
    pub(super) fn rootfs(rootfs: &Path) -> Result<StartIn> {
        use nix::fcntl::OFlag;
        let open = |p: &Path| {
            nix::fcntl::open(
                p,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
        };
        let dir = open(rootfs).with_context(|| format!("opening rootfs {}", rootfs.display()))?;
        let st = nix::sys::stat::fstat(&dir)
            .with_context(|| format!("stat of rootfs {}", rootfs.display()))?;
        let caller_cwd = open(Path::new(".")).context("opening the working directory")?;
        Ok(StartIn {
            rootfs: dir,
            rootfs_id: (st.st_dev, st.st_ino),
            caller_cwd,
        })
    }

    /// Host descriptors the init closes first thing.
    pub(super) fn fds(&self) -> [std::os::fd::RawFd; 2] {
        [self.rootfs.as_raw_fd(), self.caller_cwd.as_raw_fd()]
    }

    pub(super) fn enter(&self) -> Result<()> {
        nix::unistd::fchdir(&self.rootfs).context("chdir into the rootfs to clone the init")
    }

    pub(super) fn leave(&self) -> Result<()> {
        nix::unistd::fchdir(&self.caller_cwd).context("chdir back to the working directory")
    }
}
