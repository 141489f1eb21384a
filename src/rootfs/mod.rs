//! The container's filesystem view (owned by the rootfs helper; this stub fixes the interface).
//!
//! Called by the container's init process (src/process/init.rs), which is already inside its
//! new mount namespace (and user namespace, if any) and still sees the host's filesystem.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::Result;
use oci_spec::runtime::Spec;

pub struct RootfsConfig<'a> {
    pub spec: &'a Spec,
    /// Absolute, canonical host path of the container's root filesystem.
    pub rootfs: &'a Path,
    /// Absolute bundle directory: relative bind-mount sources are resolved against it.
    pub bundle: &'a Path,
    /// The container has its own user namespace: device nodes cannot be made with mknod and
    /// are bind-mounted from the host instead.
    pub new_user_ns: bool,
    /// The container has its own cgroup namespace.
    pub new_cgroup_ns: bool,
    /// process.terminal is set: /dev/console must exist as a mount point.
    pub terminal: bool,
}

pub struct Rootfs {
    _root: OwnedFd,
}

/// Everything between entering the mount namespace and pivot_root.
pub fn prepare(_cfg: &RootfsConfig) -> Result<Rootfs> {
    anyhow::bail!("rootfs: not implemented")
}

impl Rootfs {
    /// Opens the container's `/dev/pts/ptmx`, verified to be a devpts ptmx (5:2).
    pub fn open_ptmx(&self) -> Result<OwnedFd> {
        anyhow::bail!("rootfs: not implemented")
    }

    /// Bind-mounts the pty peer over the container's `/dev/console`.
    pub fn mount_console(&self, _peer: BorrowedFd) -> Result<()> {
        anyhow::bail!("rootfs: not implemented")
    }

    /// pivot_root into the rootfs (MS_MOVE + chroot with `no_pivot`); cwd is the new `/`.
    pub fn pivot(self, _no_pivot: bool) -> Result<()> {
        anyhow::bail!("rootfs: not implemented")
    }
}

/// After pivot_root: sysctls, readonly paths, masked paths, readonly root.
pub fn finalize(_spec: &Spec) -> Result<()> {
    anyhow::bail!("rootfs: not implemented")
}
