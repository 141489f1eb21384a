//! Argument conditions: the comparisons a rule states and the word comparisons libseccomp
//! turns them into, shared by the rule database and the BPF emitter.

/// Plain comparisons (OCI `SCMP_CMP_NE` … `SCMP_CMP_GT`), all unsigned as in libseccomp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cmp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

/// libseccomp's comparison operators (OCI `SCMP_CMP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Cmp(Cmp),
    /// `(arg & mask) == datum`; OCI puts the mask in `value` and the datum in `valueTwo`,
    /// so `Cond::value` holds the datum here.
    MaskedEq {
        mask: u64,
    },
}

/// One argument condition of a rule.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
}

/// Comparison a node performs after libseccomp's rewrite (NE/LT/LE become EQ/GE/GT with the
/// branches swapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum NodeOp {
    Eq,
    MaskedEq,
    Gt,
    Ge,
}
