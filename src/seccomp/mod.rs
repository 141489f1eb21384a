//! `linux.seccomp`: the OCI seccomp profile compiled to classic BPF in pure Rust (no
//! libseccomp), loaded with seccomp(2), and the `SCMP_ACT_NOTIFY` listener handed to an agent.
//!
//! Semantics follow what runc gets from libseccomp, so a profile behaves the same under both:
//! - The filter dispatches on `seccomp_data.arch`: x86_64 is always present (libseccomp always
//!   includes the native arch); `SCMP_ARCH_X86` adds the i386 compat ABI and `SCMP_ARCH_X32`
//!   the x32 ABI (x86_64's arch token with `__X32_SYSCALL_BIT` set in the number). Any other
//!   arch, and x32 numbers when x32 is not listed, get libseccomp's default bad-arch action,
//!   `SCMP_ACT_KILL` (kill the thread). Foreign arches in the list (ARM, …) can never be
//!   reported by an x86_64 kernel and are ignored.
//! - Syscall names unknown to an ABI are skipped for that ABI, never fatal. On i386 a socket
//!   or SysV IPC name also covers its multiplexed form, socketcall(2)/ipc(2) with the call
//!   number in argument 0, as libseccomp does (`send`/`recv` exist only that way).
//! - Rules whose action equals the default action are dropped (runc does this to keep
//!   libseccomp from rejecting them). An unconditional rule for a syscall wins over rules with
//!   arguments, whatever their order; the first unconditional rule wins over later ones.
//! - Conditions in one rule are ANDed; several rules for one syscall are ORed, tried by lowest
//!   argument index first and then in config order. As in runc, a rule that has two conditions
//!   on the same argument is split into one rule per condition (ORed).
//! - Arguments are compared as unsigned 64-bit values on x86_64 (high word, then low word) and
//!   as their low 32 bits on the 32-bit ABIs, as libseccomp does.
//! - runc's ENOSYS stub: unless the default action lets syscalls through (ALLOW, LOG, TRACE),
//!   syscall numbers above the highest one the profile names (per ABI) return ENOSYS rather
//!   than the default action, so libcs fall back from syscalls newer than the profile
//!   (clone3, …).
//!
//! - Where libseccomp 2.5.4 (Debian's, which runc links) is defective, hutch does not copy
//!   the defect into a filter that lets more through than the profile asks. An arch section
//!   whose first syscall in libseccomp's order is a pseudo syscall (a name that arch lacks)
//!   never loads the syscall number, so under runc none of that arch's rules apply and every
//!   call gets the default action: with an ALLOW default that lets through what the rules
//!   deny. hutch enforces the rules there. Rules that libseccomp can only merge through
//!   freed memory (it may loop forever or emit garbage) are refused with an error naming the
//!   rule. The differential test (`diff.rs`) counts and prints both instead of comparing.
//!   Everything else, including libseccomp's wrong skipped reloads (see `codegen::Codegen`), is
//!   reproduced, so the decisions are runc's.
//!
//! The code is a binary search over syscall-number intervals (adjacent numbers with the same
//! action share one interval) whose leaves return the action directly or run the argument
//! checks for one syscall. Docker's default profile becomes a few hundred instructions, and a
//! syscall costs about a dozen instructions instead of a linear scan.

mod bpf;
mod codegen;
mod cond;
mod db;
#[cfg(all(test, target_arch = "x86_64"))]
mod diff;
mod notify;
mod syscalls;
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

use std::os::fd::OwnedFd;

use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

pub use notify::send_listener;

use bpf::Target;
use cond::{Cmp, Cond, Op};

/// `AUDIT_ARCH_*` values the kernel reports in `seccomp_data.arch` (linux/audit.h).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// x32 syscalls are x86_64 syscalls with this bit set in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
/// libseccomp's bound for SCMP_ACT_ERRNO's value (exclusive).
const MAX_ERRNO: u32 = 4095;

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
const NOTIFY_REFUSED: &[&str] = &[
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

/// libseccomp's default action for an architecture the filter was not built for.
const BAD_ARCH_ACTION: u32 = RET_KILL_THREAD;

/// What `hutch features` can honestly report under `linux.seccomp`: every OCI action and
/// operator, the x86 family of arches (others are accepted in a profile but ignored, since an
/// x86_64 kernel never reports them), and the filter flags `load` knows (the kernel may still
/// lack one: SPEC_ALLOW needs 4.17, WAIT_KILLABLE_RECV 5.19).
pub const FEATURE_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];
pub const FEATURE_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];
pub const FEATURE_ARCHES: &[&str] = &["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"];
pub const FEATURE_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// A compiled filter, ready for [`load`].
#[derive(Clone, Debug)]
pub struct Program {
    filter: Vec<libc::sock_filter>,
    /// Some rule uses `SCMP_ACT_NOTIFY`: load must ask for a listener fd.
    notify: bool,
    /// Names that are no syscall on any x86 ABI (skipped, as runc does); to log at debug.
    unknown: Vec<String>,
}

impl Program {
    /// The BPF instructions.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.filter
    }
    /// True when loading returns a notify listener fd (some rule is `SCMP_ACT_NOTIFY`).
    pub fn needs_listener(&self) -> bool {
        self.notify
    }
    /// Names the profile lists that are no syscall on any x86 ABI; they were skipped.
    pub fn unknown_syscalls(&self) -> &[String] {
        &self.unknown
    }
}

/// The x86 ABIs one filter can serve on an x86_64 kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Abi {
    X86_64,
    I386,
    X32,
}

impl Abi {
    /// Column in `syscalls::SYSCALLS`.
    fn column(self) -> usize {
        match self {
            Abi::X86_64 => 0,
            Abi::I386 => 1,
            Abi::X32 => 2,
        }
    }
    /// The number the kernel puts in `seccomp_data.nr` for a syscall-table row, if this ABI
    /// has the syscall.
    fn number(self, row: &[i16; 3]) -> Option<u32> {
        let nr = u32::try_from(row[self.column()]).ok()?;
        Some(if self == Abi::X32 {
            nr | X32_SYSCALL_BIT
        } else {
            nr
        })
    }
    #[cfg(test)]
    fn syscall(self, name: &str) -> Option<u32> {
        self.number(&lookup(name)?.1)
    }
    /// Arguments are 64-bit only on x86_64; libseccomp compares the low word elsewhere.
    fn wide(self) -> bool {
        self == Abi::X86_64
    }
}

/// A syscall's row: its numbers on the three ABIs and its i386 multiplexed form (one hash
/// lookup for everything: name lookups are most of the compile time of a large allow-list).
fn lookup(name: &str) -> Option<&'static (&'static str, [i16; 3], u8)> {
    let mut hash: u32 = 0x811c_9dc5; // FNV-1a, as hack/seccomp-syscalls/gen.py builds INDEX
    for b in name.bytes() {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let mask = syscalls::INDEX.len() - 1;
    let mut slot = hash as usize & mask;
    loop {
        let row = usize::from(syscalls::INDEX[slot]).checked_sub(1)?;
        let entry = &syscalls::SYSCALLS[row];
        if entry.0 == name {
            return Some(entry);
        }
        slot = (slot + 1) & mask;
    }
}

/// A name's row in the syscall table (an identity for its pseudo syscall number).
fn lookup_index(name: &str) -> u32 {
    let base = syscalls::SYSCALLS.as_ptr() as usize;
    lookup(name).map_or(0, |row| {
        ((row as *const _ as usize - base) / std::mem::size_of_val(row)) as u32
    })
}

/// i386's multiplexed form of a socket or SysV IPC call (the table's mux column): the
/// socketcall(2) or ipc(2) syscall number and the call number it takes in argument 0.
fn multiplexed(mux: u8) -> Option<(u32, u64)> {
    const SOCKETCALL: u32 = 102;
    const IPC: u32 = 117;
    match mux {
        0 => None,
        1..=100 => Some((SOCKETCALL, u64::from(mux))),
        _ => Some((IPC, u64::from(mux - 100))),
    }
}

/// OCI `linux.seccomp` → BPF. Errors name the offending field, e.g.
/// `linux.seccomp.syscalls[3].action: ...`.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program> {
    // The syscall tables, arch tokens and argument layout here are the x86 family's.
    if !cfg!(target_arch = "x86_64") {
        bail!("linux.seccomp: hutch compiles seccomp filters for x86_64 hosts only");
    }
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

    let mut abis = vec![Abi::X86_64];
    for arch in seccomp.architectures().iter().flatten() {
        let abi = match arch {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::I386,
            Arch::ScmpArchX32 => Abi::X32,
            other => {
                // An x86_64 kernel never reports these arches (see `foreign` below), but
                // libseccomp refuses to mix endiannesses, and so runc refuses the profile.
                let Some(token) = foreign_token(other) else {
                    bail!(
                        "linux.seccomp.architectures: {other} is big-endian and cannot share a \
                         filter with x86_64"
                    );
                };
                let _ = token;
                continue;
            }
        };
        if !abis.contains(&abi) {
            abis.push(abi);
        }
    }

    // One rule database per ABI, as libseccomp keeps one per arch.
    let mut db: Vec<db::Db> = abis.iter().map(|a| db::Db::new(!a.wide())).collect();
    // Highest syscall number each listed ABI's names reach, for runc's ENOSYS stub (runc
    // counts every name, whatever its rule's action, and only for the listed arches).
    let listed = |abi: Abi| {
        seccomp.architectures().iter().flatten().any(|a| {
            matches!(
                (a, abi),
                (Arch::ScmpArchX86_64, Abi::X86_64)
                    | (Arch::ScmpArchX86, Abi::I386)
                    | (Arch::ScmpArchX32, Abi::X32)
            )
        })
    };
    let mut max_nr: Vec<Option<u32>> = vec![None; abis.len()];
    let mut notify = false;
    let mut unknown = Vec::new();

    for (r, rule) in seccomp.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{r}]");
        let action = action_value(
            rule.action(),
            rule.errno_ret(),
            &format!("{field}.action"),
            &format!("{field}.errnoRet"),
        )?;
        let chains = conditions(rule.args().as_deref().unwrap_or_default(), &field)?;
        if rule.action() == LinuxSeccompAction::ScmpActNotify {
            if let Some((n, name)) = rule
                .names()
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
            notify = true;
        }
        for (n, name) in rule.names().iter().enumerate() {
            if name.is_empty() {
                bail!("{field}.names[{n}]: empty syscall name");
            }
            let Some((_, numbers, mux)) = lookup(name) else {
                if !unknown.contains(name) {
                    unknown.push(name.clone());
                }
                continue;
            };
            for (a, abi) in abis.iter().enumerate() {
                // libseccomp resolves an i386 socket or IPC name to its multiplexed pseudo
                // number, which runc's stub does not count.
                let counted = !(*abi == Abi::I386 && *mux != 0);
                if let Some(nr) = abi.number(numbers).filter(|_| counted) {
                    if listed(*abi) {
                        max_nr[a] = max_nr[a].max(Some(nr));
                    }
                }
                // runc drops rules whose action is the default one.
                if action == default {
                    continue;
                }
                check_errno(action, &format!("{field}.errnoRet"))?;
                let conflict = |_| {
                    anyhow!(
                        "{field}: the rules for {name} conflict (libseccomp, and so runc, \
                         refuses them: two rules end on the same argument check with \
                         different actions)"
                    )
                };
                let add = |db: &mut db::Db, nr: i64, chains: &[Vec<Cond>]| {
                    if chains.is_empty() {
                        return db.rule_add(nr, &[], action);
                    }
                    chains.iter().try_for_each(|c| db.rule_add(nr, c, action))
                };
                // A name this arch lacks is a pseudo syscall to libseccomp: kept in the
                // database (it counts for libseccomp's merge and order), never emitted.
                let pseudo = -1 - i64::from(lookup_index(name));
                if *abi == Abi::I386 {
                    // libseccomp's x86 rule: socket and SysV IPC calls also (or only) as their
                    // multiplexed form, socketcall(2)/ipc(2) with the call number replacing
                    // the condition on argument 0; the direct call after it.
                    let direct = abi.number(numbers);
                    if let Some((mux_nr, call)) = multiplexed(*mux) {
                        let call = Cond {
                            index: 0,
                            op: Op::Cmp(Cmp::Eq),
                            value: call,
                        };
                        let muxed: Vec<Vec<Cond>> = if chains.is_empty() {
                            vec![vec![call]]
                        } else {
                            chains
                                .iter()
                                .map(|c| {
                                    let mut c: Vec<Cond> =
                                        c.iter().filter(|c| c.index != 0).copied().collect();
                                    c.push(call);
                                    c
                                })
                                .collect()
                        };
                        add(&mut db[a], i64::from(mux_nr), &muxed).map_err(conflict)?;
                    }
                    if let Some(nr) = direct {
                        add(&mut db[a], i64::from(nr), &chains).map_err(conflict)?;
                    } else if *mux != 0 {
                        add(&mut db[a], pseudo, &chains).map_err(conflict)?;
                    }
                } else {
                    let nr = abi.number(numbers).map_or(pseudo, i64::from);
                    add(&mut db[a], nr, &chains).map_err(conflict)?;
                }
                if db[a].is_broken() {
                    // libseccomp 2.5.4 reads and writes tree nodes it has already freed
                    // while merging this rule: what runc would load is undefined.
                    bail!(
                        "{field}: the rules for {name} cannot be merged as libseccomp does \
                         (its rule merge uses freed memory on them, so runc's filter is \
                         undefined); split or reorder the rules"
                    );
                }
            }
        }
    }
    // runc's ENOSYS stub, in front of the filter: unless the default action lets syscalls
    // through (ALLOW, LOG, TRACE), numbers above the highest one the profile names on a listed
    // arch fail with ENOSYS, so libcs fall back from syscalls newer than the profile.
    let enosys_stub = !matches!(
        seccomp.default_action(),
        LinuxSeccompAction::ScmpActAllow
            | LinuxSeccompAction::ScmpActLog
            | LinuxSeccompAction::ScmpActTrace
    );
    let last = |abi: Abi| {
        let m = abis.iter().position(|a| *a == abi).and_then(|i| max_nr[i]);
        // runc skips an arch whose highest number is 0 (it only names read).
        m.filter(|&m| enosys_stub && m > 0)
    };
    let mut filter = Vec::with_capacity(512);
    enosys_prefix(
        &mut filter,
        last(Abi::X86_64),
        last(Abi::X32),
        last(Abi::I386),
    );

    // Then what libseccomp generates: per arch, a dispatch over the syscall numbers with rules.
    // The argument checks come from libseccomp's generator, for all arches at once (it
    // shares code between syscalls and arches, see codegen::Codegen).
    let x32 = abis.iter().position(|a| *a == Abi::X32);
    let i386 = abis.iter().position(|a| *a == Abi::I386);
    let mut sections = vec![std::iter::once(0).chain(x32).collect::<Vec<_>>()];
    sections.extend(i386.map(|i| vec![i]));
    // runc asks libseccomp for its binary-tree layout above 32 syscall names.
    let names: usize = seccomp
        .syscalls()
        .iter()
        .flatten()
        .map(|r| r.names().len())
        .sum();
    let gen = codegen::Codegen::new(&db, &sections, names > 32, default);
    let mut x86_64_code = Vec::with_capacity(512);
    {
        let mut list: Vec<(u32, usize, usize)> = entries(&db, 0);
        match x32 {
            Some(i) => {
                // One section for both ABIs: x32 numbers have the x32 bit.
                list.extend(entries(&db, i));
                list.sort_by_key(|e| e.0);
                section(
                    &mut x86_64_code,
                    &[(0, u32::MAX, default)],
                    &list,
                    &gen,
                    &db,
                )?;
            }
            None => {
                // x32 numbers are a bad arch, except -1 (a tracer skipping the syscall),
                // which goes through the rules.
                let mut dispatch = Vec::new();
                section(&mut dispatch, &[(0, u32::MAX, default)], &list, &gen, &db)?;
                x86_64_code.push(bpf::ld(bpf::OFF_NR));
                x86_64_code.push(bpf::jge(X32_SYSCALL_BIT, 0, 2));
                x86_64_code.push(bpf::jeq(u32::MAX, 1, 0));
                x86_64_code.push(bpf::ret(BAD_ARCH_ACTION));
                x86_64_code.extend(dispatch);
            }
        }
    }
    // ld arch; x86_64? → its section; otherwise a `ja` (the section may be longer than an
    // 8-bit offset) over it to the next arch check.
    filter.push(bpf::ld(bpf::OFF_ARCH));
    filter.push(bpf::jeq(AUDIT_ARCH_X86_64, 1, 0));
    filter.push(bpf::ja(x86_64_code.len() as u32));
    filter.extend_from_slice(&x86_64_code);
    if let Some(i) = i386 {
        let mut code = Vec::new();
        section(
            &mut code,
            &[(0, u32::MAX, default)],
            &entries(&db, i),
            &gen,
            &db,
        )?;
        filter.push(bpf::jeq(AUDIT_ARCH_I386, 1, 0));
        filter.push(bpf::ja(code.len() as u32));
        filter.extend(code);
    }
    filter.push(bpf::ret(BAD_ARCH_ACTION));
    if filter.len() > bpf::MAX_INSNS {
        bail!(
            "linux.seccomp: the compiled filter has {} instructions, more than the kernel's {}",
            filter.len(),
            bpf::MAX_INSNS
        );
    }
    #[cfg(test)]
    if std::env::var_os("HUTCH_SECCOMP_DUMP").is_some() {
        for (d, abi) in db.iter().zip(&abis) {
            eprintln!("== {abi:?}\n{}", d.dump());
        }
    }
    Ok(Program {
        filter,
        notify,
        unknown,
    })
}

/// The `AUDIT_ARCH_*` token of a little-endian non-x86 arch; None for big-endian ones.
fn foreign_token(arch: &Arch) -> Option<u32> {
    const LE64: u32 = 0x8000_0000 | 0x4000_0000;
    const LE32: u32 = 0x4000_0000;
    Some(match arch {
        Arch::ScmpArchArm => LE32 | 40,
        Arch::ScmpArchAarch64 => LE64 | 183,
        Arch::ScmpArchMipsel => LE32 | 8,
        Arch::ScmpArchMipsel64 => LE64 | 8,
        Arch::ScmpArchMipsel64n32 => LE64 | 0x2000_0000 | 8,
        Arch::ScmpArchPpc64le => LE64 | 21,
        Arch::ScmpArchRiscv64 => LE64 | 243,
        _ => return None,
    })
}

/// runc's ENOSYS stub (libcontainer/seccomp/patchbpf): per listed arch with a highest
/// number, greater numbers return ENOSYS; x86_64 and x32 are told apart by the x32 bit.
/// Everything else falls through to the filter after it.
fn enosys_prefix(
    out: &mut Vec<libc::sock_filter>,
    x86_64: Option<u32>,
    x32: Option<u32>,
    i386: Option<u32>,
) {
    #[derive(Clone, Copy, PartialEq)]
    enum L {
        Next,
        X64,
        X32,
        I386,
        Enosys,
        Filter,
    }
    let x_any = x86_64.is_some() || x32.is_some();
    if !x_any && i386.is_none() {
        return;
    }
    // (label here, instruction, jt, jf); `ja` uses jt.
    let mut code: Vec<(Option<L>, libc::sock_filter, L, L)> = Vec::new();
    let mut push = |at: Option<L>, i: libc::sock_filter, jt: L, jf: L| code.push((at, i, jt, jf));
    // `jgt max` → ENOSYS, else → the filter; without a max, straight to the filter.
    let check = |push: &mut dyn FnMut(Option<L>, libc::sock_filter, L, L),
                 at: Option<L>,
                 max: Option<u32>| match max {
        Some(m) => {
            push(at, bpf::jgt(m, 0, 0), L::Enosys, L::Next);
            push(None, bpf::ja(0), L::Filter, L::Next);
        }
        None => push(at, bpf::ja(0), L::Filter, L::Next),
    };
    push(None, bpf::ld(bpf::OFF_ARCH), L::Next, L::Next);
    if x_any {
        push(None, bpf::jeq(AUDIT_ARCH_X86_64, 0, 0), L::X64, L::Next);
    }
    if i386.is_some() {
        push(None, bpf::jeq(AUDIT_ARCH_I386, 0, 0), L::I386, L::Next);
    }
    push(None, bpf::ja(0), L::Filter, L::Next);
    if x_any {
        push(Some(L::X64), bpf::ld(bpf::OFF_NR), L::Next, L::Next);
        push(None, bpf::jset(X32_SYSCALL_BIT, 0, 0), L::X32, L::Next);
        check(&mut push, None, x86_64);
        check(&mut push, Some(L::X32), x32);
    }
    if i386.is_some() {
        push(Some(L::I386), bpf::ld(bpf::OFF_NR), L::Next, L::Next);
        check(&mut push, None, i386);
    }
    push(
        Some(L::Enosys),
        bpf::ret(RET_ERRNO | libc::ENOSYS as u32),
        L::Next,
        L::Next,
    );
    let end = code.len();
    let pos = |l: L, from: usize| -> usize {
        match l {
            L::Next => from + 1,
            L::Filter => end,
            l => code.iter().position(|c| c.0 == Some(l)).unwrap_or(end),
        }
    };
    for (i, &(_, mut insn, jt, jf)) in code.iter().enumerate() {
        let off = |l: L| pos(l, i) - i - 1;
        if insn.code == bpf::ja(0).code {
            insn.k = off(jt) as u32;
        } else if insn.code != bpf::ld(0).code && insn.code != bpf::ret(0).code {
            // The stub is a few instructions long: every offset fits in 8 bits.
            insn.jt = off(jt) as u8;
            insn.jf = off(jf) as u8;
        }
        out.push(insn);
    }
}

/// Emits one ABI section: `ld nr` and the dispatch tree. `bg` lists the background action of
/// number ranges (sorted, covering 0..=u32::MAX); `entries` are the syscalls with rules, by
/// ascending number.
fn section(
    out: &mut Vec<libc::sock_filter>,
    bg: &[(u32, u32, u32)],
    entries: &[(u32, usize, usize)],
    gen: &codegen::Codegen,
    dbs: &[db::Db],
) -> Result<()> {
    let mut blocks = Vec::new();
    let mut intervals: Vec<(u32, Target)> = Vec::with_capacity(2 * entries.len() + 8);
    let push = |iv: &mut Vec<(u32, Target)>, start: u32, t: Target| {
        if let (Some((_, Target::Ret(prev))), Target::Ret(k)) = (iv.last(), &t) {
            if prev == k {
                return;
            }
        }
        iv.push((start, t));
    };
    let mut next = entries.iter().peekable();
    for &(lo, hi, action) in bg {
        let mut cur = Some(lo);
        while let Some(&&(nr, d, s)) = next.peek() {
            if nr > hi {
                break;
            }
            next.next();
            if let Some(c) = cur {
                if nr > c {
                    push(&mut intervals, c, Target::Ret(action));
                }
            }
            let target = match dbs[d].syscalls[s].chains {
                None => Target::Ret(dbs[d].syscalls[s].action),
                Some(_) => {
                    let code = gen
                        .syscall_code(d, s)
                        .map_err(|e| anyhow!("linux.seccomp.syscalls: {e}"))?;
                    blocks.push(code);
                    Target::Block(blocks.len() - 1)
                }
            };
            push(&mut intervals, nr, target);
            cur = nr.checked_add(1);
        }
        if let Some(c) = cur {
            if c <= hi {
                push(&mut intervals, c, Target::Ret(action));
            }
        }
    }
    out.push(bpf::ld(bpf::OFF_NR));
    bpf::dispatch_tree(out, &intervals, &blocks);
    Ok(())
}

/// The syscalls of database `d`, by ascending number: (number, database, entry).
fn entries(dbs: &[db::Db], d: usize) -> Vec<(u32, usize, usize)> {
    dbs[d]
        .syscalls
        .iter()
        .enumerate()
        .filter_map(|(i, s)| u32::try_from(s.num).ok().map(|n| (n, d, i)))
        .collect()
}

/// libseccomp (so runc) refuses SCMP_ACT_ERRNO with an errno from MAX_ERRNO (4095) up, when
/// the action is used.
fn check_errno(action: u32, field: &str) -> Result<()> {
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
fn action_value(
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
fn conditions(args: &[oci_spec::runtime::LinuxSeccompArg], field: &str) -> Result<Vec<Vec<Cond>>> {
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

/// Loads `program` into the calling thread with seccomp(2) `SECCOMP_SET_MODE_FILTER` and the
/// profile's `flags`; when a rule uses `SCMP_ACT_NOTIFY`, also asks for
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` and returns the listener fd.
///
/// The caller must have set no_new_privs or hold CAP_SYS_ADMIN (the kernel's rule). Call it as
/// late as possible before exec: every syscall after it is filtered.
pub fn load(program: &Program, seccomp: &LinuxSeccomp) -> Result<Option<OwnedFd>> {
    let mut flags: libc::c_ulong = 0;
    let mut names = Vec::new();
    for flag in seccomp.flags().iter().flatten() {
        let (bit, name) = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                (libc::SECCOMP_FILTER_FLAG_TSYNC, "SECCOMP_FILTER_FLAG_TSYNC")
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                (libc::SECCOMP_FILTER_FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG")
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => (
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            ),
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => (
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            ),
        };
        flags |= bit;
        names.push(name);
    }
    if program.notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        names.push("SECCOMP_FILTER_FLAG_NEW_LISTENER");
        // The kernel refuses TSYNC with NEW_LISTENER unless TSYNC failures are reported as
        // ESRCH instead of a thread id (which would be ambiguous with the returned fd).
        if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    } else {
        // WAIT_KILLABLE_RECV only concerns notify waits, and the kernel rejects it without a
        // listener; with no notify rule it has nothing to do.
        flags &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    match crate::syscall::seccomp::set_mode_filter(&program.filter, flags) {
        Ok(listener) => Ok(listener),
        Err(err) => {
            let hint = match err.raw_os_error() {
                Some(libc::EACCES) => " (needs no_new_privs or CAP_SYS_ADMIN)",
                Some(libc::EINVAL) if flags != 0 => " (is every flag supported by this kernel?)",
                _ => "",
            };
            bail!(
                "seccomp(SECCOMP_SET_MODE_FILTER, flags=[{}]): {err}{hint}",
                names.join("|")
            );
        }
    }
}
