//! Defence against CVE-2019-5736: a process in the container must never be able to open the
//! host's hutch binary for writing through `/proc/<pid>/exe`.
//!
//! The container's init is a fork of hutch, so until it execs the user's program its
//! `/proc/self/exe` is hutch's executable; a container image whose entrypoint is
//! `#!/proc/self/exe` would even make the kernel run that file inside the container. Commands
//! that put a process into a container (`create`, `run`, `exec`) therefore first re-execute
//! hutch from a copy nothing can write to:
//! - preferably through a detached, read-only overlayfs whose lower layer is hutch's own
//!   directory (runc 1.2's idea): no copy, the page cache stays shared with every other hutch,
//!   and an overlay without an upper layer can never write to its lower one;
//! - otherwise (no overlayfs) from a sealed memfd copy, which costs a copy of the binary and
//!   its size in memory per container.
//!
//! Commands that never enter a container (`state`, `kill`, `start`, …) skip this and stay cheap.
//! So does an unprivileged (rootless) hutch whose binary belongs to host root and may be written
//! by no one else: its containers run as the caller's ids, never host root, with no capability
//! over root's files, so they could not write it anyway (see [`out_of_containers_reach`]).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsFd;

use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::{fcntl, FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::stat::Mode;

use crate::syscall::fs::FsContext;

const REQUIRED_SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// Returns when hutch runs from a protected copy; otherwise replaces this process with one.
pub fn ensure_sealed() -> Result<()> {
    let exe = File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    if is_sealed(&exe) || is_readonly_overlay(&exe) || out_of_containers_reach(&exe) {
        return Ok(());
    }
    let (args, env) = current_args_env()?;
    if let Err(err) = reexec_via_overlay(&args, &env) {
        crate::logging::debug(&format!(
            "read-only overlay for the hutch binary unavailable ({err:#}); using a sealed memfd"
        ));
    }
    let memfd = memfd_create(
        c"hutch",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .context("memfd_create for the sealed hutch binary")?;
    let mut copy = File::from(memfd);
    let mut source = exe;
    std::io::copy(&mut source, &mut copy).context("copying hutch into a sealed memfd")?;
    fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(REQUIRED_SEALS))
        .context("sealing the hutch memfd")?;
    nix::unistd::fexecve(copy.as_fd(), &args, &env).context("re-executing sealed hutch")?;
    Ok(())
}

/// The binary is host root's, with no group or other write bit and no ACL, and hutch holds no
/// privilege over root's files: it is unprivileged with no capability at all, or root of a user
/// namespace that does not map host root (rootless podman runs it so). Every process of its
/// containers then runs as the caller's uid or its subordinate ids (never host root: newuidmap
/// maps only ranges /etc/subuid gives, and those start above the system ids) with at most the
/// caller's privilege, so none of them can open the binary for writing.
fn out_of_containers_reach(exe: &File) -> bool {
    let Ok(st) = nix::sys::stat::fstat(exe.as_fd()) else {
        return false;
    };
    if st.st_uid != 0 || st.st_mode & 0o022 != 0 {
        return false;
    }
    match crate::syscall::fs::get_xattr(exe.as_fd(), c"system.posix_acl_access") {
        Err(err) if err.raw_os_error() == Some(libc::ENODATA) => {}
        _ => return false,
    }
    let unprivileged = !nix::unistd::geteuid().is_root()
        && caps::read(None, caps::CapSet::Permitted).is_ok_and(|set| set.is_empty());
    unprivileged
        || std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| !maps_host_root(&map))
}

/// Whether a uid_map (`inside outside count` lines) maps host uid 0.
fn maps_host_root(uid_map: &str) -> bool {
    uid_map.lines().any(|line| {
        let v: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        matches!(v[..], [_, 0, count] if count > 0)
    })
}

fn current_args_env() -> Result<(Vec<CString>, Vec<CString>)> {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()))
        .collect::<Result<_, _>>()
        .context("argument contains a NUL byte")?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()
        .context("environment contains a NUL byte")?;
    Ok((args, env))
}

/// Mounts a detached overlay of hutch's directory and execs hutch through it. An overlay
/// without an upper layer needs two lower ones: the second is the empty root of a detached
/// tmpfs, so nothing is created on disk or in any mount table. Returns only on failure.
fn reexec_via_overlay(args: &[CString], env: &[CString]) -> Result<()> {
    let exe_path = std::fs::read_link("/proc/self/exe").context("reading /proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe_path.parent(), exe_path.file_name()) else {
        anyhow::bail!("{} has no directory", exe_path.display());
    };
    let empty = FsContext::open("tmpfs")
        .context("fsopen(tmpfs)")?
        .mount(libc::MOUNT_ATTR_RDONLY)
        .context("fsmount(tmpfs)")?;
    let empty_path = Path::new("/proc/self/fd").join(empty.as_raw_fd().to_string());
    let lower = format!("{}:{}", escape_overlay(dir), escape_overlay(&empty_path));
    let ctx = FsContext::open("overlay").context("fsopen(overlay)")?;
    ctx.set_string("lowerdir", &lower)
        .context("overlay lowerdir")?;
    let mount = ctx
        .mount(libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV)
        .context("fsmount(overlay)")?;
    let binary = nix::fcntl::openat(
        &mount,
        name,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .context("opening hutch through the overlay")?;
    nix::unistd::fexecve(binary.as_fd(), args, env)
        .context("re-executing hutch from the overlay")?;
    Ok(())
}

/// overlayfs splits lowerdir on ':' and treats '\\' as an escape.
fn escape_overlay(path: &Path) -> String {
    path.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// hutch already runs from a read-only overlay: nothing can write through it to the binary.
fn is_readonly_overlay(exe: &File) -> bool {
    const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
    let Ok(fs) = nix::sys::statfs::fstatfs(exe) else {
        return false;
    };
    let Ok(vfs) = nix::sys::statvfs::fstatvfs(exe) else {
        return false;
    };
    fs.filesystem_type().0 == OVERLAYFS_SUPER_MAGIC
        && vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
}

fn is_sealed(exe: &File) -> bool {
    match fcntl(exe.as_fd(), FcntlArg::F_GET_SEALS) {
        Ok(bits) => SealFlag::from_bits_truncate(bits).contains(REQUIRED_SEALS),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_root_in_uid_maps() {
        assert!(maps_host_root("0 0 4294967295\n"));
        assert!(!maps_host_root("0 1000 1\n1 100000 65536\n"));
        assert!(maps_host_root("0 1000 1\n5 0 1\n"));
    }
}
