//! `_db_rule_gen`: one rule's conditions as a chain of word comparisons (64-bit arguments
//! in high and low words, NE/LT/LE rewritten with swapped branches).

use super::super::cond::{Cmp, Cond, NodeOp, Op};
use super::{Cmp2, Db, Node, OFF_ARGS};

/// A rule's chain while it is built: its head, the nodes whose `tf` branch the next
/// condition (or, at the end, the rule's action) hangs from, and its node count.
struct Chain {
    head: Option<usize>,
    prev: Vec<usize>,
    tf: bool,
    count: i64,
}

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
        let mut chain = Chain {
            head: None,
            prev: Vec::new(),
            tf: false,
            count: 0,
        };
        let mut sorted: Vec<&Cond> = conds.iter().collect();
        sorted.sort_by_key(|c| c.index);
        for c in sorted {
            let (mask, orig) = match c.op {
                Op::MaskedEq { mask } => (mask, Cmp2::MaskedEq),
                Op::Cmp(op) => (u64::MAX, Cmp2::Plain(op)),
            };
            if self.narrow {
                self.gen_narrow(&mut chain, c, orig, mask);
            } else {
                self.gen_wide(&mut chain, c, orig, mask);
            }
        }
        if chain.head.is_some() {
            for &p in &chain.prev {
                if chain.tf {
                    self.nodes[p].act_t_flg = true;
                    self.nodes[p].act_t = action;
                } else {
                    self.nodes[p].act_f_flg = true;
                    self.nodes[p].act_f = action;
                }
            }
        }
        (chain.head, chain.count)
    }

    /// One condition on a 32-bit arch: one node on the argument's low word.
    fn gen_narrow(&mut self, chain: &mut Chain, c: &Cond, orig: Cmp2, mask: u64) {
        if orig == Cmp2::MaskedEq && mask as u32 == 0 {
            return;
        }
        let datum = c.value;
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
        self.link(&chain.prev, chain.tf, n);
        chain.prev = vec![n];
        if chain.head.is_none() {
            chain.head = self.node_get(Some(n));
        }
        chain.count += 1;
        chain.tf = !swap;
    }

    /// One condition on x86_64: nodes on the high word, then the low word; as in libseccomp,
    /// a MASKED_EQ whose mask is zero in one word still compares both (none if both are zero).
    fn gen_wide(&mut self, chain: &mut Chain, c: &Cond, orig: Cmp2, mask: u64) {
        let need_lo = !(orig == Cmp2::MaskedEq && mask as u32 == 0);
        let need_hi = !(orig == Cmp2::MaskedEq && (mask >> 32) as u32 == 0);
        if !need_hi && !need_lo {
            return;
        }
        let first = match orig {
            Cmp2::Plain(Cmp::Gt | Cmp::Ge | Cmp::Le | Cmp::Lt) => {
                self.gen_wide_order(chain, c, orig, mask)
            }
            _ => self.gen_wide_equal(chain, c, orig, mask),
        };
        if chain.head.is_none() {
            chain.head = self.node_get(Some(first));
        }
    }

    /// GT/GE/LE/LT on 64 bits: `hi > d.hi`, else `hi == d.hi` and the low word compared.
    /// Returns the first node.
    fn gen_wide_order(&mut self, chain: &mut Chain, c: &Cond, orig: Cmp2, mask: u64) -> usize {
        let datum = c.value;
        let (mh, ml) = ((mask >> 32) as u32, mask as u32);
        let (dh, dl) = ((datum >> 32) as u32, datum as u32);
        let lo_op = match orig {
            Cmp2::Plain(Cmp::Gt | Cmp::Le) => NodeOp::Gt,
            _ => NodeOp::Ge,
        };
        let c0 = self.new_node(c.index, true, NodeOp::Gt, orig, mh, dh, datum);
        let c1 = self.new_node(c.index, true, NodeOp::Eq, orig, mh, dh, datum);
        let c2 = self.new_node(c.index, false, lo_op, orig, ml, dl, datum);
        self.link(&chain.prev, chain.tf, c0);
        self.nodes[c0].nxt_f = self.node_get(Some(c1));
        self.nodes[c1].nxt_t = self.node_get(Some(c2));
        if matches!(orig, Cmp2::Plain(Cmp::Gt | Cmp::Ge)) {
            chain.prev = vec![c0, c2];
            chain.tf = true;
        } else {
            chain.prev = vec![c1, c2];
            chain.tf = false;
        }
        chain.count += 3;
        c0
    }

    /// EQ/NE/MASKED_EQ on 64 bits: both words compared. Returns the first node.
    fn gen_wide_equal(&mut self, chain: &mut Chain, c: &Cond, orig: Cmp2, mask: u64) -> usize {
        let datum = c.value;
        let (mh, ml) = ((mask >> 32) as u32, mask as u32);
        let (dh, dl) = ((datum >> 32) as u32, datum as u32);
        let op = if orig == Cmp2::MaskedEq {
            NodeOp::MaskedEq
        } else {
            NodeOp::Eq
        };
        let c0 = self.new_node(c.index, true, op, orig, mh, dh, datum);
        let c1 = self.new_node(c.index, false, op, orig, ml, dl, datum);
        self.link(&chain.prev, chain.tf, c0);
        self.nodes[c0].nxt_t = self.node_get(Some(c1));
        if orig == Cmp2::Plain(Cmp::Ne) {
            chain.prev = vec![c0, c1];
            chain.tf = false;
        } else {
            chain.prev = vec![c1];
            chain.tf = true;
        }
        chain.count += 2;
        c0
    }
}
