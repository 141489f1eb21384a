//! `exec`, the parent's side: a new process in every namespace and the cgroup of a running
//! container. The protocol is the one `create` uses (process/channel.rs), shortened: an
//! intermediate joins the namespaces and clones the process as hutch's child; hutch places it
//! in the cgroup, sends Proceed, forwards its pty and seccomp listener, writes the pid file on
//! Ready and sends Commit, after which the process execs at once.

use std::convert::Infallible;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::state::{State, Status};
use super::state_dir::{ContainerDir, CONFIG_FILE, SECCOMP_FILE};
use crate::config;
use crate::console;
use crate::namespaces::NamespacePlan;
use crate::process::channel::{self, Channel, ToChild, ToParent};
use crate::process::exec::{exec_child, ExecContext};
use crate::process::foreground::{block_signals, forward_and_wait};
use crate::process::identity::CapabilityPlan;
use crate::process::spawn::{open_cgroup_dir, spawn, SpawnFds, Spawned};
use crate::process::{attributes, identity};
use crate::syscall::process::pidfd_open;

pub struct ExecRequest<'a> {
    pub id: &'a str,
    pub console_socket: Option<&'a Path>,
    pub pidfd_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
    pub detach: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
}

/// Kills and reaps a half-started exec process unless disarmed.
struct Undo(Option<Pid>);

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// Returns the exit status to exit with: 0 when detached, the process's own otherwise.
pub fn exec(
    root: &Path,
    req: &ExecRequest,
    build: impl FnOnce(&Process) -> Result<Process>,
) -> Result<i32> {
    let plan = plan(root, req, build)?;
    let console_stream = req.console_socket.map(console::connect).transpose()?;
    let pidfd_stream = req.pidfd_socket.map(console::connect_pidfd).transpose()?;
    let (parent_ch, child_ch) = channel::pair()?;
    let mut parent_fds = vec![parent_ch.raw_fd()];
    for stream in console_stream.iter().chain(pidfd_stream.iter()) {
        parent_fds.push(stream.as_raw_fd());
    }
    let forward = if req.detach {
        None
    } else {
        Some(block_signals()?)
    };
    let spawned = spawn_process(req, &plan, (&parent_ch, child_ch), &parent_fds)?;
    let pid = spawned.pid;
    let mut undo = Undo(Some(pid));
    // A --process without the field gets the container's, as in runc.
    let oom = plan.process.oom_score_adj().or(plan.base.oom_score_adj());
    attributes::set_oom_score_adj(pid, oom)?;
    join_cgroup(&plan, &spawned)?;
    parent_ch.send(&ToChild::Proceed)?;
    let console = drive(
        &parent_ch,
        &plan.state,
        &plan.spec,
        console_stream.as_ref(),
        pid,
    )?;
    if let Some(stream) = &pidfd_stream {
        console::send_pidfd(stream, pid)?;
    }
    if let Some(path) = req.pid_file {
        super::pid_file::write_pid_file(path, pid)?;
    }
    parent_ch.send(&ToChild::Commit {
        state: String::new(),
    })?;
    undo.0 = None;
    wait_for_execve(&parent_ch)?;
    match forward {
        None => Ok(0),
        Some(mask) => forward_and_wait(pid, &mask, console),
    }
}

/// Waits for the process's end of the sync socket to close: it is close-on-exec, so that is
/// the moment the process runs its program (or has exited, when the execve failed). Only then
/// does `exec` return or start forwarding: a caller that reads `/proc/PID` of the pid file
/// right after `exec -d` must see the program, not hutch (runc returns before the execve).
fn wait_for_execve(ch: &Channel) -> Result<()> {
    match ch.recv::<ToParent>()? {
        None => Ok(()),
        Some((other, _)) => bail!("sync protocol: unexpected {other:?} after Commit"),
    }
}

/// The running container, the process to start in it, and everything worked out and checked
/// before anything is made.
struct Plan {
    state: State,
    /// The container's saved config.
    spec: Spec,
    /// The config's `process`, which the exec'd process's is built from.
    base: Process,
    process: Process,
    caps: Option<CapabilityPlan>,
    seccomp: Option<crate::seccomp::Program>,
    namespaces: NamespacePlan,
    /// The init's root, when the container shares hutch's mount namespace.
    init_root: Option<OwnedFd>,
}

fn plan(
    root: &Path,
    req: &ExecRequest,
    build: impl FnOnce(&Process) -> Result<Process>,
) -> Result<Plan> {
    let (state, spec, saved) = load_running(root, req)?;
    let base = spec.process().clone().unwrap_or_default();
    let process = build(&base)?;
    config::check_user(&process, &spec)?;
    let terminal = process.terminal().unwrap_or(false);
    console::check_terminal_request(terminal, req.console_socket.is_some(), req.detach)?;
    crate::lsm::check_lsm(&process)?;
    let caps = identity::capability_plan(&process)?;
    let seccomp = match (
        spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()),
        saved,
    ) {
        (Some(_), Some(program)) => Some(program),
        (Some(config), None) => Some(crate::seccomp::compile(config)?),
        (None, _) => None,
    };
    let (namespaces, init_root) = container_namespaces(&state)?;
    Ok(Plan {
        state,
        spec,
        base,
        process,
        caps,
        seccomp,
        namespaces,
        init_root,
    })
}

/// The container's state, saved config and compiled seccomp filter (absent when the config
/// has none, or when a hutch without the cache made the container), if it may take a new
/// process. The lock is held only to read a consistent state: a long exec must not block
/// other commands on the container.
fn load_running(
    root: &Path,
    req: &ExecRequest,
) -> Result<(State, Spec, Option<crate::seccomp::Program>)> {
    let dir = ContainerDir::open(root, req.id)?;
    let state = dir.load()?;
    match dir.status(&state) {
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Paused if !req.ignore_paused => {
            bail!("cannot exec in a paused container (use --ignore-paused)")
        }
        _ => {}
    }
    let raw = fs::read(dir.path.join(CONFIG_FILE))
        .with_context(|| format!("reading the container's saved {CONFIG_FILE}"))?;
    let seccomp = match dir.read_file(SECCOMP_FILE) {
        Ok(data) => match crate::seccomp::Program::from_bytes(&data) {
            Ok(program) => Some(program),
            Err(err) => {
                crate::logging::debug(&format!("{SECCOMP_FILE}: {err:#}; compiling the profile"));
                None
            }
        },
        Err(_) => None,
    };
    Ok((state, config::parse_spec(&raw)?, seccomp))
}

/// Clones the process into the container's namespaces (and its cgroup2 directory).
fn spawn_process(
    req: &ExecRequest,
    plan: &Plan,
    (parent_ch, child_ch): (&Channel, Channel),
    parent_fds: &[RawFd],
) -> Result<Spawned> {
    // Joined user namespace: the process may not write the host's cgroup files itself.
    let self_join = !plan.namespaces.has(LinuxNamespaceType::User);
    let cgroup_tasks = match (exec_cgroup(plan), self_join) {
        (Some(mut cgroup), true) => cgroup.open_v1_task_files()?,
        _ => Vec::new(),
    };
    let ctx = ExecContext {
        process: &plan.process,
        spec: &plan.spec,
        caps: plan.caps.as_ref(),
        seccomp: plan.seccomp.as_ref(),
        channel: &child_ch,
        parent_fds,
        preserve_fds: req.preserve_fds,
        in_user_ns: plan.namespaces.has(LinuxNamespaceType::User),
        cgroup_tasks: &cgroup_tasks,
        chroot: plan.init_root.as_ref(),
    };
    let unified = open_cgroup_dir(plan.state.cgroup.as_ref().and_then(|c| c.unified_dir()))?;
    spawn(
        &plan.namespaces,
        unified.as_ref().map(|f| f.as_fd()),
        parent_ch,
        &child_ch,
        &SpawnFds {
            preserve: req.preserve_fds,
            parent_only: parent_fds,
        },
        || Ok(()),
        || -> Infallible { exec_child(&ctx) },
    )
}

/// The container's cgroup as an exec process joins it: a hierarchy a rootless caller cannot
/// move it into is left out for this process only, and nothing of the container's is removed.
fn exec_cgroup(plan: &Plan) -> Option<crate::cgroups::Manager> {
    let mut cgroup = plan.state.cgroup.clone()?;
    cgroup.created.clear();
    Some(cgroup)
}

/// Places the process in the container's cgroup before it may go on: it was born in the
/// cgroup2 directory and moved itself into the v1 ones, unless it could not.
fn join_cgroup(plan: &Plan, spawned: &Spawned) -> Result<()> {
    let Some(mut cgroup) = exec_cgroup(plan) else {
        return Ok(());
    };
    let moved = if plan.namespaces.has(LinuxNamespaceType::User) {
        cgroup.join(spawned.pid)
    } else if !spawned.in_cgroup {
        cgroup.join_unified(spawned.pid)
    } else {
        Ok(())
    };
    moved.context("placing the exec process in the container's cgroup")
}

/// Every namespace of the container's init that differs from hutch's own, entered through a
/// pidfd of the init (by path only on kernels without setns(pidfd)); and, when the container
/// shares hutch's mount namespace (its init only chrooted into the rootfs), the init's root
/// directory for the exec'd process to chroot into.
fn container_namespaces(state: &State) -> Result<(NamespacePlan, Option<OwnedFd>)> {
    let init = state.init_pid;
    // The pidfd pins the process: once it is open and the start time still matches, everything
    // read below is the init's, however long exec takes.
    let pidfd =
        pidfd_open(Pid::from_raw(init)).map_err(|_| anyhow::anyhow!("container not running"))?;
    if !super::liveness::process_is_alive(Pid::from_raw(init), state.init_start_time) {
        bail!("container not running");
    }
    let kinds = [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Time,
        LinuxNamespaceType::Mount,
    ];
    let mut joins = Vec::new();
    for typ in kinds {
        let name = crate::namespaces::proc_ns_name(typ);
        let theirs = PathBuf::from(format!("/proc/{init}/ns/{name}"));
        // Only a namespace type this kernel lacks may be skipped: a namespace that cannot be
        // looked at must fail the exec, never leave the process in hutch's own.
        let their_meta = match fs::metadata(&theirs) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("inspecting the container's {}", theirs.display()))
            }
        };
        let same = fs::metadata(format!("/proc/self/ns/{name}"))
            .is_ok_and(|m| m.ino() == their_meta.ino() && m.dev() == their_meta.dev());
        if !same {
            joins.push((typ, theirs));
        }
    }
    let root = if joins.iter().any(|(t, _)| *t == LinuxNamespaceType::Mount) {
        None
    } else {
        let path = format!("/proc/{init}/root");
        let fd = nix::fcntl::open(
            path.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("opening the container's root {path}"))?;
        Some(fd)
    };
    // Still alive now: the /proc files compared and opened above were the init's.
    crate::syscall::process::pidfd_send_signal(pidfd.as_fd(), 0)
        .map_err(|_| anyhow::anyhow!("container not running"))?;
    Ok((NamespacePlan::for_joins(joins, pidfd)?, root))
}

fn drive(
    ch: &Channel,
    state: &State,
    spec: &oci_spec::runtime::Spec,
    console: Option<&std::os::unix::net::UnixStream>,
    pid: Pid,
) -> Result<Option<OwnedFd>> {
    let mut kept_master = None;
    loop {
        let Some((msg, fd)) = ch.recv::<ToParent>()? else {
            let _ = waitpid(pid, None);
            bail!("the exec process exited during setup");
        };
        match msg {
            ToParent::Ready => return Ok(kept_master),
            ToParent::Error(msg) => bail!("{msg}"),
            ToParent::Console { name } => {
                console::forward_master(console, &name, fd, &mut kept_master)?
            }
            ToParent::SeccompListener => super::seccomp_listener::forward_listener(
                ch,
                spec,
                state,
                Status::Running,
                pid,
                fd,
            )?,
            other => bail!("sync protocol: unexpected {other:?} from the exec process"),
        }
    }
}
