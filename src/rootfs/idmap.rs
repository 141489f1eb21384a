//! Idmapped mounts (`idmap`/`ridmap`, mount `uidMappings`/`gidMappings`).
//!
//! mount_setattr(MOUNT_ATTR_IDMAP) takes a user namespace fd carrying the mapping. A throwaway
//! child unshares a user namespace and stops; we write its maps, keep an fd to its namespace
//! and kill it. A mount that asks for `idmap` without mappings gets the container's own user
//! namespace.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use oci_spec::runtime::{LinuxIdMapping, Mount};

use super::options::MountOptions;
use super::procfs::Procfs;
use crate::namespaces::format_id_map;
use crate::syscall::fs::{self as sysfs, MountAttr, UsernsHolder};

/// The spec's `idmap`/`ridmap` and the mount's own uid/gid mappings.
pub struct IdmapRequest {
    pub recursive: bool,
    pub uid: Vec<oci_spec::runtime::LinuxIdMapping>,
    pub gid: Vec<oci_spec::runtime::LinuxIdMapping>,
}

/// What a mount asks for: `None` when it is not idmapped.
pub fn idmap_request(m: &Mount, opts: &MountOptions) -> Result<Option<IdmapRequest>> {
    let uid = m.uid_mappings().clone().unwrap_or_default();
    let gid = m.gid_mappings().clone().unwrap_or_default();
    if opts.idmap.is_none() && uid.is_empty() && gid.is_empty() {
        return Ok(None);
    }
    if uid.is_empty() != gid.is_empty() {
        bail!("uidMappings and gidMappings must be given together");
    }
    Ok(Some(IdmapRequest {
        recursive: opts.idmap.unwrap_or(false),
        uid,
        gid,
    }))
}

/// Applies the idmapping to a detached tree (it must not have been attached yet); a request
/// without its own mappings maps through the user namespace of `userns_pid`.
pub fn idmap_tree(tree: &OwnedFd, req: &IdmapRequest, userns_pid: nix::unistd::Pid) -> Result<()> {
    let proc = Procfs::open()?;
    let userns = if req.uid.is_empty() {
        let dir = proc.pid_dir(userns_pid)?;
        open_ns(&dir)?
    } else {
        userns_with_maps(&proc, &req.uid, &req.gid)?
    };
    let attr = MountAttr {
        set: libc::MOUNT_ATTR_IDMAP,
        userns_fd: Some(userns.as_raw_fd()),
        ..Default::default()
    };
    sysfs::mount_setattr_fd(tree.as_fd(), req.recursive, &attr)
        .context("idmap mount (mount_setattr MOUNT_ATTR_IDMAP)")
}

fn open_ns(pid_dir: &OwnedFd) -> Result<OwnedFd> {
    // ns/user is a magic link into nsfs; following it is the point.
    let fd = nix::fcntl::openat(
        pid_dir,
        "ns/user",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("open ns/user")?;
    if sysfs::fs_magic(&fd)? != libc::NSFS_MAGIC {
        anyhow::bail!("ns/user is not an nsfs file");
    }
    Ok(fd)
}

fn userns_with_maps(
    proc: &Procfs,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
) -> Result<OwnedFd> {
    let holder = UsernsHolder::spawn().context("create user namespace for idmapped mount")?;
    let dir = proc.pid_dir(holder.pid())?;
    write_map(&dir, "uid_map", &format_id_map(uid))?;
    write_map(&dir, "gid_map", &format_id_map(gid))?;
    let ns = open_ns(&dir)?;
    drop(holder);
    Ok(ns)
}

fn write_map(pid_dir: &OwnedFd, name: &str, content: &str) -> Result<()> {
    let fd = nix::fcntl::openat(
        pid_dir,
        Path::new(name),
        OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {name}"))?;
    // The kernel takes the whole map in a single write.
    let n = nix::unistd::write(&fd, content.as_bytes())
        .with_context(|| format!("write {name} {content:?}"))?;
    if n != content.len() {
        anyhow::bail!("short write to {name}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    #[test]
    fn idmapped_userns() {
        let m = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(1000u32)
            .size(10u32)
            .build()
            .unwrap();
        let proc = Procfs::open().unwrap();
        let ns = userns_with_maps(&proc, &[m], &[m]).unwrap();
        assert_eq!(sysfs::fs_magic(&ns).unwrap(), libc::NSFS_MAGIC);
    }
}
