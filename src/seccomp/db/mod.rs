//! libseccomp's rule database, so that rules that overlap decide as they do under runc.
//!
//! libseccomp does not try rules in order: it merges every rule for a syscall into one tree
//! of argument comparisons (one node per 32-bit word compared), prunes rules that a shorter
//! one makes redundant, and orders the nodes of each tree level from the highest argument
//! number down (then by operator, then by value). The generated filter walks a level in that
//! order; a node's true/false branch returns an action, descends a level, or falls through
//! to the next node of the level, and a level that runs out falls through to the parent's
//! next node (at the top: the default action). So with `arg1==0 → 43; arg0==0 → 44` a call
//! `(0, 0)` gets 43, and with `arg0<=10 → 45; arg0==0 → 46` a call `(0)` gets 46.
//!
//! This module reproduces that database: the node generation per rule (64-bit arguments split
//! into high and low words, NE/LT/LE rewritten as EQ/GE/GT with swapped branches), the tree
//! insertion and pruning with their reference counting (a node freed there changes the tree),
//! and the -EEXIST refusals. The structure follows libseccomp's db.c (LGPL-2.1) function by
//! function so that differences can be checked side by side; the differential test in
//! `diff.rs` compares the resulting decisions with the real library. Here: the types, the
//! node helpers and `db_rule_add`; `chain` makes a rule's nodes, `prune` and `insert` merge
//! them into a syscall's tree, `tree` counts references and frees.

mod chain;
mod insert;
mod prune;
mod tree;

use super::cond::{Cmp, Cond, NodeOp};
use prune::{IterState, IST_M_REDUNDANT};

/// One comparison of one 32-bit word of an argument.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub arg: u8,
    /// The high word of a 64-bit argument.
    pub hi: bool,
    /// seccomp_data offset of the word.
    pub offset: u32,
    pub op: NodeOp,
    /// The operator as written in the rule (for the level order).
    op_orig: Cmp2,
    pub mask: u32,
    pub datum: u32,
    datum_full: u64,
    pub nxt_t: Option<usize>,
    pub nxt_f: Option<usize>,
    /// The action when the comparison is true, if it ends a rule there. libseccomp keeps
    /// the flag and the value apart, and one merge path changes the value alone.
    pub act_t_flg: bool,
    pub act_t: u32,
    pub act_f_flg: bool,
    pub act_f: u32,
    pub lvl_prv: Option<usize>,
    pub lvl_nxt: Option<usize>,
    refcnt: u32,
    /// Freed by libseccomp (its memory may be reused): any later use is a use-after-free.
    freed: bool,
}

/// The rule's operator, MASKED_EQ included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp2 {
    Plain(Cmp),
    MaskedEq,
}

/// A syscall's entry: either an action for every call, or a tree of argument checks.
#[derive(Clone, Debug)]
pub(super) struct Syscall {
    /// Negative: a pseudo syscall (a name libseccomp knows that this arch lacks), kept in
    /// the database but never emitted.
    pub num: i64,
    pub chains: Option<usize>,
    pub action: u32,
    node_cnt: i64,
    /// libseccomp's priority (`_DB_PRI_MASK_CHAIN - node_cnt`, in its unsigned arithmetic):
    /// the order in which the generator emits the syscalls, which decides which of the
    /// blocks shared between syscalls gets laid out first (see `codegen::Codegen`).
    pub priority: u32,
}

const PRI_MASK_CHAIN: u32 = 0xffff;

/// The database of one arch.
#[derive(Default, Clone, Debug)]
pub(super) struct Db {
    pub nodes: Vec<Node>,
    /// By ascending number.
    pub syscalls: Vec<Syscall>,
    /// 32-bit arch: arguments are compared on their low word only.
    narrow: bool,
    /// Set when libseccomp's merge would touch a node it has freed (a use-after-free in the
    /// C library: what runc's filter then contains is undefined), or walk a level that no
    /// longer ends. hutch refuses such a profile rather than guess.
    broken: std::cell::Cell<bool>,
    /// Steps left for the current rule; a merge that needs more is treated as broken.
    fuel: std::cell::Cell<u32>,
}

/// libseccomp refused the rule: two rules end on the same comparison with different
/// actions (-EEXIST from the tree merge).
#[derive(Debug)]
pub(super) struct Conflict;

/// Where a tree pointer lives, for the functions that rewrite it in place.
#[derive(Clone, Copy)]
enum Loc {
    Chains(usize),
    T(usize),
    F(usize),
}

const OFF_ARGS: u32 = 16;

impl Db {
    pub(super) fn new(narrow: bool) -> Db {
        Db {
            narrow,
            ..Db::default()
        }
    }

    fn get(&self, loc: Loc) -> Option<usize> {
        match loc {
            Loc::Chains(s) => self.syscalls[s].chains,
            Loc::T(n) => self.nodes[n].nxt_t,
            Loc::F(n) => self.nodes[n].nxt_f,
        }
    }
    fn set(&mut self, loc: Loc, v: Option<usize>) {
        match loc {
            Loc::Chains(s) => self.syscalls[s].chains = v,
            Loc::T(n) => self.nodes[n].nxt_t = v,
            Loc::F(n) => self.nodes[n].nxt_f = v,
        }
    }

    fn node_get(&mut self, n: Option<usize>) -> Option<usize> {
        if let Some(i) = n {
            self.nodes[i].refcnt += 1;
        }
        n
    }

    /// Whether node `n` may be used: not freed, and the step budget of the current rule
    /// is not spent. Otherwise the database is marked broken and the caller stops walking.
    fn alive(&self, n: usize) -> bool {
        let fuel = self.fuel.get();
        if self.nodes[n].freed || fuel == 0 {
            self.broken.set(true);
            return false;
        }
        self.fuel.set(fuel - 1);
        true
    }

    /// The first node of `n`'s level, in a database that is not broken.
    pub(super) fn first_of_level(&self, mut n: usize) -> usize {
        let mut steps = self.nodes.len();
        while let (Some(p), true) = (self.nodes[n].lvl_prv, steps > 0) {
            n = p;
            steps -= 1;
        }
        n
    }

    /// libseccomp's merge went wrong on this database (see `broken`).
    pub(super) fn is_broken(&self) -> bool {
        self.broken.get()
    }

    fn arg_priority(&self, n: usize) -> u32 {
        let n = &self.nodes[n];
        (u32::from(n.arg) << 1) + u32::from(n.hi)
    }

    /// `_db_chain_lt`: the order of nodes on one level (the level is kept descending).
    fn chain_lt(&self, a: usize, b: usize) -> bool {
        let (pa, pb) = (self.arg_priority(a), self.arg_priority(b));
        if pa != pb {
            return pa < pb;
        }
        let prio = |op: Cmp2| match op {
            Cmp2::MaskedEq | Cmp2::Plain(Cmp::Eq) | Cmp2::Plain(Cmp::Ne) => 3,
            Cmp2::Plain(Cmp::Le) | Cmp2::Plain(Cmp::Lt) => 2,
            Cmp2::Plain(Cmp::Ge) | Cmp2::Plain(Cmp::Gt) => 1,
        };
        let (na, nb) = (&self.nodes[a], &self.nodes[b]);
        let (oa, ob) = (prio(na.op_orig), prio(nb.op_orig));
        if oa != ob {
            return oa < ob;
        }
        match na.op_orig {
            Cmp2::Plain(Cmp::Le) | Cmp2::Plain(Cmp::Lt) => na.datum > nb.datum,
            _ => na.datum < nb.datum,
        }
    }

    /// `_db_chain_eq`: same word, same (rewritten) operator, datum and mask.
    fn chain_eq(&self, a: usize, b: usize) -> bool {
        let (na, nb) = (&self.nodes[a], &self.nodes[b]);
        self.arg_priority(a) == self.arg_priority(b)
            && na.op == nb.op
            && na.datum == nb.datum
            && na.mask == nb.mask
    }

    /// Node `n`'s true (`t`) or false subtree.
    fn branch(&self, n: usize, t: bool) -> Option<usize> {
        if t {
            self.nodes[n].nxt_t
        } else {
            self.nodes[n].nxt_f
        }
    }

    fn leaf(&self, n: usize) -> bool {
        self.nodes[n].nxt_t.is_none() && self.nodes[n].nxt_f.is_none()
    }

    fn zombie(&self, n: usize) -> bool {
        self.leaf(n) && !self.nodes[n].act_t_flg && !self.nodes[n].act_f_flg
    }

    fn level_start(&self, mut n: usize) -> usize {
        while let Some(p) = self.nodes[n].lvl_prv {
            if !self.alive(p) {
                break;
            }
            n = p;
        }
        n
    }

    /// `db_rule_add`: adds one rule for syscall `num` with libseccomp's merge.
    pub(super) fn rule_add(
        &mut self,
        num: i64,
        conds: &[Cond],
        action: u32,
    ) -> Result<(), Conflict> {
        self.fuel.set(1 << 22);
        let (new_chains, new_cnt) = self.rule_gen(conds, action);
        let pos = self.syscalls.partition_point(|s| s.num < num);
        if pos == self.syscalls.len() || self.syscalls[pos].num != num {
            self.syscalls.insert(
                pos,
                Syscall {
                    num,
                    chains: new_chains,
                    action,
                    node_cnt: new_cnt,
                    priority: PRI_MASK_CHAIN.wrapping_sub(new_cnt as u32),
                },
            );
            return Ok(());
        }
        let s = pos;
        let added = self.rule_merge(s, new_chains, new_cnt, action);
        if added.is_ok() {
            // `add_priority_update` (not reached on failure).
            let sys = &mut self.syscalls[s];
            sys.priority =
                (sys.priority & !PRI_MASK_CHAIN) | PRI_MASK_CHAIN.wrapping_sub(sys.node_cnt as u32);
        }
        added
    }

    /// The part of `db_rule_add` for a syscall that has an entry already.
    fn rule_merge(
        &mut self,
        s: usize,
        mut new_chains: Option<usize>,
        new_cnt: i64,
        action: u32,
    ) -> Result<(), Conflict> {
        let mut rm_flag = false;
        loop {
            if self.syscalls[s].chains.is_none() {
                if rm_flag {
                    self.syscalls[s].chains = new_chains;
                    self.syscalls[s].action = action;
                    self.syscalls[s].node_cnt = new_cnt;
                } else {
                    // The syscall already matches unconditionally.
                    self.tree_put(&mut new_chains);
                }
                return Ok(());
            }
            if new_chains.is_none() {
                self.tree_put_at(Loc::Chains(s));
                self.syscalls[s].chains = None;
                self.syscalls[s].node_cnt = 0;
                self.syscalls[s].action = action;
                return Ok(());
            }
            let mut state = IterState {
                flags: 0,
                action,
                sys: s,
            };
            let existing = self.syscalls[s].chains;
            let rc = self.tree_prune(existing, new_chains, &mut state);
            if rc > 0 {
                rm_flag = true;
                self.syscalls[s].node_cnt -= rc;
                if self.syscalls[s].chains.is_none() {
                    continue;
                }
            } else if state.flags & IST_M_REDUNDANT == IST_M_REDUNDANT {
                self.tree_put(&mut new_chains);
                return Ok(());
            }
            break;
        }
        let head = new_chains.unwrap_or_default();
        let added = self.tree_add(Loc::Chains(s), head, s);
        self.syscalls[s].node_cnt += new_cnt;
        let freed = self.tree_put(&mut new_chains);
        self.syscalls[s].node_cnt -= freed;
        added
    }
}

#[cfg(test)]
impl Db {
    /// The trees in libseccomp's PFC style, for debugging the differential test.
    pub(super) fn dump(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.syscalls.iter().enumerate() {
            out += &format!(
                "syscall {} cnt {}: action {:#x}\n",
                s.num, s.node_cnt, s.action
            );
            if let Some(c) = self.syscalls[i].chains {
                self.dump_level(c, 1, &mut out);
            }
        }
        out
    }
    fn dump_level(&self, n: usize, depth: usize, out: &mut String) {
        let mut c = Some(self.first_of_level(n));
        while let Some(i) = c {
            let nd = &self.nodes[i];
            let pad = "  ".repeat(depth);
            *out += &format!(
                "{pad}[{i}] a{}{} {:?} {:#x} mask {:#x} ref {}\n",
                nd.arg,
                if nd.hi { ".hi" } else { "" },
                nd.op,
                nd.datum,
                nd.mask,
                nd.refcnt
            );
            if let Some(t) = nd.nxt_t {
                *out += &format!("{pad} T:\n");
                self.dump_level(t, depth + 1, out);
            } else if nd.act_t_flg {
                *out += &format!("{pad} T: action {:#x}\n", nd.act_t);
            }
            if let Some(f) = nd.nxt_f {
                *out += &format!("{pad} F:\n");
                self.dump_level(f, depth + 1, out);
            } else if nd.act_f_flg {
                *out += &format!("{pad} F: action {:#x}\n", nd.act_f);
            }
            c = nd.lvl_nxt;
        }
    }
}
