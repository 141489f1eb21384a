//! Filesystem and mount syscalls (owned by the rootfs helper).
//!
//! Thin, safe wrappers over the new mount API (open_tree, move_mount, mount_setattr, fsopen,
//! fsconfig, fsmount), which nix does not wrap, plus the short-lived user-namespace holder that
//! idmapped mounts need. Callers pass fds they already resolved; nothing here resolves a
//! container path by string.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;

/// `AT_FDCWD` as a borrowed fd, for the few calls that take host paths relative to the cwd.
pub fn cwd_fd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is a sentinel the kernel understands for every *at call; it is never
    // closed and is valid for 'static.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn cpath(p: &std::path::Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn fd_result(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

fn unit_result(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `open_tree(2)`. With `OPEN_TREE_CLONE` the result is a detached copy of the mount (tree).
pub fn open_tree(dirfd: BorrowedFd, path: &std::path::Path, flags: u32) -> io::Result<OwnedFd> {
    let path = cpath(path)?;
    // SAFETY: path is a valid NUL-terminated string living across the call; dirfd is a live fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            (flags | libc::OPEN_TREE_CLOEXEC) as libc::c_uint,
        )
    };
    fd_result(ret)
}

/// Clones the mount at `fd` itself (`AT_EMPTY_PATH`).
pub fn clone_tree(fd: BorrowedFd, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    open_tree(fd, std::path::Path::new(""), flags)
}

/// `move_mount(2)` from one fd onto another (both `*_EMPTY_PATH`), so neither side is looked
/// up by name.
pub fn move_mount_fd(from: BorrowedFd, to: BorrowedFd) -> io::Result<()> {
    let empty = c"";
    // SAFETY: both fds are live; the paths are static empty C strings.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            (libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH) as libc::c_uint,
        )
    };
    unit_result(ret)
}

/// Attribute changes for `mount_setattr(2)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountAttr {
    pub set: u64,
    pub clr: u64,
    /// One of MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE, or 0.
    pub propagation: u64,
    pub userns_fd: Option<RawFd>,
}

impl MountAttr {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0 && self.propagation == 0 && self.userns_fd.is_none()
    }
}

/// `mount_setattr(2)` on the mount `fd` refers to (`AT_EMPTY_PATH`).
pub fn mount_setattr_fd(fd: BorrowedFd, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    let mut raw = libc::mount_attr {
        attr_set: attr.set,
        attr_clr: attr.clr,
        propagation: attr.propagation,
        userns_fd: 0,
    };
    if let Some(ns) = attr.userns_fd {
        raw.userns_fd = ns as u64;
    }
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let empty = c"";
    // SAFETY: raw is a properly initialised mount_attr whose size we pass; fd is live and the
    // path is a static empty C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            flags,
            &mut raw as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    unit_result(ret)
}

/// A filesystem context from `fsopen(2)`.
pub struct FsContext(OwnedFd);

impl FsContext {
    pub fn open(fstype: &str) -> io::Result<Self> {
        let name = cstring(fstype)?;
        // SAFETY: name is a valid C string for the duration of the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsopen,
                name.as_ptr(),
                libc::FSOPEN_CLOEXEC as libc::c_uint,
            )
        };
        fd_result(ret).map(FsContext)
    }

    fn config(
        &self,
        cmd: libc::c_uint,
        key: Option<&CStr>,
        value: Option<&CStr>,
    ) -> io::Result<()> {
        let key = key.map_or(std::ptr::null(), |k| k.as_ptr());
        let value = value.map_or(std::ptr::null(), |v| v.as_ptr());
        // SAFETY: the context fd is live; key/value are NULL or valid C strings borrowed for
        // the call, as each command expects.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.0.as_raw_fd(),
                cmd,
                key,
                value,
                0 as libc::c_int,
            )
        };
        unit_result(ret)
    }

    pub fn set_string(&self, key: &str, value: &str) -> io::Result<()> {
        let key = cstring(key)?;
        let value = cstring(value)?;
        self.config(libc::FSCONFIG_SET_STRING, Some(&key), Some(&value))
    }

    /// Creates the superblock and returns a detached mount of it with `MOUNT_ATTR_*` flags.
    pub fn mount(self, attr_flags: u64) -> io::Result<OwnedFd> {
        self.config(libc::FSCONFIG_CMD_CREATE, None, None)?;
        // SAFETY: the context fd is live; flags and attributes are plain integers.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                self.0.as_raw_fd(),
                libc::FSMOUNT_CLOEXEC as libc::c_uint,
                attr_flags as libc::c_uint,
            )
        };
        fd_result(ret)
    }
}

/// A child parked in a fresh user namespace so its namespace can be configured and opened.
/// Killed and reaped on drop.
pub struct UsernsHolder {
    pid: Pid,
}

impl UsernsHolder {
    /// Forks a child that unshares CLONE_NEWUSER and stops itself; returns once it is stopped,
    /// i.e. once its namespace exists and is ready for uid_map/gid_map.
    pub fn spawn() -> io::Result<Self> {
        // SAFETY: the child only makes async-signal-safe libc calls before _exit, so fork
        // cannot leave it with broken locks, whatever the caller: `create`'s parent (idmapped
        // bind trees), the container's init (binds with their own mappings), or a
        // multi-threaded test process.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: async-signal-safe calls only; the child never returns into Rust code.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // A non-dumpable parent (container init) makes /proc/<pid> root-owned, and
                // its maps unwritable from inside a user namespace.
                libc::prctl(libc::PR_SET_DUMPABLE, 1);
                if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                    libc::_exit(1);
                }
                libc::raise(libc::SIGSTOP);
                libc::_exit(0);
            }
        }
        let holder = UsernsHolder {
            pid: Pid::from_raw(pid),
        };
        loop {
            match nix::sys::wait::waitpid(holder.pid, Some(nix::sys::wait::WaitPidFlag::WUNTRACED))
            {
                Ok(nix::sys::wait::WaitStatus::Stopped(..)) => return Ok(holder),
                Ok(nix::sys::wait::WaitStatus::Exited(..))
                | Ok(nix::sys::wait::WaitStatus::Signaled(..)) => {
                    // Already reaped: do not let Drop kill a recycled pid.
                    std::mem::forget(holder);
                    return Err(io::Error::other(
                        "user namespace holder exited before stopping (unshare failed)",
                    ));
                }
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }
}

impl Drop for UsernsHolder {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(self.pid, None) {}
    }
}

/// Whether `st` is the null device (character device 1:3), whatever its name.
pub fn is_null_device(st: &libc::stat) -> bool {
    let is_chr = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    is_chr && libc::major(st.st_rdev) == 1 && libc::minor(st.st_rdev) == 3
}

/// `fstatfs(2)` filesystem magic of an fd, typed like libc's `*_MAGIC` constants.
// The width of statfs.f_type differs between libcs and architectures; the cast is a no-op here.
#[allow(clippy::unnecessary_cast)]
pub fn fs_magic(fd: impl AsFd) -> io::Result<libc::c_long> {
    let st = nix::sys::statfs::fstatfs(fd)?;
    Ok(st.filesystem_type().0 as libc::c_long)
}

/// `statfs(2)` filesystem magic of a trusted host path.
#[allow(clippy::unnecessary_cast)]
pub fn path_fs_magic(path: &std::path::Path) -> io::Result<libc::c_long> {
    let st = nix::sys::statfs::statfs(path)?;
    Ok(st.filesystem_type().0 as libc::c_long)
}

/// `flistxattr(2)`: the names of the extended attributes of an open file (not O_PATH).
pub fn list_xattrs(fd: BorrowedFd) -> io::Result<Vec<CString>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: buf is writable for buf.len() bytes; fd is live.
        let ret = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if ret >= 0 {
            buf.truncate(ret as usize);
            break;
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) || buf.len() >= 1 << 20 {
            return Err(err);
        }
        // The list grew between calls; the kernel caps it at 64 KiB.
        buf.resize(buf.len() * 4, 0);
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .filter_map(|name| CString::new(name).ok())
        .collect())
}

/// `fgetxattr(2)` of one attribute.
pub fn get_xattr(fd: BorrowedFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: name is a valid C string; buf is writable for buf.len() bytes; fd is live.
        let ret = unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if ret >= 0 {
            buf.truncate(ret as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) || buf.len() >= 1 << 20 {
            return Err(err);
        }
        buf.resize(buf.len() * 4, 0);
    }
}

/// `fsetxattr(2)`, creating or replacing the attribute.
pub fn set_xattr(fd: BorrowedFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: name is a valid C string and value readable for value.len() bytes; fd is live.
    let ret = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    unit_result(ret as libc::c_long)
}
