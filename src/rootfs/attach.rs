//! Mounting onto a target already resolved inside the rootfs: the container as every kind of
//! mount sees it ([`MountCtx`]), mount(2) through the host's `/proc/self/fd`, attaching a
//! detached tree, and propagation changes. Nothing here looks a destination up by name.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::MsFlags;

use super::options::MountOptions;
use crate::syscall::fs::{self as sysfs, MountAttr};

/// What the mounting code needs to know about the container besides the mount itself.
pub struct MountCtx<'a> {
    pub root: BorrowedFd<'a>,
    pub bundle: &'a Path,
    pub new_user_ns: bool,
    pub new_net_ns: bool,
    pub new_cgroup_ns: bool,
    /// Idmapped trees the parent made for mounts (by index in `mounts`), see
    /// `mount::premake_bind_trees`.
    pub premade: &'a [(usize, OwnedFd)],
    /// `linux.mountLabel`, only where SELinux is enabled (elsewhere it is ignored, as runc
    /// does).
    pub mount_label: Option<&'a str>,
}

/// The path of an fd in the host's procfs, for mount(2) calls that must hit exactly that inode.
pub fn fd_path(fd: BorrowedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// mount(2) of a filesystem onto an already-resolved target.
pub fn mount_fs(
    target: &OwnedFd,
    source: &Path,
    typ: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    let mounted = nix::mount::mount(
        Some(source),
        &fd_path(target.as_fd()),
        Some(typ),
        flags,
        data,
    );
    match mounted {
        Err(nix::errno::Errno::EBUSY) if flags.contains(MsFlags::MS_RDONLY) => {
            read_only_mount(target, typ, flags, data)
        }
        other => Ok(other?),
    }
}

/// A filesystem with one superblock per namespace (cgroup2 in a cgroup namespace) that is
/// already mounted read-write elsewhere: asking mount(2) for a read-only superblock is a
/// reconfiguration an unprivileged user namespace may not make (EBUSY). The mount itself is
/// made read-only instead, which is all the container needs.
fn read_only_mount(target: &OwnedFd, typ: &str, flags: MsFlags, data: Option<&str>) -> Result<()> {
    let fs = sysfs::FsContext::open(typ).with_context(|| format!("fsopen({typ})"))?;
    for option in data
        .into_iter()
        .flat_map(|d| d.split(','))
        .filter(|o| !o.is_empty())
    {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        fs.set_string(key, value)
            .with_context(|| format!("{typ} option {option}"))?;
    }
    let attrs = [
        (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NOATIME, libc::MOUNT_ATTR_NOATIME),
        (MsFlags::MS_STRICTATIME, libc::MOUNT_ATTR_STRICTATIME),
        (MsFlags::MS_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
    ];
    let attr_flags = attrs
        .iter()
        .filter(|(ms, _)| flags.contains(*ms))
        .fold(0u64, |acc, (_, attr)| acc | *attr);
    let mount = fs
        .mount(attr_flags)
        .with_context(|| format!("fsmount({typ})"))?;
    sysfs::move_mount_fd(mount.as_fd(), target.as_fd()).context("move_mount")
}

/// Sets the options' attributes on a detached tree, then attaches it onto `target`.
pub fn attach_tree(tree: &OwnedFd, target: &OwnedFd, opts: &MountOptions) -> Result<()> {
    let attr = opts.bind_attr();
    if !attr.is_empty() {
        sysfs::mount_setattr_fd(tree.as_fd(), false, &attr).context("mount_setattr")?;
    }
    if !opts.rec_attr.is_empty() {
        sysfs::mount_setattr_fd(tree.as_fd(), true, &opts.rec_attr)
            .context("mount_setattr (recursive)")?;
    }
    sysfs::move_mount_fd(tree.as_fd(), target.as_fd()).context("move_mount")?;
    Ok(())
}

/// Propagation changes on the mount whose root `fd` is.
pub fn apply_propagation_fd(fd: &OwnedFd, propagation: &[MsFlags]) -> Result<()> {
    for p in propagation {
        let attr = MountAttr {
            propagation: (*p & !MsFlags::MS_REC).bits(),
            ..Default::default()
        };
        sysfs::mount_setattr_fd(fd.as_fd(), p.contains(MsFlags::MS_REC), &attr)
            .with_context(|| format!("set propagation {p:?}"))?;
    }
    Ok(())
}
