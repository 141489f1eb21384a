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
    nix::mount::mount(
        Some(source),
        &fd_path(target.as_fd()),
        Some(typ),
        flags,
        data,
    )?;
    Ok(())
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
