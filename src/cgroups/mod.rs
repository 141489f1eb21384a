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
//! Paths follow runc's cgroupfs driver: an absolute `linux.cgroupsPath` is taken from each
//! hierarchy's root; a relative one (and the default, the container id) is taken from the
//! runtime's own cgroup (on v2: from the parent of its own cgroup, which holds no processes).
//!
//! A [`Manager`] is plain data (serde), recorded in the container's state so later commands
//! find the cgroup again. It also records which directories hutch created, so `destroy` removes
//! the container's own directory and only the parents hutch made for it.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub mod devices;
pub mod resources;
pub mod stats;

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
}

/// A cgroup v1 or v2 mount from mountinfo.
#[derive(Clone, Debug)]
struct CgroupMount {
    v2: bool,
    /// Super options (controllers for v1: `memory`, `name=systemd`...).
    options: Vec<String>,
    mountpoint: PathBuf,
    /// The cgroup path that is the root of this mount.
    root: String,
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split(' ').collect();
        let p: Vec<&str> = post.split(' ').collect();
        if f.len() < 5 || p.len() < 3 {
            continue;
        }
        let v2 = match p[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        out.push(CgroupMount {
            v2,
            options: p[2].split(',').map(str::to_string).collect(),
            mountpoint: PathBuf::from(unescape_mountinfo(f[4])),
            root: unescape_mountinfo(f[3]),
        });
    }
    out
}

/// `/proc/<pid>/cgroup` lines as (controllers, path).
fn parse_proc_cgroup(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

/// Lexically cleans a cgroup path the way runc's CleanPath does: `..` never climbs above the
/// start, so a relative path stays below its parent and an absolute one below the root.
pub fn clean_path(p: &Path) -> PathBuf {
    let absolute = p.is_absolute();
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let mut out = if absolute {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    };
    for part in parts {
        out.push(part);
    }
    out
}

/// `base` joined with the cgroup path `rel` (absolute or relative), staying below `base`.
fn join_below(base: &Path, rel: &str) -> PathBuf {
    let cleaned = clean_path(Path::new(rel));
    let rel = cleaned.strip_prefix("/").unwrap_or(&cleaned);
    if rel.as_os_str().is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

/// Picks the mount for a /proc/self/cgroup entry: the right kind and controllers, preferring
/// one under /sys/fs/cgroup whose root is the hierarchy's root.
fn pick_mount<'a>(mounts: &'a [CgroupMount], controllers: &str) -> Option<&'a CgroupMount> {
    let wanted: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
    let mut candidates: Vec<&CgroupMount> = mounts
        .iter()
        .filter(|m| {
            if wanted.is_empty() {
                m.v2
            } else {
                !m.v2 && wanted.iter().all(|w| m.options.iter().any(|o| o == w))
            }
        })
        .collect();
    candidates.sort_by_key(|m| {
        (
            !m.mountpoint.starts_with(CGROUP_ROOT),
            m.root != "/",
            m.mountpoint.as_os_str().len(),
        )
    });
    candidates.first().copied()
}

/// Where a hierarchy's cgroup `own` (as in /proc/self/cgroup) is, given its mount.
fn dir_of(mount: &CgroupMount, own: &str) -> PathBuf {
    let root = mount.root.trim_end_matches('/');
    let rel = if root.is_empty() {
        own
    } else if own == root {
        "/"
    } else {
        // Outside what is mounted (e.g. a cgroup namespace): the mount root.
        own.strip_prefix(root)
            .filter(|r| r.starts_with('/'))
            .unwrap_or("/")
    };
    join_below(&mount.mountpoint, rel)
}

/// Pure path resolution (testable): the container's directory in every hierarchy.
fn resolve(
    layout: Layout,
    mounts: &[CgroupMount],
    own: &[(String, String)],
    inner: &Path,
) -> Result<Vec<Hierarchy>> {
    let relative = !inner.is_absolute();
    let inner_s = inner.to_string_lossy();
    let mut out: Vec<Hierarchy> = Vec::new();
    for (controllers, own_path) in own {
        let v2 = controllers.is_empty();
        match (layout, v2) {
            (Layout::V1, true) | (Layout::V2, false) => continue,
            _ => {}
        }
        let Some(mount) = pick_mount(mounts, controllers) else {
            continue;
        };
        let base = if !relative {
            mount.mountpoint.clone()
        } else if layout == Layout::V2 {
            // The runtime's own cgroup most likely holds processes; its parent holds none, so
            // controllers can be enabled for a child of the parent (as runc does).
            let own_dir = dir_of(mount, own_path);
            if own_dir == mount.mountpoint {
                own_dir
            } else {
                own_dir.parent().map(Path::to_path_buf).unwrap_or(own_dir)
            }
        } else {
            dir_of(mount, own_path)
        };
        let path = join_below(&base, &inner_s);
        if path == mount.mountpoint {
            bail!("linux.cgroupsPath: {inner_s:?} names the root cgroup");
        }
        if out.iter().any(|h| h.controllers == *controllers) {
            continue;
        }
        out.push(Hierarchy {
            controllers: controllers.clone(),
            mount: mount.mountpoint.clone(),
            path,
        });
    }
    if out.is_empty() {
        bail!("cgroups: no cgroup hierarchy is mounted");
    }
    if matches!(layout, Layout::V1 | Layout::Hybrid) && !out.iter().any(|h| h.has("devices")) {
        // Without the devices controller a container could open any host device.
        bail!("cgroups: the devices controller is not mounted");
    }
    Ok(out)
}

/// The inner cgroup path from linux.cgroupsPath (runc's rules): absolute stays absolute,
/// relative stays relative, empty means the container id (relative).
fn inner_path(cgroups_path: Option<&Path>, id: &str) -> PathBuf {
    match cgroups_path.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => {
            let c = clean_path(p);
            if c.as_os_str().is_empty() || c == Path::new("/") {
                PathBuf::from(id)
            } else {
                c
            }
        }
        None => PathBuf::from(id),
    }
}

pub(crate) fn read_string(path: &Path) -> std::io::Result<String> {
    fs::read_to_string(path).map(|s| s.trim().to_string())
}

/// Writes one value to a cgroup file with a single write(2), as the kernel expects.
pub(crate) fn write_file(path: &Path, value: &str) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
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

fn procs_in(dir: &Path, recursive: bool, out: &mut Vec<i32>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if recursive {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    procs_in(&e.path(), true, out);
                }
            }
        }
    }
}

impl Manager {
    /// The container's cgroup from linux.cgroupsPath (absolute, relative to hutch's own cgroup,
    /// or empty for the container id). Nothing is created yet.
    pub fn new(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<Manager> {
        if systemd {
            bail!("systemd cgroup driver not supported yet (run without --systemd-cgroup)");
        }
        let layout = detect_layout()?;
        let mounts = parse_mountinfo(
            &fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?,
        );
        let own = parse_proc_cgroup(
            &fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?,
        );
        let inner = inner_path(cgroups_path, id);
        let hierarchies = resolve(layout, &mounts, &own, &inner)?;
        Ok(Manager {
            layout,
            hierarchies,
            created: Vec::new(),
        })
    }

    /// The cgroup a running process is in (for containers whose state has no recorded
    /// cgroup). `created` is empty: destroy then removes only the leaf directories.
    pub fn from_pid(pid: Pid) -> Result<Manager> {
        let layout = detect_layout()?;
        let mounts = parse_mountinfo(
            &fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?,
        );
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .with_context(|| format!("reading /proc/{pid}/cgroup"))?;
        let mut hierarchies = Vec::new();
        for (controllers, path) in parse_proc_cgroup(&text) {
            match (layout, controllers.is_empty()) {
                (Layout::V1, true) | (Layout::V2, false) => continue,
                _ => {}
            }
            let Some(mount) = pick_mount(&mounts, &controllers) else {
                continue;
            };
            let dir = dir_of(mount, &path);
            if dir == mount.mountpoint {
                continue;
            }
            hierarchies.push(Hierarchy {
                controllers,
                mount: mount.mountpoint.clone(),
                path: dir,
            });
        }
        if hierarchies.is_empty() {
            bail!("process {pid} is not in a container cgroup");
        }
        Ok(Manager {
            layout,
            hierarchies,
            created: Vec::new(),
        })
    }

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

    /// The directory whose cgroup.procs lists the container's processes.
    fn primary(&self) -> &Hierarchy {
        if self.layout == Layout::V2 {
            if let Some(h) = self.unified() {
                return h;
            }
        }
        for c in ["pids", "freezer", "devices", "memory"] {
            if let Some(h) = self.v1(c) {
                return h;
            }
        }
        &self.hierarchies[0]
    }

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
        let result = self.create_dirs().and_then(|_| {
            let empty = LinuxResources::default();
            let r = resources.unwrap_or(&empty);
            resources::apply(self, r, false)?;
            devices::apply(self, r.devices().as_deref().unwrap_or_default())
        });
        if let Err(err) = result {
            let _ = self.remove_dirs();
            return Err(err);
        }
        Ok(())
    }

    fn create_dirs(&mut self) -> Result<()> {
        let hierarchies = self.hierarchies.clone();
        for h in &hierarchies {
            let rel = h
                .path
                .strip_prefix(&h.mount)
                .unwrap_or(Path::new(""))
                .to_path_buf();
            let mut current = h.mount.clone();
            let comps: Vec<_> = rel.components().collect();
            for (i, comp) in comps.iter().enumerate() {
                if h.is_v2() && self.layout == Layout::V2 {
                    enable_controllers(&current);
                }
                current.push(comp);
                let made = mkdir_retry(&current)
                    .with_context(|| format!("creating cgroup {}", current.display()))?;
                if made {
                    self.created.push(current.clone());
                    if h.has("cpuset") {
                        copy_cpuset_from_parent(&current)?;
                    }
                } else if h.has("cpuset") && i + 1 == comps.len() {
                    copy_cpuset_from_parent(&current)?;
                }
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

    /// Puts `pid` into the container's cgroup in every hierarchy.
    /// The container's cgroup2 directory (pure v2, or the unified tree of a hybrid host), for
    /// clone3(CLONE_INTO_CGROUP).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.hierarchies
            .iter()
            .find(|h| h.is_v2())
            .map(|h| h.path.as_path())
    }

    /// Moves `pid` into the cgroup2 directory only (it already moved itself into v1 ones).
    pub fn join_unified(&self, pid: Pid) -> Result<()> {
        let Some(dir) = self.unified_dir() else {
            return Ok(());
        };
        write_file(&dir.join("cgroup.procs"), &pid.to_string())
            .with_context(|| format!("adding process {pid} to cgroup {}", dir.display()))
    }

    /// The v1 hierarchies' `tasks` files, opened for writing: a process moves itself with "0"
    /// written to each. Opened here, in the host's mount namespace, because the process that
    /// writes may already be in the container's.
    pub fn open_v1_task_files(&self) -> Result<Vec<std::fs::File>> {
        self.hierarchies
            .iter()
            .filter(|h| !h.is_v2())
            .map(|h| {
                let file = h.path.join("tasks");
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&file)
                    .with_context(|| format!("opening {}", file.display()))
            })
            .collect()
    }

    /// Puts `pid` in every hierarchy. Moving another process takes the kernel's cgroup
    /// threadgroup lock for writing (an RCU grace period: ~10 ms here), so create and exec
    /// prefer clone3(CLONE_INTO_CGROUP) plus the process moving itself through `tasks`, and use
    /// this only when the process cannot (a new user namespace lacks the permission).
    pub fn join(&self, pid: Pid) -> Result<()> {
        for h in &self.hierarchies {
            let file = h.path.join("cgroup.procs");
            write_file(&file, &pid.to_string())
                .with_context(|| format!("adding process {pid} to cgroup {}", h.path.display()))?;
        }
        Ok(())
    }

    /// Host pids of every process in the cgroup (and cgroups below it).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = &self.primary().path;
        if !dir.exists() {
            bail!("cgroup {} does not exist", dir.display());
        }
        let mut out = Vec::new();
        procs_in(dir, true, &mut out);
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// True when the cgroup exists and has no process.
    pub fn is_empty(&self) -> bool {
        self.pids().map(|p| p.is_empty()).unwrap_or(true)
    }

    /// Host pids of every process in any hierarchy's directory (and those below). Every
    /// hierarchy counts when cleaning up: a process born in the cgroup2 directory may not have
    /// moved itself into the v1 ones yet (a `create` killed at that moment), so the primary
    /// hierarchy does not list it.
    fn pids_everywhere(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for h in &self.hierarchies {
            procs_in(&h.path, true, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Freezes every process (v1 freezer.state, v2 cgroup.freeze) and waits until frozen.
    pub fn freeze(&self) -> Result<()> {
        match self.layout {
            Layout::V2 => {
                let h = self.unified().context("no cgroup v2 directory")?;
                write_file(&h.path.join("cgroup.freeze"), "1")
                    .with_context(|| format!("freezing {}", h.path.display()))?;
                wait_v2_frozen(&h.path, true)
            }
            _ => {
                let h = self
                    .v1("freezer")
                    .context("the freezer controller is not mounted")?;
                freeze_v1(&h.path)
            }
        }
    }

    pub fn thaw(&self) -> Result<()> {
        match self.layout {
            Layout::V2 => {
                let h = self.unified().context("no cgroup v2 directory")?;
                write_file(&h.path.join("cgroup.freeze"), "0")
                    .with_context(|| format!("thawing {}", h.path.display()))?;
                wait_v2_frozen(&h.path, false)
            }
            _ => {
                let h = self
                    .v1("freezer")
                    .context("the freezer controller is not mounted")?;
                write_file(&h.path.join("freezer.state"), "THAWED")
                    .with_context(|| format!("thawing {}", h.path.display()))
            }
        }
    }

    /// Whether the container is paused.
    pub fn is_frozen(&self) -> Result<bool> {
        match self.layout {
            Layout::V2 => {
                let h = self.unified().context("no cgroup v2 directory")?;
                match read_string(&h.path.join("cgroup.freeze")) {
                    Ok(v) => Ok(v == "1"),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(e).context("reading cgroup.freeze"),
                }
            }
            _ => {
                let Some(h) = self.v1("freezer") else {
                    return Ok(false);
                };
                match read_string(&h.path.join("freezer.state")) {
                    Ok(v) => Ok(v == "FROZEN"),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(e).context("reading freezer.state"),
                }
            }
        }
    }

    /// Signals every process in the cgroup. SIGKILL on v2 uses cgroup.kill when the kernel has
    /// it; otherwise the cgroup is frozen while the pids are listed and signalled, so nothing
    /// forks past the signal, and thawed afterwards (a paused container stays paused, except
    /// for SIGKILL, whose targets must run to die).
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        if self.layout == Layout::V2 && signal == libc::SIGKILL {
            if let Some(h) = self.unified() {
                let file = h.path.join("cgroup.kill");
                if file.exists() {
                    return write_file(&file, "1")
                        .with_context(|| format!("writing {}", file.display()));
                }
            }
        }
        let was_frozen = self.is_frozen().unwrap_or(false);
        let froze = !was_frozen && self.freeze().is_ok();
        let pids = self.pids();
        if let Ok(pids) = &pids {
            for &pid in pids {
                let _ = crate::syscall::process::kill_raw(Pid::from_raw(pid), signal);
            }
        }
        if froze || (was_frozen && signal == libc::SIGKILL) {
            let _ = self.thaw();
        }
        pids.map(|_| ())
    }

    /// `update`: applies new limits to the running container, with runc's semantics (zero
    /// means unchanged; memory and memory+swap written in the order the kernel accepts).
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        resources::apply(self, resources, true)
    }

    /// Whether the container's cgroup still exists.
    pub fn exists(&self) -> bool {
        self.primary().path.exists()
    }

    /// Waits (briefly) for the cgroup to empty, then removes the container's directories and
    /// the parents hutch created, deepest first. Removing a cgroup that is gone is no error.
    pub fn destroy(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !self.is_empty() {
            let pids = self.pids().unwrap_or_default();
            bail!(
                "cgroup {} still has processes {pids:?}",
                self.primary().path.display()
            );
        }
        let first = match self.remove_dirs() {
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

/// The Manager of a container from its recorded state.
/// TODO(lead): once `State` has `pub cgroup: Option<Manager>`, return `state.cgroup.clone()`
/// first and fall back to `from_pid` only for states written before that field existed.
pub fn manager_for(state: &crate::container::state::State) -> Result<Manager> {
    if let Some(m) = &state.cgroup {
        return Ok(m.clone());
    }
    if state.init_pid <= 0 {
        bail!("container {}: no cgroup recorded", state.id);
    }
    Manager::from_pid(Pid::from_raw(state.init_pid))
        .with_context(|| format!("container {}: no cgroup recorded", state.id))
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

/// runc's v1 freeze loop: write FROZEN until the state reads FROZEN, thawing now and then so
/// processes that keep forking let it settle.
fn freeze_v1(dir: &Path) -> Result<()> {
    let file = dir.join("freezer.state");
    for i in 0..1000 {
        if i % 50 == 49 {
            let _ = write_file(&file, "THAWED");
            std::thread::sleep(Duration::from_millis(10));
        }
        write_file(&file, "FROZEN").with_context(|| format!("freezing {}", dir.display()))?;
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_micros(10));
        }
        let state = read_string(&file).with_context(|| format!("reading {}", file.display()))?;
        match state.as_str() {
            "FROZEN" => return Ok(()),
            "FREEZING" => continue,
            other => bail!("unexpected freezer state {other:?} after freezing"),
        }
    }
    let _ = write_file(&file, "THAWED");
    bail!("unable to freeze {}", dir.display())
}

fn wait_v2_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let events = fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
        if events.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "cgroup {} did not become {} within 5s",
                dir.display(),
                if frozen { "frozen" } else { "thawed" }
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_SELF: &str = "\
9:name=systemd:/
5:devices:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    fn paths(hs: &[Hierarchy]) -> Vec<(String, String)> {
        hs.iter()
            .map(|h| (h.controllers.clone(), h.path.display().to_string()))
            .collect()
    }

    #[test]
    fn clean_path_never_climbs() {
        assert_eq!(clean_path(Path::new("/a/../../b")), PathBuf::from("/b"));
        assert_eq!(clean_path(Path::new("../../x/./y")), PathBuf::from("x/y"));
        assert_eq!(clean_path(Path::new("/")), PathBuf::from("/"));
        assert_eq!(clean_path(Path::new("a//b/")), PathBuf::from("a/b"));
    }

    #[test]
    fn inner_path_defaults_to_id() {
        assert_eq!(inner_path(None, "c1"), PathBuf::from("c1"));
        assert_eq!(inner_path(Some(Path::new("")), "c1"), PathBuf::from("c1"));
        assert_eq!(
            inner_path(Some(Path::new("/docker/x")), "c1"),
            PathBuf::from("/docker/x")
        );
        assert_eq!(
            inner_path(Some(Path::new("a/b")), "c1"),
            PathBuf::from("a/b")
        );
    }

    #[test]
    fn hybrid_relative_is_under_own_cgroup() {
        let m = parse_mountinfo(HYBRID_MOUNTINFO);
        let own = parse_proc_cgroup(HYBRID_SELF);
        let hs = resolve(Layout::Hybrid, &m, &own, Path::new("c1")).unwrap();
        let p = paths(&hs);
        assert!(p.contains(&(
            "memory".into(),
            "/sys/fs/cgroup/memory/process_api/abc/c1".into()
        )));
        assert!(p.contains(&("cpu".into(), "/sys/fs/cgroup/cpu/c1".into())));
        assert!(p.contains(&("name=systemd".into(), "/sys/fs/cgroup/systemd/c1".into())));
        assert!(p.contains(&("".into(), "/sys/fs/cgroup/unified/c1".into())));
        // v1 only: no unified entry
        let hs = resolve(Layout::V1, &m, &own, Path::new("/docker/c1")).unwrap();
        let p = paths(&hs);
        assert!(p.contains(&("memory".into(), "/sys/fs/cgroup/memory/docker/c1".into())));
        assert!(!p.iter().any(|(c, _)| c.is_empty()));
    }

    #[test]
    fn v2_relative_is_under_parent_of_own() {
        let m = parse_mountinfo("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        let own = parse_proc_cgroup("0::/user.slice/session-1.scope\n");
        let hs = resolve(Layout::V2, &m, &own, Path::new("c1")).unwrap();
        assert_eq!(
            paths(&hs),
            vec![("".into(), "/sys/fs/cgroup/user.slice/c1".into())]
        );
        let hs = resolve(Layout::V2, &m, &own, Path::new("/a/b")).unwrap();
        assert_eq!(paths(&hs), vec![("".into(), "/sys/fs/cgroup/a/b".into())]);
        let own = parse_proc_cgroup("0::/\n");
        let hs = resolve(Layout::V2, &m, &own, Path::new("c1")).unwrap();
        assert_eq!(paths(&hs), vec![("".into(), "/sys/fs/cgroup/c1".into())]);
        assert!(resolve(Layout::V2, &m, &own, Path::new("/")).is_err());
    }

    #[test]
    fn mount_root_is_taken_into_account() {
        // Inside a container without a cgroup namespace: the hierarchy's root is a sub-cgroup.
        let m = parse_mountinfo(
            "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             36 31 0:33 /docker/abc /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n",
        );
        let own = parse_proc_cgroup("5:devices:/docker/abc\n4:memory:/docker/abc/sub\n");
        let hs = resolve(Layout::V1, &m, &own, Path::new("c1")).unwrap();
        let p = paths(&hs);
        assert!(p.contains(&("memory".into(), "/sys/fs/cgroup/memory/sub/c1".into())));
        assert!(p.contains(&("devices".into(), "/sys/fs/cgroup/devices/c1".into())));
    }

    #[test]
    fn v1_without_devices_is_refused() {
        let m =
            parse_mountinfo("35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
        let own = parse_proc_cgroup("4:memory:/\n");
        assert!(resolve(Layout::V1, &m, &own, Path::new("c1")).is_err());
    }

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
        };
        let s = serde_json::to_string(&m).unwrap();
        assert!(s.contains("\"hybrid\""));
        let back: Manager = serde_json::from_str(&s).unwrap();
        assert_eq!(back, m);
    }
}
