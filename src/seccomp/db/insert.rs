//! `_db_tree_add`: a new rule's chain merged into a syscall's tree, level by level in
//! libseccomp's order, with its -EEXIST refusals.

use super::{Conflict, Db, Loc};

impl Db {
    /// `_db_tree_add`: merges the new rule's chain into the tree at `existing`.
    pub(super) fn tree_add(
        &mut self,
        existing: Loc,
        new: usize,
        sys: usize,
    ) -> Result<(), Conflict> {
        let mut x_iter = self.get(existing);
        let n_iter = new;
        while let Some(xi) = x_iter {
            if !self.alive(xi) {
                break;
            }
            if self.chain_eq(xi, n_iter) {
                self.merge_actions(xi, n_iter, sys)?;
                return self.merge_subtrees(xi, n_iter, sys);
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
                self.insert_before(existing, xi, n_iter);
                return Ok(());
            }
        }
        Ok(())
    }

    /// Equal nodes, where the new one ends a rule: the existing node takes its action in
    /// place of a subtree that has no other action, or the two rules conflict.
    fn merge_actions(&mut self, xi: usize, n_iter: usize, sys: usize) -> Result<(), Conflict> {
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
                let loc = if branch_t { Loc::T(xi) } else { Loc::F(xi) };
                let freed = self.tree_put_at_node_put(loc);
                self.syscalls[sys].node_cnt -= freed;
                self.set(loc, None);
                let x = &mut self.nodes[xi];
                if branch_t {
                    x.act_t = n_act;
                    x.act_t_flg = true;
                } else {
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
        Ok(())
    }

    /// Equal nodes: the new node's subtrees merge into the existing node's, or hang there
    /// when it has none (and no action) on that branch.
    fn merge_subtrees(&mut self, xi: usize, n_iter: usize, sys: usize) -> Result<(), Conflict> {
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
        Ok(())
    }

    /// The new node sorts before the existing node `xi`: it goes in front of it in the
    /// level, and becomes the tree's head if `xi` was.
    fn insert_before(&mut self, existing: Loc, xi: usize, n_iter: usize) {
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
    }
}
