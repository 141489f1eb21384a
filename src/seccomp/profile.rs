//! The profile's values in the compiler's terms, checked as libseccomp and runc check them:
//! actions as `SECCOMP_RET_*` values, errno bounds, argument conditions, and the calls a
//! NOTIFY rule may not name. Errors name the field.

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};

use super::cond::{Cmp, Cond, Op};

// SECCOMP_RET_* (linux/seccomp.h).
pub(super) const RET_KILL_THREAD: u32 = 0x0000_0000;
pub(super) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(super) const RET_TRAP: u32 = 0x0003_0000;
pub(super) const RET_ERRNO: u32 = 0x0005_0000;
pub(super) const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub(super) const RET_TRACE: u32 = 0x7ff0_0000;
pub(super) const RET_LOG: u32 = 0x7ffc_0000;
pub(super) const RET_ALLOW: u32 = 0x7fff_0000;
/// libseccomp's bound for SCMP_ACT_ERRNO's value (exclusive).
pub(super) const MAX_ERRNO: u32 = 4095;

/// Syscalls hutch's init makes itself between loading a filter with a NOTIFY rule and
/// execve (see `process::init`). A filter with a NOTIFY rule is always loaded early, before
/// the listener is handed out: the listener goes to the parent by `sendmsg` on the sync
/// socket, so a NOTIFY there waits for an agent that can only get the listener through that
/// very call, and `create` hangs. Later calls would stop the runtime on an agent that knows
/// nothing of them. So a NOTIFY rule naming any of them is refused:
/// - the sync socket (listener hand-off, Ready, Commit) and exec.fifo: `sendmsg`, `recvmsg`,
///   `read`, `write` (errors to start.err and stderr; runc refuses this one too), `close`;
/// - the identity switch: `prctl`, `capget`, `capset`, `setgroups`, `setresuid`,
///   `setresgid`, `chdir`, `getcwd`;
/// - the state dir cleanup when the parent dies: `openat`, `unlinkat`, `getdents64`,
///   `newfstatat`, `statx`, `fstat`, `fcntl`;
/// - startContainer hooks: `clone`, `clone3`, `pipe2`, `poll`, `wait4`, `kill`, `dup2`,
///   `dup3`;
/// - the last steps: `close_range`, `rt_sigaction`, `rt_sigprocmask`, `sigaltstack`,
///   `execve`, `exit`, `exit_group`;
/// - memory: `brk`, `mmap`, `munmap`, `mremap`, `madvise`, `futex`.
///
/// ERRNO, KILL and the like on these calls make the init fail fast instead (an error, or
/// its death, which `create` reports).
pub(super) const NOTIFY_REFUSED: &[&str] = &[
    "sendmsg",
    "recvmsg",
    "read",
    "write",
    "close",
    "prctl",
    "capget",
    "capset",
    "setgroups",
    "setresuid",
    "setresgid",
    "chdir",
    "getcwd",
    "openat",
    "unlinkat",
    "getdents64",
    "newfstatat",
    "statx",
    "fstat",
    "fcntl",
    "clone",
    "clone3",
    "pipe2",
    "poll",
    "wait4",
    "kill",
    "dup2",
    "dup3",
    "close_range",
    "rt_sigaction",
    "rt_sigprocmask",
    "sigaltstack",
    "execve",
    "exit",
    "exit_group",
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "madvise",
    "futex",
];

/// The default action's `SECCOMP_RET_*` value.
pub(super) fn default_action(seccomp: &LinuxSeccomp) -> Result<u32> {
    let default = action_value(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )?;
    check_errno(default, "linux.seccomp.defaultErrnoRet")?;
    // As in runc: a notify default would also notify the runtime's own syscalls after load.
    if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
        bail!("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
    }
    Ok(default)
}

/// Refuses a NOTIFY rule (at `field`) that names a call of [`NOTIFY_REFUSED`].
pub(super) fn check_notify(names: &[String], field: &str) -> Result<()> {
    if let Some((n, name)) = names
        .iter()
        .enumerate()
        .find(|(_, n)| NOTIFY_REFUSED.contains(&n.as_str()))
    {
        // hutch itself makes this call after loading the filter (see NOTIFY_REFUSED).
        bail!(
            "{field}.action: SCMP_ACT_NOTIFY cannot be used for the {name} syscall \
             ({field}.names[{n}]): the runtime makes it between loading the filter \
             and starting the process, and would wait for the agent forever"
        );
    }
    Ok(())
}

/// libseccomp (so runc) refuses SCMP_ACT_ERRNO with an errno from MAX_ERRNO (4095) up, when
/// the action is used.
pub(super) fn check_errno(action: u32, field: &str) -> Result<()> {
    let errno = action & 0xffff;
    if action & 0xffff_0000 == RET_ERRNO && errno >= MAX_ERRNO {
        bail!(
            "{field}: {errno} is not an errno value (at most {})",
            MAX_ERRNO - 1
        );
    }
    Ok(())
}

/// The `SECCOMP_RET_*` value of an OCI action. `errno_ret` is only meaningful for ERRNO and
/// TRACE (default EPERM, as runc); the spec requires an error when another action gets one.
pub(super) fn action_value(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<u32> {
    use LinuxSeccompAction as A;
    let data = |base: u32| -> Result<u32> {
        let errno = errno_ret.unwrap_or(libc::EPERM as u32);
        // SECCOMP_RET_DATA is 16 bits; a larger value would silently change the action.
        if errno > 0xffff {
            bail!("{errno_field}: {errno} does not fit in SECCOMP_RET_DATA (16 bits)");
        }
        Ok(base | errno)
    };
    let simple = |k: u32| -> Result<u32> {
        match errno_ret {
            Some(_) => bail!("{errno_field}: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action} ({field})"),
            None => Ok(k),
        }
    };
    match action {
        A::ScmpActKill | A::ScmpActKillThread => simple(RET_KILL_THREAD),
        A::ScmpActKillProcess => simple(RET_KILL_PROCESS),
        A::ScmpActTrap => simple(RET_TRAP),
        A::ScmpActErrno => data(RET_ERRNO),
        A::ScmpActTrace => data(RET_TRACE),
        A::ScmpActLog => simple(RET_LOG),
        A::ScmpActNotify => simple(RET_USER_NOTIF),
        A::ScmpActAllow => simple(RET_ALLOW),
    }
}

/// A rule's `args` → the AND-chains it stands for: one chain, or (runc's rule for two
/// conditions on the same argument) one chain per condition.
pub(super) fn conditions(args: &[LinuxSeccompArg], field: &str) -> Result<Vec<Vec<Cond>>> {
    let mut conds = Vec::with_capacity(args.len());
    let mut seen = [0u8; 6];
    for (i, arg) in args.iter().enumerate() {
        let index = arg.index();
        if index >= 6 {
            bail!("{field}.args[{i}].index: {index} is out of range (syscalls have 6 arguments)");
        }
        seen[index] += 1;
        let op = match arg.op() {
            LinuxSeccompOperator::ScmpCmpNe => Op::Cmp(Cmp::Ne),
            LinuxSeccompOperator::ScmpCmpLt => Op::Cmp(Cmp::Lt),
            LinuxSeccompOperator::ScmpCmpLe => Op::Cmp(Cmp::Le),
            LinuxSeccompOperator::ScmpCmpEq => Op::Cmp(Cmp::Eq),
            LinuxSeccompOperator::ScmpCmpGe => Op::Cmp(Cmp::Ge),
            LinuxSeccompOperator::ScmpCmpGt => Op::Cmp(Cmp::Gt),
            LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq { mask: arg.value() },
        };
        let value = match op {
            Op::MaskedEq { .. } => arg.value_two().unwrap_or(0),
            Op::Cmp(_) => arg.value(),
        };
        conds.push(Cond {
            index: index as u8,
            op,
            value,
        });
    }
    if conds.is_empty() {
        return Ok(Vec::new());
    }
    if seen.iter().any(|&n| n > 1) {
        return Ok(conds.into_iter().map(|c| vec![c]).collect());
    }
    Ok(vec![conds])
}
