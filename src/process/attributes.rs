//! The process attributes of runtime-spec 1.1/1.2 beyond user and capabilities:
//! `linux.personality`, `process.ioPriority`, `process.scheduler`, and the LSM labels
//! (`process.apparmorProfile`, `process.selinuxLabel`).
//!
//! Whether the host can apply the LSM labels is checked in the parent first ([`crate::lsm`]).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process,
    Spec,
};

use crate::rootfs::procfs::Procfs;
use crate::syscall::process::{self as sys, SchedAttr};

/// `process.oomScoreAdj`, written by hutch into /proc/<pid> of the new container process (its
/// unreaped child) before the process may proceed. The process cannot do it itself: once it is
/// non-dumpable in a user namespace its /proc files belong to host root, and lowering the value
/// needs CAP_SYS_RESOURCE on the host.
pub fn set_oom_score_adj(pid: nix::unistd::Pid, adj: Option<i32>) -> Result<()> {
    let Some(adj) = adj else {
        return Ok(());
    };
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
        .with_context(|| format!("process.oomScoreAdj: writing {adj}"))
}

/// Asks the LSMs to switch this process's label at its next execve. Written through a verified
/// procfs handle (CVE-2019-16884, CVE-2025-52881).
pub fn apply_lsm_labels(process: &Process) -> Result<()> {
    if let Some(profile) = process
        .apparmor_profile()
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        let proc = Procfs::open()?;
        // attr/apparmor/exec since Linux 5.8 (LSM stacking); attr/exec before.
        let file = proc
            .open_thread_file(Path::new("attr/apparmor/exec"), OFlag::O_WRONLY)
            .or_else(|_| proc.open_thread_file(Path::new("attr/exec"), OFlag::O_WRONLY))
            .context("process.apparmorProfile: opening attr/exec")?;
        std::fs::File::from(file)
            .write_all(format!("exec {profile}").as_bytes())
            .with_context(|| format!("process.apparmorProfile: applying {profile:?}"))?;
    }
    if let Some(label) = process.selinux_label().as_ref().filter(|l| !l.is_empty()) {
        let proc = Procfs::open()?;
        let file = proc
            .open_thread_file(Path::new("attr/exec"), OFlag::O_WRONLY)
            .context("process.selinuxLabel: opening attr/exec")?;
        std::fs::File::from(file)
            .write_all(label.as_bytes())
            .with_context(|| format!("process.selinuxLabel: applying {label:?}"))?;
    }
    Ok(())
}

pub fn apply_personality(spec: &Spec) -> Result<()> {
    let Some(personality) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) else {
        return Ok(());
    };
    const PER_LINUX: libc::c_ulong = 0x0000;
    const PER_LINUX32: libc::c_ulong = 0x0008;
    let persona = match personality.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    sys::set_personality(persona).context("linux.personality")
}

pub fn apply_io_priority(process: &Process) -> Result<()> {
    let Some(io) = process.io_priority().as_ref() else {
        return Ok(());
    };
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = u32::try_from(io.priority())
        .ok()
        .filter(|l| *l <= 7)
        .with_context(|| {
            format!(
                "process.ioPriority.priority: {} is not in 0..=7",
                io.priority()
            )
        })?;
    sys::set_io_priority(class, level).context("process.ioPriority")
}

pub fn apply_scheduler(process: &Process) -> Result<()> {
    let Some(sched) = process.scheduler().as_ref() else {
        return Ok(());
    };
    let policy = match sched.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let flags = sched.flags().iter().flatten().fold(0u64, |acc, f| {
        acc | match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    let mut attr = SchedAttr {
        policy,
        flags,
        nice: sched.nice().unwrap_or(0),
        priority: u32::try_from(sched.priority().unwrap_or(0))
            .context("process.scheduler.priority: must not be negative")?,
        runtime: sched.runtime().unwrap_or(0),
        deadline: sched.deadline().unwrap_or(0),
        period: sched.period().unwrap_or(0),
        ..Default::default()
    };
    sys::sched_setattr(&mut attr).context("process.scheduler: sched_setattr")
}

/// Which of `process.execCPUAffinity`'s two settings (runtime-spec 1.2; exec only): `initial`
/// while the process joins the container, `final` for the program it runs.
#[derive(Clone, Copy)]
pub enum AffinityStage {
    Initial,
    Final,
}

pub fn apply_exec_cpu_affinity(process: &Process, stage: AffinityStage) -> Result<()> {
    let Some(affinity) = process.exec_cpu_affinity().as_ref() else {
        return Ok(());
    };
    let (field, list) = match stage {
        AffinityStage::Initial => ("initial", affinity.initial().as_deref()),
        AffinityStage::Final => ("final", affinity.cpu_affinity_final().as_deref()),
    };
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let set = parse_cpu_list(list)
        .with_context(|| format!("process.execCPUAffinity.{field}: {list:?}"))?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("process.execCPUAffinity.{field}: sched_setaffinity {list:?}"))
}

/// A kernel CPU list: "0-3,5,7-8".
fn parse_cpu_list(list: &str) -> Result<nix::sched::CpuSet> {
    let mut set = nix::sched::CpuSet::new();
    for part in list.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>()?, b.trim().parse::<usize>()?),
            None => {
                let n = part.parse::<usize>()?;
                (n, n)
            }
        };
        if lo > hi {
            bail!("range {part} is reversed");
        }
        for cpu in lo..=hi {
            set.set(cpu)
                .with_context(|| format!("cpu {cpu} is out of range"))?;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        let set = parse_cpu_list("0-2,5").unwrap();
        for cpu in [0, 1, 2, 5] {
            assert!(set.is_set(cpu).unwrap());
        }
        assert!(!set.is_set(3).unwrap());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }
}
