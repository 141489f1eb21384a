//! `_db_rule_gen`: one rule's conditions as a chain of word comparisons (64-bit arguments
//! in high and low words, NE/LT/LE rewritten with swapped branches).

use super::super::cond::{Cmp, Cond, NodeOp, Op};
use super::{Cmp2, Db, Node, OFF_ARGS};

impl Db {
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
    pub(super) fn rule_gen(&mut self, conds: &[Cond], action: u32) -> (Option<usize>, i64) {
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
}
