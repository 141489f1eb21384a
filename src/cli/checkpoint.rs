//! `hutch checkpoint ID`: dump the container's processes to image files with CRIU (runc's
//! flags and defaults); the container is gone afterwards unless `--leave-running` or
//! `--pre-dump`.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;

use super::{CheckpointArgs, CriuArgs, GlobalOpts};
use crate::container::state::{State, Status};
use crate::container::state_dir::CONFIG_FILE;
use crate::criu::options::{Common, Dirs};
use crate::criu::{rpc, CriuOpts, CriuReq, CriuReqType, Swrk};

impl CriuArgs {
    /// The flags as the CRIU driver takes them.
    pub fn options(&self) -> crate::criu::options::Common {
        crate::criu::options::Common {
            image_path: self.image_path.clone(),
            work_path: self.work_path.clone(),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            lazy_pages: self.lazy_pages,
            manage_cgroups_mode: self.manage_cgroups_mode.clone(),
            empty_ns: self.empty_ns.clone(),
            auto_dedup: self.auto_dedup,
        }
    }
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
    let common = args.criu.options();
    let dirs = common.open_dirs()?;
    let criu = global.criu.as_deref().unwrap_or("criu");
    crate::criu::check_version(criu)?;
    record_descriptors(&dirs.image_path, state.init_pid)?;
    let opts = dump_opts(&args, &common, &state, &spec, &dirs)?;
    let kind = if args.pre_dump {
        CriuReqType::PreDump
    } else {
        CriuReqType::Dump
    };
    let mut swrk = Swrk::start(criu, &[], false)?;
    swrk.call(
        &CriuReq {
            r#type: kind as i32,
            opts: Some(opts),
            notify_success: None,
        },
        |_| Ok(()),
    )
    .with_context(|| {
        format!(
            "checkpointing {} (criu's log: {})",
            args.id,
            common.log_path(&dirs, "dump.log").display()
        )
    })?;
    swrk.finish(args.pre_dump)?;
    if !args.leave_running && !args.pre_dump {
        // CRIU killed the processes once they were dumped: the container is gone, as runc has it.
        crate::container::delete::delete(dir, &state, true)?;
    }
    Ok(0)
}

/// What the init's stdio are (`pipe:[N]`, `/dev/null`, ...), for `restore` to match.
fn record_descriptors(image_path: &Path, pid: i32) -> Result<()> {
    let targets: Vec<String> = (0..3)
        .map(|fd| {
            fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let path = image_path.join(crate::criu::DESCRIPTORS_FILE);
    let json = serde_json::to_vec(&targets).context("encoding the init's descriptors")?;
    fs::write(&path, json).with_context(|| format!("writing {}", path.display()))
}

/// The options runc sends for a dump, from the container's state and saved config.
fn dump_opts(
    args: &CheckpointArgs,
    common: &Common,
    state: &State,
    spec: &Spec,
    dirs: &Dirs,
) -> Result<CriuOpts> {
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
        pid: Some(state.init_pid),
        root: Some(state.rootfs.display().to_string()),
        leave_running: Some(args.leave_running),
        status_fd: args.status_fd,
        parent_img: args.parent_path.clone(),
        track_mem: args.pre_dump.then_some(true),
        ps,
        freeze_cgroup,
        ext_mnt: crate::criu::mounts::for_dump(spec, state.init_pid),
        external: external_namespaces(spec)?,
        ..common.opts(dirs, "dump.log")?
    })
}

/// `TYPE[INODE]:KEY` for each namespace the config joins by path.
fn external_namespaces(spec: &Spec) -> Result<Vec<String>> {
    crate::criu::joined_namespaces(spec)
        .into_iter()
        .map(|(name, key, path)| {
            let md = fs::metadata(&path)
                .with_context(|| format!("linux.namespaces: {name} path {}", path.display()))?;
            Ok(format!(
                "{name}[{}]:{key}",
                std::os::unix::fs::MetadataExt::ino(&md)
            ))
        })
        .collect()
}
