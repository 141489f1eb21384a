//! The whole program: runc's ENOSYS stub, then per arch (x86_64 with x32, then i386) a
//! binary search over syscall numbers whose leaves return an action or run libseccomp's
//! argument checks for one syscall; any other arch gets libseccomp's bad-arch action.

use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};

use super::abi::{Abi, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::bpf::{self, Target};
use super::codegen::Codegen;
use super::db::Db;
use super::profile::{RET_ERRNO, RET_KILL_THREAD};
use super::rules::Rules;

/// libseccomp's default action for an architecture the filter was not built for.
const BAD_ARCH_ACTION: u32 = RET_KILL_THREAD;

/// The program for `rules`, built from `seccomp` for `abis`, `default` the default action's
/// value.
pub(super) fn assemble(
    seccomp: &LinuxSeccomp,
    abis: &[Abi],
    rules: &Rules,
    default: u32,
) -> Result<Vec<libc::sock_filter>> {
    let mut filter = Vec::with_capacity(512);
    let (x86_64_max, x32_max, i386_max) = enosys_bounds(seccomp, abis, &rules.max_nr);
    enosys_prefix(&mut filter, x86_64_max, x32_max, i386_max);

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
    let db = &rules.dbs;
    let gen = Codegen::new(db, &sections, names > 32, default);
    let x86_64_code = x86_64_section(db, &gen, x32, default)?;
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
            &entries(db, i),
            &gen,
            db,
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
    Ok(filter)
}

/// runc's ENOSYS stub, in front of the filter: unless the default action lets syscalls
/// through (ALLOW, LOG, TRACE), numbers above the highest one the profile names on a listed
/// arch fail with ENOSYS, so libcs fall back from syscalls newer than the profile. Returns
/// that highest number for x86_64, x32 and i386, None where there is no stub.
fn enosys_bounds(
    seccomp: &LinuxSeccomp,
    abis: &[Abi],
    max_nr: &[Option<u32>],
) -> (Option<u32>, Option<u32>, Option<u32>) {
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
    (last(Abi::X86_64), last(Abi::X32), last(Abi::I386))
}

/// The x86_64 section: x86_64 numbers, and x32's (the same arch token) when the profile
/// lists x32 (its database at `x32`).
fn x86_64_section(
    db: &[Db],
    gen: &Codegen,
    x32: Option<usize>,
    default: u32,
) -> Result<Vec<libc::sock_filter>> {
    let mut x86_64_code = Vec::with_capacity(512);
    let mut list: Vec<(u32, usize, usize)> = entries(db, 0);
    match x32 {
        Some(i) => {
            // One section for both ABIs: x32 numbers have the x32 bit.
            list.extend(entries(db, i));
            list.sort_by_key(|e| e.0);
            section(&mut x86_64_code, &[(0, u32::MAX, default)], &list, gen, db)?;
        }
        None => {
            // x32 numbers are a bad arch, except -1 (a tracer skipping the syscall),
            // which goes through the rules.
            let mut dispatch = Vec::new();
            section(&mut dispatch, &[(0, u32::MAX, default)], &list, gen, db)?;
            x86_64_code.push(bpf::ld(bpf::OFF_NR));
            x86_64_code.push(bpf::jge(X32_SYSCALL_BIT, 0, 2));
            x86_64_code.push(bpf::jeq(u32::MAX, 1, 0));
            x86_64_code.push(bpf::ret(BAD_ARCH_ACTION));
            x86_64_code.extend(dispatch);
        }
    }
    Ok(x86_64_code)
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
    gen: &Codegen,
    dbs: &[Db],
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
fn entries(dbs: &[Db], d: usize) -> Vec<(u32, usize, usize)> {
    dbs[d]
        .syscalls
        .iter()
        .enumerate()
        .filter_map(|(i, s)| u32::try_from(s.num).ok().map(|n| (n, d, i)))
        .collect()
}
