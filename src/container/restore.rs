//! `restore`, the parent's side: a container made from a bundle like `create` makes one, whose
//! processes CRIU brings back from a checkpoint's images instead of an init hutch clones.
//!
//! CRIU runs as `criu swrk`, our child, in the container's cgroups before it restores anything,
//! so the restored tasks are born in them; `rst_sibling` makes the restored init our child too
//! (CRIU's own parent's), so a foreground `restore` can wait for it like `run` does. CRIU calls
//! back at `setup-namespaces` (the createRuntime hooks' moment), `post-restore` (the init's pid
//! is known) and `orphan-pts-master` (the container's terminal master, for the console
//! socket). Any failure undoes everything, as `create` does.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use super::create::{self, CreateRequest, Created};
use super::pid_file::write_pid_file;
use super::state::{self, State, Status};
use super::state_dir::{ContainerDir, CRIU_ROOT};
use crate::console;
use crate::criu::{self, rpc, CriuOpts, CriuReq, CriuReqType, Notification, Swrk};
use crate::host_proc;

pub struct RestoreRequest<'a> {
    pub create: CreateRequest<'a>,
    pub criu: &'a criu::options::Common,
    /// The criu binary (`--criu`, else `criu` from PATH).
    pub criu_bin: &'a str,
    pub lsm_profile: Option<&'a str>,
    pub lsm_mount_context: Option<&'a str>,
}

/// The bind of the rootfs CRIU restores into: CRIU needs its root to be a mount point, which a
/// bundle's directory need not be. Unmounted (lazily: the restored mount namespace has its own
/// copy) and removed when dropped.
struct CriuRoot(PathBuf);

impl CriuRoot {
    fn bind(rootfs: &Path, state_dir: &Path) -> Result<CriuRoot> {
        let path = state_dir.join(CRIU_ROOT);
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        let root = CriuRoot(path);
        mount(
            Some(rootfs),
            &root.0,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("binding the rootfs {} for criu", rootfs.display()))?;
        Ok(root)
    }
}

impl Drop for CriuRoot {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        let _ = fs::remove_dir(&self.0);
    }
}

pub fn restore(root: &Path, req: &RestoreRequest) -> Result<Created> {
    let started = Instant::now();
    let creq = &req.create;
    state::validate_id(creq.id)?;
    let plan = create::plan(root, creq, started)?;
    let spec = &plan.bundle.spec;
    let linux = spec.linux().as_ref();
    let resources = linux.and_then(|l| l.resources().as_ref());
    let mut cgroup = crate::cgroups::Manager::new(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        creq.id,
        creq.systemd_cgroup,
        creq.rootless,
    )?;
    let mut state = create::new_state(creq.id, &plan.bundle, spec);
    state.cgroup = Some(cgroup.planned());
    let mut undo = create::make_state_dir(root, creq.id, &plan, &state)?;
    let dir = undo.dir.as_ref().context("state directory vanished")?;
    cgroup.create_and_apply(resources)?;
    let console_stream = creq.console_socket.map(console::connect).transpose()?;
    criu::check_version(req.criu_bin)?;
    let dirs = req.criu.open_dirs()?;
    // Declared after `undo`, so dropped (unmounted) before the state directory is removed.
    let criu_root = CriuRoot::bind(&plan.bundle.rootfs, &dir.path)?;
    let (passed, inherit_fd) = inherited(spec, &dirs.image_path)?;
    let mut swrk = Swrk::start(req.criu_bin, &passed, true)?;
    drop(passed);
    join_cgroup(&mut cgroup, swrk.pid(), creq.id, spec)?;
    state.cgroup = Some(cgroup.clone());
    dir.save(&state)?;
    let opts = CriuOpts {
        root: Some(criu_root.0.display().to_string()),
        rst_sibling: Some(true),
        ext_mnt: criu::mounts::for_restore(spec, &plan.bundle.dir, swrk.pid().as_raw()),
        inherit_fd,
        cg_root: cgroup_roots(swrk.pid())?,
        lsm_profile: req.lsm_profile.map(String::from),
        lsm_mount_context: req.lsm_mount_context.map(String::from),
        ..req.criu.opts(&dirs, "restore.log")?
    };
    let mut kept_master = None;
    let request = CriuReq {
        r#type: CriuReqType::Restore as i32,
        opts: Some(opts),
        notify_success: None,
    };
    let resp = swrk.call(&request, |n| {
        on_notify(
            n,
            spec,
            &mut state,
            dir,
            &mut undo.init,
            console_stream.as_ref(),
            &mut kept_master,
        )
    });
    let log = req.criu.log_path(&dirs, "restore.log");
    let pid = restored_pid(resp, swrk)
        .with_context(|| format!("restoring {} (criu's log: {})", creq.id, log.display()))?;
    if state.init_pid != pid {
        record_init(&mut state, dir, pid, &mut undo.init)?;
    }
    if let Some(pid_file) = creq.pid_file {
        write_pid_file(pid_file, Pid::from_raw(pid))?;
    }
    state.creating = false;
    dir.save(&state)?;
    drop(criu_root);
    crate::logging::timing(started, "restored");
    undo.init = None;
    undo.cgroup = None;
    let dir = undo.dir.take().context("state directory vanished")?;
    Ok(Created {
        dir,
        state,
        console: kept_master,
    })
}

/// Puts `criu swrk` in the container's cgroups (under systemd: starts the unit with it), so
/// what it restores is born there.
fn join_cgroup(
    cgroup: &mut crate::cgroups::Manager,
    criu: Pid,
    id: &str,
    spec: &Spec,
) -> Result<()> {
    if cgroup.systemd.is_some() {
        let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        cgroup.start_unit(criu, id, resources, spec.annotations().as_ref())
    } else {
        cgroup.join(criu)
    }
}

/// The restored init's pid from CRIU's answer, once CRIU has exited.
fn restored_pid(resp: Result<rpc::CriuResp>, swrk: Swrk) -> Result<i32> {
    let resp = resp?;
    swrk.finish(false)?;
    resp.restore
        .map(|r| r.pid)
        .context("criu's answer names no restored process")
}

/// Descriptors CRIU hands the restored processes in place of what they had at the dump: our
/// stdio for the init's pipes (the caller's new ones, as runc does it), and the config's
/// namespace paths for the namespaces the container joined. Each is a fresh descriptor that
/// `criu swrk` inherits under the number its `inherit_fd` entry names.
fn inherited(spec: &Spec, image_path: &Path) -> Result<(Vec<OwnedFd>, Vec<rpc::InheritFd>)> {
    let mut passed = Vec::new();
    let mut inherit = Vec::new();
    let recorded = image_path.join(criu::DESCRIPTORS_FILE);
    let targets: Vec<String> = match fs::read(&recorded) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading {}", recorded.display()))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err).with_context(|| format!("reading {}", recorded.display())),
    };
    for (stdio, target) in targets.iter().enumerate().take(3) {
        if !target.starts_with("pipe:") {
            continue;
        }
        let ours = match stdio {
            0 => std::io::stdin().as_fd().try_clone_to_owned(),
            1 => std::io::stdout().as_fd().try_clone_to_owned(),
            _ => std::io::stderr().as_fd().try_clone_to_owned(),
        };
        let fd = ours.with_context(|| format!("duplicating descriptor {stdio} for criu"))?;
        inherit.push(rpc::InheritFd {
            key: target.clone(),
            fd: fd.as_raw_fd(),
        });
        passed.push(fd);
    }
    for (name, key, path) in criu::joined_namespaces(spec) {
        let fd =
            open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).with_context(|| {
                format!(
                    "linux.namespaces: opening the {name} namespace {}",
                    path.display()
                )
            })?;
        inherit.push(rpc::InheritFd {
            key: key.to_string(),
            fd: fd.as_raw_fd(),
        });
        passed.push(fd);
    }
    Ok((passed, inherit))
}

/// Where each hierarchy's restored cgroups go: where `criu swrk` itself was put.
fn cgroup_roots(criu: Pid) -> Result<Vec<rpc::CgroupRoot>> {
    let text = host_proc::cgroup_file(Some(criu))?;
    Ok(host_proc::memberships(&text)
        .map(|m| rpc::CgroupRoot {
            // The cgroup2 line names no controller: CRIU's default root then covers it.
            ctrl: (!m.controllers.is_empty()).then(|| m.controllers.to_string()),
            path: m.path.to_string(),
        })
        .collect())
}

fn record_init(
    state: &mut State,
    dir: &ContainerDir,
    pid: i32,
    undo_init: &mut Option<Pid>,
) -> Result<()> {
    let pid = Pid::from_raw(pid);
    *undo_init = Some(pid);
    let (start_time, _) = host_proc::process_start_time(pid)
        .context("the restored init exited before it could be recorded")?;
    state.init_pid = pid.as_raw();
    state.init_start_time = start_time;
    // Not hutch's executable: the restored init runs the user's program from the start.
    state.init_exe = None;
    dir.save(state)
}

fn on_notify(
    n: Notification,
    spec: &Spec,
    state: &mut State,
    dir: &ContainerDir,
    undo_init: &mut Option<Pid>,
    console: Option<&UnixStream>,
    kept_master: &mut Option<OwnedFd>,
) -> Result<()> {
    match n.script {
        // The namespaces exist and nothing runs in them yet: the moment of create's
        // prestart and createRuntime hooks, with the restored init's pid.
        "setup-namespaces" => {
            state.init_pid = n.pid.unwrap_or(0);
            create::run_runtime_namespace_hooks(spec, &state.hook_state_json(Status::Created))
        }
        "post-restore" => {
            let pid = n.pid.context("post-restore without a pid")?;
            record_init(state, dir, pid, undo_init)
        }
        "orphan-pts-master" => {
            let master = n.fd.context("orphan-pts-master without a descriptor")?;
            match console {
                Some(socket) => console::send_master(socket, "console", &master),
                None => {
                    // A foreground restore relays the terminal itself, as `run` does.
                    *kept_master = Some(master);
                    Ok(())
                }
            }
        }
        _ => Ok(()),
    }
}
