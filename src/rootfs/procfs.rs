//! Verified procfs access (CVE-2019-16884, CVE-2025-52881).
//!
//! Writes into /proc go through a handle on a procfs instance nobody else can reach: a fresh,
//! detached procfs from fsopen, or failing that a detached clone of /proc, or failing that /proc
//! opened and checked. Each file is opened beneath that handle without following symlinks or
//! crossing mounts and is checked to be on procfs before it is written.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode};
use nix::unistd::{getpid, Pid};

use crate::syscall::fs::{self as sysfs, FsContext};

/// Inode number of every procfs root directory.
const PROC_ROOT_INO: u64 = 1;

pub struct Procfs {
    root: OwnedFd,
}

impl Procfs {
    pub fn open() -> Result<Self> {
        let root = private_instance()
            .or_else(|_| {
                sysfs::open_tree(sysfs::cwd_fd(), Path::new("/proc"), libc::OPEN_TREE_CLONE)
            })
            .or_else(|_| {
                nix::fcntl::open(
                    "/proc",
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(std::io::Error::from)
            })
            .context("open procfs")?;
        verify_proc_root(&root)?;
        Ok(Procfs { root })
    }

    /// Opens `rel` (e.g. `sys/net/ipv4/ip_forward`) beneath the procfs root: no symlinks, no
    /// other mounts, and the result must be on procfs.
    pub fn open_file(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let fd = match openat2(&self.root, rel, how) {
            Err(Errno::ENOSYS) | Err(Errno::EPERM) => walk_nofollow(&self.root, rel, flags)?,
            other => other?,
        };
        verify_on_proc(&fd)?;
        Ok(fd)
    }

    /// Opens `rel` in this thread's own directory, e.g. `attr/exec`. `thread-self` is a symlink,
    /// which [`Self::open_file`] refuses: it is read here and must name `PID/task/TID`.
    pub fn open_thread_file(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd> {
        let link = readlinkat(&self.root, "thread-self").context("readlink procfs thread-self")?;
        let dir = link
            .to_str()
            .filter(|l| is_thread_dir(l))
            .with_context(|| format!("procfs thread-self is {link:?}, not PID/task/TID"))?;
        self.open_file(&Path::new(dir).join(rel), flags)
    }

    fn own_pid_matches(&self) -> Result<()> {
        let me = readlinkat(&self.root, "self").context("readlink procfs self")?;
        if me.to_str() != Some(getpid().as_raw().to_string().as_str()) {
            bail!("procfs belongs to another pid namespace");
        }
        Ok(())
    }

    /// `/proc/<pid>`, for a pid of this process's pid namespace.
    pub fn pid_dir(&self, pid: Pid) -> Result<OwnedFd> {
        self.own_pid_matches()?;
        self.open_file(
            Path::new(&pid.as_raw().to_string()),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
        )
    }

    /// Reopens one of our own fds with new flags through `thread-self/fd/N`, e.g. to get a
    /// read-write handle on an O_PATH fd that was verified first.
    pub fn reopen(&self, fd: BorrowedFd, flags: OFlag) -> Result<OwnedFd> {
        self.own_pid_matches()?;
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_XDEV);
        let fds =
            openat2(&self.root, "thread-self/fd", how).context("open procfs thread-self/fd")?;
        verify_on_proc(&fds)?;
        // The fd entry is a magic link: following it is the point.
        let fd = openat(
            &fds,
            fd.as_raw_fd().to_string().as_str(),
            flags | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(fd)
    }
}

fn is_thread_dir(link: &str) -> bool {
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = link.split('/').collect();
    matches!(parts[..], [pid, "task", tid] if number(pid) && number(tid))
}

fn private_instance() -> std::io::Result<OwnedFd> {
    let ctx = FsContext::open("proc")?;
    ctx.mount(libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC)
}

fn verify_proc_root(fd: &OwnedFd) -> Result<()> {
    verify_on_proc(fd)?;
    if fstat(fd)?.st_ino != PROC_ROOT_INO {
        bail!("procfs handle is not the root of a procfs");
    }
    Ok(())
}

fn verify_on_proc(fd: &impl AsFd) -> Result<()> {
    if sysfs::fs_magic(fd)? != libc::PROC_SUPER_MAGIC {
        bail!("not on procfs");
    }
    Ok(())
}

/// openat2 fallback: one component at a time, never following a symlink.
fn walk_nofollow(root: &OwnedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let names: Vec<&std::ffi::OsStr> = rel.iter().collect();
    let mut cur: Option<OwnedFd> = None;
    for (i, name) in names.iter().enumerate() {
        if *name == ".." || *name == "." || *name == "/" {
            return Err(Errno::EXDEV);
        }
        let dir = cur.as_ref().map_or(root.as_fd(), |f| f.as_fd());
        let last = i + 1 == names.len();
        let f = if last {
            flags
        } else {
            OFlag::O_PATH | OFlag::O_DIRECTORY
        };
        cur = Some(openat(
            dir,
            *name,
            f | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?);
    }
    cur.ok_or(Errno::ENOENT)
}

/// The file under /proc for a `linux.sysctl` key: dots separate components unless the key is
/// already written with slashes (as sysctl(8) accepts); nothing may climb out of /proc/sys.
pub fn sysctl_path(key: &str) -> Result<PathBuf> {
    let path = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        bail!("empty key");
    }
    for c in path.split('/') {
        if c.is_empty() || c == "." || c == ".." {
            bail!("invalid key");
        }
    }
    Ok(Path::new("sys").join(path))
}

/// `linux.sysctl`: each value written through the verified procfs.
pub fn sysctl(proc: &Procfs, sysctls: &std::collections::HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = sysctls.keys().collect();
    keys.sort();
    for key in keys {
        let value = &sysctls[key];
        write_sysctl(proc, key, value).with_context(|| format!("linux.sysctl {key:?}"))?;
    }
    Ok(())
}

fn write_sysctl(proc: &Procfs, key: &str, value: &str) -> Result<()> {
    let path = sysctl_path(key)?;
    let fd = proc.open_file(&path, OFlag::O_WRONLY)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(value.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_keys() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.100/forwarding").unwrap(),
            PathBuf::from("sys/net/ipv4/conf/eth0.100/forwarding")
        );
        for bad in [
            "",
            ".",
            "net..x",
            "net/../../etc",
            "..",
            "/",
            "kernel.",
            "a//b",
        ] {
            assert!(sysctl_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn procfs_handle_is_verified() {
        let p = Procfs::open().unwrap();
        let fd = p
            .open_file(Path::new("sys/kernel/ostype"), OFlag::O_RDONLY)
            .unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).unwrap();
        assert_eq!(s.trim(), "Linux");
        // `self` is a symlink, so it is refused when opening files.
        assert!(p
            .open_file(Path::new("self/status"), OFlag::O_RDONLY)
            .is_err());
        assert!(p
            .open_file(Path::new("sys/../../etc"), OFlag::O_RDONLY)
            .is_err());
        // This thread's own directory is reached through the link, checked.
        let fd = p
            .open_thread_file(Path::new("status"), OFlag::O_RDONLY)
            .unwrap();
        let mut status = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut status).unwrap();
        let tid = nix::unistd::gettid().as_raw();
        assert!(status.contains(&format!("\nPid:\t{tid}\n")), "{status}");
        assert!(is_thread_dir("12/task/34"));
        for bad in ["12", "12/task/", "../task/3", "12/task/34/x", "12/fd/34"] {
            assert!(!is_thread_dir(bad), "{bad}");
        }
        let null =
            nix::fcntl::open("/dev/null", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        let re = p.reopen(null.as_fd(), OFlag::O_WRONLY).unwrap();
        assert_eq!(nix::unistd::write(&re, b"x").unwrap(), 1);
    }
}
