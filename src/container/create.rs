//! `create`, the parent's side: validate the bundle, make the state directory, clone the init
//! and drive it through the protocol in `process/channel.rs` until it waits for `start`.
//! Any failure undoes everything done so far (the [`Undo`] guard).

use std::convert::Infallible;
use std::os::fd::RawFd;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{Hooks, LinuxNamespaceType, Spec};

use super::activation;
use super::init_files::{make_no_process_marker, InitFiles, StartIn};
use super::liveness;
use super::pid_file::write_pid_file;
use super::seccomp_listener::forward_listener;
use super::state::{self, State, Status};
use super::state_dir::{self, ContainerDir};

use crate::config::{self, Bundle};
use crate::console;
use crate::hooks;
use crate::namespaces::{self, NamespacePlan};
use crate::process::channel::{self, Channel, ToChild, ToParent};
use crate::process::identity::CapabilityPlan;
use crate::process::init::{container_init, InitContext};
use crate::process::spawn::{open_cgroup_dir, spawn, SpawnFds, Spawned};
use crate::process::{attributes, identity};
use crate::rootfs;
use crate::timefmt;

pub struct CreateRequest<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub console_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
    /// Receives a pidfd of the init (runc ≥ 1.3's --pidfd-socket), framed like the console.
    pub pidfd_socket: Option<&'a Path>,
    /// --systemd-cgroup was given.
    pub systemd_cgroup: bool,
    /// Cgroups the caller may not write are left out (resources in them skipped, each with a
    /// warning) instead of failing `create`.
    pub rootless: bool,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// The caller will not stay attached (create, run -d): a terminal then needs a socket.
    pub detached: bool,
}

pub struct Created {
    pub dir: ContainerDir,
    pub state: State,
    /// The pty master, when a foreground `run` relays the caller's terminal itself.
    pub console: Option<OwnedFd>,
}

/// Undoes a half-made container unless disarmed: kills the init (which takes its pid
/// namespace and mount namespace with it) and removes the state directory.
pub(super) struct Undo {
    pub(super) dir: Option<ContainerDir>,
    pub(super) init: Option<Pid>,
    pub(super) cgroup: Option<crate::cgroups::Manager>,
    /// Devices moved into the container's network namespace: brought back before the init dies.
    net_devices: Option<crate::netdev::Moved>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(moved) = self.net_devices.take() {
            moved.restore();
        }
        if let Some(pid) = self.init.take() {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.destroy();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.destroy();
        }
    }
}

pub fn create(root: &Path, req: &CreateRequest) -> Result<Created> {
    let started = Instant::now();
    state::validate_id(req.id)?;
    let plan = plan(root, req, started)?;
    let spec = &plan.bundle.spec;
    let linux = spec.linux().as_ref();
    // The cgroup is worked out and recorded before any directory of it exists: a create
    // killed at any later point leaves a state that names everything it may have made.
    let mut cgroup = crate::cgroups::Manager::new(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        req.id,
        req.systemd_cgroup,
        req.rootless,
    )?;
    let mut state = new_state(req.id, &plan.bundle, spec);
    state.cgroup = Some(cgroup.planned());
    let mut undo = make_state_dir(root, req.id, &plan, &state)?;
    let dir = undo.dir.as_ref().context("state directory vanished")?;
    let files = InitFiles::make(&dir.path)?;
    // The cgroup, with every limit applied, before any container process exists.
    cgroup.create_and_apply(linux.and_then(|l| l.resources().as_ref()))?;
    let console_stream = req.console_socket.map(console::connect).transpose()?;
    let pidfd_stream = req.pidfd_socket.map(console::connect_pidfd).transpose()?;
    let (parent_ch, child_ch) = channel::pair()?;
    let mut parent_fds = vec![dir.fd().as_raw_fd(), parent_ch.raw_fd()];
    for stream in console_stream.iter().chain(pidfd_stream.iter()) {
        parent_fds.push(stream.as_raw_fd());
    }
    let spawned = spawn_init(
        req,
        &plan,
        &mut cgroup,
        (&parent_ch, child_ch),
        files,
        parent_fds,
        &mut undo.init,
    )?;
    let init_pid = spawned.pid;
    let oom_score_adj = spec.process().as_ref().and_then(|p| p.oom_score_adj());
    attributes::set_oom_score_adj(init_pid, oom_score_adj)?;
    record_init(&mut state, init_pid, &cgroup, dir)?;
    let_init_proceed(
        &plan,
        &mut cgroup,
        &spawned,
        &parent_ch,
        &mut undo.net_devices,
    )?;

    let console = drive_setup(&parent_ch, &state, spec, console_stream.as_ref(), init_pid)?;
    crate::logging::timing(started, "init ready");
    if let Some(stream) = &pidfd_stream {
        console::send_pidfd(stream, init_pid)?;
    }
    if let Some(pid_file) = req.pid_file {
        write_pid_file(pid_file, init_pid)?;
    }
    state.creating = false;
    // Rootless, hierarchies the init could not join were left out after it was recorded.
    state.cgroup = Some(cgroup.clone());
    dir.save(&state)?;
    let start_state = String::from_utf8_lossy(&state.hook_state_json(Status::Created)).into_owned();
    parent_ch.send(&ToChild::Commit { state: start_state })?;

    crate::logging::timing(started, "create committed");
    undo.init = None;
    undo.cgroup = None;
    undo.net_devices = None;
    let dir = undo.dir.take().context("state directory vanished")?;
    Ok(Created {
        dir,
        state,
        console,
    })
}

/// What `create` works out from the bundle and checks before it makes anything.
pub(super) struct Plan {
    started: Instant,
    id: String,
    pub(super) bundle: Bundle,
    /// Sockets passed by systemd socket activation (`LISTEN_FDS`), kept for the container.
    listen_fds: u32,
    /// The state directory's absolute path (the notify socket is made under it).
    state_dir: PathBuf,
    /// `NOTIFY_SOCKET` is relayed through hutch's own socket (see `activation`).
    notify: bool,
    namespaces: NamespacePlan,
    net_devices: Option<crate::netdev::Plan>,
    caps: Option<CapabilityPlan>,
    seccomp: Option<crate::seccomp::Program>,
}

/// Loads the bundle and checks everything that can be checked before anything exists: a bad
/// config fails here, naming the field, with nothing to undo.
pub(super) fn plan(root: &Path, req: &CreateRequest, started: Instant) -> Result<Plan> {
    let mut bundle = config::load_bundle(req.bundle)?;
    crate::logging::timing(started, "config loaded");
    let listen_fds = activation::listen_fds();
    let state_dir = std::path::absolute(root.join(req.id))
        .with_context(|| format!("resolving the state directory under {}", root.display()))?;
    let notify = activation::apply(&mut bundle.spec, listen_fds, &state_dir)?;
    let spec = &bundle.spec;
    let namespaces = NamespacePlan::from_spec(spec)?;
    let net_devices = crate::netdev::check(spec, &namespaces)?;
    crate::intel_rdt::check(spec)?;
    // runtime.md requires `process` for `start` only: a container without one can be created
    // (and deleted), and `start` then refuses it.
    let process = spec.process().as_ref();
    let caps = process
        .map(identity::capability_plan)
        .transpose()?
        .flatten();
    if let Some(process) = process {
        crate::lsm::check_lsm(process)?;
    }
    let seccomp = compile_seccomp(spec)?;
    crate::logging::timing(started, "seccomp compiled");
    console::check_terminal_request(
        process.and_then(|p| p.terminal()).unwrap_or(false),
        req.console_socket.is_some(),
        req.detached,
    )?;
    Ok(Plan {
        started,
        id: req.id.to_string(),
        bundle,
        listen_fds,
        state_dir,
        notify,
        namespaces,
        net_devices,
        caps,
        seccomp,
    })
}

/// Publishes the locked state directory with the config and first state in it, and the
/// guard that removes it (and the planned cgroup) unless `create` completes.
pub(super) fn make_state_dir(root: &Path, id: &str, plan: &Plan, state: &State) -> Result<Undo> {
    super::delete::remove_stale(root, id)?;
    let dir = ContainerDir::create(
        root,
        id,
        &state_dir::Initial {
            config: &plan.bundle.raw,
            state,
            seccomp: plan.seccomp.as_ref().map(|p| p.to_bytes()).as_deref(),
        },
    )?;
    let dir_path = dir.path.clone();
    let undo = Undo {
        dir: Some(dir),
        init: None,
        cgroup: state.cgroup.clone(),
        net_devices: None,
    };
    if plan.notify {
        super::notify::make_dir(&dir_path)?;
    }
    if plan.bundle.spec.process().is_none() {
        make_no_process_marker(&dir_path)?;
    }
    Ok(undo)
}

/// Clones the init, from inside the rootfs, into its namespaces (and cgroup2 directory); its
/// pid goes to `undo_init` at once, so a failure from here on kills it. hutch's ends of
/// everything the init must not hold are in `parent_fds`.
fn spawn_init(
    req: &CreateRequest,
    plan: &Plan,
    cgroup: &mut crate::cgroups::Manager,
    (parent_ch, child_ch): (&Channel, Channel),
    files: InitFiles,
    mut parent_fds: Vec<RawFd>,
    undo_init: &mut Option<Pid>,
) -> Result<Spawned> {
    let spec = &plan.bundle.spec;
    // Under systemd the unit's cgroup exists only once the init does (see `hand_over`).
    let systemd = cgroup.systemd.is_some();
    let self_join = !plan.namespaces.is_new(LinuxNamespaceType::User) && !systemd;
    let cgroup_tasks = if self_join {
        cgroup.open_v1_task_files()?
    } else {
        Vec::new()
    };
    let start_in = StartIn::rootfs(&plan.bundle.rootfs)?;
    parent_fds.extend(start_in.fds());
    let ctx = InitContext {
        id: req.id,
        spec,
        bundle: &plan.bundle.dir,
        rootfs: &plan.bundle.rootfs,
        namespaces: &plan.namespaces,
        caps: plan.caps.as_ref(),
        seccomp: plan.seccomp.as_ref(),
        channel: &child_ch,
        exec_fifo: &files.exec_fifo,
        start_error: &files.start_error,
        parent_fds: &parent_fds,
        no_pivot: req.no_pivot,
        no_new_keyring: req.no_new_keyring,
        preserve_fds: plan.listen_fds + req.preserve_fds,
        has_create_hooks: has_create_hooks(spec),
        cgroup_tasks: &cgroup_tasks,
        rootfs_id: Some(start_in.rootfs_id),
        unprivileged: !nix::unistd::geteuid().is_root(),
    };
    crate::logging::timing(plan.started, "state directory and cgroup ready");
    let unified = open_cgroup_dir(cgroup.unified_dir().filter(|_| !systemd))?;
    start_in.enter()?;
    let spawned = spawn(
        &plan.namespaces,
        unified.as_ref().map(|f| f.as_fd()),
        parent_ch,
        &child_ch,
        &SpawnFds {
            preserve: ctx.preserve_fds,
            parent_only: &parent_fds,
        },
        || plan.namespaces.unshare_time(spec),
        || -> Infallible { container_init(&ctx) },
    );
    let left = start_in.leave();
    let spawned = spawned?;
    crate::logging::timing(plan.started, "init cloned");
    *undo_init = Some(spawned.pid);
    left?;
    Ok(spawned)
}

/// prestart, createRuntime or createContainer hooks exist: the init must stop for them once
/// its mounts are made.
// `prestart` is deprecated in the spec, and still run.
#[allow(deprecated)]
fn has_create_hooks(spec: &Spec) -> bool {
    let hooks_cfg = spec.hooks().as_ref();
    let has = |pick: fn(&Hooks) -> &Option<Vec<oci_spec::runtime::Hook>>| {
        hooks_cfg.is_some_and(|h| pick(h).as_ref().is_some_and(|v| !v.is_empty()))
    };
    has(|h| h.prestart()) || has(|h| h.create_runtime()) || has(|h| h.create_container())
}

/// Records the new init in the state at once: from here a killed create leaves an init that
/// `delete` can find.
fn record_init(
    state: &mut State,
    init_pid: Pid,
    cgroup: &crate::cgroups::Manager,
    dir: &ContainerDir,
) -> Result<()> {
    let (start_time, _) = crate::host_proc::process_start_time(init_pid)
        .context("the container's init exited before it could be set up")?;
    state.init_pid = init_pid.as_raw();
    state.init_start_time = start_time;
    state.init_exe = liveness::own_exe_identity();
    state.cgroup = Some(cgroup.clone());
    dir.save(state)
}

/// Everything the init needs before it may go on: its id maps and idmapped mount trees (new
/// user namespace), its cgroup, its network devices; then Proceed.
fn let_init_proceed(
    plan: &Plan,
    cgroup: &mut crate::cgroups::Manager,
    spawned: &Spawned,
    parent_ch: &Channel,
    undo_net_devices: &mut Option<crate::netdev::Moved>,
) -> Result<()> {
    let handed_over = hand_over(plan, cgroup, spawned, parent_ch, undo_net_devices);
    if let Err(err) = handed_over {
        // The init may have failed first (it reports, then exits): its reason is the one
        // that matters, not our broken pipe.
        if let Some(ToParent::Error(msg)) = parent_ch.try_recv::<ToParent>() {
            bail!("{msg}");
        }
        return Err(err);
    }
    Ok(())
}

fn hand_over(
    plan: &Plan,
    cgroup: &mut crate::cgroups::Manager,
    spawned: &Spawned,
    parent_ch: &Channel,
    undo_net_devices: &mut Option<crate::netdev::Moved>,
) -> Result<()> {
    let spec = &plan.bundle.spec;
    let init_pid = spawned.pid;
    let mut idmapped_trees = Vec::new();
    if plan.namespaces.is_new(LinuxNamespaceType::User) {
        namespaces::write_id_mappings(init_pid, spec)?;
    }
    // A joined user namespace's root can no more reach root-only host directories than a new
    // one's (containerd's CRI keeps a pod's /etc/hostname and /etc/hosts under 0700 dirs).
    // An unprivileged hutch may not clone mount trees (nor reach such directories itself): the
    // init binds its sources from inside, as the caller could.
    if plan.namespaces.has_own_user_ns() && nix::unistd::geteuid().is_root() {
        idmapped_trees = rootfs::premake_bind_trees(spec, &plan.bundle.dir, init_pid)?;
        if plan.notify {
            let tree = super::notify::premade_tree(spec, &plan.state_dir)?;
            // Already made if it is a bind of the config's mounts.
            idmapped_trees
                .extend(tree.filter(|(i, _)| !idmapped_trees.iter().any(|(made, _)| made == i)));
        }
    }
    // The init is in the container's cgroup before it may proceed, so everything it does
    // (and its cgroup namespace root) is inside it: it was born in the cgroup2 directory
    // and moves itself into the v1 ones, unless it could not (a new user namespace may not
    // write the host's cgroup files), and then hutch moves it, the slow way.
    // Under systemd, the unit is started with the init in it.
    let linux = spec.linux().as_ref();
    if cgroup.systemd.is_some() {
        let resources = linux.and_then(|l| l.resources().as_ref());
        cgroup.start_unit(init_pid, &plan.id, resources, spec.annotations().as_ref())?;
    } else if plan.namespaces.is_new(LinuxNamespaceType::User) {
        cgroup.join(init_pid)?;
    } else if !spawned.in_cgroup {
        cgroup.join_unified(init_pid)?;
    }
    if let Some(devices) = &plan.net_devices {
        *undo_net_devices = Some(devices.move_into(init_pid)?);
    }
    for (index, tree) in &idmapped_trees {
        parent_ch.send_with_fd(
            &ToChild::MountTree { index: *index },
            Some(tree.as_raw_fd()),
        )?;
    }
    parent_ch.send(&ToChild::Proceed)
}

/// Answers the init until it reports Ready (or fails). A pty master with no console socket
/// to go to (a foreground `run`) is returned.
fn drive_setup(
    ch: &Channel,
    state: &State,
    spec: &Spec,
    console: Option<&UnixStream>,
    init_pid: Pid,
) -> Result<Option<OwnedFd>> {
    let mut kept_master = None;
    loop {
        let Some((msg, fd)) = ch.recv::<ToParent>()? else {
            bail!("{}", init_exit_reason(init_pid));
        };
        match msg {
            ToParent::Ready => return Ok(kept_master),
            ToParent::Error(msg) => bail!("{msg}"),
            ToParent::Console { name } => {
                console::forward_master(console, &name, fd, &mut kept_master)?
            }
            ToParent::MountsReady => {
                // The spec's lifecycle runs these hooks once the container exists (after step
                // 2): the state they get says `created`, as crun's does (runc says `creating`).
                let json = state.hook_state_json(Status::Created);
                run_runtime_namespace_hooks(spec, &json)?;
                ch.send(&ToChild::HooksDone {
                    state: String::from_utf8_lossy(&json).into_owned(),
                })?;
            }
            ToParent::SeccompListener => {
                forward_listener(ch, spec, state, Status::Creating, init_pid, fd)?
            }
            ToParent::InitPid { .. } => bail!("sync protocol: unexpected InitPid"),
        }
    }
}

/// The `prestart` and `createRuntime` hooks, run by the runtime once the container's
/// namespaces exist (at create, and when CRIU has set them up on restore).
pub(super) fn run_runtime_namespace_hooks(spec: &Spec, state_json: &[u8]) -> Result<()> {
    let Some(h) = spec.hooks() else {
        return Ok(());
    };
    // `prestart` is deprecated in the spec, and still run.
    #[allow(deprecated)]
    let prestart = h.prestart().as_deref().unwrap_or_default();
    hooks::run_hooks("prestart", prestart, state_json)?;
    let create_runtime = h.create_runtime().as_deref().unwrap_or_default();
    hooks::run_hooks("createRuntime", create_runtime, state_json)
}

/// Compiled in the parent, before any fork: a bad profile fails here, naming the field.
fn compile_seccomp(spec: &Spec) -> Result<Option<crate::seccomp::Program>> {
    let Some(config) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let program = crate::seccomp::compile(config)?;
    crate::logging::debug(&format!(
        "linux.seccomp: compiled to {} BPF instructions",
        program.instructions().len()
    ));
    if !program.unknown_syscalls().is_empty() {
        crate::logging::debug(&format!(
            "linux.seccomp: syscalls unknown on this architecture, skipped: {}",
            program.unknown_syscalls().join(", ")
        ));
    }
    Ok(Some(program))
}

fn init_exit_reason(pid: Pid) -> String {
    match waitpid(pid, None) {
        Ok(WaitStatus::Exited(_, code)) => {
            format!("the container's init exited during setup with status {code}")
        }
        Ok(WaitStatus::Signaled(_, sig, _)) => {
            format!("the container's init was killed by {sig} during setup")
        }
        _ => "the container's init exited during setup".to_string(),
    }
}

pub(super) fn new_state(id: &str, bundle: &Bundle, spec: &Spec) -> State {
    State {
        id: id.to_string(),
        init_pid: 0,
        init_start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: timefmt::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        owner: String::new(),
        creating: true,
        shares_pid_ns: !spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| {
                ns.iter().any(|n| {
                    n.typ() == LinuxNamespaceType::Pid
                        && n.path().as_ref().is_none_or(|p| p.as_os_str().is_empty())
                })
            }),
        hooks: spec.hooks().clone(),
        cgroup: None,
        init_exe: None,
    }
}
