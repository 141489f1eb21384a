//! `linux.readonlyPaths` and `linux.maskedPaths`, applied after pivot_root.
//!
//! Targets are pinned by fd (resolved in the new root) and mounts land on those fds. Masked files
//! get a bind of a `/dev/null` that was checked to be the real 1:3 character device
//! (CVE-2025-31133); masked directories get one shared, empty, read-only tmpfs.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::fstat;

use super::resolve::{is_dir, open_in_root};
use crate::syscall::fs::{self as sysfs, FsContext, MountAttr};

/// Resolves a path for masking; `None` when it does not exist (the spec says skip it).
fn target(root: BorrowedFd, path: &Path) -> Result<Option<OwnedFd>> {
    match open_in_root(root, path, OFlag::O_PATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `linux.readonlyPaths`: each path bound onto itself, recursively read-only.
pub fn readonly_paths(root: BorrowedFd, paths: &[String]) -> Result<()> {
    for p in paths {
        readonly_path(root, Path::new(p)).with_context(|| format!("readonlyPaths {p}"))?;
    }
    Ok(())
}

fn readonly_path(root: BorrowedFd, path: &Path) -> Result<()> {
    let Some(fd) = target(root, path)? else {
        return Ok(());
    };
    let tree = sysfs::clone_tree(fd.as_fd(), true).context("open_tree")?;
    let ro = MountAttr {
        set: libc::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    sysfs::mount_setattr_fd(tree.as_fd(), true, &ro).context("mount_setattr")?;
    sysfs::move_mount_fd(tree.as_fd(), fd.as_fd()).context("move_mount")?;
    Ok(())
}

/// Source mounts for masking, created on first use.
#[derive(Default)]
struct Masks {
    dev_null: Option<OwnedFd>,
    empty_dir: Option<OwnedFd>,
}

impl Masks {
    fn dev_null(&mut self, root: BorrowedFd) -> Result<BorrowedFd<'_>> {
        if self.dev_null.is_none() {
            self.dev_null = Some(verified_dev_null(root)?);
        }
        self.dev_null
            .as_ref()
            .map(|f| f.as_fd())
            .context("/dev/null")
    }

    /// Mounts the shared empty tmpfs on `target`. The first use attaches the fsmount'ed tmpfs
    /// itself; later ones clone it, which needs it attached.
    fn mask_dir(&mut self, target: &OwnedFd, label: Option<&str>) -> Result<()> {
        if let Some(attached) = &self.empty_dir {
            let tree = sysfs::clone_tree(attached.as_fd(), false).context("open_tree")?;
            return sysfs::move_mount_fd(tree.as_fd(), target.as_fd()).context("move_mount");
        }
        let ctx = FsContext::open("tmpfs").context("fsopen tmpfs")?;
        // Nothing will ever be written: keep it as small as tmpfs allows.
        ctx.set_string("source", "tmpfs").context("tmpfs source")?;
        ctx.set_string("size", "4k").context("tmpfs size")?;
        ctx.set_string("mode", "0755").context("tmpfs mode")?;
        if let Some(label) = label {
            ctx.set_string("context", label)
                .context("linux.mountLabel: tmpfs context")?;
        }
        let flags = libc::MOUNT_ATTR_RDONLY
            | libc::MOUNT_ATTR_NOSUID
            | libc::MOUNT_ATTR_NODEV
            | libc::MOUNT_ATTR_NOEXEC;
        let tmpfs = ctx.mount(flags).context("fsmount tmpfs")?;
        sysfs::move_mount_fd(tmpfs.as_fd(), target.as_fd()).context("move_mount")?;
        self.empty_dir = Some(tmpfs);
        Ok(())
    }
}

/// The container's /dev/null, refused unless it is the real null device.
fn verified_dev_null(root: BorrowedFd) -> Result<OwnedFd> {
    let fd = open_in_root(root, Path::new("/dev/null"), OFlag::O_PATH).context("open /dev/null")?;
    if !sysfs::is_null_device(&fstat(&fd)?) {
        bail!("/dev/null is not the null device (1:3)");
    }
    Ok(fd)
}

/// `linux.maskedPaths`: files hidden behind /dev/null, directories behind an empty read-only
/// tmpfs.
/// Directories' tmpfs gets `label` (`linux.mountLabel`) as its SELinux context.
pub fn masked_paths(root: BorrowedFd, paths: &[String], label: Option<&str>) -> Result<()> {
    let mut masks = Masks::default();
    for p in paths {
        masked_path(root, &mut masks, Path::new(p), label)
            .with_context(|| format!("maskedPaths {p}"))?;
    }
    Ok(())
}

fn masked_path(
    root: BorrowedFd,
    masks: &mut Masks,
    path: &Path,
    label: Option<&str>,
) -> Result<()> {
    let Some(fd) = target(root, path)? else {
        return Ok(());
    };
    if is_dir(&fstat(&fd)?) {
        return masks.mask_dir(&fd, label);
    }
    let tree = sysfs::clone_tree(masks.dev_null(root)?, false).context("open_tree /dev/null")?;
    sysfs::move_mount_fd(tree.as_fd(), fd.as_fd()).context("move_mount")?;
    Ok(())
}
