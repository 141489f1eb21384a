//! What hutch records about a container (`state.json` in its state directory), its status,
//! and the OCI state the runtime spec's `state` command and hooks see.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

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
/// init process itself (see `ContainerDir::status`).
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
    /// Device and inode of the executable the init runs until it execs the user's program
    /// (hutch's own): while exec.fifo exists, an init still running it is waiting for `start`,
    /// one running anything else was started by a `start` that died before removing the fifo.
    #[serde(default)]
    pub init_exe: Option<(u64, u64)>,
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

    /// The container's cgroup: the recorded one, else (a state written before hutch recorded
    /// it) the one its init is in.
    pub fn cgroup_manager(&self) -> Result<crate::cgroups::Manager> {
        if let Some(m) = &self.cgroup {
            return Ok(m.clone());
        }
        if self.init_pid <= 0 {
            bail!("container {}: no cgroup recorded", self.id);
        }
        crate::cgroups::Manager::from_pid(Pid::from_raw(self.init_pid))
            .with_context(|| format!("container {}: no cgroup recorded", self.id))
    }
}

/// Container ids: letters, digits and `_ + - .`, not starting with `.` (hutch's own entries
/// under `--root` do, and `list` would hide the container), at most 1024 bytes; they become
/// directory names under `--root`, so nothing else may pass.
pub fn validate_id(id: &str) -> Result<()> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if id.is_empty() || id.starts_with('.') || id.len() > 1024 || !ok_chars {
        bail!(
            "invalid container id {id:?}: use letters, digits and _ + - . only, not starting with ."
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        for ok in ["a", "abc-1_2.3+x", "A9"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", "../x", ".hidden", ".tmp", "a/b", "a b", "x\0", "é",
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
