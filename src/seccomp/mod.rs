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
//!
//! The steps of [`compile`], each in its own file: `profile` checks the OCI values (actions,
//! errno values, argument conditions, what a NOTIFY rule may name); `abi` resolves the x86
//! ABIs and syscall names (the table in `syscalls` is generated); `rules` builds one rule
//! database per ABI in `db`, libseccomp's db.c ported; `filter` assembles the program, with
//! the argument checks from `codegen` (libseccomp's gen_bpf.c replayed) and the instructions
//! from `bpf`; `cond` holds the condition types they share. [`load()`] loads a program and
//! [`send_listener`] hands the notify listener to the agent. `tests` and `diff` (against
//! libseccomp itself) are test-only.
//!
//! Why a compiler of hutch's own rather than rust-vmm's `seccompiler` crate (checked against
//! the documentation and source of 0.5): it is made for a process's own allow-list and lacks
//! what an OCI profile needs.
//! - One match action per filter (`SeccompFilter::new(rules, mismatch_action, match_action,
//!   arch)`), where a profile gives each rule its own.
//! - No notify: `SeccompAction` is Allow, Errno, KillThread, KillProcess, Log, Trace, Trap
//!   (no `SECCOMP_RET_USER_NOTIF`), and the loaders (`apply_filter`,
//!   `apply_filter_all_threads`) take no flag but TSYNC and return no listener fd: no
//!   `listenerPath`, no `SECCOMP_FILTER_FLAG_LOG`, `SPEC_ALLOW` or `WAIT_KILLABLE_RECV`. They
//!   also always set no_new_privs, which a container without `noNewPrivileges` must not get.
//! - One `TargetArch` per filter (x86_64, aarch64 or riscv64), anything else killing
//!   the process: no i386 or x32 section next to x86_64, no x32 bit, and not libseccomp's
//!   bad-arch action (kill the thread).
//! - Rules tried in the order given, not merged into libseccomp's trees, so overlapping rules
//!   would decide otherwise than under runc (see `db`); each syscall is one more `jeq` in a
//!   linear chain, not a binary search; the caller gives numbers, and the `json` feature's
//!   name tables are 64-bit only (no i386 socketcall/ipc multiplexing).
//!
//! What it would lend, its instruction and condition types, is a few lines here; so none of
//! it is used.

mod abi;
mod bpf;
mod codegen;
mod cond;
mod db;
#[cfg(all(test, target_arch = "x86_64"))]
mod diff;
mod filter;
mod load;
mod notify;
mod profile;
mod rules;
mod syscalls;
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxSeccomp;

pub use load::load;
pub use notify::send_listener;

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

/// A compiled filter, ready for [`load()`].
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

    /// The program as `create` keeps it in the state directory, so that `exec` loads the
    /// container's filter instead of compiling the profile again (~1.5 ms for Docker's).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SAVED_MAGIC.len() + 1 + self.filter.len() * 8);
        out.extend_from_slice(SAVED_MAGIC);
        out.push(u8::from(self.notify));
        bpf::encode(&self.filter, &mut out);
        out
    }

    /// Reads what [`Program::to_bytes`] wrote; anything else (another hutch's format, a cut
    /// file) is an error, and the caller compiles the profile instead.
    pub fn from_bytes(data: &[u8]) -> Result<Program> {
        let Some(rest) = data.strip_prefix(SAVED_MAGIC) else {
            bail!("not a saved seccomp program (format {SAVED_MAGIC:?} expected)");
        };
        let Some((&notify, insns)) = rest.split_first() else {
            bail!("saved seccomp program: cut short");
        };
        let count = insns.len() / 8;
        if notify > 1 || insns.len() % 8 != 0 || count == 0 || count > bpf::MAX_INSNS {
            bail!("saved seccomp program: malformed ({} bytes)", data.len());
        }
        Ok(Program {
            filter: bpf::decode(insns),
            notify: notify == 1,
            unknown: Vec::new(),
        })
    }
}

/// Starts a saved program; the digit is the format's version.
const SAVED_MAGIC: &[u8] = b"hutch-seccomp-bpf-1\n";

/// OCI `linux.seccomp` → BPF. Errors name the offending field, e.g.
/// `linux.seccomp.syscalls[3].action: ...`.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program> {
    // The syscall tables, arch tokens and argument layout here are the x86 family's.
    if !cfg!(target_arch = "x86_64") {
        bail!("linux.seccomp: hutch compiles seccomp filters for x86_64 hosts only");
    }
    let default = profile::default_action(seccomp)?;
    let abis = abi::abis(seccomp)?;
    let rules = rules::build(seccomp, &abis, default)?;
    let filter = filter::assemble(seccomp, &abis, &rules, default)?;
    #[cfg(test)]
    if std::env::var_os("HUTCH_SECCOMP_DUMP").is_some() {
        for (d, abi) in rules.dbs.iter().zip(&abis) {
            eprintln!("== {abi:?}\n{}", d.dump());
        }
    }
    Ok(Program {
        filter,
        notify: rules.notify,
        unknown: rules.unknown,
    })
}
