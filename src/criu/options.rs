//! The options `checkpoint` and `restore` share (runc's flags of the same names), and the
//! image and work directories they name, as CRIU's RPC takes them.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use super::{rpc, CriuOpts};

#[derive(Clone, Debug, Default)]
pub struct Common {
    pub image_path: Option<PathBuf>,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub lazy_pages: bool,
    pub manage_cgroups_mode: Option<String>,
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
}

/// The image and work directories, opened (and made) for CRIU.
pub struct Dirs {
    pub image_path: PathBuf,
    pub images: OwnedFd,
    pub work: Option<OwnedFd>,
}

impl Common {
    pub fn open_dirs(&self) -> Result<Dirs> {
        let image_path = match &self.image_path {
            Some(p) => p.clone(),
            None => std::env::current_dir()
                .context("the current directory (for the default image path)")?
                .join("checkpoint"),
        };
        let images = open_dir_creating(&image_path, "--image-path")?;
        let work = match &self.work_path {
            Some(p) => Some(open_dir_creating(p, "--work-path")?),
            None => None,
        };
        Ok(Dirs {
            image_path,
            images,
            work,
        })
    }

    /// Where CRIU writes `log`: the work directory, else the image directory.
    pub fn log_path(&self, dirs: &Dirs, log: &str) -> PathBuf {
        self.work_path
            .as_deref()
            .unwrap_or(&dirs.image_path)
            .join(log)
    }

    /// The options both requests carry, from these flags.
    pub fn opts(&self, dirs: &Dirs, log: &str) -> Result<CriuOpts> {
        let manage_cgroups_mode = match self.manage_cgroups_mode.as_deref() {
            None => None,
            Some("soft") => Some(rpc::CriuCgMode::Soft as i32),
            Some("full") => Some(rpc::CriuCgMode::Full as i32),
            Some("strict") => Some(rpc::CriuCgMode::Strict as i32),
            Some("ignore") => Some(rpc::CriuCgMode::Ignore as i32),
            Some(other) => bail!(
                "--manage-cgroups-mode: invalid value {other:?} (soft, full, strict or ignore)"
            ),
        };
        let mut empty_ns = 0u32;
        for ns in &self.empty_ns {
            match ns.as_str() {
                "network" => empty_ns |= libc::CLONE_NEWNET as u32,
                other => bail!("--empty-ns: namespace {other:?} is not supported (network)"),
            }
        }
        Ok(CriuOpts {
            images_dir_fd: dirs.images.as_raw_fd(),
            work_dir_fd: dirs.work.as_ref().map(|w| w.as_raw_fd()),
            log_level: Some(4),
            log_file: Some(log.into()),
            manage_cgroups: Some(true),
            manage_cgroups_mode,
            notify_scripts: Some(true),
            tcp_established: Some(self.tcp_established),
            ext_unix_sk: Some(self.ext_unix_sk),
            shell_job: Some(self.shell_job),
            file_locks: Some(self.file_locks),
            auto_dedup: Some(self.auto_dedup),
            lazy_pages: Some(self.lazy_pages),
            empty_ns: (empty_ns != 0).then_some(empty_ns),
            orphan_pts_master: Some(true),
            ..Default::default()
        })
    }
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
