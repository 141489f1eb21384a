//! Process-level system calls nix does not wrap (or wraps in a shape hutch cannot use).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::unistd::Pid;

/// The result of a fork-like clone: which side of it this process is on.
pub enum CloneResult {
    Parent(Pid),
    Child,
}

/// clone(2) with namespace flags and no new stack: the child continues on a copy-on-write copy
/// of the caller's stack, exactly like fork(), but is born inside the new namespaces (one
/// syscall instead of fork + unshare, and a new pid namespace makes it pid 1 directly).
///
/// The caller must be single-threaded (hutch never starts threads), so the child can go on
/// allocating and using the heap.
pub fn clone_fork(flags: libc::c_int) -> io::Result<CloneResult> {
    // SAFETY: raw clone with a null stack pointer duplicates the calling thread like fork();
    // hutch is single-threaded so no lock can be held by another thread in the child, and the
    // remaining arguments (parent_tid, child_tid, tls) are unused without the flags that read them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent(Pid::from_raw(pid as i32))),
    }
}

/// clone3(2) like [`clone_fork`], born into the cgroup2 directory `cgroup` (CLONE_INTO_CGROUP):
/// no migration afterwards, so no wait for the kernel's cgroup threadgroup lock.
pub fn clone3_fork(flags: libc::c_int, cgroup: BorrowedFd) -> io::Result<CloneResult> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    let args = CloneArgs {
        flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        // clone3 refuses an exit signal with CLONE_PARENT: the child then signals its new
        // parent the way the caller does.
        exit_signal: if flags & libc::CLONE_PARENT != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.as_raw_fd() as u64,
    };
    // SAFETY: clone3 reads `args` (live, correctly sized) and, with no stack given, duplicates
    // the calling thread like fork(); hutch is single-threaded (see clone_fork).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Marks every fd from `first` upwards close-on-exec, so nothing the caller leaked (containerd's
/// shim passes its socket as fd 3) reaches the container or a hook (CVE-2024-21626). Marking
/// rather than closing keeps fds the caller still uses until exec (std's exec-error pipe).
/// Async-signal-safe (no allocation): it runs between fork and exec. The fallback only covers
/// fds below the current RLIMIT_NOFILE: inherited fds were already marked by
/// [`cloexec_inherited_from`] before the clone, this catches what the process opened since.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    if close_range_cloexec(first) {
        return Ok(());
    }
    // Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: walk the table up to the descriptor limit.
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024)
        .min(i32::MAX as u64) as i32;
    for fd in first as i32..limit {
        // SAFETY: F_SETFD on a number that may not be open just fails with EBADF.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok(())
}

/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC); false where the kernel (before 5.11) or a
/// seccomp profile refuses it. Async-signal-safe.
fn close_range_cloexec(first: u32) -> bool {
    // SAFETY: close_range only changes flags on the calling process's descriptor table.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    ret == 0
}

/// Marks every fd from `first` upwards close-on-exec in hutch itself, before any container
/// process is cloned: the table, the rlimits and /proc are still the caller's, so the sweep
/// cannot be cut short by anything the config controls (a container RLIMIT_NOFILE below an
/// inherited fd, a seccomp profile denying close_range). Not for use between fork and exec
/// (it allocates).
pub fn cloexec_inherited_from(first: u32) -> io::Result<()> {
    if close_range_cloexec(first) {
        return Ok(());
    }
    // Kernels before 5.11: the open fds, exactly, from /proc (the directory's own fd is listed
    // too; marking it is harmless).
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as i32)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a number that may have been closed meanwhile just fails (EBADF).
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok(())
}

/// pidfd_open(2): a handle on a process that cannot be confused by pid reuse.
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// pidfd_send_signal(2): signals exactly the process the pidfd was opened on.
pub fn pidfd_send_signal(pidfd: BorrowedFd, signal: i32) -> io::Result<()> {
    // SAFETY: a valid pidfd, a signal number, no siginfo (null), no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Joins a new session keyring named `name`, so the container does not share the caller's keys.
pub fn join_session_keyring(name: &CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_ulong = 1;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING) reads a NUL-terminated name that outlives the call.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Restores the default disposition of every signal: ignored signals survive execve, and the
/// Rust runtime ignores SIGPIPE, which the container's process must not inherit.
pub fn reset_signal_dispositions() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is always a valid disposition; errors for unsupported numbers
        // (32, 33 are glibc-internal) are ignored.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    );
}

/// The signals whose default action ends a process, but SIGPIPE (ignored by hutch, as by
/// every Rust program, and by runc's init) and SIGKILL; the real-time ones are added at run
/// time.
const TERMINATING: [libc::c_int; 21] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGUSR1,
    libc::SIGSEGV,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGSTKFLT,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGSYS,
];

/// Makes every signal whose default action ends a process end this one, even when it is pid 1
/// of a pid namespace, which the kernel shields from the signals it has no handler for. The
/// handler restores the default and sends the signal again, which ends any other process as
/// the signal itself would (a wait status "killed by"); a namespace's init, to which the kernel
/// never delivers it, exits 128+signal. The signals are unblocked too: a foreground `run`
/// clones the init with them blocked. `execve` resets the handlers.
pub fn exit_on_terminating_signals() {
    let realtime = libc::SIGRTMIN()..=libc::SIGRTMAX();
    // SAFETY: a zeroed sigaction and sigset_t are valid before sigemptyset fills them; the
    // handler makes async-signal-safe calls only; errors (a number the kernel lacks) leave
    // that signal as it was.
    unsafe {
        let mut unblock: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut unblock);
        for sig in TERMINATING.into_iter().chain(realtime) {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = exit_of_signal as extern "C" fn(libc::c_int) as usize;
            // Not deferred: the signal sent again from the handler is delivered at once.
            action.sa_flags = libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) == 0 {
                libc::sigaddset(&mut unblock, sig);
            }
        }
        libc::sigprocmask(libc::SIG_UNBLOCK, &unblock, std::ptr::null_mut());
    }
}

extern "C" fn exit_of_signal(sig: libc::c_int) {
    // SAFETY: signal, kill, getpid and _exit are async-signal-safe; nothing here returns to
    // the interrupted code.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig);
    }
}

/// prctl(PR_SET_NO_NEW_PRIVS, 1).
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS with 1 and zero padding arguments, as the kernel requires.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// prctl(PR_SET_PDEATHSIG, SIGKILL), then a check that the parent is still `parent`: a child
/// of hutch's that must not outlive it (a hook) dies with it, even when hutch is SIGKILLed,
/// and one whose parent died before the prctl exits at once. Async-signal-safe (pre_exec).
pub fn die_with_parent(parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number.
    let ret = unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent {
        // SAFETY: _exit is async-signal-safe and ends only this process.
        unsafe { libc::_exit(1) };
    }
    Ok(())
}

/// Makes `cmd`'s child, between fork and exec, die with `parent` ([`die_with_parent`]) and
/// mark every fd from 3 up close-on-exec ([`cloexec_from`]): for hutch's own children (hooks)
/// that must neither outlive it nor inherit its descriptors.
pub fn die_with_parent_and_cloexec(cmd: &mut std::process::Command, parent: libc::pid_t) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the callback only issues raw syscalls (prctl, getppid, getrlimit, close_range or
    // fcntl; no allocation, no locks), which is what must hold between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            die_with_parent(parent)?;
            cloexec_from(3)
        });
    }
}

/// prctl(PR_SET_KEEPCAPS): keep permitted capabilities across the switch to a non-root uid.
pub fn set_keep_caps(keep: bool) -> io::Result<()> {
    // SAFETY: PR_SET_KEEPCAPS takes 0 or 1.
    let ret = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, keep as libc::c_ulong, 0, 0, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives the kernel back the heap pages malloc holds free. The container's init calls it before
/// it blocks for `start`: what it allocated for the setup would otherwise stay private dirty
/// memory, charged to every created container for as long as it waits. The init is one thread
/// (cloned from single-threaded hutch), so the arena lock malloc_trim takes is free.
pub fn return_free_heap() {
    // SAFETY: malloc_trim only walks and trims malloc's own arenas; 0 asks to keep no padding.
    unsafe { libc::malloc_trim(0) };
}

/// prctl(PR_SET_DUMPABLE): while the container's init still runs hutch's code, other processes
/// in the container must not be able to open its /proc files.
pub fn set_dumpable(dumpable: bool) -> io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes 0 or 1.
    let ret = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, dumpable as libc::c_ulong, 0, 0, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// setresuid/setresgid through the raw syscalls, which act on this thread only; glibc's
/// wrappers broadcast to all threads with signals, which is unnecessary in single-threaded hutch.
pub fn setresgid(gid: u32) -> io::Result<()> {
    // SAFETY: plain syscall taking three gids.
    let ret = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn setresuid(uid: u32) -> io::Result<()> {
    // SAFETY: plain syscall taking three uids.
    let ret = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn setgroups(gids: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe a live slice of gid_t-sized values.
    let ret = unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// setdomainname(2); nix only wraps sethostname.
pub fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe the bytes of a live &str.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// kill(2) with any signal number, real-time ones included (nix's `Signal` lacks those).
pub fn kill_raw(pid: nix::unistd::Pid, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes a pid and a signal number by value.
    let ret = unsafe { libc::kill(pid.as_raw(), signal) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// personality(2).
pub fn set_personality(persona: libc::c_ulong) -> io::Result<()> {
    // SAFETY: personality takes a value and returns the previous persona or -1.
    let ret = unsafe { libc::personality(persona) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0 = this process, class << 13 | level).
pub fn set_io_priority(class: u32, level: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_SHIFT: u32 = 13;
    let value = (class << IOPRIO_CLASS_SHIFT) | level;
    // SAFETY: ioprio_set takes three integers.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The kernel's struct sched_attr, version 0 (48 bytes).
#[repr(C)]
#[derive(Default)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// sched_setattr(2) on this thread.
pub fn sched_setattr(attr: &mut SchedAttr) -> io::Result<()> {
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: the pointer is to a live, correctly sized sched_attr; pid 0 is this thread.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *mut SchedAttr, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
