//! libseccomp's code generator (gen_bpf.c) for the argument checks, replayed so that the
//! loads it skips, and so what runc's filter compares, are the same in hutch's filter.

use std::collections::HashMap;

use super::bpf;
use super::cond::NodeOp;
use super::db::{Db, Node};

/// Where a branch of the generated code goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Tgt {
    Ret(u32),
    Blk(usize),
}

/// What libseccomp's generator believes the accumulator holds: the word at `offset` (None:
/// unknown, libseccomp's offset -1) masked with `mask`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Acc {
    offset: Option<u32>,
    mask: u32,
}

const ACC_UNDEF: Acc = Acc {
    offset: None,
    mask: u32::MAX,
};

/// One node's instruction block as libseccomp's `_gen_bpf_node` builds it:
/// `[ld word;] [and mask;] jcond datum, jt, jf`. Blocks are interned on their whole content
/// (targets and accumulator states included), as libseccomp merges blocks with equal hashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Blk {
    load: Option<u32>,
    and: Option<u32>,
    op: NodeOp,
    datum: u32,
    jt: Tgt,
    jf: Tgt,
    /// The accumulator the block relies on; `ACC_UNDEF` when it loads its own word.
    acc_start: Acc,
    /// The accumulator at its jump.
    acc_end: Acc,
}

/// libseccomp's code generator for the argument checks of every syscall of a filter, so that
/// hutch's checks decide as the code runc loads does.
///
/// libseccomp builds one block per tree node and skips a node's `ld` when it believes the
/// word is already in A: along a level it assumes what the previous node of the level
/// loaded, and into a subtree what the node itself loaded. That belief is wrong whenever a
/// subtree ran (loading other words) before falling through to the next node of the level.
/// Blocks with the same content (instructions, targets, assumed accumulator) are merged
/// across the whole filter, across syscalls and arches. Laying the blocks out, it places a
/// block right after the first block found to jump to it (scanning the program from its end)
/// and prepends an `ld` only if that block's accumulator differs from the one assumed; every
/// other edge into the block keeps whatever A holds, and its comparison then reads another
/// word than the rule names. runc's filter decides that way, so hutch builds the same blocks,
/// merges them the same way, replays the same layout scan in the same syscall order, and
/// emits each syscall's checks with the loads libseccomp's code has. Only which blocks load
/// matters to the decisions, not the order of the code.
///
/// Known gap: libseccomp also builds sections for non-x86 arches a profile lists (aarch64,
/// arm, …), and their blocks take part in the same merging and layout. hutch has no syscall
/// tables for them and leaves them out, so when such a section lays out a block shared
/// with an x86 syscall first, runc's filter may skip a load that hutch's keeps (the
/// differential test met this once in about 20 million calls, an i386 + aarch64 profile).
pub(super) struct Codegen<'a> {
    dbs: &'a [Db],
    default: u32,
    /// Interned blocks; a block only jumps to blocks created before it.
    blocks: Vec<Blk>,
    interned: HashMap<Blk, usize>,
    /// (db, level start, continuation, incoming accumulator) → the level's first block.
    memo: HashMap<(usize, usize, Tgt, Acc), Tgt>,
    /// Per block, the load the layout prepends (word and mask).
    prepended: Vec<Option<Acc>>,
}

impl<'a> Codegen<'a> {
    /// Generates the checks of every syscall of `dbs`, in libseccomp's emission order:
    /// `sections` lists the arch sections as the filter lays them out, each with its
    /// databases (x86_64 and x32 share one), and `by_number` is libseccomp's binary-tree mode
    /// (runc asks for it above 32 syscall names), where syscalls are sorted by number
    /// instead of by priority.
    pub(super) fn new(
        dbs: &'a [Db],
        sections: &[Vec<usize>],
        by_number: bool,
        default: u32,
    ) -> Codegen<'a> {
        let mut gen = Codegen {
            dbs,
            default,
            blocks: Vec::new(),
            interned: HashMap::new(),
            memo: HashMap::new(),
            prepended: Vec::new(),
        };
        // The layout scan starts at the end of the program and finishes the checks of one
        // syscall before the previous one: the last section first, in each the last syscall
        // of libseccomp's order first.
        let mut placed = Vec::new();
        for section in sections.iter().rev() {
            for (d, s) in gen.order(section, by_number).into_iter().rev() {
                let Tgt::Blk(entry) = gen.entry(d, s) else {
                    continue;
                };
                placed.resize(gen.blocks.len(), false);
                gen.prepended.resize(gen.blocks.len(), None);
                gen.layout(entry, &mut placed);
            }
        }
        gen
    }

    /// libseccomp's order of the syscalls of one section (`_sys_sort`): by priority, highest
    /// first, ties in database order (by unsigned number), the first database's entries
    /// before the second's; or by number, highest first. Pseudo syscalls are never emitted.
    fn order(&self, section: &[usize], by_number: bool) -> Vec<(usize, usize)> {
        let mut list: Vec<(usize, usize)> = Vec::new();
        for &d in section {
            let mut entries: Vec<usize> = (0..self.dbs[d].syscalls.len()).collect();
            // libseccomp compares numbers unsigned: pseudo (negative) numbers sort last.
            entries.sort_by_key(|&s| self.dbs[d].syscalls[s].num as u32);
            list.extend(entries.into_iter().map(|s| (d, s)));
        }
        let sys = |&(d, s): &(usize, usize)| &self.dbs[d].syscalls[s];
        // Stable sorts, as libseccomp's insertion sorts are.
        if by_number {
            list.sort_by_key(|e| std::cmp::Reverse(sys(e).num as u32));
        } else {
            list.sort_by_key(|e| std::cmp::Reverse(sys(e).priority));
        }
        list.retain(|e| sys(e).num >= 0);
        list
    }

    /// The first block of syscall entry `s` of database `d` (generated on first use).
    fn entry(&mut self, d: usize, s: usize) -> Tgt {
        let db = self.dbs;
        let Some(head) = db[d].syscalls[s].chains else {
            return Tgt::Ret(db[d].syscalls[s].action);
        };
        // The first node always loads (no argument word is at offset 0), so the incoming
        // state does not matter.
        self.chain(d, head, Tgt::Ret(self.default), ACC_UNDEF)
    }

    /// `_gen_bpf_node`'s accumulator check for node `i`: (load, and), updating `acc`.
    fn plan(nd: &Node, acc: &mut Acc) -> (Option<u32>, Option<u32>) {
        let mut load = None;
        let mut and = None;
        if acc.offset != Some(nd.offset) || nd.mask & acc.mask != nd.mask {
            load = Some(nd.offset);
            *acc = Acc {
                offset: Some(nd.offset),
                mask: u32::MAX,
            };
        }
        if nd.mask != acc.mask {
            and = Some(nd.mask);
            acc.mask = nd.mask;
        }
        (load, and)
    }

    fn intern(&mut self, b: Blk) -> usize {
        if let Some(&i) = self.interned.get(&b) {
            return i;
        }
        self.blocks.push(b.clone());
        self.interned.insert(b, self.blocks.len() - 1);
        self.blocks.len() - 1
    }

    /// `_gen_bpf_chain`: the blocks of the level containing `node`, falling through to
    /// `cont`, generated with the incoming accumulator `acc`. Returns the level's first.
    fn chain(&mut self, d: usize, node: usize, cont: Tgt, acc: Acc) -> Tgt {
        let db = &self.dbs[d];
        let start = db.first_of_level(node);
        if let Some(&t) = self.memo.get(&(d, start, cont, acc)) {
            return t;
        }
        let mut level = Vec::new();
        let mut n = Some(start);
        while let (Some(i), true) = (n, level.len() < db.nodes.len()) {
            level.push(i);
            n = db.nodes[i].lvl_nxt;
        }
        // The accumulator flows from node to node of the level, not through subtrees.
        let mut acc_now = acc;
        let mut plans = Vec::with_capacity(level.len());
        for &i in &level {
            let before = acc_now;
            let (load, and) = Self::plan(&db.nodes[i], &mut acc_now);
            let acc_start = if load.is_some() { ACC_UNDEF } else { before };
            plans.push((load, and, acc_start, acc_now));
        }
        // Resolved last to first, as libseccomp does: each node's "next" is the block of
        // the following node (or `cont`), and its subtrees fall through to that same block.
        let mut next = cont;
        for (k, &i) in level.iter().enumerate().rev() {
            let nd = &db.nodes[i];
            let (load, and, acc_start, acc_end) = plans[k];
            let (op, datum) = (nd.op, nd.datum);
            let branch = |sub: Option<usize>, flg: bool, act: u32| match (sub, flg) {
                (Some(sub), _) => Err(sub),
                (None, true) => Ok(Tgt::Ret(act)),
                (None, false) => Ok(next),
            };
            let jt = branch(nd.nxt_t, nd.act_t_flg, nd.act_t);
            let jf = branch(nd.nxt_f, nd.act_f_flg, nd.act_f);
            let jt = jt.unwrap_or_else(|sub| self.chain(d, sub, next, acc_end));
            let jf = jf.unwrap_or_else(|sub| self.chain(d, sub, next, acc_end));
            next = Tgt::Blk(self.intern(Blk {
                load,
                and,
                op,
                datum,
                jt,
                jf,
                acc_start,
                acc_end,
            }));
        }
        self.memo.insert((d, start, cont, acc), next);
        next
    }

    /// libseccomp's layout pass for one syscall (`_gen_bpf_build_bpf`, "pull in all of the
    /// TGT_PTR_HSH jumps"): from the syscall's dispatch block, repeatedly take the last block
    /// of the layout that jumps to a block not placed yet (its `jt` first), place that block
    /// right after it, and prepend an `ld` if the jumping block's accumulator is not the one
    /// the placed block assumes. A block placed for an earlier syscall stays as it is.
    fn layout(&mut self, entry: usize, placed: &mut [bool]) {
        if placed[entry] {
            return;
        }
        // None: the dispatch block, which leaves the syscall number in A.
        let mut list: Vec<Option<usize>> = vec![None];
        loop {
            let mut pulled = None;
            'scan: for at in (0..list.len()).rev() {
                let (targets, acc_end) = match list[at] {
                    None => {
                        let nr = Acc {
                            offset: Some(0),
                            mask: u32::MAX,
                        };
                        ([Tgt::Blk(entry); 2], nr)
                    }
                    Some(b) => {
                        let b = &self.blocks[b];
                        ([b.jt, b.jf], b.acc_end)
                    }
                };
                for t in targets {
                    if let Tgt::Blk(t) = t {
                        if !placed[t] {
                            pulled = Some((at, t, acc_end));
                            break 'scan;
                        }
                    }
                }
            }
            let Some((at, t, acc_end)) = pulled else {
                return;
            };
            placed[t] = true;
            let start = self.blocks[t].acc_start;
            if start.offset.is_some() && start != acc_end {
                self.prepended[t] = Some(start);
            }
            list.insert(at + 1, Some(t));
        }
    }

    /// The argument checks of syscall entry `s` of database `d` as a self-contained,
    /// forward-only BPF block (every path ends in `ret`).
    pub(super) fn syscall_code(
        &self,
        d: usize,
        s: usize,
    ) -> Result<Vec<libc::sock_filter>, String> {
        let sys = &self.dbs[d].syscalls[s];
        let Some(head) = sys.chains else {
            return Ok(vec![bpf::ret(sys.action)]);
        };
        let start = self.dbs[d].first_of_level(head);
        let Some(&entry) = self
            .memo
            .get(&(d, start, Tgt::Ret(self.default), ACC_UNDEF))
        else {
            return Err(format!("no code generated for syscall {}", sys.num));
        };
        let Tgt::Blk(entry) = entry else {
            return Ok(vec![bpf::ret(self.default)]);
        };
        // The blocks reachable from the entry, entry first; each jumps only to blocks
        // created before it, so descending creation order runs forward.
        let mut reach = vec![false; entry + 1];
        reach[entry] = true;
        for b in (0..=entry).rev() {
            if !reach[b] {
                continue;
            }
            for t in [self.blocks[b].jt, self.blocks[b].jf] {
                if let Tgt::Blk(t) = t {
                    reach[t] = true;
                }
            }
        }
        let ids: Vec<usize> = (0..=entry).rev().filter(|&b| reach[b]).collect();
        let pos = |b: usize| ids.iter().position(|&x| x == b).unwrap_or_default();
        let tgt = |t: Tgt| match t {
            Tgt::Ret(a) => bpf::AsmTgt::Ret(a),
            Tgt::Blk(b) => bpf::AsmTgt::Blk(pos(b)),
        };
        let asm: Vec<bpf::AsmBlock> = ids
            .iter()
            .map(|&i| {
                let b = &self.blocks[i];
                // A prepended load is `ld; and assumed-mask` in front of the block's own
                // `and`: one `and` with both masks.
                let (load, and) = match self.prepended.get(i).copied().flatten() {
                    Some(acc) => {
                        let mask = acc.mask & b.and.unwrap_or(u32::MAX);
                        (acc.offset, (mask != u32::MAX).then_some(mask))
                    }
                    None => (b.load, b.and),
                };
                bpf::AsmBlock {
                    load,
                    and,
                    op: b.op,
                    datum: b.datum,
                    jt: tgt(b.jt),
                    jf: tgt(b.jf),
                }
            })
            .collect();
        bpf::assemble_tree(&asm)
    }
}
