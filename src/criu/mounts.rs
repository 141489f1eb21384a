//! The mounts CRIU must treat as external, and what they are on the host.
//!
//! A container's bind mounts, device nodes, masked files and cgroup binds have sources outside
//! its root that CRIU cannot dump as filesystems of their own. The dump names each by its
//! mount point inside the container (runc's keys, so either runtime restores the other's
//! images); the restore maps every key back to its source on this host.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::rpc::ExtMountMap;
use crate::host_proc;

/// The device nodes every container has, besides the config's `linux.devices`.
const DEFAULT_DEVICES: [&str; 6] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|o| o == "bind" || o == "rbind")
}

fn map(key: impl Into<String>, val: impl Into<String>) -> ExtMountMap {
    ExtMountMap {
        key: key.into(),
        val: val.into(),
    }
}

/// Adds `key` unless an entry has it already (a bind over a device node keeps its source).
fn push_new(out: &mut Vec<ExtMountMap>, entry: ExtMountMap) {
    if !out.iter().any(|e| e.key == entry.key) {
        out.push(entry);
    }
}

fn device_paths(spec: &Spec) -> impl Iterator<Item = String> + '_ {
    let devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    DEFAULT_DEVICES
        .iter()
        .map(|p| p.to_string())
        .chain(devices.iter().map(|d| d.path().display().to_string()))
}

/// The config asks for a cgroup namespace of the container's own (joining one by path counts:
/// its cgroup mounts are as fresh).
fn new_cgroup_ns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default()
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Cgroup)
}

fn masked_paths(spec: &Spec) -> &[String] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default()
}

/// For a dump of the container whose init is `init_pid`: each external mount point, keyed by
/// itself.
pub fn for_dump(spec: &Spec, init_pid: i32) -> Vec<ExtMountMap> {
    let mut out = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if is_bind(m) {
            let dest = m.destination().display().to_string();
            push_new(&mut out, map(dest.clone(), dest));
        }
    }
    // Without a cgroup namespace /sys/fs/cgroup (or each v1 hierarchy under it) is a bind of
    // the container's own cgroup directory: the mount's root in the hierarchy is not "/". (With
    // one, the fresh cgroup mounts look the same from our cgroup namespace, and CRIU dumps
    // them itself.)
    let mountinfo = if new_cgroup_ns(spec) {
        String::new()
    } else {
        fs::read_to_string(format!("/proc/{init_pid}/mountinfo")).unwrap_or_default()
    };
    for mount in host_proc::mounts(&mountinfo) {
        if (mount.fs_type == "cgroup" || mount.fs_type == "cgroup2") && mount.root() != "/" {
            let point = mount.mount_point().display().to_string();
            push_new(&mut out, map(point.clone(), point));
        }
    }
    // Files the init opened before pivot_root (its stdio's /dev/null) are found on these.
    for path in device_paths(spec) {
        push_new(&mut out, map(path.clone(), path));
    }
    for path in masked_paths(spec) {
        let inside = format!("/proc/{init_pid}/root{path}");
        if fs::metadata(&inside).is_ok_and(|md| !md.is_dir()) {
            push_new(&mut out, map(path.clone(), "/dev/null"));
        }
    }
    out
}

/// For a restore from `bundle`, with `criu_pid` already in the container's cgroups: each key
/// the dump can have named, and its source on this host. Keys the images do not use are
/// ignored by CRIU.
pub fn for_restore(spec: &Spec, bundle: &Path, criu_pid: i32) -> Vec<ExtMountMap> {
    let mut out = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if is_bind(m) {
            let source = m.source().as_deref().unwrap_or(Path::new(""));
            let source = if source.is_absolute() {
                source.to_path_buf()
            } else {
                bundle.join(source)
            };
            push_new(
                &mut out,
                map(
                    m.destination().display().to_string(),
                    source.display().to_string(),
                ),
            );
        }
    }
    if !new_cgroup_ns(spec) {
        for m in spec.mounts().as_deref().unwrap_or_default() {
            if m.typ().as_deref() == Some("cgroup") {
                for (key, source) in cgroup_binds(m.destination(), criu_pid) {
                    push_new(&mut out, map(key, source));
                }
            }
        }
    }
    for path in device_paths(spec) {
        push_new(&mut out, map(path.clone(), path));
    }
    // runc's rule, which the dump's check inside the container agrees with for the paths
    // engines mask (/proc and /sys files look the same from the host).
    for path in masked_paths(spec) {
        if fs::metadata(path).is_ok_and(|md| !md.is_dir()) {
            push_new(&mut out, map(path.clone(), "/dev/null"));
        }
    }
    out
}

/// The binds a `cgroup` mount at `dest` is made of (see `rootfs::cgroupfs`), for a process
/// in the cgroups `pid` is in: on a v2 host one bind of its directory; otherwise one per
/// hierarchy, under the hierarchy's name.
fn cgroup_binds(dest: &Path, pid: i32) -> Vec<(String, String)> {
    let Ok(own) = host_proc::cgroup_file(Some(nix::unistd::Pid::from_raw(pid))) else {
        return Vec::new();
    };
    let members: Vec<_> = host_proc::memberships(&own).collect();
    let v2 = crate::syscall::fs::path_fs_magic(Path::new(CGROUP_ROOT))
        .is_ok_and(|m| m == libc::CGROUP2_SUPER_MAGIC);
    if v2 {
        return members
            .iter()
            .filter(|m| m.controllers.is_empty())
            .map(|m| {
                let host = Path::new(CGROUP_ROOT).join(m.path.trim_start_matches('/'));
                (dest.display().to_string(), host.display().to_string())
            })
            .collect();
    }
    let mountinfo = host_proc::own_mountinfo().unwrap_or_default();
    crate::rootfs::hierarchies(&members, &crate::rootfs::cgroup_mounts(&mountinfo))
        .into_iter()
        .map(|h| {
            let key: PathBuf = dest.join(&h.name);
            (key.display().to_string(), h.host_dir.display().to_string())
        })
        .collect()
}
