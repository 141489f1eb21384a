//! Classic-BPF code generation for seccomp filters.
//!
//! Everything here produces self-contained, forward-only code blocks: every jump stays inside
//! the block that contains it and every path ends in `ret`. That lets the syscall dispatch tree
//! be assembled bottom-up by concatenation, with no label resolution pass: a parent only needs
//! the length of its left child to jump over it.

use libc::sock_filter;

use super::cond::NodeOp;

// Opcodes (linux/bpf_common.h); libc does not export all of them on every target.
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
const BPF_ALU_AND_K: u16 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
const BPF_JA: u16 = 0x05; // BPF_JMP | BPF_JA
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JGT_K: u16 = 0x05 | 0x20;
const BPF_JGE_K: u16 = 0x05 | 0x30;
const BPF_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;

/// Offsets into `struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }`.
pub(super) const OFF_NR: u32 = 0;
pub(super) const OFF_ARCH: u32 = 4;
#[cfg(test)]
const OFF_ARGS: u32 = 16;

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub(super) const MAX_INSNS: usize = 4096;

/// Instructions in `struct sock_filter`'s little-endian layout (8 bytes each), as a saved
/// program holds them and libseccomp exports them on x86.
pub(super) fn encode(insns: &[sock_filter], out: &mut Vec<u8>) {
    for i in insns {
        out.extend_from_slice(&i.code.to_le_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_le_bytes());
    }
}

/// The reverse of [`encode`]; a trailing partial instruction is ignored (callers check lengths).
pub(super) fn decode(bytes: &[u8]) -> Vec<sock_filter> {
    bytes
        .chunks_exact(8)
        .map(|c| sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}
pub(super) fn ld(off: u32) -> sock_filter {
    insn(BPF_LD_W_ABS, 0, 0, off)
}
pub(super) fn ret(k: u32) -> sock_filter {
    insn(BPF_RET_K, 0, 0, k)
}
pub(super) fn jeq(k: u32, jt: u8, jf: u8) -> sock_filter {
    insn(BPF_JEQ_K, jt, jf, k)
}
pub(super) fn jgt(k: u32, jt: u8, jf: u8) -> sock_filter {
    insn(BPF_JGT_K, jt, jf, k)
}
pub(super) fn jge(k: u32, jt: u8, jf: u8) -> sock_filter {
    insn(BPF_JGE_K, jt, jf, k)
}
pub(super) fn jset(k: u32, jt: u8, jf: u8) -> sock_filter {
    insn(BPF_JSET_K, jt, jf, k)
}
pub(super) fn ja(k: u32) -> sock_filter {
    insn(BPF_JA, 0, 0, k)
}

/// The leaf of the dispatch tree for one interval of syscall numbers.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Target {
    /// Return this action for every number in the interval.
    Ret(u32),
    /// Run argument checks (an index into the section's blocks); only ever for one number.
    Block(usize),
}

/// Emits a balanced binary search over `intervals` (sorted by start; interval i covers
/// `[start_i, start_{i+1})`, the last one up to u32::MAX) into `out`. The syscall number must be
/// in A. Leaves are a `ret` or a copy of an argument block.
pub(super) fn dispatch_tree(
    out: &mut Vec<sock_filter>,
    intervals: &[(u32, Target)],
    blocks: &[Vec<sock_filter>],
) {
    match intervals {
        [] => {}
        [(_, Target::Ret(k))] => out.push(ret(*k)),
        [(_, Target::Block(b))] => out.extend_from_slice(&blocks[*b]),
        _ => {
            let mid = intervals.len() / 2;
            let split = intervals[mid].0;
            let at = out.len();
            out.push(insn(BPF_JGE_K, 0, 0, split));
            dispatch_tree(out, &intervals[..mid], blocks);
            let left = out.len() - at - 1;
            match u8::try_from(left) {
                Ok(skip) => out[at].jt = skip,
                Err(_) => {
                    // Too far for an 8-bit offset: true → a `ja` with a 32-bit offset.
                    out[at].jf = 1;
                    out.insert(at + 1, ja(left as u32));
                }
            }
            dispatch_tree(out, &intervals[mid..], blocks);
        }
    }
}

/// A classic-BPF interpreter for the subset this module emits, to exercise every path of a
/// generated filter (including the i386 and x32 sections) without loading it.
#[cfg(test)]
pub(super) fn interpret(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            o if (OFF_ARGS..OFF_ARGS + 48).contains(&o) => {
                let a = args[((o - OFF_ARGS) / 8) as usize];
                if (o - OFF_ARGS) & 4 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            o => panic!("load from unexpected offset {o}"),
        }
    };
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        let cond = |taken: bool| if taken { i.jt as usize } else { i.jf as usize };
        match i.code {
            BPF_LD_W_ABS => a = word(i.k),
            BPF_ALU_AND_K => a &= i.k,
            BPF_JA => pc += i.k as usize,
            BPF_JEQ_K => pc += cond(a == i.k),
            BPF_JGT_K => pc += cond(a > i.k),
            BPF_JGE_K => pc += cond(a >= i.k),
            BPF_JSET_K => pc += cond(a & i.k != 0),
            BPF_RET_K => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

/// A branch target in [`assemble_tree`]: a block (by position) or a return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum AsmTgt {
    Ret(u32),
    Blk(usize),
}

/// One comparison node: load the word (unless A holds it), mask it, compare, branch.
pub(super) struct AsmBlock {
    pub load: Option<u32>,
    pub and: Option<u32>,
    pub op: NodeOp,
    pub datum: u32,
    pub jt: AsmTgt,
    pub jf: AsmTgt,
}

/// Lays out comparison blocks (each jumping only to later blocks) followed by one `ret` per
/// action; a conditional jump beyond 255 instructions goes through a `ja` placed right after
/// its block.
pub(super) fn assemble_tree(blocks: &[AsmBlock]) -> Result<Vec<sock_filter>, String> {
    let mut rets: Vec<u32> = Vec::new();
    for b in blocks {
        for t in [b.jt, b.jf] {
            if let AsmTgt::Ret(a) = t {
                if !rets.contains(&a) {
                    rets.push(a);
                }
            }
        }
    }
    let body = |b: &AsmBlock| 1 + usize::from(b.load.is_some()) + usize::from(b.and.is_some());
    // (block, target) pairs that need a trampoline after the block.
    let mut tramps: Vec<Vec<AsmTgt>> = vec![Vec::new(); blocks.len()];
    loop {
        let mut pos = Vec::with_capacity(blocks.len());
        let mut p = 0usize;
        for (i, b) in blocks.iter().enumerate() {
            pos.push(p);
            p += body(b) + tramps[i].len();
        }
        let ret_pos = |a: u32, p: usize| p + rets.iter().position(|&r| r == a).unwrap_or(0);
        let target = |t: AsmTgt| match t {
            AsmTgt::Blk(b) => pos[b],
            AsmTgt::Ret(a) => ret_pos(a, p),
        };
        let mut changed = false;
        for (i, b) in blocks.iter().enumerate() {
            let jpos = pos[i] + body(b) - 1;
            for t in [b.jt, b.jf] {
                let dist = target(t).checked_sub(jpos + 1).ok_or("backward jump")?;
                if dist > 255 && !tramps[i].contains(&t) {
                    tramps[i].push(t);
                    changed = true;
                }
            }
        }
        if changed {
            continue;
        }
        let mut out = Vec::with_capacity(p + rets.len());
        for (i, b) in blocks.iter().enumerate() {
            if let Some(off) = b.load {
                out.push(ld(off));
            }
            if let Some(mask) = b.and {
                out.push(insn(BPF_ALU_AND_K, 0, 0, mask));
            }
            let jpos = out.len();
            let tramp_base = jpos + 1;
            let off = |t: AsmTgt| -> u8 {
                match tramps[i].iter().position(|&x| x == t) {
                    Some(k) => k as u8,
                    None => (target(t) - jpos - 1) as u8,
                }
            };
            let code = match b.op {
                NodeOp::Eq | NodeOp::MaskedEq => BPF_JEQ_K,
                NodeOp::Gt => BPF_JGT_K,
                NodeOp::Ge => BPF_JGE_K,
            };
            out.push(insn(code, off(b.jt), off(b.jf), b.datum));
            for (k, &t) in tramps[i].iter().enumerate() {
                out.push(ja((target(t) - (tramp_base + k) - 1) as u32));
            }
        }
        out.extend(rets.iter().map(|&a| ret(a)));
        return Ok(out);
    }
}
