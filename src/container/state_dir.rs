//! The per-container state directory: its layout, its lock, and reading and writing the state
//! it records.
//!
//! Layout of `<root>/<id>/`:
//! - `state.json`: the [`State`], replaced atomically (write to a temp file, then rename).
//! - `config.json`: the bundle's config as it was at create time (hooks for `delete`, and
//!   everything later commands need), so a changed bundle cannot change a running container.
//! - `exec.fifo`: exists from `create` until `start`; the container's init blocks on it.
//! - `start.err`: empty unless the init failed between `start` and exec.
//! - `no-process`: present when the config has no `process` (`start` refuses the container).
//! - `cgroup.json`: the container's cgroup ([`crate::cgroups::Manager`]), written once before
//!   any cgroup directory exists, so a `delete --force` finds the cgroup even when `create`
//!   was killed half-way or `state.json` is unreadable.
//!
//! Concurrency: commands that change a container (create, start, delete, pause, resume,
//! update, exec's setup) take an exclusive `flock` on its directory, and verify after locking
//! that the id still names the directory they locked (a delete and re-create of the id while
//! they waited would otherwise make them act on another container); they then work through the
//! locked directory fd. Commands that only read or signal (state, list, ps, events, kill) take
//! no lock: state.json is replaced atomically, so they see a whole state, and they never wait
//! behind a slow hook. `create` builds the directory under a hidden temp name, locks it, renames
//! it into place with RENAME_NOREPLACE, so the id never exists unlocked before its creator holds
//! it, and two creates of one id cannot both succeed; a temp directory whose creator was killed
//! is removed by `delete --force` of the id.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::liveness::process_is_alive;
use super::state::{validate_id, State, Status};

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const EXEC_FIFO: &str = "exec.fifo";
/// Where the init reports why it could not exec after `start` (a failed startContainer hook).
pub const START_ERROR: &str = "start.err";
pub const CGROUP_FILE: &str = "cgroup.json";
/// The container's seccomp filter as compiled by `create`, which `exec` loads.
pub const SECCOMP_FILE: &str = "seccomp.bpf";
/// Marks a container whose config has no `process`: `start` refuses it without touching it.
pub const NO_PROCESS: &str = "no-process";
/// `create` builds a state directory as `<root>/.creating-<id>-<pid>` before publishing it.
/// Where `restore` binds the rootfs for CRIU while it works (see `restore::CriuRoot`).
pub const CRIU_ROOT: &str = "criu-root";
const TEMP_PREFIX: &str = ".creating-";

/// A container's state directory: locked for the lifetime of this value, or, for commands
/// that only read, merely open.
pub struct ContainerDir {
    pub path: PathBuf,
    handle: Handle,
}

enum Handle {
    Locked(Flock<File>),
    Unlocked(File),
}

/// The state directory's files, laid down before the directory is published under the id.
pub struct Initial<'a> {
    pub config: &'a [u8],
    pub state: &'a State,
    /// The compiled `linux.seccomp` ([`crate::seccomp::Program::to_bytes`]).
    pub seccomp: Option<&'a [u8]>,
}

impl ContainerDir {
    /// Opens and locks an existing container, waiting for any command working on it.
    pub fn open(root: &Path, id: &str) -> Result<Self> {
        match Self::open_locked(root, id, FlockArg::LockExclusive)? {
            Some(dir) => Ok(dir),
            None => bail!("locking the state of container {id}: the lock was refused"),
        }
    }

    /// Like [`ContainerDir::open`], but `None` at once when another command holds the lock.
    pub fn try_open(root: &Path, id: &str) -> Result<Option<Self>> {
        Self::open_locked(root, id, FlockArg::LockExclusiveNonblock)
    }

    fn open_locked(root: &Path, id: &str, how: FlockArg) -> Result<Option<Self>> {
        validate_id(id)?;
        let path = root.join(id);
        // A delete (and maybe a create of the same id) may run while we wait for the lock: the
        // directory we locked must still be the one the id names. Bounded, in case something
        // outside hutch keeps replacing it.
        for _ in 0..8 {
            let dir = open_existing(&path)?;
            let locked = match Flock::lock(dir, how) {
                Ok(locked) => locked,
                Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, err)) => {
                    return Err(err).with_context(|| format!("locking {}", path.display()))
                }
            };
            if names_same_dir(&path, &*locked)? {
                return Ok(Some(ContainerDir {
                    path,
                    handle: Handle::Locked(locked),
                }));
            }
        }
        bail!("container {id} is being replaced concurrently; try again")
    }

    /// Opens an existing container without locking it, for commands that only read it or
    /// signal its processes and so must never wait behind a hook.
    pub fn open_unlocked(root: &Path, id: &str) -> Result<Self> {
        validate_id(id)?;
        let path = root.join(id);
        let dir = open_existing(&path)?;
        Ok(ContainerDir {
            path,
            handle: Handle::Unlocked(dir),
        })
    }

    /// Creates, locks and publishes the state directory of a new container, with its
    /// config and first state already in it. A directory a killed `create` left under the id
    /// must be gone first (`delete::remove_stale`): the id is otherwise taken.
    pub fn create(root: &Path, id: &str, initial: &Initial) -> Result<Self> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .with_context(|| format!("creating state root {}", root.display()))?;
        let path = root.join(id);
        let temp = root.join(format!("{TEMP_PREFIX}{id}-{}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o711)
            .create(&temp)
            .with_context(|| format!("creating state directory {}", temp.display()))?;
        let mut dir = match open_dir(&temp).map_err(anyhow::Error::from).and_then(|d| {
            Flock::lock(d, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| anyhow::Error::from(e))
        }) {
            Ok(lock) => ContainerDir {
                path: temp.clone(),
                handle: Handle::Locked(lock),
            },
            Err(err) => {
                let _ = fs::remove_dir_all(&temp);
                return Err(err.context(format!("locking {}", temp.display())));
            }
        };
        // Nobody sees the directory before it is published: its files are written in place.
        let filled = (|| -> Result<()> {
            dir.write_new_file(CONFIG_FILE, initial.config)?;
            if let Some(program) = initial.seccomp {
                dir.write_new_file(SECCOMP_FILE, program)?;
            }
            if let Some(cgroup) = &initial.state.cgroup {
                let data = serde_json::to_vec(cgroup).context("encoding the cgroup")?;
                dir.write_new_file(CGROUP_FILE, &data)?;
            }
            let data = serde_json::to_vec(initial.state).context("encoding container state")?;
            dir.write_new_file(STATE_FILE, &data)
        })();
        if let Err(err) = filled {
            let _ = fs::remove_dir_all(&temp);
            return Err(err);
        }
        if let Err(err) = nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &temp,
            nix::fcntl::AT_FDCWD,
            &path,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        ) {
            let _ = fs::remove_dir_all(&temp);
            if err == nix::errno::Errno::EEXIST || err == nix::errno::Errno::ENOTEMPTY {
                bail!("container with id {id} already exists");
            }
            return Err(err)
                .with_context(|| format!("publishing state directory {}", path.display()));
        }
        dir.path = path;
        Ok(dir)
    }

    pub fn load(&self) -> Result<State> {
        let file = self.path.join(STATE_FILE);
        let data = match self.read_file(STATE_FILE) {
            Ok(d) => d,
            Err(err) if err.kind() == ErrorKind::NotFound => bail!("container does not exist"),
            Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
        };
        serde_json::from_slice(&data).map_err(|err| {
            anyhow::anyhow!(
                "container {}: its state file {} is corrupt ({err}); `delete --force` removes \
                 the container",
                self.id(),
                file.display()
            )
        })
    }

    /// The cgroup recorded apart from the state, for cleaning up when the state is unreadable.
    pub fn load_cgroup(&self) -> Option<crate::cgroups::Manager> {
        serde_json::from_slice(&self.read_file(CGROUP_FILE).ok()?).ok()
    }

    pub fn save(&self, state: &State) -> Result<()> {
        let data = serde_json::to_vec(state).context("encoding container state")?;
        self.write_file(STATE_FILE, &data, 0o600)
    }

    /// The status, derived from the init process rather than from anything recorded.
    pub fn status(&self, state: &State) -> Status {
        let holding_lock = matches!(self.handle, Handle::Locked(_));
        // While we hold the lock no creator can be at work: a state still marked as being
        // created was left by one that died.
        derive_status_with(&self.path, state, || {
            !holding_lock && creator_at_work(self.fd())
        })
    }

    /// Removes the state directory; the lock goes with it.
    pub fn destroy(self) -> Result<()> {
        // A restore killed while CRIU worked leaves the rootfs bound here: detached first, or
        // the recursive removal below would go on into the container's own files.
        let criu_root = self.path.join(CRIU_ROOT);
        match nix::mount::umount2(&criu_root, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::ENOENT) | Err(Errno::EINVAL) => {}
            Err(err) => {
                return Err(err).with_context(|| format!("unmounting {}", criu_root.display()))
            }
        }
        fs::remove_dir_all(&self.path)
            .with_context(|| format!("removing state directory {}", self.path.display()))?;
        drop(self.handle);
        Ok(())
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.handle {
            Handle::Locked(lock) => lock.as_fd(),
            Handle::Unlocked(dir) => dir.as_fd(),
        }
    }

    fn id(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub(super) fn read_file(&self, name: &str) -> std::io::Result<Vec<u8>> {
        let fd = openat(
            self.fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )?;
        let mut data = Vec::new();
        File::from(fd).read_to_end(&mut data)?;
        Ok(data)
    }

    /// Creates a file of a directory nobody else sees yet.
    fn write_new_file(&self, name: &str, data: &[u8]) -> Result<()> {
        let written = openat(
            self.fd(),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(std::io::Error::from)
        .and_then(|fd| File::from(fd).write_all(data));
        written.with_context(|| format!("writing {}", self.path.join(name).display()))
    }

    /// Writes a file of the directory through its fd: a temp file renamed over the name, so
    /// readers see the old or the new content, never a mix.
    fn write_file(&self, name: &str, data: &[u8], mode: u32) -> Result<()> {
        let temp = format!(".{name}.{}", std::process::id());
        let result = (|| -> nix::Result<()> {
            let fd = openat(
                self.fd(),
                temp.as_str(),
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(mode),
            )?;
            File::from(fd)
                .write_all(data)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            renameat(self.fd(), temp.as_str(), self.fd(), name)
        })();
        if let Err(err) = result {
            let _ = unlinkat(self.fd(), temp.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err(err).with_context(|| format!("writing {}", self.path.join(name).display()));
        }
        Ok(())
    }
}

fn open_existing(path: &Path) -> Result<File> {
    match open_dir(path) {
        Ok(dir) => Ok(dir),
        Err(err) if err.kind() == ErrorKind::NotFound => bail!("container does not exist"),
        Err(err) if err.kind() == ErrorKind::PermissionDenied => Err(denied(path)),
        Err(err) => Err(err).with_context(|| format!("opening {}", path.display())),
    }
}

/// A state directory (or `--root`) the caller may not open is another user's: each user
/// manages only their own containers, under their own `--root`. Names the owner of the
/// nearest part of the path the caller can see.
pub fn denied(path: &Path) -> anyhow::Error {
    let owner = path
        .ancestors()
        .find_map(|p| fs::symlink_metadata(p).ok().map(|m| (p, m.uid())))
        .filter(|(p, _)| *p != Path::new("/"));
    let whose = match owner {
        Some((p, uid)) => format!("{} belongs to uid {uid}", p.display()),
        None => "it belongs to another user".into(),
    };
    anyhow::anyhow!(
        "{}: permission denied: {whose}, and uid {} may manage only its own containers (under its own --root)",
        path.display(),
        nix::unistd::geteuid()
    )
}

/// Whether `path` still names the directory `dir` was opened from (and it was not removed).
fn names_same_dir(path: &Path, dir: &impl AsFd) -> Result<bool> {
    let held = nix::sys::stat::fstat(dir.as_fd()).context("fstat of a state directory")?;
    if held.st_nlink == 0 {
        return Ok(false);
    }
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.ino() == held.st_ino && meta.dev() == held.st_dev),
        Err(err) if err.kind() == ErrorKind::NotFound => bail!("container does not exist"),
        Err(err) => Err(err).with_context(|| format!("checking {}", path.display())),
    }
}

/// Whether some command holds the directory's lock (for a state marked as being created: its
/// creator, still at work).
fn creator_at_work(dir: BorrowedFd) -> bool {
    let Ok(fd) = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    // A separate open file description: its lock conflicts with the holder's. Released on drop.
    Flock::lock(File::from(fd), FlockArg::LockSharedNonblock).is_err()
}

/// The status of the container whose state directory is `dir`: stopped when its init is gone
/// (or the pid now names another process), created while exec.fifo waits for `start`.
pub fn derive_status(dir: &Path, state: &State) -> Status {
    derive_status_with(dir, state, || {
        open_dir(dir).is_ok_and(|d| creator_at_work(d.as_fd()))
    })
}

fn derive_status_with(dir: &Path, state: &State, creator_at_work: impl Fn() -> bool) -> Status {
    if state.creating {
        // A creator that died (SIGKILL) leaves its state marked as being created: the
        // container will never be created, whatever is left of it.
        if !creator_at_work() {
            return Status::Stopped;
        }
        return Status::Creating;
    }
    if state.init_pid <= 0
        || !process_is_alive(Pid::from_raw(state.init_pid), state.init_start_time)
    {
        return Status::Stopped;
    }
    let status = if dir.join(EXEC_FIFO).exists() && !init_has_execed(state) {
        Status::Created
    } else {
        Status::Running
    };
    let frozen = || {
        state
            .cgroup
            .as_ref()
            .is_some_and(|c| c.is_frozen().unwrap_or(false))
    };
    if frozen() {
        Status::Paused
    } else {
        status
    }
}

/// Whether the init runs something other than hutch: the user's program, which a `start` that
/// died before removing exec.fifo released.
fn init_has_execed(state: &State) -> bool {
    let Some(recorded) = state.init_exe else {
        return false;
    };
    match fs::metadata(format!("/proc/{}/exe", state.init_pid)) {
        Ok(meta) => (meta.dev(), meta.ino()) != recorded,
        Err(_) => false,
    }
}

fn open_dir(path: &Path) -> std::io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
}

impl ContainerDir {
    /// The directory a `create` of `id` that died left: its lock is free and it never
    /// finished. `None` when the id is free; an error when it names a live container (the id
    /// is taken). Removing it, with what the dead create made, is `delete::remove_stale`.
    pub fn open_stale(root: &Path, id: &str) -> Result<Option<ContainerDir>> {
        let path = root.join(id);
        if !path.exists() {
            return Ok(None);
        }
        let Ok(dir) = open_dir(&path) else {
            bail!("container with id {id} already exists");
        };
        let Ok(lock) = Flock::lock(dir, FlockArg::LockExclusiveNonblock) else {
            bail!("container with id {id} already exists");
        };
        let dir = ContainerDir {
            path,
            handle: Handle::Locked(lock),
        };
        if !names_same_dir(&dir.path, &dir.fd())? {
            bail!("container with id {id} already exists");
        }
        let stale = match dir.load() {
            Ok(state) => state.creating,
            Err(_) => dir
                .read_file(STATE_FILE)
                .is_err_and(|e| e.kind() == ErrorKind::NotFound),
        };
        if !stale {
            bail!("container with id {id} already exists");
        }
        Ok(Some(dir))
    }
}

/// Temp directories of creates of `id` that died before publishing it (their lock is free).
/// Nothing else was made yet: no cgroup, no process.
pub fn remove_stale_temp_dirs(root: &Path, id: &str) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name
            .strip_prefix(TEMP_PREFIX)
            .and_then(|rest| rest.rsplit_once('-'))
            .is_some_and(|(owner, pid)| owner == id && pid.parse::<u32>().is_ok());
        if !ours {
            continue;
        }
        let path = entry.path();
        let Ok(dir) = open_dir(&path) else { continue };
        if let Ok(lock) = Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            let _ = fs::remove_dir_all(&path);
            drop(lock);
        }
    }
}
