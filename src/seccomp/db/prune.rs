//! `_db_tree_prune`: which parts of a syscall's tree a new rule makes redundant, and whether
//! the new rule is itself redundant.

use super::{Db, Loc};

/// Which of two unequal nodes sorts first in the tree's order.
#[derive(Clone, Copy)]
enum Side {
    Existing,
    New,
}

/// The tree-walk state of `_db_tree_prune`.
#[derive(Clone, Copy, Default)]
pub(super) struct IterState {
    pub flags: u32,
    pub action: u32,
    pub sys: usize,
}

const IST_MATCH: u32 = 0x01;
const IST_MATCH_ONCE: u32 = 0x02;
const IST_X_FINISHED: u32 = 0x10;
const IST_N_FINISHED: u32 = 0x20;
const IST_X_PREFIX: u32 = 0x100;
const IST_N_PREFIX: u32 = 0x200;
const IST_M_MATCHSET: u32 = IST_MATCH | IST_MATCH_ONCE;
pub(super) const IST_M_REDUNDANT: u32 = IST_MATCH | IST_X_FINISHED | IST_N_PREFIX;

/// What the walk over the existing level does after one of its nodes.
#[derive(PartialEq)]
enum Walk {
    Next,
    Stop,
}

impl Db {
    /// `_db_tree_prune`: drops the parts of the existing tree that the new one makes
    /// redundant; `state` reports whether the new one is itself redundant.
    pub(super) fn tree_prune(
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
            let walk = if self.chain_eq(xi, n_iter) {
                self.prune_equal(xi, n_iter, state, &mut state_new, &mut cnt)
            } else if self.chain_lt(xi, n_iter) {
                self.prune_one_first(Side::Existing, xi, n_iter, state, &mut state_new, &mut cnt)
            } else {
                self.prune_one_first(Side::New, xi, n_iter, state, &mut state_new, &mut cnt)
            };
            if walk == Walk::Stop {
                return self.prune_return(state, state_new, cnt);
            }
            x_iter = x_next;
        }
        state_new.flags &= !IST_MATCH;
        self.prune_return(state, state_new, cnt)
    }

    /// The existing node `xi` compares what the new node `n_iter` does.
    fn prune_equal(
        &mut self,
        xi: usize,
        n_iter: usize,
        state: &IterState,
        state_new: &mut IterState,
        cnt: &mut i64,
    ) -> Walk {
        state_new.flags |= IST_M_MATCHSET;
        if self.leaf(n_iter) {
            state_new.flags |= IST_N_FINISHED;
        }
        if self.leaf(xi) {
            state_new.flags |= IST_X_FINISHED;
        }
        if self.equal_nodes_diverge(xi, n_iter, state_new.flags) {
            return Walk::Stop;
        }
        match self.prune_equal_branches(xi, n_iter, state, state_new, cnt) {
            Some(x) => self.prune_covered(x, state, state_new, cnt),
            None => Walk::Next,
        }
    }

    /// The existing node goes on where the new one stops, or both end with different
    /// actions: neither makes the other redundant.
    fn equal_nodes_diverge(&self, xi: usize, n_iter: usize, flags: u32) -> bool {
        let (xn, nn) = (&self.nodes[xi], &self.nodes[n_iter]);
        if (xn.act_t_flg || xn.nxt_t.is_some()) && !(nn.act_t_flg || nn.nxt_t.is_some()) {
            return true;
        }
        if (xn.act_f_flg || xn.nxt_f.is_some()) && !(nn.act_f_flg || nn.nxt_f.is_some()) {
            return true;
        }
        flags & IST_N_FINISHED != 0
            && flags & IST_X_FINISHED != 0
            && (xn.act_t_flg != nn.act_t_flg
                || xn.act_t != nn.act_t
                || xn.act_f_flg != nn.act_f_flg
                || xn.act_f != nn.act_f)
    }

    /// Prunes each subtree of the equal node `xi` against the new node's, true branch first.
    /// Returns the node still in place, or None when the puts freed it.
    fn prune_equal_branches(
        &mut self,
        xi: usize,
        n_iter: usize,
        state: &IterState,
        state_new: &mut IterState,
        cnt: &mut i64,
    ) -> Option<usize> {
        let mut x = Some(xi);
        for branch_t in [true, false] {
            let xc = x?;
            let n_sub = self.branch(n_iter, branch_t);
            if n_sub.is_none() {
                continue;
            }
            self.node_get(Some(xc));
            let mut st = *state;
            st.flags |= IST_M_MATCHSET;
            let x_sub = self.branch(xc, branch_t);
            *cnt += self.tree_prune(x_sub, n_sub, &mut st);
            *cnt += self.node_put(&mut x);
            if st.flags & IST_MATCH != 0 {
                state_new.flags |= st.flags;
            }
            x?;
        }
        x
    }

    /// After the branches of an equal node: the existing subtree is removed when the new rule
    /// covers it, or the walk stops when the existing rule covers the new one.
    fn prune_covered(
        &mut self,
        xc: usize,
        state: &IterState,
        state_new: &IterState,
        cnt: &mut i64,
    ) -> Walk {
        let ok = self.tree_act_check(Some(xc), state_new.action);
        let flags = state_new.flags;
        if ok && flags & IST_MATCH != 0 && flags & IST_N_FINISHED != 0 && flags & IST_X_PREFIX != 0
        {
            *cnt += self.tree_remove(Loc::Chains(state.sys), xc);
            if self.syscalls[state.sys].chains.is_none() {
                return Walk::Stop;
            }
        } else if ok
            && flags & IST_MATCH != 0
            && flags & IST_X_FINISHED != 0
            && flags & IST_N_PREFIX != 0
        {
            return Walk::Stop;
        }
        Walk::Next
    }

    /// One node sorts before the other: the later chain is looked for in the earlier node's
    /// subtrees. `first` says which: the existing node `xi` (the new chain is looked for under
    /// it) or the new node `n_iter` (the existing level is looked for under it).
    fn prune_one_first(
        &mut self,
        first: Side,
        xi: usize,
        n_iter: usize,
        state: &IterState,
        state_new: &mut IterState,
        cnt: &mut i64,
    ) -> Walk {
        let (blocked_by, prefix) = match first {
            Side::Existing => (IST_N_PREFIX, IST_X_PREFIX),
            Side::New => (IST_X_PREFIX, IST_N_PREFIX),
        };
        if state.flags & blocked_by != 0 {
            return Walk::Stop;
        }
        let mut x = Some(xi);
        for branch_t in [true, false] {
            let Some(xc) = x else { break };
            let sub = match first {
                Side::Existing => self.branch(xc, branch_t),
                Side::New => self.branch(n_iter, branch_t),
            };
            if sub.is_none() {
                continue;
            }
            self.node_get(Some(xc));
            let mut st = *state;
            st.flags &= !IST_MATCH;
            st.flags |= prefix;
            *cnt += match first {
                Side::Existing => self.tree_prune(sub, Some(n_iter), &mut st),
                Side::New => self.tree_prune(Some(xc), sub, &mut st),
            };
            *cnt += self.node_put(&mut x);
            if st.flags & IST_MATCH != 0 {
                state_new.flags |= st.flags;
                return Walk::Stop;
            }
            if x.is_none() {
                break;
            }
        }
        Walk::Next
    }

    fn prune_return(&self, state: &mut IterState, state_new: IterState, cnt: i64) -> i64 {
        if state_new.flags & IST_MATCH != 0 {
            state.flags |= state_new.flags;
        } else {
            state.flags &= !IST_MATCH;
        }
        cnt
    }
}
