//! Control groups: placing a container in its cgroup, enforcing `linux.resources`, and the
//! operations later commands need (pause/resume, update, ps, events, kill --all, delete).
//!
//! Three host layouts are handled, detected at run time ([`detect_layout`]):
//! - **v2**: one cgroup2 tree at /sys/fs/cgroup; controllers are enabled in the ancestors'
//!   `cgroup.subtree_control`; device rules are an eBPF program ([`devices`]).
//! - **v1**: one hierarchy per controller (or co-mounted group) under /sys/fs/cgroup/<ctrl>.
//! - **hybrid**: v1 hierarchies plus a cgroup2 tree at /sys/fs/cgroup/unified. The container
//!   joins every v1 hierarchy and the unified one, as runc does; limits go to the v1
//!   controllers (hugetlb falls back to the unified tree when only that has it).
//!
//! A [`Manager`] is plain data (serde), recorded in the container's state so later commands
//! find the cgroup again. It also records which directories hutch created, so `destroy` removes
//! the container's own directory and only the parents hutch made for it.
//!
//! The rooms: [`paths`] finds the directories, [`lifecycle`] makes and removes them, [`procs`]
//! puts processes in and lists and signals them, [`freezer`] pauses them, [`resources`] and
//! [`devices`] write the limits (each split into v1 and v2), [`stats`] reads them back.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub mod devices;
mod freezer;
mod lifecycle;
mod paths;
mod procs;
pub mod resources;
mod rootless;
pub mod stats;
pub mod systemd;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// How the host mounts cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    V1,
    V2,
    Hybrid,
}

fn statfs_type(path: &str) -> Option<i64> {
    nix::sys::statfs::statfs(path)
        .ok()
        .map(|fs| fs.filesystem_type().0)
}

/// The host's cgroup layout, from the file system types at /sys/fs/cgroup.
pub fn detect_layout() -> Result<Layout> {
    match statfs_type(CGROUP_ROOT) {
        None => bail!("cgroups: {CGROUP_ROOT} is not mounted"),
        Some(CGROUP2_SUPER_MAGIC) => Ok(Layout::V2),
        Some(TMPFS_MAGIC) | Some(_) => {
            if statfs_type("/sys/fs/cgroup/unified") == Some(CGROUP2_SUPER_MAGIC) {
                Ok(Layout::Hybrid)
            } else {
                Ok(Layout::V1)
            }
        }
    }
}

/// One hierarchy the container is in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// The controllers as /proc/self/cgroup names them (`memory`, `cpu,cpuacct`,
    /// `name=systemd`); empty for the cgroup2 tree.
    pub controllers: String,
    /// Where the hierarchy is mounted.
    pub mount: PathBuf,
    /// The container's cgroup directory.
    pub path: PathBuf,
}

impl Hierarchy {
    pub fn is_v2(&self) -> bool {
        self.controllers.is_empty()
    }
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.split(',').any(|c| c == controller)
    }
}

/// A container's cgroup, in every hierarchy. Stored in the container's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manager {
    pub layout: Layout,
    pub hierarchies: Vec<Hierarchy>,
    /// Directories hutch created (parents before children), for `destroy`.
    #[serde(default)]
    pub created: Vec<PathBuf>,
    /// Rootless: hierarchies the caller may not write were left out, and resources that would
    /// need them skipped with a warning (see [`rootless`]).
    #[serde(default)]
    pub rootless: bool,
    /// The systemd unit that owns the cgroup (`--systemd-cgroup`), see [`systemd`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::SystemdUnit>,
}

pub(crate) fn read_string(path: &Path) -> std::io::Result<String> {
    fs::read_to_string(path).map(|s| s.trim().to_string())
}

/// Writes one value to a cgroup file with a single write(2), as the kernel expects.
pub(crate) fn write_file(path: &Path, value: &str) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

impl Manager {
    /// The v2 (unified) tree, if the container is in one.
    pub fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.is_v2())
    }

    /// The v1 hierarchy holding `controller` (`memory`, `name=systemd`...).
    pub fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| !h.is_v2() && h.has(controller))
    }

    /// The directory holding `controller`'s files: the v2 tree on v2, else the v1 hierarchy.
    pub fn controller_dir(&self, controller: &str) -> Option<&Path> {
        match self.layout {
            Layout::V2 => self.unified().map(|h| h.path.as_path()),
            _ => self.v1(controller).map(|h| h.path.as_path()),
        }
    }

    /// The container's cgroup2 directory (pure v2, or the unified tree of a hybrid host), for
    /// clone3(CLONE_INTO_CGROUP).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified().map(|h| h.path.as_path())
    }

    /// The directory whose cgroup.procs lists the container's processes; none when a rootless
    /// container was left out of every hierarchy.
    fn primary(&self) -> Option<&Hierarchy> {
        if self.layout == Layout::V2 {
            if let Some(h) = self.unified() {
                return Some(h);
            }
        }
        ["pids", "freezer", "devices", "memory"]
            .iter()
            .find_map(|c| self.v1(c))
            .or(self.hierarchies.first())
    }

    /// Whether the container's cgroup still exists.
    pub fn exists(&self) -> bool {
        self.primary().is_some_and(|h| h.path.exists())
    }

    /// `update`: applies new limits to the running container, with runc's semantics (zero
    /// means unchanged; memory and memory+swap written in the order the kernel accepts).
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        self.update_unit(resources)?;
        resources::apply(self, resources, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_round_trips_through_json() {
        let m = Manager {
            layout: Layout::Hybrid,
            hierarchies: vec![Hierarchy {
                controllers: "memory".into(),
                mount: "/sys/fs/cgroup/memory".into(),
                path: "/sys/fs/cgroup/memory/x".into(),
            }],
            created: vec!["/sys/fs/cgroup/memory/x".into()],
            rootless: false,
            systemd: None,
        };
        let s = serde_json::to_string(&m).unwrap();
        assert!(s.contains("\"hybrid\""));
        let back: Manager = serde_json::from_str(&s).unwrap();
        assert_eq!(back, m);
    }
}
