//! `_db_tree_prune`: which parts of a syscall's tree a new rule makes redundant, and whether
//! the new rule is itself redundant.

use super::{Db, Loc};

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
}
