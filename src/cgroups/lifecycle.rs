//! Making and removing a container's cgroup directories: the plan recorded before `create`
//! makes them, the directories themselves (with the v2 controllers enabled above them and the
//! v1 cpuset filled in), the limits applied, and `destroy`.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::{devices, read_string, resources, rootless, write_file, Layout, Manager};

impl Manager {
    /// This cgroup with `created` listing every directory that does not exist yet: what
    /// `create_and_apply` is about to make, recorded before it does, so that whatever a killed
    /// `create` made can be removed.
    pub fn planned(&self) -> Manager {
        let mut plan = self.clone();
        plan.created.clear();
        for h in &self.hierarchies {
            let rel = h.path.strip_prefix(&h.mount).unwrap_or(Path::new(""));
            let mut current = h.mount.clone();
            for comp in rel.components() {
                current.push(comp);
                if !current.exists() {
                    plan.created.push(current.clone());
                }
            }
        }
        plan
    }

    /// Creates the cgroup directories (recording which ones hutch made) and applies the
    /// resources and device rules. On failure, whatever was created is removed again.
    pub fn create_and_apply(&mut self, resources: Option<&LinuxResources>) -> Result<()> {
        if self.systemd.is_some() {
            // systemd makes the unit's cgroup once it knows the init (`start_unit`).
            return Ok(());
        }
        let result = self.create_dirs().and_then(|_| self.apply_all(resources));
        if let Err(err) = result {
            let _ = self.remove_dirs();
            return Err(err);
        }
        Ok(())
    }

    /// After systemd started the unit with `pid` in it: the directories it did not make (v1
    /// controllers it does not manage), `pid` in each, and every limit in the files.
    pub(super) fn create_and_apply_after_unit(
        &mut self,
        pid: Pid,
        resources: Option<&LinuxResources>,
    ) -> Result<()> {
        self.create_dirs()?;
        self.join(pid)?;
        self.apply_all(resources)
    }

    fn apply_all(&self, resources: Option<&LinuxResources>) -> Result<()> {
        if self.rootless && self.hierarchies.is_empty() {
            // Every field was warned about; there is nothing left to write to.
            let _ = self.enforceable(resources.unwrap_or(&LinuxResources::default()));
            return Ok(());
        }
        let empty = LinuxResources::default();
        let r = self.enforceable(resources.unwrap_or(&empty));
        resources::apply(self, &r, false)?;
        if self.rootless {
            return Ok(());
        }
        devices::apply(self, r.devices().as_deref().unwrap_or_default())
    }

    fn create_dirs(&mut self) -> Result<()> {
        let mut index = 0;
        while index < self.hierarchies.len() {
            match self.create_hierarchy_dirs(index) {
                Ok(()) => index += 1,
                Err(err) if self.rootless && rootless::is_permission_error(&err) => {
                    self.leave_out(index, &err)
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    fn create_hierarchy_dirs(&mut self, index: usize) -> Result<()> {
        let h = self.hierarchies[index].clone();
        let rel = h.path.strip_prefix(&h.mount).unwrap_or(Path::new(""));
        let mut current = h.mount.clone();
        for comp in rel.components() {
            // Under systemd the unit's controllers are systemd's to enable (Delegate=yes).
            if h.is_v2() && self.layout == Layout::V2 && self.systemd.is_none() {
                enable_controllers(&current);
            }
            current.push(comp);
            let made = mkdir_retry(&current)
                .with_context(|| format!("creating cgroup {}", current.display()))?;
            if made {
                self.created.push(current.clone());
            }
            // Every level, made now or found: a parent another runtime (or a concurrent
            // hutch) has made but not filled in yet would leave this one empty too, and
            // joining would fail with ENOSPC.
            if h.has("cpuset") {
                copy_cpuset_from_parent(&current)?;
            }
        }
        Ok(())
    }

    /// Removes the container's directories and the parents hutch created, deepest first.
    fn remove_dirs(&self) -> Result<()> {
        let mut first_err = None;
        for h in &self.hierarchies {
            if let Err(e) = remove_cgroup_tree(&h.path) {
                first_err.get_or_insert_with(|| {
                    anyhow::Error::from(e).context(format!("removing cgroup {}", h.path.display()))
                });
            }
        }
        let mut parents: Vec<&PathBuf> = self
            .created
            .iter()
            .filter(|p| !self.hierarchies.iter().any(|h| &h.path == *p))
            .collect();
        parents.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in parents {
            // A parent shared with another container is not empty: leave it.
            let _ = fs::remove_dir(p);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits (briefly) for the cgroup to empty, then removes the container's directories and
    /// the parents hutch created, deepest first. Removing a cgroup that is gone is no error.
    pub fn destroy(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let (false, Some(primary)) = (self.is_empty(), self.primary()) {
            let pids = self.pids().unwrap_or_default();
            bail!(
                "cgroup {} still has processes {pids:?}",
                primary.path.display()
            );
        }
        // The unit goes first: systemd removes its cgroup, and would make it again for a
        // unit left loaded.
        let stopped = self.stop_unit();
        let first = match self.remove_dirs().and(stopped) {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        // A directory still busy may hold a process the primary hierarchy does not list: stop
        // the stragglers and try once more.
        let stragglers = self.pids_everywhere();
        if stragglers.is_empty() {
            return Err(first);
        }
        for &pid in &stragglers {
            let _ = crate::syscall::process::kill_raw(Pid::from_raw(pid), libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.pids_everywhere().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.remove_dirs()
            .with_context(|| format!("processes {stragglers:?} were left in the cgroup"))
    }
}

/// Removes a cgroup directory and any child cgroups below it (deepest first). Cgroup
/// directories only hold kernel files, which rmdir ignores.
fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path())?;
            }
        }
    }
    // A cgroup whose last process just exited may still be busy for a moment.
    let mut delay = Duration::from_millis(10);
    for attempt in 0..6 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 5 => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// mkdir that reports whether it created the directory; retries when a parent vanished under
/// it (another container's delete removing a shared parent at the same moment).
fn mkdir_retry(dir: &Path) -> std::io::Result<bool> {
    let mut tries = 0;
    loop {
        match fs::DirBuilder::new().mode(0o755).create(dir) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(e) if e.kind() == ErrorKind::NotFound && tries < 5 => {
                tries += 1;
                if let Some(parent) = dir.parent() {
                    let _ = fs::DirBuilder::new().mode(0o755).create(parent);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Enables every available controller for the children of `dir` (v2), one at a time when
/// the whole set is refused; controllers that cannot be enabled show up later as missing
/// files, naming the field that needed them.
fn enable_controllers(dir: &Path) {
    let Ok(avail) = read_string(&dir.join("cgroup.controllers")) else {
        return;
    };
    let enabled = read_string(&dir.join("cgroup.subtree_control")).unwrap_or_default();
    let missing: Vec<&str> = avail
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .collect();
    if missing.is_empty() {
        return;
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    let file = dir.join("cgroup.subtree_control");
    if write_file(&file, &all.join(" ")).is_err() {
        for c in all {
            let _ = write_file(&file, &c);
        }
    }
}

/// A new v1 cpuset cgroup starts with empty cpus/mems, and no process may join it until they
/// are set: copy them from the parent.
fn copy_cpuset_from_parent(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = read_string(&dir.join(f)).unwrap_or_default();
        if !cur.is_empty() {
            continue;
        }
        let val = read_string(&parent.join(f))
            .with_context(|| format!("reading {f} of {}", parent.display()))?;
        write_file(&dir.join(f), &val)
            .with_context(|| format!("writing {f} of {}", dir.display()))?;
    }
    Ok(())
}
