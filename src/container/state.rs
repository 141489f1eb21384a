//! The per-container state directory and the state it records.
//!
//! Layout of `<root>/<id>/`:
//! - `state.json`: [`State`], replaced atomically (write to a temp file, then rename).
//! - `config.json`: the bundle's config as it was at create time (hooks for `delete`, and
//!   everything later commands need), so a changed bundle cannot change a running container.
//! - `exec.fifo`: exists from `create` until `start`; the container's init blocks on it.
//! - `start.err`: empty unless the init failed between `start` and exec.
//!
//! Concurrency: every command takes an exclusive `flock` on the directory for as long as it
//! works on the container, so commands on one id serialize. `create` builds the directory under
//! a temporary name, locks it, and renames it into place with RENAME_NOREPLACE, so the id never
//! exists unlocked before its creator holds it, and two creates of one id cannot both succeed.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const EXEC_FIFO: &str = "exec.fifo";
/// Where the init reports why it could not exec after `start` (a failed startContainer hook).
pub const START_ERROR: &str = "start.err";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What hutch records about a container. The status is not stored: it is derived from the
/// init process itself (see [`ContainerDir::status`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Host pid of the container's init; 0 while it is not yet known.
    pub init_pid: i32,
    /// The init's start time in clock ticks since boot (/proc/<pid>/stat field 22): a pid
    /// that names a different process after reuse has a different start time.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub owner: String,
    /// True until `create` has finished: a creator that died leaves this set.
    pub creating: bool,
    /// The container shares its pid namespace with others (no new pid namespace), so killing
    /// its init does not take the other processes with it.
    #[serde(default)]
    pub shares_pid_ns: bool,
    /// The config's hooks, kept so `start` (poststart) and `delete` (poststop) need not parse
    /// the whole config again.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The container's cgroup (every hierarchy), and which directories hutch created.
    #[serde(default)]
    pub cgroup: Option<crate::cgroups::Manager>,
}

/// The OCI state, as runc prints it (field order included).
#[derive(Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'a str,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
    pub owner: &'a str,
}

impl State {
    pub fn oci_state(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: crate::OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.init_pid
            },
            status: status.as_str(),
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: &self.owner,
        }
    }

    /// The state JSON hooks receive on stdin.
    pub fn hook_state_json(&self, status: Status) -> Vec<u8> {
        serde_json::to_vec(&self.oci_state(status)).unwrap_or_default()
    }
}

/// Container ids: letters, digits and `_ + - .`, not `.` or `..`, at most 1024 bytes; they
/// become directory names under `--root`, so nothing else may pass.
pub fn validate_id(id: &str) -> Result<()> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if id.is_empty() || id == "." || id == ".." || id.len() > 1024 || !ok_chars {
        bail!("invalid container id {id:?}: use letters, digits and _ + - . only");
    }
    Ok(())
}

/// A container's state directory, locked for the lifetime of this value.
pub struct ContainerDir {
    pub path: PathBuf,
    lock: Flock<File>,
}

impl ContainerDir {
    /// Opens and locks an existing container.
    pub fn open(root: &Path, id: &str) -> Result<Self> {
        validate_id(id)?;
        let path = root.join(id);
        let dir = match open_dir(&path) {
            Ok(dir) => dir,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                bail!("container does not exist")
            }
            Err(err) => {
                return Err(err).with_context(|| format!("opening {}", path.display()));
            }
        };
        let lock = Flock::lock(dir, FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(ContainerDir { path, lock })
    }

    /// Creates, locks and publishes the state directory of a new container.
    pub fn create(root: &Path, id: &str) -> Result<Self> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .with_context(|| format!("creating state root {}", root.display()))?;
        let path = root.join(id);
        if path.exists() {
            remove_if_stale(&path)?;
        }
        let temp = root.join(format!(".creating-{id}-{}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o711)
            .create(&temp)
            .with_context(|| format!("creating state directory {}", temp.display()))?;
        let lock = match open_dir(&temp).map_err(anyhow::Error::from).and_then(|d| {
            Flock::lock(d, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| anyhow::Error::from(e))
        }) {
            Ok(lock) => lock,
            Err(err) => {
                let _ = fs::remove_dir_all(&temp);
                return Err(err.context(format!("locking {}", temp.display())));
            }
        };
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
        Ok(ContainerDir { path, lock })
    }

    pub fn load(&self) -> Result<State> {
        let file = self.path.join(STATE_FILE);
        let data = match fs::read(&file) {
            Ok(d) => d,
            Err(err) if err.kind() == ErrorKind::NotFound => bail!("container does not exist"),
            Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
        };
        serde_json::from_slice(&data).with_context(|| format!("parsing {}", file.display()))
    }

    pub fn save(&self, state: &State) -> Result<()> {
        let data = serde_json::to_vec(state).context("encoding container state")?;
        write_atomic(&self.path.join(STATE_FILE), &data, 0o600)
    }

    /// The status, derived from the init process rather than from anything recorded.
    pub fn status(&self, state: &State) -> Status {
        derive_status(&self.path, state)
    }

    /// Removes the state directory; the lock goes with it.
    pub fn destroy(self) -> Result<()> {
        fs::remove_dir_all(&self.path)
            .with_context(|| format!("removing state directory {}", self.path.display()))?;
        drop(self.lock);
        Ok(())
    }

    pub fn lock_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.lock.as_fd()
    }
}

/// The status of the container whose state directory is `dir`: stopped when its init is gone
/// (or the pid now names another process), created while exec.fifo waits for `start`.
pub fn derive_status(dir: &Path, state: &State) -> Status {
    if state.init_pid <= 0 {
        return if state.creating {
            Status::Creating
        } else {
            Status::Stopped
        };
    }
    if !process_is_alive(Pid::from_raw(state.init_pid), state.init_start_time) {
        return Status::Stopped;
    }
    let status = if state.creating {
        Status::Creating
    } else if dir.join(EXEC_FIFO).exists() {
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
    if matches!(status, Status::Running | Status::Created) && frozen() {
        Status::Paused
    } else {
        status
    }
}

fn open_dir(path: &Path) -> std::io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
}

/// A directory left by a `create` that died: its lock is free and it never finished. Anything
/// else is a live container, and the id is taken.
fn remove_if_stale(path: &Path) -> Result<()> {
    let id = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Ok(dir) = open_dir(path) else {
        bail!("container with id {id} already exists");
    };
    let Ok(lock) = Flock::lock(dir, FlockArg::LockExclusiveNonblock) else {
        bail!("container with id {id} already exists");
    };
    let stale = match fs::read(path.join(STATE_FILE)) {
        Err(_) => true,
        Ok(data) => match serde_json::from_slice::<State>(&data) {
            Ok(state) => {
                state.creating
                    && !process_is_alive(Pid::from_raw(state.init_pid), state.init_start_time)
            }
            Err(_) => false,
        },
    };
    if !stale {
        bail!("container with id {id} already exists");
    }
    fs::remove_dir_all(path).with_context(|| format!("removing stale {}", path.display()))?;
    drop(lock);
    Ok(())
}

/// Writes `data` to a temp file beside `path` and renames it over `path`, so readers see the
/// old or the new content, never a mix.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&temp)?;
        file.write_all(data)?;
        fs::rename(&temp, path)
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&temp);
        return Err(err).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

/// Reads field 22 (starttime) of /proc/<pid>/stat, and whether the process has exited: a
/// zombie, or a task already exiting (PF_EXITING). A pid namespace's init that was killed
/// stays exiting until every process of its namespace is reaped, which may be up to another
/// parent (the caller's subreaper); it will never run the container again.
pub fn process_start_time(pid: Pid) -> Option<(u64, bool)> {
    const PF_EXITING: u64 = 0x4;
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields resume after the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let flags: u64 = fields.nth(5)?.parse().ok()?;
    let start = fields.nth(12)?.parse().ok()?;
    let exited = state == "Z" || state == "X" || flags & PF_EXITING != 0;
    Some((start, exited))
}

pub fn process_is_alive(pid: Pid, start_time: u64) -> bool {
    if pid.as_raw() <= 0 {
        return false;
    }
    matches!(process_start_time(pid), Some((start, zombie)) if start == start_time && !zombie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        for ok in ["a", "abc-1_2.3+x", "A9"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "a b", "x\0", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn own_start_time_is_read() {
        let me = Pid::this();
        let (start, zombie) = process_start_time(me).expect("own stat");
        assert!(!zombie);
        assert!(process_is_alive(me, start));
        assert!(!process_is_alive(me, start + 1));
    }
}
