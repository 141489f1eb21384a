//! The exec'd process: between the clone inside the container's namespaces and `execve`.
//!
//! It runs the tail of the init sequence only: the container's filesystem, hostname and
//! mounts already exist. Forked from single-threaded hutch, so allocation is safe here.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Process, Spec};

use super::attributes;
use super::channel::{Channel, ToChild, ToParent};
use super::identity::{self, CapabilityPlan};
use super::init::{exec_process, join_own_cgroups, take_identity, Command, Link};
use super::terminal;
use crate::rootfs::Rootfs;
use crate::syscall::process as sys;

pub struct ExecContext<'a> {
    pub process: &'a Process,
    pub spec: &'a Spec,
    pub caps: Option<&'a CapabilityPlan>,
    pub seccomp: Option<&'a crate::seccomp::Program>,
    pub channel: &'a Channel,
    pub parent_fds: &'a [RawFd],
    pub preserve_fds: u32,
    pub in_user_ns: bool,
    /// The v1 cgroups' `tasks` files the process moves itself into (empty when hutch does it).
    pub cgroup_tasks: &'a [std::fs::File],
    /// The init's root, when the container shares hutch's mount namespace: joining no mount
    /// namespace, the process must chroot where the init did.
    pub chroot: Option<&'a OwnedFd>,
}

pub fn exec_child(ctx: &ExecContext) -> ! {
    if let Err(err) = run(ctx) {
        let _ = ctx.channel.send(&ToParent::Error(format!("{err:#}")));
    }
    std::process::exit(1)
}

fn run(ctx: &ExecContext) -> Result<()> {
    for fd in ctx.parent_fds {
        let _ = nix::unistd::close(*fd);
    }
    if let Some(root) = ctx.chroot {
        nix::unistd::fchdir(root).context("chdir to the container's root")?;
        nix::unistd::chroot(".").context("chroot into the container's root")?;
        let _ = nix::unistd::close(root.as_raw_fd());
    }
    // Other processes in the container must not reach hutch's /proc files before execve.
    sys::set_dumpable(false).context("prctl(PR_SET_DUMPABLE)")?;
    // Never in the caller's session (its terminal, its jobs): see the init.
    nix::unistd::setsid().context("setsid: a new session for the process")?;
    attributes::apply_exec_cpu_affinity(ctx.process, attributes::AffinityStage::Initial)?;
    join_own_cgroups(ctx.cgroup_tasks)?;
    let link = Link {
        channel: ctx.channel,
    };
    match link.receive("the parent's go-ahead")? {
        ToChild::Proceed => {}
        other => bail!("sync protocol: expected Proceed, got {other:?}"),
    }
    let process = ctx.process;
    if process.terminal().unwrap_or(false) {
        let root = Rootfs::current().context("opening the container's root")?;
        terminal::attach_terminal(&root, process, ctx.channel, false)?;
    }
    identity::apply_rlimits(process)?;
    attributes::apply_scheduler(process)?;
    attributes::apply_io_priority(process)?;
    // The execution domain is the container's (linux.personality), not hutch's: an exec'd
    // `uname -m` must agree with the init's.
    attributes::apply_personality(ctx.spec)?;
    attributes::apply_lsm_labels(process)?;

    let command = Command::prepare(process)?;

    let late_seccomp = take_identity(
        &link,
        process,
        ctx.spec,
        ctx.caps,
        ctx.seccomp,
        ctx.in_user_ns,
    )?;
    attributes::apply_exec_cpu_affinity(ctx.process, attributes::AffinityStage::Final)?;
    ctx.channel.send(&ToParent::Ready)?;
    match link.receive("exec to complete")? {
        ToChild::Commit { .. } => {}
        other => bail!("sync protocol: expected Commit, got {other:?}"),
    }
    exec_process(&command, ctx.preserve_fds, late_seccomp, ctx.spec)
}
