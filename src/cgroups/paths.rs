//! Where a container's cgroup is: the host's cgroup mounts (mountinfo), the runtime's own
//! cgroup (/proc/self/cgroup) and `linux.cgroupsPath`, resolved to one directory a hierarchy.
//!
//! Paths follow runc's cgroupfs driver: an absolute `linux.cgroupsPath` is taken from each
//! hierarchy's root; a relative one (and the default, the container id) is taken from the
//! runtime's own cgroup (on v2: from the parent of its own cgroup, which holds no processes).

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};
use nix::unistd::Pid;

use super::{detect_layout, Hierarchy, Layout, Manager, CGROUP_ROOT};
use crate::host_proc;

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

/// The cgroup and cgroup2 mounts of a mountinfo text.
fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    host_proc::mounts(mountinfo)
        .filter_map(|m| {
            let v2 = match m.fs_type {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            Some(CgroupMount {
                v2,
                options: m.super_options().map(str::to_string).collect(),
                mountpoint: m.mount_point(),
                root: m.root().into_owned(),
            })
        })
        .collect()
}

/// `/proc/<pid>/cgroup` lines as (controllers, path).
fn memberships(text: &str) -> Vec<(String, String)> {
    host_proc::memberships(text)
        .map(|m| (m.controllers.to_string(), m.path.to_string()))
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

impl Manager {
    /// The container's cgroup from linux.cgroupsPath (absolute, relative to hutch's own cgroup,
    /// or empty for the container id). Nothing is created yet.
    pub fn new(
        cgroups_path: Option<&Path>,
        id: &str,
        systemd: bool,
        rootless: bool,
    ) -> Result<Manager> {
        let layout = detect_layout()?;
        let mounts = cgroup_mounts(&host_proc::own_mountinfo()?);
        let own = memberships(&host_proc::cgroup_file(None)?);
        let (inner, unit) = if systemd {
            let path = cgroups_path.map(|p| p.to_string_lossy());
            let unit = super::systemd::unit::unit_for(path.as_deref(), id, rootless)?;
            // The unit's cgroup is the same path from the root of every hierarchy.
            let (unit, cgroup) = super::systemd::SystemdUnit::new(unit, rootless)?;
            (cgroup, Some(unit))
        } else {
            (inner_path(cgroups_path, id), None)
        };
        let hierarchies = resolve(layout, &mounts, &own, &inner)?;
        Ok(Manager {
            layout,
            hierarchies,
            created: Vec::new(),
            rootless,
            systemd: unit,
        })
    }

    /// The cgroup a running process is in (for containers whose state has no recorded
    /// cgroup). `created` is empty: destroy then removes only the leaf directories.
    pub fn from_pid(pid: Pid) -> Result<Manager> {
        let layout = detect_layout()?;
        let mounts = cgroup_mounts(&host_proc::own_mountinfo()?);
        let text = host_proc::cgroup_file(Some(pid))?;
        let mut hierarchies = Vec::new();
        for (controllers, path) in memberships(&text) {
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
            rootless: false,
            systemd: None,
        })
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
        let m = cgroup_mounts(HYBRID_MOUNTINFO);
        let own = memberships(HYBRID_SELF);
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
        let m = cgroup_mounts("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        let own = memberships("0::/user.slice/session-1.scope\n");
        let hs = resolve(Layout::V2, &m, &own, Path::new("c1")).unwrap();
        assert_eq!(
            paths(&hs),
            vec![("".into(), "/sys/fs/cgroup/user.slice/c1".into())]
        );
        let hs = resolve(Layout::V2, &m, &own, Path::new("/a/b")).unwrap();
        assert_eq!(paths(&hs), vec![("".into(), "/sys/fs/cgroup/a/b".into())]);
        let own = memberships("0::/\n");
        let hs = resolve(Layout::V2, &m, &own, Path::new("c1")).unwrap();
        assert_eq!(paths(&hs), vec![("".into(), "/sys/fs/cgroup/c1".into())]);
        assert!(resolve(Layout::V2, &m, &own, Path::new("/")).is_err());
    }

    #[test]
    fn mount_root_is_taken_into_account() {
        // Inside a container without a cgroup namespace: the hierarchy's root is a sub-cgroup.
        let m = cgroup_mounts(
            "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             36 31 0:33 /docker/abc /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n",
        );
        let own = memberships("5:devices:/docker/abc\n4:memory:/docker/abc/sub\n");
        let hs = resolve(Layout::V1, &m, &own, Path::new("c1")).unwrap();
        let p = paths(&hs);
        assert!(p.contains(&("memory".into(), "/sys/fs/cgroup/memory/sub/c1".into())));
        assert!(p.contains(&("devices".into(), "/sys/fs/cgroup/devices/c1".into())));
    }

    #[test]
    fn v1_without_devices_is_refused() {
        let m = cgroup_mounts("35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
        let own = memberships("4:memory:/\n");
        assert!(resolve(Layout::V1, &m, &own, Path::new("c1")).is_err());
    }
}
