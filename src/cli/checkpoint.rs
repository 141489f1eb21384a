//! `hutch checkpoint ID`: dump the container's processes to image files with CRIU (runc's
//! flags and defaults); the container is gone afterwards unless `--leave-running` or
//! `--pre-dump`.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use super::GlobalOpts;
use crate::container::state::{State, Status};
use crate::container::state_dir::CONFIG_FILE;
use crate::criu::{rpc, CriuOpts, CriuReq, CriuReqType, Swrk};

#[derive(clap::Args, Debug, Clone)]
pub struct CheckpointArgs {
    /// Path for saving criu image files (default: ./checkpoint)
    #[arg(long)]
    pub image_path: Option<PathBuf>,
    /// Path for saving work files and logs (default: the image path)
    #[arg(long)]
    pub work_path: Option<PathBuf>,
    /// Path for previous criu image files in pre-dump
    #[arg(long)]
    pub parent_path: Option<String>,
    /// Leave the process running after checkpointing
    #[arg(long)]
    pub leave_running: bool,
    /// Allow open tcp connections
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long)]
    pub shell_job: bool,
    /// Use userfaultfd to lazily restore memory pages
    #[arg(long)]
    pub lazy_pages: bool,
    /// criu writes \0 to this FD once lazy-pages is ready
    #[arg(long)]
    pub status_fd: Option<i32>,
    /// ADDRESS:PORT of the page server
    #[arg(long)]
    pub page_server: Option<String>,
    /// Handle file locks, for safety
    #[arg(long)]
    pub file_locks: bool,
    /// Dump container's memory information only, leave the container running after this
    #[arg(long)]
    pub pre_dump: bool,
    /// Cgroups mode: soft|full|strict|ignore (default: soft)
    #[arg(long)]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace, but don't restore its properties
    #[arg(long)]
    pub empty_ns: Vec<String>,
    /// Enable auto deduplication of memory images
    #[arg(long)]
    pub auto_dedup: bool,
    /// The container id
    pub id: String,
}

pub fn run(global: &GlobalOpts, args: CheckpointArgs) -> Result<i32> {
    let dir = crate::container::ContainerDir::open(&global.root, &args.id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    if !matches!(status, Status::Running | Status::Paused) {
        bail!("container is not running: {}", status.as_str());
    }
    let spec = crate::config::parse_spec(
        &fs::read(dir.path.join(CONFIG_FILE)).context("reading the container's saved config")?,
    )?;
    let image_path = match &args.image_path {
        Some(p) => p.clone(),
        None => std::env::current_dir()
            .context("the current directory (for the default image path)")?
            .join("checkpoint"),
    };
    let images = open_dir_creating(&image_path, "--image-path")?;
    let work = match &args.work_path {
        Some(p) => Some(open_dir_creating(p, "--work-path")?),
        None => None,
    };
    let opts = dump_opts(&args, &state, &spec, &images, work.as_ref())?;
    let kind = if args.pre_dump {
        CriuReqType::PreDump
    } else {
        CriuReqType::Dump
    };
    let mut swrk = Swrk::start("criu")?;
    swrk.call(
        &CriuReq {
            r#type: kind as i32,
            opts: Some(opts),
            notify_success: None,
        },
        |_, _| Ok(()),
    )
    .with_context(|| {
        format!(
            "checkpointing {} (criu's log: {})",
            args.id,
            args.work_path
                .as_deref()
                .unwrap_or(&image_path)
                .join("dump.log")
                .display()
        )
    })?;
    swrk.finish()?;
    if !args.leave_running && !args.pre_dump {
        // CRIU killed the processes once they were dumped: the container is gone, as runc has it.
        crate::container::delete::delete(dir, &state, true)?;
    }
    Ok(0)
}

fn open_dir_creating(path: &Path, flag: &str) -> Result<OwnedFd> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("{flag}: creating {}", path.display()))?;
    open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("{flag}: opening {}", path.display()))
}

/// The options runc sends for a dump, from the container's state and saved config.
fn dump_opts(
    args: &CheckpointArgs,
    state: &State,
    spec: &Spec,
    images: &OwnedFd,
    work: Option<&OwnedFd>,
) -> Result<CriuOpts> {
    let manage_cgroups_mode = match args.manage_cgroups_mode.as_deref() {
        None => None,
        Some("soft") => Some(rpc::CriuCgMode::Soft as i32),
        Some("full") => Some(rpc::CriuCgMode::Full as i32),
        Some("strict") => Some(rpc::CriuCgMode::Strict as i32),
        Some("ignore") => Some(rpc::CriuCgMode::Ignore as i32),
        Some(other) => {
            bail!("--manage-cgroups-mode: invalid value {other:?} (soft, full, strict or ignore)")
        }
    };
    let ps = match &args.page_server {
        None => None,
        Some(addr) => {
            let (host, port) = addr
                .rsplit_once(':')
                .context("--page-server: ADDRESS:PORT expected")?;
            let port = port
                .parse()
                .context("--page-server: the port is no number")?;
            Some(rpc::CriuPageServerInfo {
                address: Some(host.to_string()),
                port: Some(port),
            })
        }
    };
    let freeze_cgroup = state
        .cgroup
        .as_ref()
        .and_then(|m| m.freezer_path())
        .map(|p| p.display().to_string());
    Ok(CriuOpts {
        images_dir_fd: images.as_raw_fd(),
        work_dir_fd: work.map(|w| w.as_raw_fd()),
        pid: Some(state.init_pid),
        log_level: Some(4),
        log_file: Some("dump.log".into()),
        root: Some(state.rootfs.display().to_string()),
        manage_cgroups: Some(true),
        manage_cgroups_mode,
        notify_scripts: Some(true),
        leave_running: Some(args.leave_running),
        tcp_established: Some(args.tcp_established),
        ext_unix_sk: Some(args.ext_unix_sk),
        shell_job: Some(args.shell_job),
        file_locks: Some(args.file_locks),
        auto_dedup: Some(args.auto_dedup),
        lazy_pages: Some(args.lazy_pages),
        status_fd: args.status_fd,
        orphan_pts_master: Some(true),
        parent_img: args.parent_path.clone(),
        track_mem: args.pre_dump.then_some(true),
        ps,
        freeze_cgroup,
        ext_mnt: external_mounts(state, spec),
        ..Default::default()
    })
}

/// Mounts CRIU must treat as external: every bind mount (its source is outside the container;
/// restore binds it again), and the masked paths that are files (binds of /dev/null).
fn external_mounts(state: &State, spec: &Spec) -> Vec<rpc::ExtMountMap> {
    let mut ext = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|o| o == "bind" || o == "rbind");
        if bind {
            let dest = m.destination().display().to_string();
            ext.push(rpc::ExtMountMap {
                key: dest.clone(),
                val: dest,
            });
        }
    }
    // Without a cgroup namespace /sys/fs/cgroup (or each v1 hierarchy under it) is a bind of
    // the container's own cgroup directory, which CRIU cannot dump as a mount of its own.
    let mountinfo = fs::read_to_string(format!("/proc/{}/mountinfo", state.init_pid));
    for (root, mountpoint, fstype) in mountinfo.iter().flat_map(|t| t.lines().filter_map(fields)) {
        if (fstype == "cgroup" || fstype == "cgroup2") && root != "/" {
            ext.push(rpc::ExtMountMap {
                key: mountpoint.to_string(),
                val: mountpoint.to_string(),
            });
        }
    }
    // The device nodes, as runc has them: files the init opened before pivot_root (its
    // stdio's /dev/null) are then found on them.
    let devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    let defaults = [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
    ];
    for path in defaults
        .iter()
        .map(|p| p.to_string())
        .chain(devices.iter().map(|d| d.path().display().to_string()))
    {
        if !ext.iter().any(|e| e.key == path) {
            ext.push(rpc::ExtMountMap {
                key: path.clone(),
                val: path,
            });
        }
    }
    let masked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default();
    for path in masked {
        let inside = format!("/proc/{}/root{}", state.init_pid, path);
        if fs::metadata(&inside).is_ok_and(|md| !md.is_dir()) {
            ext.push(rpc::ExtMountMap {
                key: path.clone(),
                val: "/dev/null".into(),
            });
        }
    }
    ext
}

/// A mountinfo line's root, mount point and filesystem type.
fn fields(line: &str) -> Option<(&str, &str, &str)> {
    let mut it = line.split(' ');
    let root = it.nth(3)?;
    let mountpoint = it.next()?;
    let fstype = it.skip_while(|f| *f != "-").nth(1)?;
    Some((root, mountpoint, fstype))
}
