//! The container's filesystem view.
//!
//! Called by the container's init process (src/process/init.rs), which is already inside its
//! new mount namespace (and user namespace, if any) and still sees the host's filesystem.
//!
//! The sequence is `prepare` (propagation, the rootfs bind, `mounts`, /dev) → optionally
//! `open_ptmx` + `mount_console` → `pivot` → `finalize` (sysctl, readonlyPaths, maskedPaths,
//! root.readonly). Every container path is resolved inside the rootfs by fd (see `resolve`).

mod attach;
mod cgroupfs;
mod copyup;
mod devices;
mod idmap;
mod masked;
mod mount;
mod options;
pub mod procfs;
mod resolve;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{fstat, major, minor, Mode, SFlag};
use oci_spec::runtime::{Linux, LinuxNamespaceType, Spec};

use crate::host_proc;
use crate::syscall::fs::{self as sysfs, MountAttr};
use attach::MountCtx;
pub use cgroupfs::{cgroup_mounts, hierarchies};
pub use mount::premake_bind_trees;
use resolve::open_in_root;

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
    /// Bind trees made by the parent, by mount index (see `premake_bind_trees`).
    pub premade: &'a [(usize, OwnedFd)],
    /// Device and inode of the rootfs directory, as the parent saw it. The parent clones the
    /// init from inside the rootfs, so the init's working directory is the rootfs (translated
    /// into its new mount namespace) unless joining a mount namespace moved it.
    pub rootfs_id: Option<(u64, u64)>,
}

pub struct Rootfs {
    /// The rootfs bind mount, opened once; everything before pivot is resolved from here.
    root: OwnedFd,
}

/// Everything between entering the mount namespace and pivot_root.
pub fn prepare(cfg: &RootfsConfig) -> Result<Rootfs> {
    let linux = cfg.spec.linux().as_ref();
    root_propagation(before_pivot_propagation(rootfs_propagation(linux)?))?;
    rootfs_parent_private(cfg.rootfs)?;
    let root = bind_rootfs(cfg)
        .with_context(|| format!("bind rootfs {} onto itself", cfg.rootfs.display()))?;

    let ctx = MountCtx {
        root: root.as_fd(),
        bundle: cfg.bundle,
        new_user_ns: cfg.new_user_ns,
        new_net_ns: has_namespace(linux, LinuxNamespaceType::Network),
        new_cgroup_ns: cfg.new_cgroup_ns,
        premade: cfg.premade,
        mount_label: mount::mount_label(cfg.spec, crate::lsm::selinux_enabled())?,
    };
    let mounts = cfg.spec.mounts().as_deref().unwrap_or(&[]);
    for (index, m) in mounts.iter().enumerate() {
        mount::mount_entry(&ctx, index, m)?;
    }

    if !dev_is_bind_mounted(mounts) {
        let devices = linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]);
        devices::setup_dev(root.as_fd(), devices, cfg.new_user_ns)?;
    }
    if cfg.terminal {
        devices::console_mount_point(root.as_fd())?;
    }
    dev_readonly(root.as_fd(), mounts)?;
    Ok(Rootfs { root })
}

/// Binds the rootfs onto itself and returns the bind's root. In a user namespace mapping root
/// to a non-root host uid, the rootfs path may lead through directories only host root may
/// enter: the working directory the parent gave the init reaches it without a lookup.
fn bind_rootfs(cfg: &RootfsConfig) -> Result<OwnedFd> {
    let from_cwd = cfg.rootfs_id.is_some_and(|(dev, ino)| {
        nix::sys::stat::stat(".").is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
    });
    let here = if from_cwd { Path::new(".") } else { cfg.rootfs };
    let flags = libc::OPEN_TREE_CLONE | libc::AT_RECURSIVE as u32;
    let tree = sysfs::open_tree(sysfs::cwd_fd(), here, flags).context("open_tree")?;
    let target = nix::fcntl::open(
        here,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open")?;
    sysfs::move_mount_fd(tree.as_fd(), target.as_fd()).context("move_mount")?;
    // The attached tree's fd is the root of the new bind, no lookup needed.
    Ok(tree)
}

impl Rootfs {
    /// The root of the mount namespace this process is in (for `exec`, after joining it).
    pub fn current() -> Result<Rootfs> {
        let root = nix::fcntl::open(
            "/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context("open /")?;
        Ok(Rootfs { root })
    }

    /// Opens the container's `/dev/pts/ptmx`, verified to be a devpts ptmx (5:2).
    pub fn open_ptmx(&self) -> Result<OwnedFd> {
        let path = Path::new("/dev/pts/ptmx");
        let found =
            open_in_root(self.root.as_fd(), path, OFlag::O_PATH).context("open /dev/pts/ptmx")?;
        verify_devpts_node(&found, |maj, min| maj == 5 && min == 2).context("/dev/pts/ptmx")?;
        // Only a verified node is opened for real: opening a device can have side effects.
        let proc = procfs::Procfs::open()?;
        let ptmx = proc
            .reopen(found.as_fd(), OFlag::O_RDWR | OFlag::O_NOCTTY)
            .context("reopen /dev/pts/ptmx")?;
        verify_devpts_node(&ptmx, |maj, min| maj == 5 && min == 2).context("/dev/pts/ptmx")?;
        Ok(ptmx)
    }

    /// Bind-mounts the pty peer over the container's `/dev/console`.
    pub fn mount_console(&self, peer: BorrowedFd) -> Result<()> {
        // Unix98 pty peers use majors 136..=143.
        verify_devpts_node(&peer, |maj, _| (136..=143).contains(&maj))
            .context("console pty peer")?;
        let target = devices::console_mount_point(self.root.as_fd())?;
        let tree = sysfs::clone_tree(peer, false).context("open_tree console pty")?;
        sysfs::move_mount_fd(tree.as_fd(), target.as_fd())
            .context("mount console on /dev/console")?;
        Ok(())
    }

    /// pivot_root into the rootfs (MS_MOVE + chroot with `no_pivot`); cwd is the new `/`.
    pub fn pivot(self, no_pivot: bool) -> Result<()> {
        nix::unistd::fchdir(&self.root).context("chdir to rootfs")?;
        if no_pivot {
            hide_host_proc_and_sys(&self.root)?;
            nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .context("move rootfs onto /")?;
            nix::unistd::chroot(".").context("chroot")?;
        } else {
            let old_root = nix::fcntl::open(
                "/",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .context("open the old root")?;
            // With both arguments ".", the old root ends up stacked on the new one, where it
            // can be detached without needing a directory for it inside the rootfs.
            nix::unistd::pivot_root(".", ".").context("pivot_root")?;
            // Slave first, so detaching the old root does not propagate to the host. It must
            // be the old root that gets it: mount(2) on "." from the new root's directory hits
            // the new root (the lookup does not step onto the mount stacked there), and a
            // recursive slave there would cut every shared bind of the container off from
            // its peers (Kubernetes' Bidirectional propagation). The old root's own directory
            // (fchdir, as runc does) names the old root mount itself.
            nix::unistd::fchdir(&old_root).context("chdir to the old root")?;
            nix::mount::mount(
                None::<&str>,
                ".",
                None::<&str>,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                None::<&str>,
            )
            .context("make old root rslave")?;
            nix::mount::umount2(".", MntFlags::MNT_DETACH).context("unmount old root")?;
        }
        nix::unistd::chdir("/").context("chdir /")?;
        Ok(())
    }
}

/// With `--no-pivot` the host's mounts stay in the container's mount namespace, only out of
/// its chroot's reach. Full procfs and sysfs mounts among them would still count for the
/// kernel's "already visible" check, letting a container with CAP_SYS_ADMIN in its user
/// namespace mount an unmasked procfs: as runc does, detach each one outside the rootfs (or
/// cover it with an empty tmpfs when it cannot be unmounted) before the chroot.
fn hide_host_proc_and_sys(root: &OwnedFd) -> Result<()> {
    use std::os::fd::AsRawFd;
    let rootfs = std::fs::read_link(format!("/proc/self/fd/{}", root.as_raw_fd()))
        .context("--no-pivot: reading the rootfs path")?;
    let mountinfo = host_proc::own_mountinfo().context("--no-pivot")?;
    let targets: Vec<PathBuf> = host_proc::mounts(&mountinfo)
        .filter(|m| m.root() == "/" && matches!(m.fs_type, "proc" | "sysfs"))
        .map(|m| m.mount_point())
        .filter(|mount_point| !mount_point.starts_with(&rootfs))
        .collect();
    for target in targets {
        // Slave first: an rshared root (rootfsPropagation) would carry the unmount to the host.
        match nix::mount::mount(
            None::<&str>,
            &target,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            // Already gone with a parent detached before it.
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::EINVAL) => continue,
            other => other.with_context(|| {
                format!("--no-pivot: making {} a slave mount", target.display())
            })?,
        }
        match nix::mount::umount2(&target, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => nix::mount::mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .with_context(|| format!("--no-pivot: covering {}", target.display()))?,
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("--no-pivot: unmounting {}", target.display()))
            }
        }
    }
    Ok(())
}

/// After pivot_root: sysctls, readonly paths, masked paths, readonly root.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    if let Some(p) = rootfs_propagation(linux)? {
        root_propagation(p)?;
    }
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open /")?;
    if let Some(sysctls) = linux
        .and_then(|l| l.sysctl().as_ref())
        .filter(|s| !s.is_empty())
    {
        let proc = procfs::Procfs::open().context("linux.sysctl")?;
        procfs::sysctl(&proc, sysctls)?;
    }
    if let Some(paths) = linux.and_then(|l| l.readonly_paths().as_deref()) {
        masked::readonly_paths(root.as_fd(), paths)?;
    }
    if let Some(paths) = linux.and_then(|l| l.masked_paths().as_deref()) {
        let label = mount::mount_label(spec, crate::lsm::selinux_enabled())?;
        masked::masked_paths(root.as_fd(), paths, label)?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        root_readonly(&root)?;
    }
    Ok(())
}

/// `linux.rootfsPropagation` as mount flags.
fn rootfs_propagation(linux: Option<&Linux>) -> Result<Option<MsFlags>> {
    match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => Ok(None),
        Some(s) => match options::propagation_flag(s) {
            Some(f) => Ok(Some(f)),
            None => bail!("linux.rootfsPropagation {s:?}: unknown propagation"),
        },
    }
}

/// The propagation `/` of the new mount namespace gets before the rootfs is bound: the
/// configured one (applied again to the container's root after pivot_root, where the spec
/// means it), so an `rshared` root keeps the host's peer groups that Bidirectional binds
/// need, and `rslave` by default. Unbindable waits for pivot_root: binding the rootfs out of
/// an unbindable mount is EINVAL.
fn before_pivot_propagation(configured: Option<MsFlags>) -> MsFlags {
    let rslave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
    match configured {
        Some(p) if !p.contains(MsFlags::MS_UNBINDABLE) => p,
        _ => rslave,
    }
}

/// Sets the propagation of `/` in the container's mount namespace.
fn root_propagation(flags: MsFlags) -> Result<()> {
    nix::mount::mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .with_context(|| format!("linux.rootfsPropagation: set {flags:?} on /"))
}

/// pivot_root refuses a shared parent mount, and a bind under a shared parent would propagate
/// to the host: make the mount holding the rootfs private if it is shared.
fn rootfs_parent_private(rootfs: &Path) -> Result<()> {
    let info = host_proc::own_mountinfo()?;
    let Some((mountpoint, shared)) = containing_mount(&info, rootfs) else {
        return Ok(());
    };
    if shared {
        nix::mount::mount(
            None::<&str>,
            &mountpoint,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .with_context(|| format!("make {} private", mountpoint.display()))?;
    }
    Ok(())
}

/// The deepest mount point containing `path`, and whether it is shared.
fn containing_mount(mountinfo: &str, path: &Path) -> Option<(PathBuf, bool)> {
    let mut best: Option<(PathBuf, bool)> = None;
    for mount in host_proc::mounts(mountinfo) {
        let mp = mount.mount_point();
        if !path.starts_with(&mp) {
            continue;
        }
        let shared = mount.is_shared();
        // Later lines stack on earlier ones at the same point, so >= keeps the top mount.
        if best
            .as_ref()
            .is_none_or(|(b, _)| mp.components().count() >= b.components().count())
        {
            best = Some((mp, shared));
        }
    }
    best
}

fn has_namespace(linux: Option<&Linux>, typ: LinuxNamespaceType) -> bool {
    linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == typ))
}

/// A bind-mounted /dev is the user's own: runc leaves its devices alone.
fn dev_is_bind_mounted(mounts: &[oci_spec::runtime::Mount]) -> bool {
    mounts.iter().any(|m| {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .any(|o| o == "bind" || o == "rbind");
        bind && resolve::clean(m.destination()) == Path::new("dev")
    })
}

/// A read-only /dev tmpfs was mounted read-write so its nodes could be made; seal it now.
fn dev_readonly(root: BorrowedFd, mounts: &[oci_spec::runtime::Mount]) -> Result<()> {
    let wants_ro = mounts.iter().any(|m| {
        let opts = options::parse_options(m.options().as_deref().unwrap_or(&[]));
        !opts.is_bind()
            && m.typ().as_deref() != Some("bind")
            && opts.flags.contains(MsFlags::MS_RDONLY)
            && resolve::clean(m.destination()) == Path::new("dev")
    });
    if !wants_ro {
        return Ok(());
    }
    let dev = open_in_root(root, Path::new("/dev"), OFlag::O_PATH | OFlag::O_DIRECTORY)
        .context("open /dev")?;
    let ro = MountAttr {
        set: libc::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    sysfs::mount_setattr_fd(dev.as_fd(), false, &ro).context("make /dev read-only")
}

/// `root.readonly`: only the read-only bit changes; the root mount keeps its other flags.
fn root_readonly(root: &OwnedFd) -> Result<()> {
    let ro = MountAttr {
        set: libc::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    sysfs::mount_setattr_fd(root.as_fd(), false, &ro).context("root.readonly: remount / read-only")
}

/// A character device on devpts whose numbers pass `ok` (CVE-2025-52565).
fn verify_devpts_node(fd: &impl AsFd, ok: impl Fn(u64, u64) -> bool) -> Result<()> {
    if sysfs::fs_magic(fd)? != libc::DEVPTS_SUPER_MAGIC {
        bail!("not on devpts");
    }
    let st = fstat(fd.as_fd())?;
    let is_chr = st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFCHR.bits();
    if !is_chr || !ok(major(st.st_rdev), minor(st.st_rdev)) {
        bail!(
            "unexpected device {}:{}",
            major(st.st_rdev),
            minor(st.st_rdev)
        );
    }
    Ok(())
}

/// `prepare` for a container that shares the runtime's mount namespace (none of its own):
/// nothing is mounted (`NamespacePlan` refused every field that would need it), only /dev's
/// nodes and links are made in the rootfs, as without a /dev mount. No propagation changes,
/// no bind of the rootfs: the host's mount table stays as it was.
pub fn prepare_shared(cfg: &RootfsConfig) -> Result<Rootfs> {
    let root = nix::fcntl::open(
        cfg.rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open rootfs {}", cfg.rootfs.display()))?;
    let devices = cfg
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    devices::setup_dev(root.as_fd(), devices, cfg.new_user_ns)?;
    Ok(Rootfs { root })
}

impl Rootfs {
    /// Enters the rootfs with chroot: without a mount namespace of its own, pivot_root would
    /// move the host's root.
    pub fn chroot(self) -> Result<()> {
        nix::unistd::fchdir(&self.root).context("chdir to rootfs")?;
        nix::unistd::chroot(".").context("chroot into the rootfs")?;
        nix::unistd::chdir("/").context("chdir /")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_mount_lookup() {
        let info = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:40 / /work rw,relatime shared:20 - ext4 /dev/sdb rw
41 22 0:41 / /work/other rw,relatime - ext4 /dev/sdc rw
";
        assert_eq!(
            containing_mount(info, Path::new("/work/b/rootfs")),
            Some((PathBuf::from("/work"), true))
        );
        assert_eq!(
            containing_mount(info, Path::new("/workx/r")),
            Some((PathBuf::from("/"), true))
        );
        assert_eq!(
            containing_mount(info, Path::new("/work/other/r")),
            Some((PathBuf::from("/work/other"), false))
        );
    }

    #[test]
    fn parent_mount_lookup_decodes_every_escape() {
        // The kernel escapes space, tab, newline and backslash in mount points.
        let info = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:40 / /work/a\\011b\\134c rw,relatime - ext4 /dev/sdb rw
";
        assert_eq!(
            containing_mount(info, Path::new("/work/a\tb\\c/rootfs")),
            Some((PathBuf::from("/work/a\tb\\c"), false))
        );
    }

    #[test]
    fn rootfs_propagation_values() {
        assert_eq!(rootfs_propagation(None).unwrap(), None);
        assert_eq!(
            options::propagation_flag("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(options::propagation_flag("bogus"), None);
    }

    #[test]
    fn unbindable_root_waits_for_pivot() {
        let rslave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
        assert_eq!(before_pivot_propagation(None), rslave);
        for p in ["unbindable", "runbindable"] {
            assert_eq!(
                before_pivot_propagation(options::propagation_flag(p)),
                rslave,
                "{p}"
            );
        }
        for p in ["rshared", "shared", "private", "rslave"] {
            let f = options::propagation_flag(p);
            assert_eq!(Some(before_pivot_propagation(f)), f, "{p}");
        }
    }
}
