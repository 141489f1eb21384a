//! Reference counting and removal in the rule trees (`_db_node_put`, `_db_tree_put`,
//! `_db_level_clean`, `_db_tree_remove`), with the use-after-free checks.

use super::{Db, Loc};

impl Db {
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
    pub(super) fn tree_put(&mut self, tree: &mut Option<usize>) -> i64 {
        let mut cnt = self.node_put(tree);
        if let Some(t) = *tree {
            cnt += self.level_clean(t);
        }
        cnt
    }

    pub(super) fn tree_put_at(&mut self, loc: Loc) -> i64 {
        let mut v = self.get(loc);
        let cnt = self.tree_put(&mut v);
        self.set(loc, v);
        cnt
    }

    /// `_db_node_put`: drops one reference; the last one frees the node and its subtrees and
    /// closes the gap in its level. Returns the number of nodes freed.
    pub(super) fn node_put(&mut self, node: &mut Option<usize>) -> i64 {
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
    pub(super) fn tree_remove(&mut self, tree: Loc, node: usize) -> i64 {
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
    pub(super) fn tree_act_check(&self, tree: Option<usize>, action: u32) -> bool {
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

    /// `_db_node_put(&x->nxt_t)` as written in `_db_tree_add` (a put, not a tree put).
    pub(super) fn tree_put_at_node_put(&mut self, loc: Loc) -> i64 {
        let mut v = self.get(loc);
        let cnt = self.node_put(&mut v);
        self.set(loc, v);
        cnt
    }
}
