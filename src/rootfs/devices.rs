//! /dev inside the container: default devices, `linux.devices`, the standard symlinks, and the
//! /dev/console mount point.
//!
//! Nodes are made with mknodat relative to a resolved directory fd; in a new user namespace,
//! where mknod is not allowed, the host's node is bind-mounted over an empty file instead.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fstat, fstatat, makedev, mknodat, umask, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::resolve::{create_file, display, mkdir_all, split_parent};
use crate::syscall::fs as sysfs;

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets, as runc's defaults.
pub fn default_devices() -> Vec<Device> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Device {
        path: Path::new("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

impl TryFrom<&LinuxDevice> for Device {
    type Error = anyhow::Error;

    fn try_from(d: &LinuxDevice) -> Result<Self> {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => bail!("type \"a\" is not a device node type"),
        };
        let (major, minor) = (d.major(), d.minor());
        if kind != SFlag::S_IFIFO && (major < 0 || minor < 0) {
            bail!("negative major/minor");
        }
        Ok(Device {
            path: d.path().clone(),
            kind,
            major: major.max(0) as u64,
            minor: minor.max(0) as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        })
    }
}

/// Restores the umask on every exit path, so modes are exactly what the config says.
struct UmaskGuard(Mode);

impl UmaskGuard {
    fn zero() -> Self {
        UmaskGuard(umask(Mode::empty()))
    }
}

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        umask(self.0);
    }
}

/// Creates the default devices, `linux.devices`, /dev/ptmx and the /dev symlinks.
pub fn setup_dev(
    root: std::os::fd::BorrowedFd,
    devices: &[LinuxDevice],
    new_user_ns: bool,
) -> Result<()> {
    let _umask = UmaskGuard::zero();
    let mut all = default_devices();
    for d in devices {
        let dev =
            Device::try_from(d).with_context(|| format!("linux.devices {}", d.path().display()))?;
        match all.iter_mut().find(|x| x.path == dev.path) {
            Some(existing) => *existing = dev,
            None => all.push(dev),
        }
    }
    for d in &all {
        create_device(root, d, new_user_ns)
            .with_context(|| format!("create device {}", display(&d.path)))?;
    }
    let dev = mkdir_all(root, Path::new("/dev"), Mode::from_bits_truncate(0o755))
        .context("mkdir /dev")?;
    ptmx(&dev).context("/dev/ptmx")?;
    dev_symlinks(&dev)
}

fn create_device(root: std::os::fd::BorrowedFd, d: &Device, new_user_ns: bool) -> Result<()> {
    let (parent, name) = split_parent(&d.path).context("device path is /")?;
    let dir = mkdir_all(root, &parent, Mode::from_bits_truncate(0o755))?;
    // Whatever the config or the image already put there (a bind mount, an earlier entry) wins.
    if fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).is_ok() {
        return Ok(());
    }
    if new_user_ns {
        return bind_device(root, d);
    }
    let perm = Mode::from_bits_truncate(d.mode);
    match mknodat(
        &dir,
        name.as_os_str(),
        d.kind,
        perm,
        makedev(d.major, d.minor),
    ) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(()),
        // Not allowed to make nodes here after all (e.g. a restricted host): bind instead.
        Err(Errno::EPERM) => return bind_device(root, d),
        Err(e) => return Err(e).context("mknod"),
    }
    fchownat(
        &dir,
        name.as_os_str(),
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context("chown")?;
    Ok(())
}

/// Bind-mounts the host node at the same path over an empty file.
fn bind_device(root: std::os::fd::BorrowedFd, d: &Device) -> Result<()> {
    let tree = sysfs::open_tree(sysfs::cwd_fd(), &d.path, libc::OPEN_TREE_CLONE)
        .with_context(|| format!("open host device {}", d.path.display()))?;
    let st = fstat(&tree)?;
    if st.st_mode & SFlag::S_IFMT.bits() != d.kind.bits() {
        bail!(
            "host {} is not the configured device type",
            d.path.display()
        );
    }
    let target = create_file(root, &d.path, Mode::empty())?;
    sysfs::move_mount_fd(tree.as_fd(), target.as_fd()).context("move_mount")?;
    Ok(())
}

/// /dev/ptmx must be the container's devpts ptmx, not the host's (which a node 5:2 would be).
fn ptmx(dev: &OwnedFd) -> Result<()> {
    match unlinkat(dev, "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    symlinkat("pts/ptmx", dev, "ptmx")?;
    Ok(())
}

fn dev_symlinks(dev: &OwnedFd) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("symlink /dev/{name}")),
        }
    }
    Ok(())
}

/// The mount point for the console: an empty file, unless something is there already.
pub fn console_mount_point(root: std::os::fd::BorrowedFd) -> Result<OwnedFd> {
    let fd = create_file(
        root,
        Path::new("/dev/console"),
        Mode::from_bits_truncate(0o600),
    )
    .context("create /dev/console")?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    #[test]
    fn config_devices() {
        let d = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .file_mode(0o100666u32)
            .build()
            .unwrap();
        let dev = Device::try_from(&d).unwrap();
        assert_eq!(
            (dev.kind, dev.major, dev.minor, dev.mode),
            (SFlag::S_IFCHR, 10, 229, 0o666)
        );
        let a = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::A)
            .build()
            .unwrap();
        assert!(Device::try_from(&a).is_err());
        assert_eq!(default_devices().len(), 6);
    }
}
