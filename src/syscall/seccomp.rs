//! seccomp(2): loading a classic-BPF filter into the calling thread.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// seccomp(`SECCOMP_SET_MODE_FILTER`, `flags`, `filter`). With
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` in `flags` the kernel returns the notify listener, handed
/// back as an owned fd; otherwise `None`. The kernel copies the instructions: `filter` need only
/// live across the call.
pub fn set_mode_filter(
    filter: &[libc::sock_filter],
    flags: libc::c_ulong,
) -> io::Result<Option<OwnedFd>> {
    // sock_fprog counts instructions in 16 bits; the kernel's own limit (BPF_MAXINSNS, 4096)
    // is far below, so a longer filter could only be refused.
    let len =
        u16::try_from(filter.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `filter`, which outlives the call; the kernel only reads through
    // the pointer (copy_from_user) and does not keep it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER the kernel returns a new file descriptor that nothing else
    // owns; wrapping it makes it closed exactly once.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as i32) }))
}
