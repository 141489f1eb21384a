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
//! The code is a binary search over syscall-number intervals (adjacent numbers with the same
//! action share one interval) whose leaves return the action directly or run the argument
//! checks for one syscall. Docker's default profile becomes a few hundred instructions, and a
//! syscall costs about a dozen instructions instead of a linear scan.

mod bpf;
mod notify;
mod syscalls;
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

pub use notify::send_listener;

use bpf::{Cmp, Cond, Op, Target};

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

/// The rules of one ABI, by syscall number.
#[derive(Default)]
struct Rules {
    entries: Vec<(u32, Entry)>,
    /// Table number (without the x32 bit) → index in `entries`; `u16::MAX` = none yet.
    slot: Vec<u16>,
}

impl Rules {
    fn entry(&mut self, nr: u32) -> &mut Entry {
        let key = (nr & !X32_SYSCALL_BIT) as usize;
        if key >= self.slot.len() {
            self.slot.resize(key + 1, u16::MAX);
        }
        if self.slot[key] == u16::MAX {
            self.slot[key] = self.entries.len() as u16;
            self.entries.push((nr, Entry::default()));
        }
        &mut self.entries[usize::from(self.slot[key])].1
    }
    /// Adds one rule, with libseccomp's precedence: the first unconditional rule for a syscall
    /// wins over everything else, whatever the order.
    fn add(&mut self, nr: u32, chains: &[Vec<Cond>], action: u32) {
        let entry = self.entry(nr);
        if entry.unconditional.is_some() {
            return;
        }
        if chains.is_empty() {
            entry.unconditional = Some(action);
            entry.chains.clear();
            return;
        }
        for c in chains {
            let key = c.iter().map(|c| c.index).min().unwrap_or(0);
            entry.chains.push((c.clone(), action, key));
        }
    }
    /// The entries by ascending syscall number (the slot table is indexed by number).
    fn ordered(&self, abi: Abi) -> impl Iterator<Item = (u32, &Entry, Abi)> + '_ {
        self.slot.iter().filter(|&&i| i != u16::MAX).map(move |&i| {
            let (nr, e) = &self.entries[usize::from(i)];
            (*nr, e, abi)
        })
    }
}

/// The rules for one syscall number of one ABI.
#[derive(Default)]
struct Entry {
    unconditional: Option<u32>,
    /// (conditions, action, sort key = lowest argument index)
    chains: Vec<(Vec<Cond>, u32, u8)>,
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
            // An x86_64 kernel never reports these arches: such a filter section would be
            // unreachable, so leaving it out changes nothing.
            _ => continue,
        };
        if !abis.contains(&abi) {
            abis.push(abi);
        }
    }

    let names: usize = seccomp
        .syscalls()
        .iter()
        .flatten()
        .map(|r| r.names().len())
        .sum();
    let mut db: Vec<Rules> = abis
        .iter()
        .map(|_| Rules {
            entries: Vec::with_capacity(names),
            slot: vec![u16::MAX; 560],
        })
        .collect();
    // Highest syscall number each ABI's names reach, for the ENOSYS stub (runc counts every
    // name, whatever its rule's action).
    let mut max_nr: Vec<Option<u32>> = vec![None; abis.len()];
    let mut notify = false;
    let mut unknown = Vec::new();
    let i386 = abis.iter().position(|a| *a == Abi::I386);

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
            if rule.names().iter().any(|n| n == "write") {
                // The runtime must still write to its sync pipe after loading; a notified
                // write would hang it before the agent ever gets the listener.
                bail!("{field}.action: SCMP_ACT_NOTIFY cannot be used for the write syscall");
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
                let Some(nr) = abi.number(numbers) else {
                    continue;
                };
                max_nr[a] = max_nr[a].max(Some(nr));
                if action != default {
                    db[a].add(nr, &chains, action);
                }
            }
            // libseccomp on i386 also filters the multiplexed form, socketcall(2) or ipc(2)
            // with the call number as argument 0 (replacing any condition on argument 0).
            if let (Some(a), Some((nr, call))) = (i386, multiplexed(*mux)) {
                if action != default {
                    let call = Cond {
                        index: 0,
                        op: Op::Cmp(Cmp::Eq),
                        value: call,
                    };
                    let mut muxed: Vec<Vec<Cond>> = chains
                        .iter()
                        .map(|c| {
                            let mut c: Vec<Cond> =
                                c.iter().filter(|c| c.index != 0).copied().collect();
                            c.insert(0, call);
                            c
                        })
                        .collect();
                    if muxed.is_empty() {
                        muxed.push(vec![call]);
                    }
                    db[a].add(nr, &muxed, action);
                }
            }
        }
    }
    let enosys_stub = !matches!(
        seccomp.default_action(),
        LinuxSeccompAction::ScmpActAllow
            | LinuxSeccompAction::ScmpActLog
            | LinuxSeccompAction::ScmpActTrace
    );
    let enosys = RET_ERRNO | libc::ENOSYS as u32;
    let above = |m: Option<u32>| -> (u32, u32) {
        // (last number the profile reaches, action for the numbers above it)
        match m {
            Some(m) if enosys_stub => (m, enosys),
            _ => (u32::MAX, default),
        }
    };

    // x86_64 (with x32 numbers when listed) is always present: libseccomp always includes the
    // native arch.
    let x64 = 0;
    let mut x86_64_code = Vec::with_capacity(512);
    {
        let (m64, a64) = above(max_nr[x64]);
        let mut bg = vec![(0, m64.min(X32_SYSCALL_BIT - 1), default)];
        if m64 < X32_SYSCALL_BIT - 1 {
            bg.push((m64 + 1, X32_SYSCALL_BIT - 1, a64));
        }
        let mut entries: Vec<(u32, &Entry, Abi)> = db[x64].ordered(Abi::X86_64).collect();
        match abis.iter().position(|a| *a == Abi::X32) {
            Some(i) => {
                let (m32, a32) = above(max_nr[i]);
                bg.push((X32_SYSCALL_BIT, m32, default));
                if m32 < u32::MAX {
                    bg.push((m32 + 1, u32::MAX, a32));
                }
                entries.extend(db[i].ordered(Abi::X32));
            }
            None => {
                // libseccomp: x32 numbers are a bad arch, except -1 (a tracer skipping the
                // syscall), which goes through the rules, i.e. gets the default action.
                bg.push((X32_SYSCALL_BIT, u32::MAX - 1, BAD_ARCH_ACTION));
                bg.push((u32::MAX, u32::MAX, default));
            }
        }
        section(&mut x86_64_code, &bg, &entries, default)?;
    }

    // Layout: ld arch; x86_64? → its section (the hot path: no extra jump); otherwise a `ja`
    // (the section may be longer than an 8-bit offset) over it to the i386 check or bad arch.
    let mut filter = Vec::with_capacity(x86_64_code.len() + 64);
    filter.push(bpf::ld(bpf::OFF_ARCH));
    filter.push(bpf::jeq(AUDIT_ARCH_X86_64, 1, 0));
    filter.push(bpf::ja(x86_64_code.len() as u32));
    filter.extend_from_slice(&x86_64_code);
    match abis.iter().position(|a| *a == Abi::I386) {
        Some(i) => {
            filter.push(bpf::jeq(AUDIT_ARCH_I386, 1, 0));
            filter.push(bpf::ret(BAD_ARCH_ACTION));
            let (m, a) = above(max_nr[i]);
            let mut bg = vec![(0, m, default)];
            if m < u32::MAX {
                bg.push((m + 1, u32::MAX, a));
            }
            let entries: Vec<(u32, &Entry, Abi)> = db[i].ordered(Abi::I386).collect();
            section(&mut filter, &bg, &entries, default)?;
        }
        None => filter.push(bpf::ret(BAD_ARCH_ACTION)),
    }
    if filter.len() > bpf::MAX_INSNS {
        bail!(
            "linux.seccomp: the compiled filter has {} instructions, more than the kernel's {}",
            filter.len(),
            bpf::MAX_INSNS
        );
    }
    Ok(Program {
        filter,
        notify,
        unknown,
    })
}

/// Emits one ABI section: `ld nr` and the dispatch tree. `bg` lists the background action of
/// number ranges (sorted, covering 0..=u32::MAX); `entries` are the syscalls with rules, by
/// ascending number.
fn section(
    out: &mut Vec<libc::sock_filter>,
    bg: &[(u32, u32, u32)],
    entries: &[(u32, &Entry, Abi)],
    default: u32,
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
        while let Some(&&(nr, entry, abi)) = next.peek() {
            if nr > hi {
                break;
            }
            next.next();
            if let Some(c) = cur {
                if nr > c {
                    push(&mut intervals, c, Target::Ret(action));
                }
            }
            let target = match entry.unconditional {
                Some(k) => Target::Ret(k),
                None => {
                    let mut chains: Vec<&(Vec<Cond>, u32, u8)> = entry.chains.iter().collect();
                    chains.sort_by_key(|c| c.2); // stable: config order within one index
                    let chains: Vec<(Vec<Cond>, u32)> =
                        chains.into_iter().map(|c| (c.0.clone(), c.1)).collect();
                    let code = bpf::arg_block(&chains, abi.wide(), default)
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
    conds.sort_by_key(|c| c.index);
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
    let prog = libc::sock_fprog {
        len: program.filter.len() as u16,
        filter: program.filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `program.filter`, which outlives the call; the kernel copies
    // the instructions and does not keep the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
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
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER the kernel returns a new file descriptor that nothing else
    // owns; wrapping it makes it closed exactly once.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as i32) }))
}
