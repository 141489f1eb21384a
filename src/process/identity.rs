//! Who the container's process is: rlimits, user and groups, capabilities.
//!
//! The capability plan is computed in the parent (where warnings can be logged and unknown
//! names reported); the init applies it in runc's order: drop the bounding set while still
//! root, keep permitted caps across the uid switch (PR_SET_KEEPCAPS), switch groups, gid, uid,
//! then set effective/permitted/inheritable and raise ambient. Inheritable caps are only what the
//! config lists (CVE-2022-29162).

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{PosixRlimitType, Process};

use crate::logging;
use crate::syscall::process as sys;

#[derive(Debug, Clone, Default)]
pub struct CapabilityPlan {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub permitted: CapsHashSet,
    pub ambient: CapsHashSet,
}

/// `None` when the config has no `capabilities`: the process keeps what it has, as in runc.
pub fn capability_plan(process: &Process) -> Result<Option<CapabilityPlan>> {
    let Some(config) = process.capabilities() else {
        return Ok(None);
    };
    let last_cap: u8 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let convert = |field: &str, set: &Option<oci_spec::runtime::Capabilities>| -> CapsHashSet {
        let mut out = CapsHashSet::new();
        for cap in set.iter().flatten() {
            let name = format!("CAP_{cap}");
            match name.parse::<Capability>() {
                Ok(c) if c.index() <= last_cap => {
                    out.insert(c);
                }
                _ => logging::warn(&format!(
                    "process.capabilities.{field}: {name} is not supported by the running kernel; skipped"
                )),
            }
        }
        out
    };
    Ok(Some(CapabilityPlan {
        bounding: convert("bounding", config.bounding()),
        effective: convert("effective", config.effective()),
        inheritable: convert("inheritable", config.inheritable()),
        permitted: convert("permitted", config.permitted()),
        ambient: convert("ambient", config.ambient()),
    }))
}

pub fn apply_rlimits(process: &Process) -> Result<()> {
    for rlimit in process.rlimits().iter().flatten() {
        let resource = rlimit_resource(rlimit.typ());
        let limit = libc::rlimit {
            rlim_cur: rlimit.soft(),
            rlim_max: rlimit.hard(),
        };
        // prlimit on ourselves with a struct we own; nix has no way to pass a raw resource.
        nix::sys::resource::setrlimit(resource, limit.rlim_cur, limit.rlim_max).with_context(
            || {
                format!(
                    "process.rlimits {}: setting soft {} hard {}",
                    rlimit.typ(),
                    rlimit.soft(),
                    rlimit.hard()
                )
            },
        )?;
    }
    Ok(())
}

fn rlimit_resource(typ: PosixRlimitType) -> nix::sys::resource::Resource {
    use nix::sys::resource::Resource as R;
    match typ {
        PosixRlimitType::RlimitCpu => R::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => R::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => R::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => R::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => R::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => R::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => R::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => R::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => R::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => R::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => R::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => R::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => R::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => R::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => R::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => R::RLIMIT_RTTIME,
    }
}

/// Switches to the configured user and groups, dropping the bounding set first (while still
/// root) and keeping the permitted capabilities across the uid switch (PR_SET_KEEPCAPS) for
/// `apply_capabilities`. `may_setgroups` is false in a user namespace whose setgroups is denied.
///
/// This and `apply_capabilities` are apart so that a seccomp filter loaded without
/// no_new_privs (which needs CAP_SYS_ADMIN) can go between them: everything here happens
/// before the container's profile applies, which may deny any of these calls.
pub fn switch_user(
    process: &Process,
    caps_plan: Option<&CapabilityPlan>,
    may_setgroups: bool,
) -> Result<()> {
    if let Some(plan) = caps_plan {
        for cap in caps::all() {
            if !plan.bounding.contains(&cap)
                && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
            {
                caps::drop(None, CapSet::Bounding, cap)
                    .with_context(|| format!("process.capabilities.bounding: dropping {cap}"))?;
            }
        }
    }
    let user = process.user();
    sys::set_keep_caps(true).context("prctl(PR_SET_KEEPCAPS)")?;
    if may_setgroups {
        let groups = user.additional_gids().clone().unwrap_or_default();
        sys::setgroups(&groups).context("process.user.additionalGids: setgroups")?;
    }
    sys::setresgid(user.gid())
        .with_context(|| format!("process.user.gid: setting gid {}", user.gid()))?;
    sys::setresuid(user.uid())
        .with_context(|| format!("process.user.uid: setting uid {}", user.uid()))?;
    sys::set_keep_caps(false).context("prctl(PR_SET_KEEPCAPS)")?;
    if caps_plan.is_some() {
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("process.capabilities.ambient: clearing")?;
    }
    // Unset means runc's 0022, never the caller's umask (which would otherwise leak in).
    let mask = user.umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        mask as libc::mode_t,
    ));
    Ok(())
}

/// Sets the configured effective, permitted, inheritable and ambient capabilities (after
/// `switch_user`). Nothing without a plan: the process keeps what it has, as in runc.
pub fn apply_capabilities(caps_plan: Option<&CapabilityPlan>) -> Result<()> {
    let Some(plan) = caps_plan else {
        return Ok(());
    };
    // Effective first: the kernel refuses a permitted set smaller than the current
    // effective one.
    caps::set(None, CapSet::Effective, &plan.effective)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("process.capabilities.effective")?;
    caps::set(None, CapSet::Permitted, &plan.permitted)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("process.capabilities.permitted")?;
    caps::set(None, CapSet::Inheritable, &plan.inheritable)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("process.capabilities.inheritable")?;
    for cap in &plan.ambient {
        // An ambient cap must also be permitted and inheritable; the kernel refuses it
        // otherwise, and runc ignores the failure too.
        if let Err(e) = caps::raise(None, CapSet::Ambient, *cap) {
            logging::debug(&format!("process.capabilities.ambient: raising {cap}: {e}"));
        }
    }
    Ok(())
}

/// Loading a seccomp filter without no_new_privs needs CAP_SYS_ADMIN in the effective set,
/// which a switch to a non-zero uid emptied (the permitted set kept it). Returns whether it
/// had to be raised.
pub fn raise_sys_admin() -> Result<bool> {
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_ADMIN).unwrap_or(false)
        || !caps::has_cap(None, CapSet::Permitted, Capability::CAP_SYS_ADMIN).unwrap_or(false)
    {
        return Ok(false);
    }
    caps::raise(None, CapSet::Effective, Capability::CAP_SYS_ADMIN)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("raising CAP_SYS_ADMIN to load the seccomp filter")?;
    Ok(true)
}

/// Undoes `raise_sys_admin` where no capability plan sets the effective set afterwards.
pub fn lower_sys_admin() -> Result<()> {
    caps::drop(None, CapSet::Effective, Capability::CAP_SYS_ADMIN)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("dropping CAP_SYS_ADMIN after loading the seccomp filter")
}
