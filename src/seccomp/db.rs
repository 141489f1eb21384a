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
//! `diff.rs` compares the resulting decisions with the real library.

use super::cond::{Cmp, Cond, NodeOp, Op};

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

/// The tree-walk state of `_db_tree_prune`.
#[derive(Clone, Copy, Default)]
struct IterState {
    flags: u32,
    action: u32,
    sys: usize,
}

const IST_MATCH: u32 = 0x01;
const IST_MATCH_ONCE: u32 = 0x02;
const IST_X_FINISHED: u32 = 0x10;
const IST_N_FINISHED: u32 = 0x20;
const IST_X_PREFIX: u32 = 0x100;
const IST_N_PREFIX: u32 = 0x200;
const IST_M_MATCHSET: u32 = IST_MATCH | IST_MATCH_ONCE;
const IST_M_REDUNDANT: u32 = IST_MATCH | IST_X_FINISHED | IST_N_PREFIX;

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

    /// `_db_level_clean`: frees a whole level nothing else points to.
    fn level_clean(&mut self, node: usize) -> i64 {
        let start = self.level_start(node);
        let mut n = Some(start);
        while let Some(i) = n {
            if !self.alive(i) {
                break;
            }
            let links = u32::from(self.nodes[i].lvl_prv.is_some())
                + u32::from(self.nodes[i].lvl_nxt.is_some());
            if self.nodes[i].refcnt > links {
                return 0;
            }
            n = self.nodes[i].lvl_nxt;
        }
        let mut cnt = 0;
        let mut n = Some(start);
        while n.is_some() && !self.broken.get() {
            cnt += self.node_put(&mut n);
        }
        cnt
    }

    /// `_db_tree_put`.
    fn tree_put(&mut self, tree: &mut Option<usize>) -> i64 {
        let mut cnt = self.node_put(tree);
        if let Some(t) = *tree {
            cnt += self.level_clean(t);
        }
        cnt
    }

    fn tree_put_at(&mut self, loc: Loc) -> i64 {
        let mut v = self.get(loc);
        let cnt = self.tree_put(&mut v);
        self.set(loc, v);
        cnt
    }

    /// `_db_node_put`: drops one reference; the last one frees the node and its subtrees and
    /// closes the gap in its level. Returns the number of nodes freed.
    fn node_put(&mut self, node: &mut Option<usize>) -> i64 {
        let Some(n) = *node else {
            return 0;
        };
        let mut cnt = 0;
        if !self.alive(n) {
            return 0;
        }
        // C's unsigned decrement.
        self.nodes[n].refcnt = self.nodes[n].refcnt.wrapping_sub(1);
        if self.nodes[n].refcnt == 0 {
            self.nodes[n].freed = true;
            let mut lvl_p = self.nodes[n].lvl_prv;
            let mut lvl_n = self.nodes[n].lvl_nxt;
            let mut nxt_t = self.nodes[n].nxt_t;
            let mut nxt_f = self.nodes[n].nxt_f;
            if let Some(p) = lvl_p {
                self.nodes[p].lvl_nxt = None;
            }
            if let Some(x) = lvl_n {
                self.nodes[x].lvl_prv = None;
            }
            if lvl_p.is_some() {
                cnt += self.node_put(&mut lvl_p);
            }
            if lvl_n.is_some() {
                cnt += self.node_put(&mut lvl_n);
            }
            if let Some(p) = lvl_p {
                self.nodes[p].lvl_nxt = self.node_get(lvl_n);
            }
            if let Some(x) = lvl_n {
                self.nodes[x].lvl_prv = self.node_get(lvl_p);
            }
            *node = lvl_p.or(lvl_n);
            cnt += self.tree_put(&mut nxt_t);
            cnt += self.tree_put(&mut nxt_f);
            cnt += 1;
        }
        cnt
    }

    /// `_db_tree_remove`: removes `node` (and what hangs below it) from the tree at `tree`.
    fn tree_remove(&mut self, tree: Loc, node: usize) -> i64 {
        let Some(t) = self.get(tree) else {
            return 0;
        };
        let mut cnt = 0;
        let mut c = Some(self.level_start(t));
        let mut found = None;
        while let Some(ci) = c {
            if !self.alive(ci) {
                break;
            }
            if ci == node {
                found = Some(ci);
                break;
            }
            cnt += self.tree_remove(Loc::T(ci), node);
            cnt += self.tree_remove(Loc::F(ci), node);
            if self.zombie(ci) {
                found = Some(ci);
                break;
            }
            c = self.nodes[ci].lvl_nxt;
            if cnt != 0 {
                break;
            }
        }
        let Some(ci) = found else {
            return cnt;
        };
        if Some(ci) == self.get(tree) {
            let repl = self.nodes[ci].lvl_prv.or(self.nodes[ci].lvl_nxt);
            self.set(tree, repl);
        }
        let (p, x) = (self.nodes[ci].lvl_prv, self.nodes[ci].lvl_nxt);
        if let Some(p) = p {
            self.nodes[p].lvl_nxt = x;
        }
        if let Some(x) = x {
            self.nodes[x].lvl_prv = p;
        }
        self.nodes[ci].lvl_prv = None;
        self.nodes[ci].lvl_nxt = None;
        let mut c = Some(ci);
        cnt += self.node_put(&mut c);
        cnt
    }

    /// `_db_tree_act_check`: every action in the tree is `action`.
    fn tree_act_check(&self, tree: Option<usize>, action: u32) -> bool {
        let Some(t) = tree else {
            return true;
        };
        let mut c = Some(self.level_start(t));
        while let Some(ci) = c {
            if !self.alive(ci) {
                break;
            }
            let n = &self.nodes[ci];
            if (n.act_t_flg && n.act_t != action) || (n.act_f_flg && n.act_f != action) {
                return false;
            }
            if !self.tree_act_check(n.nxt_t, action) || !self.tree_act_check(n.nxt_f, action) {
                return false;
            }
            c = n.lvl_nxt;
        }
        true
    }

    /// `_db_tree_prune`: drops the parts of the existing tree that the new one makes
    /// redundant; `state` reports whether the new one is itself redundant.
    fn tree_prune(
        &mut self,
        existing: Option<usize>,
        new: Option<usize>,
        state: &mut IterState,
    ) -> i64 {
        let mut cnt = 0;
        let mut state_new = *state;
        let (Some(x0), Some(n_iter)) = (existing, new) else {
            return self.prune_return(state, state_new, cnt);
        };
        if state.flags & IST_M_MATCHSET == IST_MATCH_ONCE {
            return self.prune_return(state, state_new, cnt);
        }
        let mut x_iter = Some(self.level_start(x0));
        while let Some(xi) = x_iter {
            if !self.alive(xi) {
                break;
            }
            let x_next = self.nodes[xi].lvl_nxt;
            let mut x = Some(xi);
            if self.chain_eq(xi, n_iter) {
                state_new.flags |= IST_M_MATCHSET;
                if self.leaf(n_iter) {
                    state_new.flags |= IST_N_FINISHED;
                }
                if self.leaf(xi) {
                    state_new.flags |= IST_X_FINISHED;
                }
                let (xn, nn) = (&self.nodes[xi], &self.nodes[n_iter]);
                if (xn.act_t_flg || xn.nxt_t.is_some()) && !(nn.act_t_flg || nn.nxt_t.is_some()) {
                    return self.prune_return(state, state_new, cnt);
                }
                if (xn.act_f_flg || xn.nxt_f.is_some()) && !(nn.act_f_flg || nn.nxt_f.is_some()) {
                    return self.prune_return(state, state_new, cnt);
                }
                if state_new.flags & IST_N_FINISHED != 0
                    && state_new.flags & IST_X_FINISHED != 0
                    && (xn.act_t_flg != nn.act_t_flg
                        || xn.act_t != nn.act_t
                        || xn.act_f_flg != nn.act_f_flg
                        || xn.act_f != nn.act_f)
                {
                    return self.prune_return(state, state_new, cnt);
                }
                let mut skip = false;
                for branch_t in [true, false] {
                    let Some(xc) = x else { break };
                    let n_sub = if branch_t {
                        self.nodes[n_iter].nxt_t
                    } else {
                        self.nodes[n_iter].nxt_f
                    };
                    if n_sub.is_none() {
                        continue;
                    }
                    self.node_get(Some(xc));
                    let mut st = *state;
                    st.flags |= IST_M_MATCHSET;
                    let x_sub = if branch_t {
                        self.nodes[xc].nxt_t
                    } else {
                        self.nodes[xc].nxt_f
                    };
                    cnt += self.tree_prune(x_sub, n_sub, &mut st);
                    cnt += self.node_put(&mut x);
                    if st.flags & IST_MATCH != 0 {
                        state_new.flags |= st.flags;
                    }
                    if x.is_none() {
                        skip = true;
                        break;
                    }
                }
                if !skip {
                    if let Some(xc) = x {
                        let ok = self.tree_act_check(Some(xc), state_new.action);
                        if ok
                            && state_new.flags & IST_MATCH != 0
                            && state_new.flags & IST_N_FINISHED != 0
                            && state_new.flags & IST_X_PREFIX != 0
                        {
                            cnt += self.tree_remove(Loc::Chains(state.sys), xc);
                            if self.syscalls[state.sys].chains.is_none() {
                                return self.prune_return(state, state_new, cnt);
                            }
                        } else if ok
                            && state_new.flags & IST_MATCH != 0
                            && state_new.flags & IST_X_FINISHED != 0
                            && state_new.flags & IST_N_PREFIX != 0
                        {
                            return self.prune_return(state, state_new, cnt);
                        }
                    }
                }
            } else if self.chain_lt(xi, n_iter) {
                if state.flags & IST_N_PREFIX != 0 {
                    return self.prune_return(state, state_new, cnt);
                }
                for branch_t in [true, false] {
                    let Some(xc) = x else { break };
                    let x_sub = if branch_t {
                        self.nodes[xc].nxt_t
                    } else {
                        self.nodes[xc].nxt_f
                    };
                    if x_sub.is_none() {
                        continue;
                    }
                    self.node_get(Some(xc));
                    let mut st = *state;
                    st.flags &= !IST_MATCH;
                    st.flags |= IST_X_PREFIX;
                    cnt += self.tree_prune(x_sub, Some(n_iter), &mut st);
                    cnt += self.node_put(&mut x);
                    if st.flags & IST_MATCH != 0 {
                        state_new.flags |= st.flags;
                        return self.prune_return(state, state_new, cnt);
                    }
                    if x.is_none() {
                        break;
                    }
                }
            } else {
                if state.flags & IST_X_PREFIX != 0 {
                    return self.prune_return(state, state_new, cnt);
                }
                for branch_t in [true, false] {
                    let Some(xc) = x else { break };
                    let n_sub = if branch_t {
                        self.nodes[n_iter].nxt_t
                    } else {
                        self.nodes[n_iter].nxt_f
                    };
                    if n_sub.is_none() {
                        continue;
                    }
                    self.node_get(Some(xc));
                    let mut st = *state;
                    st.flags &= !IST_MATCH;
                    st.flags |= IST_N_PREFIX;
                    cnt += self.tree_prune(Some(xc), n_sub, &mut st);
                    cnt += self.node_put(&mut x);
                    if st.flags & IST_MATCH != 0 {
                        state_new.flags |= st.flags;
                        return self.prune_return(state, state_new, cnt);
                    }
                    if x.is_none() {
                        break;
                    }
                }
            }
            x_iter = x_next;
        }
        state_new.flags &= !IST_MATCH;
        self.prune_return(state, state_new, cnt)
    }

    fn prune_return(&self, state: &mut IterState, state_new: IterState, cnt: i64) -> i64 {
        if state_new.flags & IST_MATCH != 0 {
            state.flags |= state_new.flags;
        } else {
            state.flags &= !IST_MATCH;
        }
        cnt
    }

    /// `_db_tree_add`: merges the new rule's chain into the tree at `existing`.
    fn tree_add(&mut self, existing: Loc, new: usize, sys: usize) -> Result<(), Conflict> {
        let mut x_iter = self.get(existing);
        let n_iter = new;
        while let Some(xi) = x_iter {
            if !self.alive(xi) {
                break;
            }
            if self.chain_eq(xi, n_iter) {
                for branch_t in [true, false] {
                    let (n, x) = (&self.nodes[n_iter], &self.nodes[xi]);
                    let (n_flg, n_act, x_flg, x_act, x_sub) = if branch_t {
                        (n.act_t_flg, n.act_t, x.act_t_flg, x.act_t, x.nxt_t)
                    } else {
                        (n.act_f_flg, n.act_f, x.act_f_flg, x.act_f, x.nxt_f)
                    };
                    if !n_flg {
                        continue;
                    }
                    if !x_flg {
                        if !self.tree_act_check(x_sub, n_act) {
                            return Err(Conflict);
                        }
                        if branch_t {
                            let freed = self.tree_put_at_node_put(Loc::T(xi));
                            self.syscalls[sys].node_cnt -= freed;
                            let x = &mut self.nodes[xi];
                            x.nxt_t = None;
                            x.act_t = n_act;
                            x.act_t_flg = true;
                        } else {
                            let freed = self.tree_put_at_node_put(Loc::F(xi));
                            self.syscalls[sys].node_cnt -= freed;
                            let x = &mut self.nodes[xi];
                            x.nxt_f = None;
                            x.act_f = n_act;
                            x.act_f_flg = true;
                        }
                    } else if n_act != x_act {
                        // As libseccomp: both branches update act_t, the false one when the
                        // new 64-bit datum is smaller.
                        let (nf, xf) = (n.datum_full, x.datum_full);
                        let newer = if branch_t { nf > xf } else { nf < xf };
                        if n.hi && newer {
                            self.nodes[xi].act_t = self.nodes[n_iter].act_t;
                        }
                        if self.leaf(xi) || self.leaf(n_iter) {
                            return Err(Conflict);
                        }
                    }
                }
                for branch_t in [true, false] {
                    let (n, x) = (&self.nodes[n_iter], &self.nodes[xi]);
                    let (n_sub, x_sub, x_flg) = if branch_t {
                        (n.nxt_t, x.nxt_t, x.act_t_flg)
                    } else {
                        (n.nxt_f, x.nxt_f, x.act_f_flg)
                    };
                    let Some(ns) = n_sub else { continue };
                    if x_sub.is_some() {
                        self.tree_add(if branch_t { Loc::T(xi) } else { Loc::F(xi) }, ns, sys)?;
                    } else if !x_flg {
                        let v = self.node_get(Some(ns));
                        if branch_t {
                            self.nodes[xi].nxt_t = v;
                        } else {
                            self.nodes[xi].nxt_f = v;
                        }
                    } else {
                        return Ok(());
                    }
                }
                return Ok(());
            } else if !self.chain_lt(xi, n_iter) {
                match self.nodes[xi].lvl_nxt {
                    None => {
                        self.nodes[n_iter].lvl_prv = self.node_get(Some(xi));
                        self.nodes[xi].lvl_nxt = self.node_get(Some(n_iter));
                        return Ok(());
                    }
                    Some(next) => x_iter = Some(next),
                }
            } else {
                if let Some(p) = self.nodes[xi].lvl_prv {
                    self.nodes[p].lvl_nxt = self.node_get(Some(n_iter));
                    self.nodes[n_iter].lvl_prv = Some(p);
                    self.nodes[xi].lvl_prv = self.node_get(Some(n_iter));
                    self.nodes[n_iter].lvl_nxt = Some(xi);
                } else {
                    self.nodes[xi].lvl_prv = self.node_get(Some(n_iter));
                    self.nodes[n_iter].lvl_nxt = self.node_get(Some(xi));
                }
                if self.get(existing) == Some(xi) {
                    let v = self.node_get(Some(n_iter));
                    self.set(existing, v);
                    let mut x = Some(xi);
                    self.node_put(&mut x);
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// `_db_node_put(&x->nxt_t)` as written in `_db_tree_add` (a put, not a tree put).
    fn tree_put_at_node_put(&mut self, loc: Loc) -> i64 {
        let mut v = self.get(loc);
        let cnt = self.node_put(&mut v);
        self.set(loc, v);
        cnt
    }

    #[allow(clippy::too_many_arguments)] // one per field of libseccomp's node
    fn new_node(
        &mut self,
        arg: u8,
        hi: bool,
        op: NodeOp,
        op_orig: Cmp2,
        mask: u32,
        datum: u32,
        full: u64,
    ) -> usize {
        let offset = OFF_ARGS + 8 * u32::from(arg) + if hi { 4 } else { 0 };
        self.nodes.push(Node {
            arg,
            hi,
            offset,
            op,
            op_orig,
            mask,
            datum: datum & mask,
            datum_full: full,
            nxt_t: None,
            nxt_f: None,
            act_t_flg: false,
            act_t: 0,
            act_f_flg: false,
            act_f: 0,
            lvl_prv: None,
            lvl_nxt: None,
            refcnt: 0,
            freed: false,
        });
        self.nodes.len() - 1
    }

    fn link(&mut self, prev: &[usize], tf: bool, to: usize) {
        for &p in prev {
            let v = self.node_get(Some(to));
            if tf {
                self.nodes[p].nxt_t = v;
            } else {
                self.nodes[p].nxt_f = v;
            }
        }
    }

    /// `_db_rule_gen`: the chain of nodes for one rule (conditions by argument index, at most
    /// one per argument). Returns (head, node count).
    fn rule_gen(&mut self, conds: &[Cond], action: u32) -> (Option<usize>, i64) {
        let mut chains: Option<usize> = None;
        let mut prev: Vec<usize> = Vec::new();
        let mut tf = false;
        let mut node_cnt = 0;
        let mut sorted: Vec<&Cond> = conds.iter().collect();
        sorted.sort_by_key(|c| c.index);
        for c in sorted {
            let (mask, datum, orig) = match c.op {
                Op::MaskedEq { mask } => (mask, c.value, Cmp2::MaskedEq),
                Op::Cmp(op) => (u64::MAX, c.value, Cmp2::Plain(op)),
            };
            let need_lo = !(orig == Cmp2::MaskedEq && mask as u32 == 0);
            let need_hi = !(orig == Cmp2::MaskedEq && (mask >> 32) as u32 == 0);
            if self.narrow {
                if !need_lo {
                    continue;
                }
                let (op, swap) = match orig {
                    Cmp2::MaskedEq => (NodeOp::MaskedEq, false),
                    Cmp2::Plain(Cmp::Eq) => (NodeOp::Eq, false),
                    Cmp2::Plain(Cmp::Ne) => (NodeOp::Eq, true),
                    Cmp2::Plain(Cmp::Gt) => (NodeOp::Gt, false),
                    Cmp2::Plain(Cmp::Ge) => (NodeOp::Ge, false),
                    Cmp2::Plain(Cmp::Lt) => (NodeOp::Ge, true),
                    Cmp2::Plain(Cmp::Le) => (NodeOp::Gt, true),
                };
                let n = self.new_node(c.index, false, op, orig, mask as u32, datum as u32, datum);
                self.link(&prev, tf, n);
                prev = vec![n];
                if chains.is_none() {
                    chains = self.node_get(Some(n));
                }
                node_cnt += 1;
                tf = !swap;
                continue;
            }
            if !need_hi && !need_lo {
                continue;
            }
            let (mh, ml) = ((mask >> 32) as u32, mask as u32);
            let (dh, dl) = ((datum >> 32) as u32, datum as u32);
            let first;
            match orig {
                Cmp2::Plain(Cmp::Gt | Cmp::Ge | Cmp::Le | Cmp::Lt) => {
                    let lo_op = match orig {
                        Cmp2::Plain(Cmp::Gt | Cmp::Le) => NodeOp::Gt,
                        _ => NodeOp::Ge,
                    };
                    let c0 = self.new_node(c.index, true, NodeOp::Gt, orig, mh, dh, datum);
                    let c1 = self.new_node(c.index, true, NodeOp::Eq, orig, mh, dh, datum);
                    let c2 = self.new_node(c.index, false, lo_op, orig, ml, dl, datum);
                    self.link(&prev, tf, c0);
                    self.nodes[c0].nxt_f = self.node_get(Some(c1));
                    self.nodes[c1].nxt_t = self.node_get(Some(c2));
                    first = c0;
                    if matches!(orig, Cmp2::Plain(Cmp::Gt | Cmp::Ge)) {
                        prev = vec![c0, c2];
                        tf = true;
                    } else {
                        prev = vec![c1, c2];
                        tf = false;
                    }
                    node_cnt += 3;
                }
                _ => {
                    let op = if orig == Cmp2::MaskedEq {
                        NodeOp::MaskedEq
                    } else {
                        NodeOp::Eq
                    };
                    let c0 = self.new_node(c.index, true, op, orig, mh, dh, datum);
                    let c1 = self.new_node(c.index, false, op, orig, ml, dl, datum);
                    self.link(&prev, tf, c0);
                    self.nodes[c0].nxt_t = self.node_get(Some(c1));
                    first = c0;
                    if orig == Cmp2::Plain(Cmp::Ne) {
                        prev = vec![c0, c1];
                        tf = false;
                    } else {
                        prev = vec![c1];
                        tf = true;
                    }
                    node_cnt += 2;
                }
            }
            if chains.is_none() {
                chains = self.node_get(Some(first));
            }
        }
        if chains.is_some() {
            for &p in &prev {
                if tf {
                    self.nodes[p].act_t_flg = true;
                    self.nodes[p].act_t = action;
                } else {
                    self.nodes[p].act_f_flg = true;
                    self.nodes[p].act_f = action;
                }
            }
        }
        (chains, node_cnt)
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
