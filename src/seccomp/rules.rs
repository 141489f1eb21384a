//! The profile's rules into one libseccomp rule database per ABI (as libseccomp keeps one
//! per arch), with what else the filter needs from them: the highest syscall number each
//! listed ABI names, whether a rule notifies, the names no x86 ABI knows.

use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

use super::abi::{lookup, multiplexed, Abi, Row};
use super::cond::{Cmp, Cond, Op};
use super::db::{Conflict, Db};
use super::profile::{action_value, check_errno, check_notify, conditions};

/// The rule databases and what the rest of the compiler needs from the rules.
pub(super) struct Rules {
    /// One per ABI, in the order of the ABI list.
    pub dbs: Vec<Db>,
    /// Highest syscall number each listed ABI's names reach, for runc's ENOSYS stub (runc
    /// counts every name, whatever its rule's action, and only for the listed arches).
    pub max_nr: Vec<Option<u32>>,
    /// Some rule is `SCMP_ACT_NOTIFY`.
    pub notify: bool,
    /// Names that are no syscall on any x86 ABI (skipped, as runc does).
    pub unknown: Vec<String>,
}

/// Adds every rule of `seccomp` for every ABI of `abis`; `default` is the default action's
/// value (rules with that action are dropped, as runc drops them).
pub(super) fn build(seccomp: &LinuxSeccomp, abis: &[Abi], default: u32) -> Result<Rules> {
    let mut builder = Builder {
        abis,
        listed: abis.iter().map(|abi| abi.listed(seccomp)).collect(),
        default,
        rules: Rules {
            dbs: abis.iter().map(|a| Db::new(!a.wide())).collect(),
            max_nr: vec![None; abis.len()],
            notify: false,
            unknown: Vec::new(),
        },
    };
    for (r, rule) in seccomp.syscalls().iter().flatten().enumerate() {
        builder.rule(r, rule)?;
    }
    Ok(builder.rules)
}

struct Builder<'a> {
    abis: &'a [Abi],
    /// Per ABI: the profile lists it (so runc's stub counts its numbers).
    listed: Vec<bool>,
    default: u32,
    rules: Rules,
}

/// One rule, resolved for one name.
struct Named<'a> {
    /// `linux.seccomp.syscalls[N]`.
    field: &'a str,
    name: &'a str,
    /// The name's index in the syscall table and its row.
    index: u32,
    row: &'static Row,
    action: u32,
    chains: &'a [Vec<Cond>],
}

impl Builder<'_> {
    /// `linux.seccomp.syscalls[r]`: its action and conditions, then each of its names on
    /// each ABI.
    fn rule(&mut self, r: usize, rule: &LinuxSyscall) -> Result<()> {
        let field = format!("linux.seccomp.syscalls[{r}]");
        let action = action_value(
            rule.action(),
            rule.errno_ret(),
            &format!("{field}.action"),
            &format!("{field}.errnoRet"),
        )?;
        let chains = conditions(rule.args().as_deref().unwrap_or_default(), &field)?;
        if rule.action() == LinuxSeccompAction::ScmpActNotify {
            check_notify(rule.names(), &field)?;
            self.rules.notify = true;
        }
        for (n, name) in rule.names().iter().enumerate() {
            if name.is_empty() {
                bail!("{field}.names[{n}]: empty syscall name");
            }
            let Some((index, row)) = lookup(name) else {
                if !self.rules.unknown.contains(name) {
                    self.rules.unknown.push(name.clone());
                }
                continue;
            };
            let named = Named {
                field: &field,
                name,
                index,
                row,
                action,
                chains: &chains,
            };
            for a in 0..self.abis.len() {
                self.add(a, &named)?;
            }
        }
        Ok(())
    }

    /// One name of a rule on the ABI at `a`: counted for the ENOSYS stub, then (unless its
    /// action is the default one) added to that ABI's database.
    fn add(&mut self, a: usize, rule: &Named) -> Result<()> {
        let abi = self.abis[a];
        let (_, numbers, mux) = rule.row;
        // libseccomp resolves an i386 socket or IPC name to its multiplexed pseudo number,
        // which runc's stub does not count.
        let counted = !(abi == Abi::I386 && *mux != 0);
        if let Some(nr) = abi.number(numbers).filter(|_| counted) {
            if self.listed[a] {
                self.rules.max_nr[a] = self.rules.max_nr[a].max(Some(nr));
            }
        }
        // runc drops rules whose action is the default one.
        if rule.action == self.default {
            return Ok(());
        }
        let field = rule.field;
        check_errno(rule.action, &format!("{field}.errnoRet"))?;
        let db = &mut self.rules.dbs[a];
        let added = if abi == Abi::I386 {
            add_i386(db, rule)
        } else {
            // A name this arch lacks is a pseudo syscall to libseccomp: kept in the database
            // (it counts for libseccomp's merge and order), never emitted.
            let nr = abi.number(numbers).map_or(pseudo(rule), i64::from);
            add_chains(db, nr, rule.chains, rule.action)
        };
        let name = rule.name;
        added.map_err(|_| {
            anyhow!(
                "{field}: the rules for {name} conflict (libseccomp, and so runc, refuses \
                 them: two rules end on the same argument check with different actions)"
            )
        })?;
        if db.is_broken() {
            // libseccomp 2.5.4 reads and writes tree nodes it has already freed while
            // merging this rule: what runc would load is undefined.
            bail!(
                "{field}: the rules for {name} cannot be merged as libseccomp does (its rule \
                 merge uses freed memory on them, so runc's filter is undefined); split or \
                 reorder the rules"
            );
        }
        Ok(())
    }
}

/// The pseudo syscall number libseccomp gives a name an arch lacks (one per name).
fn pseudo(rule: &Named) -> i64 {
    -1 - i64::from(rule.index)
}

/// libseccomp's x86 rule: socket and SysV IPC calls also (or only) as their multiplexed form,
/// socketcall(2)/ipc(2) with the call number replacing the condition on argument 0; the
/// direct call after it.
fn add_i386(db: &mut Db, rule: &Named) -> Result<(), Conflict> {
    let (_, numbers, mux) = rule.row;
    let direct = Abi::I386.number(numbers);
    if let Some((mux_nr, call)) = multiplexed(*mux) {
        let call = Cond {
            index: 0,
            op: Op::Cmp(Cmp::Eq),
            value: call,
        };
        let muxed: Vec<Vec<Cond>> = if rule.chains.is_empty() {
            vec![vec![call]]
        } else {
            rule.chains
                .iter()
                .map(|c| {
                    let mut c: Vec<Cond> = c.iter().filter(|c| c.index != 0).copied().collect();
                    c.push(call);
                    c
                })
                .collect()
        };
        add_chains(db, i64::from(mux_nr), &muxed, rule.action)?;
    }
    if let Some(nr) = direct {
        add_chains(db, i64::from(nr), rule.chains, rule.action)?;
    } else if *mux != 0 {
        add_chains(db, pseudo(rule), rule.chains, rule.action)?;
    }
    Ok(())
}

/// A rule's AND-chains for syscall `nr`, ORed (no chain: the rule has no condition).
fn add_chains(db: &mut Db, nr: i64, chains: &[Vec<Cond>], action: u32) -> Result<(), Conflict> {
    if chains.is_empty() {
        return db.rule_add(nr, &[], action);
    }
    chains.iter().try_for_each(|c| db.rule_add(nr, c, action))
}
