//! The `cgroup` mount type: what the container sees at /sys/fs/cgroup.
//!
//! On a cgroup v2 host that is cgroup2 itself (with a cgroup namespace) or a bind of the
//! process's own cgroup directory. On a v1 or hybrid host it is a tmpfs holding one entry per
//! hierarchy the process belongs to, each a fresh cgroup mount (with a cgroup namespace) or a
//! bind of the process's directory in that hierarchy, as runc lays it out.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::symlinkat;

use super::attach::{attach_tree, mount_fs, MountCtx};
use super::options::MountOptions;
use super::resolve::{mkdir_all, open_in_root};
use crate::host_proc::{self, Membership};
use crate::syscall::fs::{self as sysfs, MountAttr};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A cgroup filesystem mount of the host, from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCgroupMount {
    pub root: String,
    pub mountpoint: PathBuf,
    pub fstype: String,
    pub super_opts: Vec<String>,
}

/// The cgroup and cgroup2 mounts of a mountinfo text.
pub fn cgroup_mounts(mountinfo: &str) -> Vec<HostCgroupMount> {
    host_proc::mounts(mountinfo)
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .map(|m| HostCgroupMount {
            root: m.root().into_owned(),
            mountpoint: m.mount_point(),
            fstype: m.fs_type.to_string(),
            super_opts: m.super_options().map(String::from).collect(),
        })
        .collect()
}

impl HostCgroupMount {
    fn serves(&self, m: &Membership) -> bool {
        if m.controllers.is_empty() {
            return self.fstype == "cgroup2";
        }
        self.fstype == "cgroup"
            && m.controllers
                .split(',')
                .all(|c| self.super_opts.iter().any(|o| o == c))
    }

    /// The process's directory in this hierarchy, as seen on the host.
    fn host_dir(&self, m: &Membership) -> PathBuf {
        let rel = Path::new(m.path)
            .strip_prefix(&self.root)
            .unwrap_or(Path::new(m.path));
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        self.mountpoint.join(rel)
    }
}

/// One directory under the container's cgroup tmpfs, and what fills it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub name: String,
    pub fstype: String,
    pub controllers: String,
    pub host_dir: PathBuf,
}

/// The hierarchies mounted under /sys/fs/cgroup on the host that this process belongs to.
pub fn hierarchies(members: &[Membership], mounts: &[HostCgroupMount]) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for m in members {
        let Some(host) = mounts.iter().find(|h| {
            h.mountpoint.starts_with(CGROUP_ROOT)
                && h.mountpoint != Path::new(CGROUP_ROOT)
                && h.serves(m)
        }) else {
            continue;
        };
        let Some(name) = host.mountpoint.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if out.iter().any(|h| h.name == name) {
            continue;
        }
        out.push(Hierarchy {
            name: name.to_string(),
            fstype: host.fstype.clone(),
            controllers: m.controllers.to_string(),
            host_dir: host.host_dir(m),
        });
    }
    out
}

pub fn mount_cgroup(ctx: &MountCtx, dest: &Path, opts: &MountOptions) -> Result<()> {
    let magic = sysfs::path_fs_magic(Path::new(CGROUP_ROOT)).unwrap_or(0);
    let own_cgroup = host_proc::cgroup_file(None)?;
    let members: Vec<Membership> = host_proc::memberships(&own_cgroup).collect();
    if magic == libc::CGROUP2_SUPER_MAGIC {
        cgroup_v2(ctx, dest, opts, &members)
    } else {
        cgroup_v1(ctx, dest, opts, &members)
    }
}

fn fs_flags(opts: &MountOptions) -> MsFlags {
    opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
}

fn cgroup_v2(
    ctx: &MountCtx,
    dest: &Path,
    opts: &MountOptions,
    members: &[Membership],
) -> Result<()> {
    let target = mkdir_all(ctx.root, dest, Mode::from_bits_truncate(0o755))?;
    if ctx.new_cgroup_ns {
        // No bind fallback here: inside the cgroup namespace /proc/self/cgroup says "/", and
        // binding that would expose the host's whole hierarchy.
        return mount_fs(
            &target,
            Path::new("cgroup2"),
            "cgroup2",
            fs_flags(opts),
            opts.data().as_deref(),
        );
    }
    let own = members
        .iter()
        .find(|m| m.controllers.is_empty())
        .map_or("/", |m| m.path);
    let host = Path::new(CGROUP_ROOT).join(own.trim_start_matches('/'));
    bind_dir(&host, &target, opts)
}

fn bind_dir(host: &Path, target: &OwnedFd, opts: &MountOptions) -> Result<()> {
    let tree = sysfs::open_tree(
        sysfs::cwd_fd(),
        host,
        libc::OPEN_TREE_CLONE | libc::AT_RECURSIVE as u32,
    )
    .with_context(|| format!("open_tree {}", host.display()))?;
    let mut bind_opts = opts.clone();
    bind_opts.flags = fs_flags(opts);
    attach_tree(&tree, target, &bind_opts)
}

fn cgroup_v1(
    ctx: &MountCtx,
    dest: &Path,
    opts: &MountOptions,
    members: &[Membership],
) -> Result<()> {
    let hier = hierarchies(members, &cgroup_mounts(&host_proc::own_mountinfo()?));

    let target = mkdir_all(ctx.root, dest, Mode::from_bits_truncate(0o755))?;
    let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs(
        &target,
        Path::new("tmpfs"),
        "tmpfs",
        tmpfs_flags,
        Some("mode=755"),
    )
    .context("tmpfs")?;
    let dir = open_in_root(ctx.root, dest, OFlag::O_PATH | OFlag::O_DIRECTORY)?;

    for h in &hier {
        hierarchy(ctx, &dir, h, opts).with_context(|| format!("cgroup hierarchy {}", h.name))?;
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        let ro = MountAttr {
            set: libc::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        sysfs::mount_setattr_fd(dir.as_fd(), false, &ro).context("make cgroup tmpfs read-only")?;
    }
    Ok(())
}

fn hierarchy(ctx: &MountCtx, dir: &OwnedFd, h: &Hierarchy, opts: &MountOptions) -> Result<()> {
    match mkdirat(dir, h.name.as_str(), Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = nix::fcntl::openat(
        dir,
        h.name.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    if ctx.new_cgroup_ns {
        let data = if h.fstype == "cgroup2" {
            opts.data()
        } else {
            Some(h.controllers.clone())
        };
        mount_fs(
            &sub,
            Path::new("cgroup"),
            &h.fstype,
            fs_flags(opts),
            data.as_deref(),
        )?;
    } else {
        bind_dir(&h.host_dir, &sub, opts)?;
    }
    // Co-mounted controllers (cpu,cpuacct) are also reachable by each name, as on the host.
    if h.name.contains(',') {
        for part in h.name.split(',') {
            match symlinkat(h.name.as_str(), dir, part) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(anyhow::Error::from(e).context(format!("symlink {part}"))),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CGROUP: &str = "12:cpu,cpuacct:/user.slice\n1:name=systemd:/user.slice/session-1.scope\n0::/user.slice/session-1.scope\n";
    const MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
28 26 0:26 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
35 26 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn hybrid_layout() {
        let members: Vec<Membership> = host_proc::memberships(CGROUP).collect();
        let h = hierarchies(&members, &cgroup_mounts(MOUNTINFO));
        let names: Vec<&str> = h.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["cpu,cpuacct", "systemd", "unified"]);
        assert_eq!(
            h[0].host_dir,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/user.slice")
        );
        assert_eq!(h[1].controllers, "name=systemd");
        assert_eq!(h[2].fstype, "cgroup2");
        assert_eq!(
            h[2].host_dir,
            PathBuf::from("/sys/fs/cgroup/unified/user.slice/session-1.scope")
        );
    }
}
