//! The container's init: everything between `clone` and `execve` of the user's program.
//!
//! This runs in a fork of the single-threaded hutch process, so the heap and every library
//! are in a consistent state (no other thread can have held a lock at fork time); allocation
//! is safe here. The steps follow the protocol in `channel.rs`; each step's error names it, is
//! sent to the parent, and ends the init.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Hook, LinuxNamespaceType, Process, Spec};

use super::attributes;
use super::channel::{Channel, ToChild, ToParent};
use super::exec_path::find_executable;
use super::identity::{self, CapabilityPlan};
use super::terminal;
use crate::hooks;
use crate::namespaces::NamespacePlan;
use crate::rootfs::{self, RootfsConfig};
use crate::syscall::process as sys;

pub struct InitContext<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub namespaces: &'a NamespacePlan,
    pub caps: Option<&'a CapabilityPlan>,
    /// The compiled linux.seccomp filter.
    pub seccomp: Option<&'a crate::seccomp::Program>,
    /// The init's end of the sync socket.
    pub channel: &'a Channel,
    /// exec.fifo, opened read-write by the parent: `start` writes one byte into it.
    pub exec_fifo: &'a OwnedFd,
    /// start.err, for a failure between `start` and exec (which `start` waits for).
    pub start_error: &'a File,
    /// Descriptors of the parent's that the init must not keep (the state lock above all:
    /// holding it would block every later command on this container).
    pub parent_fds: &'a [RawFd],
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// prestart, createRuntime or createContainer hooks exist: the MountsReady round trip is
    /// needed.
    pub has_create_hooks: bool,
    /// The v1 cgroups' `tasks` files the init moves itself into (empty when hutch does it).
    pub cgroup_tasks: &'a [File],
    /// The rootfs directory's device and inode: the init starts in it (see `RootfsConfig`).
    pub rootfs_id: Option<(u64, u64)>,
    /// hutch runs unprivileged (rootless): the init is made dumpable while it waits for `start`.
    pub unprivileged: bool,
}

/// Never returns: ends in execve of the user's program or in exit.
pub fn container_init(ctx: &InitContext) -> ! {
    match run(ctx) {
        Ok(never) => match never {},
        Err(err) => {
            let _ = ctx.channel.send(&ToParent::Error(format!("{err:#}")));
            std::process::exit(1);
        }
    }
}

enum Never {}

fn run(ctx: &InitContext) -> Result<Never> {
    leave_hutch(ctx)?;
    let premade = receive_go_ahead(ctx)?;
    if ctx.namespaces.is_new(LinuxNamespaceType::User) {
        sys::set_dumpable(false).context("prctl(PR_SET_DUMPABLE)")?;
    }
    become_namespace_root(ctx.namespaces)?;
    // None: a container created to be deleted; `start` refuses it.
    let process = ctx.spec.process().as_ref();
    let terminal = process.and_then(|p| p.terminal()).unwrap_or(false);
    set_hostname(ctx.spec)?;
    let rootfs = prepare_rootfs(ctx, terminal, &premade)?;
    drop(premade);
    if let Some(process) = process.filter(|_| terminal) {
        terminal::attach_terminal(&rootfs, process, ctx.channel, true)?;
    }
    if ctx.has_create_hooks {
        run_create_container_hooks(ctx)?;
    }
    if ctx.namespaces.shares_mount_ns {
        rootfs.chroot()?;
    } else {
        rootfs.pivot(ctx.no_pivot)?;
    }
    rootfs::finalize(ctx.spec)?;
    terminal::reopen_dev_null()?;
    if !ctx.no_new_keyring {
        join_keyring(ctx.id);
    }
    apply_process_attributes(ctx.spec, process)?;
    let link = ctx.link();
    let prepared = match process {
        Some(process) => Some(prepare_process(ctx, &link, process)?),
        None => None,
    };

    ctx.channel.send(&ToParent::Ready)?;
    let start_state = match link.receive("create to complete")? {
        ToChild::Commit { state } => state,
        other => bail!("sync protocol: expected Commit, got {other:?}"),
    };
    if ctx.unprivileged && ctx.namespaces.is_new(LinuxNamespaceType::User) {
        // An unprivileged caller reaches a created container (`exec`, `ps`) only through the
        // init's /proc files, and a non-dumpable process's belong to host root. runc makes the
        // same choice: the init is pivoted into the container by now, holds nothing of the
        // host the caller could not reach itself (the state directory's fifo and error file),
        // and the kernel still keeps processes with fewer capabilities from tracing it.
        sys::set_dumpable(true).context("prctl(PR_SET_DUMPABLE)")?;
    }
    sys::return_free_heap();
    wait_for_start(ctx.exec_fifo);
    start_process(ctx, prepared, &start_state)
}

/// Leaves behind what the init holds of hutch: its descriptors, its session, its readable
/// /proc files; and joins the container's v1 cgroups when it may.
fn leave_hutch(ctx: &InitContext) -> Result<()> {
    for fd in ctx.parent_fds {
        let _ = nix::unistd::close(*fd);
    }
    // As pid 1 of its pid namespace, the init would ignore every signal it has no handler for:
    // `kill ID TERM` of a created container must still end it, as it ends one without a pid
    // namespace of its own (the handlers go with the execve of the user's program).
    sys::exit_on_terminating_signals();
    // Until execve, /proc/<init> must not be openable by other processes in the container.
    // A new user namespace waits for its id maps first: a non-dumpable process's /proc files
    // belong to root, and an unprivileged hutch could not write its uid_map. Until Proceed no
    // process of the container exists, and no other user's process may ptrace the init.
    if !ctx.namespaces.is_new(LinuxNamespaceType::User) {
        sys::set_dumpable(false).context("prctl(PR_SET_DUMPABLE)")?;
    }
    // A session of its own, terminal or not: in the caller's session the container could open
    // the caller's terminal as /dev/tty, push input into it (TIOCSTI) and signal its jobs.
    nix::unistd::setsid().context("setsid: a new session for the container")?;
    join_own_cgroups(ctx.cgroup_tasks)
}

/// Waits for Proceed; the idmapped mount trees the parent made arrive before it.
fn receive_go_ahead(ctx: &InitContext) -> Result<Vec<(usize, OwnedFd)>> {
    let mut premade = Vec::new();
    loop {
        match ctx.link().receive_with_fd("the parent's go-ahead")? {
            (ToChild::Proceed, _) => return Ok(premade),
            (ToChild::MountTree { index }, Some(fd)) => premade.push((index, fd)),
            (other, _) => bail!("sync protocol: expected Proceed, got {other:?}"),
        }
    }
}

/// Root of the container's user namespace (a new one's id maps are written by now; a joined
/// one's were, and setns left the init with hutch's host ids, unmapped there, under which it
/// could create no file), and the cgroup namespace, made now that the init is in its cgroup, so
/// that cgroup is its root.
fn become_namespace_root(ns: &NamespacePlan) -> Result<()> {
    if ns.has(LinuxNamespaceType::User) {
        sys::setresgid(0).context("becoming gid 0 in the container's user namespace")?;
        sys::setresuid(0).context("becoming uid 0 in the container's user namespace")?;
    }
    if ns.is_new(LinuxNamespaceType::Cgroup) {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .context("creating the cgroup namespace")?;
    }
    Ok(())
}

fn prepare_rootfs(
    ctx: &InitContext,
    terminal: bool,
    premade: &[(usize, OwnedFd)],
) -> Result<rootfs::Rootfs> {
    let ns = ctx.namespaces;
    let prepare = if ns.shares_mount_ns {
        rootfs::prepare_shared
    } else {
        rootfs::prepare
    };
    prepare(&RootfsConfig {
        spec: ctx.spec,
        rootfs: ctx.rootfs,
        bundle: ctx.bundle,
        new_user_ns: ns.is_new(LinuxNamespaceType::User),
        new_cgroup_ns: ns.is_new(LinuxNamespaceType::Cgroup),
        terminal,
        premade,
        rootfs_id: ctx.rootfs_id,
    })
}

/// Lets the parent run prestart and createRuntime hooks now that the mounts exist, then runs
/// createContainer hooks here, in the container's namespaces.
fn run_create_container_hooks(ctx: &InitContext) -> Result<()> {
    ctx.channel.send(&ToParent::MountsReady)?;
    let state = match ctx.link().receive("the createRuntime hooks")? {
        ToChild::HooksDone { state } => state,
        other => bail!("sync protocol: expected HooksDone, got {other:?}"),
    };
    let create_container = hook_list(ctx.spec, |h| h.create_container());
    // Only their own env: the process's may exceed what execve takes before
    // process.rlimits (RLIMIT_STACK) apply (runc gives them the process's, crun its own).
    hooks::run_hooks("createContainer", create_container, state.as_bytes())
}

fn apply_process_attributes(spec: &Spec, process: Option<&Process>) -> Result<()> {
    if let Some(process) = process {
        identity::apply_rlimits(process)?;
        attributes::apply_scheduler(process)?;
        attributes::apply_io_priority(process)?;
    }
    attributes::apply_personality(spec)
}

/// The process's labels, working directory, program and identity, ready for `start`; returns
/// the program and the seccomp filter still to load right before execve.
fn prepare_process<'c>(
    ctx: &InitContext<'c>,
    link: &Link,
    process: &Process,
) -> Result<(Command, Option<&'c crate::seccomp::Program>)> {
    attributes::apply_lsm_labels(process)?;
    // After pivot_root, paths resolve inside the container only.
    create_cwd(process.cwd())?;
    let command = Command::prepare(process)?;
    let late_seccomp = take_identity(
        link,
        process,
        ctx.spec,
        ctx.caps,
        ctx.seccomp,
        ctx.namespaces.has(LinuxNamespaceType::User),
    )?;
    Ok((command, late_seccomp))
}

/// After `start`: startContainer hooks, then execve of the user's program. A failure goes to
/// start.err, which `start` reports.
fn start_process(
    ctx: &InitContext,
    prepared: Option<(Command, Option<&crate::seccomp::Program>)>,
    start_state: &str,
) -> ! {
    let Some((command, late_seccomp)) = prepared else {
        // `start` refuses such a container before it writes exec.fifo; this is for a byte
        // written there by something else.
        let _ = (&*ctx.start_error)
            .write_all(b"config.json: process: the field is required to start the container");
        std::process::exit(1);
    };
    let start_container = hook_list(ctx.spec, |h| h.start_container());
    // Without an env of their own they get the process's, HOME included (as runc's and crun's).
    let started = hooks::run_hooks_with_env(
        "startContainer",
        start_container,
        start_state.as_bytes(),
        Some(&command.env),
    );
    if let Err(err) = started {
        let _ = (&*ctx.start_error).write_all(format!("{err:#}").as_bytes());
        std::process::exit(1);
    }
    exec_process(&command, ctx.preserve_fds, late_seccomp, ctx.spec)
}

/// The program to execve, resolved and encoded before the process gives up its privileges
/// (a missing executable fails `create`/`exec` with runc's wording, not the later execve).
pub(super) struct Command {
    exe: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// `envp` as strings, for startContainer hooks without an env of their own.
    env: Vec<String>,
    arg0: String,
}

impl Command {
    pub(super) fn prepare(process: &Process) -> Result<Command> {
        let mut env = dedup_env(process.env().as_deref().unwrap_or_default());
        add_home(&mut env, process.user().uid());
        let args: Vec<String> = process.args().clone().unwrap_or_default();
        let arg0 = args.first().cloned().unwrap_or_default();
        Ok(Command {
            exe: find_executable(&arg0, &env)?,
            argv: to_cstrings(&args, "process.args")?,
            envp: to_cstrings(&env, "process.env")?,
            env,
            arg0,
        })
    }
}

/// Switches to the process's identity: working directory, user, groups, seccomp (early when
/// it must be), capabilities, no_new_privs. Returns the filter still to be loaded right before
/// execve, if any.
///
/// The container's profile may deny any call hutch makes after it is loaded, so every step and
/// check of hutch's own (chdir, the getcwd of the cwd check, setgroups, the uid switch) comes
/// before the load. Only what needs the filter first follows it: without no_new_privs the
/// capability drop (the load needs CAP_SYS_ADMIN), then the sync messages, the wait for
/// `start`, startContainer hooks and execve.
pub(super) fn take_identity<'p>(
    link: &Link,
    process: &Process,
    spec: &Spec,
    caps: Option<&CapabilityPlan>,
    seccomp: Option<&'p crate::seccomp::Program>,
    in_user_ns: bool,
) -> Result<Option<&'p crate::seccomp::Program>> {
    let cwd = process.cwd();
    let chdir_early = nix::unistd::chdir(cwd);
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    // With no_new_privs the filter is loaded as late as possible (just before execve); a notify
    // listener must still reach the parent, so it is loaded before Ready.
    let seccomp_early = seccomp.filter(|p| !no_new_privs || p.needs_listener());
    identity::switch_user(process, caps, !in_user_ns || has_setgroups_allowed())?;
    if chdir_early.is_err() {
        // The directory may only be reachable by the container's user.
        nix::unistd::chdir(cwd)
            .with_context(|| format!("process.cwd: chdir to {}", cwd.display()))?;
    }
    verify_cwd(cwd)?;
    if no_new_privs {
        identity::apply_capabilities(caps)?;
        sys::set_no_new_privs().context("process.noNewPrivileges")?;
        if let Some(program) = seccomp_early {
            load_seccomp(link, spec, program)?;
        }
    } else {
        if let Some(program) = seccomp_early {
            let raised = identity::raise_sys_admin()?;
            load_seccomp(link, spec, program)?;
            if raised && caps.is_none() {
                identity::lower_sys_admin()?;
            }
        }
        identity::apply_capabilities(caps)?;
    }
    Ok(seccomp.filter(|_| seccomp_early.is_none()))
}

/// The last steps: close every fd the process must not inherit, restore signal defaults, load a
/// late seccomp filter, execve. Errors here can only go to the process's stderr.
pub(super) fn exec_process(
    command: &Command,
    preserve_fds: u32,
    late_seccomp: Option<&crate::seccomp::Program>,
    spec: &Spec,
) -> ! {
    let _ = sys::cloexec_from(3 + preserve_fds);
    sys::reset_signal_dispositions();
    if let Some(program) = late_seccomp {
        let config = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
        let loaded = config
            .context("linux.seccomp vanished")
            .and_then(|c| crate::seccomp::load(program, c));
        if let Err(err) = loaded {
            eprintln!("{err:#}");
            std::process::exit(1);
        }
    }
    let err = match nix::unistd::execve(&command.exe, &command.argv, &command.envp) {
        Err(err) => err,
        Ok(never) => match never {},
    };
    eprintln!("exec: {:?}: {}", command.arg0, err.desc().to_lowercase());
    std::process::exit(if err == nix::errno::Errno::EACCES {
        126
    } else {
        127
    })
}

/// A single-threaded process moving itself ("0" into `tasks`) skips the kernel's global cgroup
/// threadgroup lock, which moving it from outside must take (an RCU grace period).
/// The files are the host's: closed as soon as they served (this process never drops them).
pub(super) fn join_own_cgroups(task_files: &[File]) -> Result<()> {
    for mut file in task_files {
        file.write_all(b"0")
            .context("joining the container's cgroup: writing 0 to a v1 tasks file")?;
        let _ = nix::unistd::close(file.as_raw_fd());
    }
    Ok(())
}

/// Loads the filter; a notify listener goes to the parent, which hands it to the agent.
fn load_seccomp(link: &Link, spec: &Spec, program: &crate::seccomp::Program) -> Result<()> {
    let config = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .context("linux.seccomp vanished")?;
    let listener = crate::seccomp::load(program, config)?;
    if let Some(fd) = listener {
        link.channel
            .send_with_fd(&ToParent::SeccompListener, Some(fd.as_raw_fd()))?;
        drop(fd);
        match link.receive("the seccomp agent")? {
            ToChild::ListenerSent => {}
            other => bail!("sync protocol: expected ListenerSent, got {other:?}"),
        }
    }
    Ok(())
}

/// The child's end of the sync socket.
pub(super) struct Link<'a> {
    pub channel: &'a Channel,
}

impl Link<'_> {
    /// Receives the next message. If the parent is gone, the container will never be created:
    /// exit. What the parent made is recorded in the state directory, for `delete` (the init
    /// holds no host path to clean up itself, and in a user namespace could not).
    pub fn receive(&self, what: &str) -> Result<ToChild> {
        self.receive_with_fd(what).map(|(msg, _)| msg)
    }

    pub fn receive_with_fd(&self, what: &str) -> Result<(ToChild, Option<OwnedFd>)> {
        match self.channel.recv::<ToChild>() {
            Ok(Some(msg)) => Ok(msg),
            Ok(None) => std::process::exit(1),
            Err(err) => Err(err.context(format!("waiting for {what}"))),
        }
    }
}

impl InitContext<'_> {
    fn link(&self) -> Link<'_> {
        Link {
            channel: self.channel,
        }
    }
}

fn hook_list<'s>(
    spec: &'s Spec,
    pick: impl Fn(&'s oci_spec::runtime::Hooks) -> &'s Option<Vec<Hook>>,
) -> &'s [Hook] {
    spec.hooks()
        .as_ref()
        .and_then(|h| pick(h).as_deref())
        .unwrap_or_default()
}

fn set_hostname(spec: &Spec) -> Result<()> {
    if let Some(name) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(name).with_context(|| format!("hostname: setting {name:?}"))?;
    }
    if let Some(name) = spec.domainname().as_ref().filter(|h| !h.is_empty()) {
        crate::syscall::process::set_domainname(name)
            .with_context(|| format!("domainname: setting {name:?}"))?;
    }
    Ok(())
}

/// A session keyring of the container's own, so keys are not shared with the host session.
/// Kernels or seccomp profiles without keyctl are not an error, as in runc.
fn join_keyring(id: &str) {
    if let Ok(name) = CString::new(format!("_ses.{id}")) {
        let _ = sys::join_session_keyring(&name);
    }
}

/// runc creates a missing working directory, and engines rely on it (`docker run -w /new`).
fn create_cwd(cwd: &Path) -> Result<()> {
    if cwd.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(cwd)
        .with_context(|| format!("process.cwd: creating {}", cwd.display()))
}

/// One entry per variable, the last value given winning at the place of the first (as runc
/// does): `exec -e K=V` appends to the config's env, and a program reads only the first `K=` it
/// finds. Entries without `=` are kept as they are.
fn dedup_env(env: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(env.len());
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for entry in env {
        let Some((key, _)) = entry.split_once('=') else {
            out.push(entry.clone());
            continue;
        };
        match index.get(key) {
            Some(&at) => out[at].clone_from(entry),
            None => {
                index.insert(key, out.len());
                out.push(entry.clone());
            }
        }
    }
    out
}

/// Like runc, a process without HOME gets the home directory of its uid from the container's
/// /etc/passwd, or "/".
fn add_home(env: &mut Vec<String>, uid: u32) {
    if env.iter().any(|kv| kv.starts_with("HOME=")) {
        return;
    }
    let home = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 6 && fields[2].parse() == Ok(uid)).then(|| fields[5].to_string())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string());
    env.push(format!("HOME={home}"));
}

fn has_setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// After chdir, the working directory must be inside the container's root: a cwd inherited
/// through a leaked host fd would show as "(unreachable)" or fail (CVE-2024-21626).
fn verify_cwd(cwd: &Path) -> Result<()> {
    let actual = nix::unistd::getcwd().with_context(|| {
        format!(
            "process.cwd: {} is not reachable inside the container",
            cwd.display()
        )
    })?;
    if !actual.is_absolute() || actual.as_os_str().as_bytes().starts_with(b"(unreachable)") {
        bail!(
            "process.cwd: {} is outside the container's root",
            cwd.display()
        );
    }
    Ok(())
}

/// Blocks until `start` writes its byte into exec.fifo.
fn wait_for_start(fifo: &OwnedFd) {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(fifo.as_fd(), &mut byte) {
            Ok(_) => return,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => std::process::exit(1),
        }
    }
}

fn to_cstrings(items: &[String], field: &str) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .with_context(|| format!("{field}: {s:?} contains a NUL byte"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::dedup_env;

    #[test]
    fn later_env_entries_win_at_the_first_place() {
        let env: Vec<String> = ["PATH=/bin", "K=a", "X", "B=1", "K=b=c", "X", "K="]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(dedup_env(&env), ["PATH=/bin", "K=", "X", "B=1", "X"]);
    }
}
