//! `create`, the parent's side: validate the bundle, make the state directory, clone the init
//! and drive it through the protocol in `process/channel.rs` until it waits for `start`.
//! Any failure undoes everything done so far (the [`Undo`] guard).

use std::convert::Infallible;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{Hooks, LinuxNamespaceType, Spec};

use super::activation;
use super::state::{self, ContainerDir, State, Status, EXEC_FIFO, START_ERROR};

/// In the state directory of a container whose config has no `process`.
pub(super) const NO_PROCESS: &str = "no-process";
use crate::config::{self, Bundle};
use crate::console;
use crate::hooks;
use crate::namespaces::{self, NamespacePlan};
use crate::process::channel::{self, Channel, ToChild, ToParent};
use crate::process::init::{container_init, InitContext};
use crate::process::spawn::{spawn, SpawnFds};
use crate::process::{attributes, identity};
use crate::rootfs;
use crate::syscall::process::pidfd_open;
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
struct Undo {
    dir: Option<ContainerDir>,
    init: Option<Pid>,
    cgroup: Option<crate::cgroups::Manager>,
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
    let started = std::time::Instant::now();
    state::validate_id(req.id)?;
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
        attributes::check_lsm(process)?;
    }
    let seccomp = compile_seccomp(spec)?;
    crate::logging::timing(started, "seccomp compiled");
    check_terminal(process.and_then(|p| p.terminal()).unwrap_or(false), req)?;
    if req.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver is not supported yet (use the cgroupfs driver)");
    }

    // The cgroup is worked out and recorded before any directory of it exists: a create
    // killed at any later point leaves a state that names everything it may have made.
    let linux = spec.linux().as_ref();
    let mut cgroup = crate::cgroups::Manager::new(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        req.id,
        req.systemd_cgroup,
    )?;
    let mut state = new_state(req.id, &bundle, spec);
    state.cgroup = Some(cgroup.planned());
    let dir = ContainerDir::create(
        root,
        req.id,
        &state::Initial {
            config: &bundle.raw,
            state: &state,
        },
    )?;
    let mut undo = Undo {
        dir: None,
        init: None,
        cgroup: state.cgroup.clone(),
        net_devices: None,
    };
    let dir_path = dir.path.clone();
    undo.dir = Some(dir);
    if notify {
        super::notify::make_dir(&dir_path)?;
    }
    if process.is_none() {
        make_no_process_marker(&dir_path)?;
    }

    let exec_fifo = make_exec_fifo(&dir_path.join(EXEC_FIFO))?;
    let start_error = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(dir_path.join(START_ERROR))
        .with_context(|| format!("creating {}", dir_path.join(START_ERROR).display()))?;
    // The cgroup, with every limit applied, before any container process exists.
    cgroup.create_and_apply(linux.and_then(|l| l.resources().as_ref()))?;
    let console_stream = req.console_socket.map(console::connect).transpose()?;
    let pidfd_stream = req.pidfd_socket.map(console::connect).transpose()?;
    let (parent_ch, child_ch) = channel::pair()?;

    let self_join = !namespaces.is_new(LinuxNamespaceType::User);
    let cgroup_tasks = if self_join {
        cgroup.open_v1_task_files()?
    } else {
        Vec::new()
    };
    let dir_ref = undo.dir.as_ref().context("state directory vanished")?;
    let start_in = StartIn::rootfs(&bundle.rootfs)?;
    let mut parent_fds = vec![dir_ref.fd().as_raw_fd(), parent_ch.raw_fd()];
    parent_fds.extend(start_in.fds());
    for stream in console_stream.iter().chain(pidfd_stream.iter()) {
        parent_fds.push(stream.as_raw_fd());
    }
    let hooks_cfg = spec.hooks().as_ref();
    let has = |pick: fn(&Hooks) -> &Option<Vec<oci_spec::runtime::Hook>>| {
        hooks_cfg.is_some_and(|h| pick(h).as_ref().is_some_and(|v| !v.is_empty()))
    };
    #[allow(deprecated)]
    let has_create_hooks =
        has(|h| h.prestart()) || has(|h| h.create_runtime()) || has(|h| h.create_container());
    let ctx = InitContext {
        id: req.id,
        spec,
        bundle: &bundle.dir,
        rootfs: &bundle.rootfs,
        namespaces: &namespaces,
        caps: caps.as_ref(),
        seccomp: seccomp.as_ref(),
        channel: &child_ch,
        exec_fifo: &exec_fifo,
        start_error: &start_error,
        parent_fds: &parent_fds,
        no_pivot: req.no_pivot,
        no_new_keyring: req.no_new_keyring,
        preserve_fds: listen_fds + req.preserve_fds,
        has_create_hooks,
        cgroup_tasks: &cgroup_tasks,
        rootfs_id: Some(start_in.rootfs_id),
    };
    crate::logging::timing(started, "state directory and cgroup ready");
    let unified = cgroup_dir_fd(&cgroup)?;
    start_in.enter()?;
    let spawned = spawn(
        &namespaces,
        unified.as_ref().map(|f| f.as_fd()),
        &parent_ch,
        &child_ch,
        &SpawnFds {
            preserve: ctx.preserve_fds,
            parent_only: &parent_fds,
        },
        || namespaces.unshare_time(spec),
        || -> Infallible { container_init(&ctx) },
    );
    let left = start_in.leave();
    let spawned = spawned?;
    let init_pid = spawned.pid;
    crate::logging::timing(started, "init cloned");
    undo.init = Some(init_pid);
    left?;
    drop(start_in);
    drop(child_ch);
    drop(exec_fifo);
    drop(start_error);

    attributes::set_oom_score_adj(init_pid, process.and_then(|p| p.oom_score_adj()))?;
    let (start_time, _) = crate::host_proc::process_start_time(init_pid)
        .context("the container's init exited before it could be set up")?;
    state.init_pid = init_pid.as_raw();
    state.init_start_time = start_time;
    state.init_exe = state::own_exe_identity();
    state.cgroup = Some(cgroup.clone());
    let dir = undo.dir.as_ref().context("state directory vanished")?;
    // Recorded at once: from here a killed create leaves an init that `delete` can find.
    dir.save(&state)?;
    let proceed = (|| -> Result<()> {
        let mut idmapped_trees = Vec::new();
        if namespaces.is_new(LinuxNamespaceType::User) {
            namespaces::write_id_mappings(init_pid, spec)?;
            idmapped_trees = rootfs::premake_bind_trees(spec, &bundle.dir, init_pid)?;
            if notify {
                let tree = super::notify::premade_tree(spec, &state_dir)?;
                // Already made if it is a bind of the config's mounts.
                idmapped_trees.extend(
                    tree.filter(|(i, _)| !idmapped_trees.iter().any(|(made, _)| made == i)),
                );
            }
        }
        // The init is in the container's cgroup before it may proceed, so everything it does
        // (and its cgroup namespace root) is inside it: it was born in the cgroup2 directory
        // and moves itself into the v1 ones, unless it could not (a new user namespace may not
        // write the host's cgroup files), and then hutch moves it, the slow way.
        if !self_join {
            cgroup.join(init_pid)?;
        } else if !spawned.in_cgroup {
            cgroup.join_unified(init_pid)?;
        }
        if let Some(plan) = &net_devices {
            undo.net_devices = Some(plan.move_into(init_pid)?);
        }
        for (index, tree) in &idmapped_trees {
            parent_ch.send_with_fd(
                &ToChild::MountTree { index: *index },
                Some(tree.as_raw_fd()),
            )?;
        }
        parent_ch.send(&ToChild::Proceed)
    })();
    if let Err(err) = proceed {
        // The init may have failed first (it reports, then exits): its reason is the one
        // that matters, not our broken pipe.
        if let Some(ToParent::Error(msg)) = parent_ch.try_recv::<ToParent>() {
            bail!("{msg}");
        }
        return Err(err);
    }

    let console = drive_setup(&parent_ch, &state, spec, console_stream.as_ref(), init_pid)?;
    crate::logging::timing(started, "init ready");

    if let Some(stream) = &pidfd_stream {
        let pidfd =
            pidfd_open(init_pid).context("opening a pidfd of the init for --pidfd-socket")?;
        console::send_master(stream, "pidfd", &pidfd).context("--pidfd-socket")?;
    }
    if let Some(pid_file) = req.pid_file {
        write_pid_file(pid_file, init_pid)?;
    }
    state.creating = false;
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

/// runc's rules for --console-socket and process.terminal.
fn check_terminal(terminal: bool, req: &CreateRequest) -> Result<()> {
    match (terminal, req.console_socket.is_some(), req.detached) {
        (true, false, true) => bail!(
            "cannot allocate tty if hutch will detach without setting console socket (process.terminal is true)"
        ),
        (false, true, _) | (_, true, false) => {
            bail!("cannot use console socket if hutch will not detach or allocate tty")
        }
        _ => Ok(()),
    }
}

/// Marks a container created without `process`, so `start` refuses it without touching it.
fn make_no_process_marker(dir: &Path) -> Result<()> {
    let path = dir.join(NO_PROCESS);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map(drop)
        .with_context(|| format!("creating {}", path.display()))
}

fn make_exec_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .with_context(|| format!("creating {}", path.display()))?;
    // Read-write, so this open never blocks and the init can always read its byte.
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok(OwnedFd::from(file))
}

/// The container's cgroup2 directory, for clone3(CLONE_INTO_CGROUP).
pub(super) fn cgroup_dir_fd(cgroup: &crate::cgroups::Manager) -> Result<Option<OwnedFd>> {
    let Some(dir) = cgroup.unified_dir() else {
        return Ok(None);
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .with_context(|| format!("opening cgroup {}", dir.display()))?;
    Ok(Some(OwnedFd::from(file)))
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
                if let Some(h) = spec.hooks() {
                    #[allow(deprecated)]
                    hooks::run_hooks(
                        "prestart",
                        h.prestart().as_deref().unwrap_or_default(),
                        &json,
                    )?;
                    hooks::run_hooks(
                        "createRuntime",
                        h.create_runtime().as_deref().unwrap_or_default(),
                        &json,
                    )?;
                }
                ch.send(&ToChild::HooksDone {
                    state: String::from_utf8_lossy(&json).into_owned(),
                })?;
            }
            ToParent::SeccompListener => {
                forward_seccomp_listener(ch, spec, state, Status::Creating, init_pid, fd)?
            }
            ToParent::InitPid { .. } => bail!("sync protocol: unexpected InitPid"),
        }
    }
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

/// Hands a container process's seccomp notify listener to the agent at listenerPath, then
/// lets the process go on.
pub(super) fn forward_seccomp_listener(
    ch: &Channel,
    spec: &Spec,
    state: &State,
    status: Status,
    pid: Pid,
    fd: Option<OwnedFd>,
) -> Result<()> {
    let fd = fd.context("sync protocol: a seccomp listener without its fd")?;
    let config = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .context("linux.seccomp: a listener without a seccomp config")?;
    let path = config
        .listener_path()
        .as_ref()
        .context("linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs a listener path")?;
    let metadata = config.listener_metadata().clone().unwrap_or_default();
    let state_json = serde_json::to_value(state.oci_state(status))
        .context("encoding the state for the seccomp agent")?;
    crate::seccomp::send_listener(path, &metadata, &state_json, pid.as_raw(), fd)
        .context("linux.seccomp.listenerPath")?;
    ch.send(&ToChild::ListenerSent)
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

fn new_state(id: &str, bundle: &Bundle, spec: &Spec) -> State {
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

/// The pid file: decimal, no newline, written to a temp file and renamed, so a reader never
/// sees it half-written.
fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let path: PathBuf = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("reading the current directory")?
            .join(path)
    };
    state::write_atomic(&path, pid.to_string().as_bytes(), 0o644)
        .with_context(|| format!("--pid-file {}", path.display()))
}

/// The init is cloned from inside the rootfs: its working directory (translated into its new
/// mount namespace) then reaches the rootfs without a path lookup, which in a user namespace
/// mapping root to a non-root host uid could be refused by a directory above it.
struct StartIn {
    rootfs: OwnedFd,
    rootfs_id: (u64, u64),
    caller_cwd: OwnedFd,
}

impl StartIn {
    fn rootfs(rootfs: &Path) -> Result<StartIn> {
        use nix::fcntl::OFlag;
        let open = |p: &Path| {
            nix::fcntl::open(
                p,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
        };
        let dir = open(rootfs).with_context(|| format!("opening rootfs {}", rootfs.display()))?;
        let st = nix::sys::stat::fstat(&dir)
            .with_context(|| format!("stat of rootfs {}", rootfs.display()))?;
        let caller_cwd = open(Path::new(".")).context("opening the working directory")?;
        Ok(StartIn {
            rootfs: dir,
            rootfs_id: (st.st_dev, st.st_ino),
            caller_cwd,
        })
    }

    /// Host descriptors the init closes first thing.
    fn fds(&self) -> [std::os::fd::RawFd; 2] {
        [self.rootfs.as_raw_fd(), self.caller_cwd.as_raw_fd()]
    }

    fn enter(&self) -> Result<()> {
        nix::unistd::fchdir(&self.rootfs).context("chdir into the rootfs to clone the init")
    }

    fn leave(&self) -> Result<()> {
        nix::unistd::fchdir(&self.caller_cwd).context("chdir back to the working directory")
    }
}
