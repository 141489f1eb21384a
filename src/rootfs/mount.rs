//! The config's `mounts`: option parsing and mounting onto targets resolved inside the rootfs.
//!
//! Filesystems are mounted with mount(2) onto `/proc/self/fd/N` of the resolved O_PATH target
//! (the host's /proc, which the container cannot touch); binds are cloned with open_tree, get
//! their attributes on the detached tree with mount_setattr, and are attached with move_mount
//! onto the target fd. Neither path looks the destination up by name at mount time.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use oci_spec::runtime::Mount;

use super::attach::{apply_propagation_fd, attach_tree, mount_fs, MountCtx};
use super::idmap::{self, idmap_request, IdmapRequest};
use super::options::{self, parse_options, MountOptions};
use super::resolve::{self, create_file, display, is_dir, mkdir_all, open_in_root};
use super::{cgroupfs, copyup};
use crate::syscall::fs::{self as sysfs, MountAttr};

/// Mounts one entry of the config's `mounts` (`index` is its place in the list).
pub fn mount_entry(ctx: &MountCtx, index: usize, m: &Mount) -> Result<()> {
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let dest = m.destination();
    let what = match m.source() {
        Some(src) if typ.is_empty() || typ == "none" || typ == "bind" || opts.is_bind() => {
            format!(
                "mount {:?} from {}",
                if typ.is_empty() { "bind" } else { typ },
                src.display()
            )
        }
        _ => format!("mount {typ:?}"),
    };
    mount_one(ctx, index, m, typ, opts)
        .with_context(|| format!("mounts[{index}]: {what} on {}", display(dest)))
}

fn mount_one(
    ctx: &MountCtx,
    index: usize,
    m: &Mount,
    typ: &str,
    mut opts: MountOptions,
) -> Result<()> {
    let dest = m.destination();
    if typ == "bind" {
        opts.flags.insert(MsFlags::MS_BIND);
    }
    check_proc_mount(dest, typ, &opts)?;
    if opts.is_bind() {
        let source = m.source().as_ref().context("bind mount without a source")?;
        let source = if source.is_absolute() {
            source.clone()
        } else {
            ctx.bundle.join(source)
        };
        if let Some((_, tree)) = ctx.premade.iter().find(|(i, _)| *i == index) {
            return attach_premade(ctx, tree, dest, &opts);
        }
        let idmap = idmap_request(m, &opts)?;
        return bind(ctx, &source, dest, &opts, idmap.as_ref());
    }
    options::check_id_options(&mut opts, typ)?;
    match typ {
        "cgroup" | "cgroup2" => cgroupfs::mount_cgroup(ctx, dest, &opts),
        // A new user namespace may not mount sysfs unless it also owns the network namespace.
        "sysfs" if ctx.new_user_ns && !ctx.new_net_ns => {
            refuse_symlink(ctx.root, dest, typ)?;
            opts.flags.insert(MsFlags::MS_BIND | MsFlags::MS_REC);
            bind(ctx, Path::new("/sys"), dest, &opts, None)
        }
        _ => mount_filesystem(ctx, m, typ, &opts),
    }
}

/// A filesystem mounted with mount(2) (proc, tmpfs, mqueue, ...): onto its target resolved
/// inside the rootfs, labelled, filled (tmpcopyup), then given its recursive attributes and
/// propagation.
fn mount_filesystem(ctx: &MountCtx, m: &Mount, typ: &str, opts: &MountOptions) -> Result<()> {
    let dest = m.destination();
    if typ == "proc" || typ == "sysfs" {
        refuse_symlink(ctx.root, dest, typ)?;
    }
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let mut flags = opts.flags;
    // A read-only /dev is only made read-only once its device nodes exist.
    if resolve::clean(dest) == Path::new("dev") {
        flags.remove(MsFlags::MS_RDONLY);
    }
    let target = mkdir_all(ctx.root, dest, Mode::from_bits_truncate(0o755))?;
    check_not_into_proc(&target, dest, typ)?;
    let copy_from = if opts.copy_up && typ == "tmpfs" {
        // Read-only only once the copy is in.
        flags.remove(MsFlags::MS_RDONLY);
        Some(open_covered_dir(ctx.root, dest, &target)?)
    } else {
        None
    };
    // runc labels every filesystem it mounts this way but proc, sysfs and mqueue
    // (mqueue's root gets the label as an xattr instead).
    let data = match ctx.mount_label {
        Some(label) if !matches!(typ, "proc" | "sysfs" | "mqueue") => {
            Some(format_mount_label(opts.data().as_deref(), label))
        }
        _ => opts.data(),
    };
    mount_fs(&target, &source, typ, flags, data.as_deref())?;
    if let (Some(label), "mqueue") = (ctx.mount_label, typ) {
        let root = open_in_root(ctx.root, dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        sysfs::set_xattr(root.as_fd(), c"security.selinux", label.as_bytes())
            .context("linux.mountLabel: labelling the mqueue root")?;
    }
    if let Some(from) = copy_from {
        tmpfs_copy_up(
            ctx.root,
            dest,
            &from,
            opts.flags.contains(MsFlags::MS_RDONLY),
        )?;
    }
    if !opts.rec_attr.is_empty() {
        let mounted = open_in_root(ctx.root, dest, OFlag::O_PATH)?;
        sysfs::mount_setattr_fd(mounted.as_fd(), true, &opts.rec_attr)
            .context("mount_setattr (recursive)")?;
    }
    apply_propagation(ctx.root, dest, &opts.propagation)
}

/// Mount data with the SELinux `context=` option for `linux.mountLabel` (runc's
/// label.FormatMountLabel). The label is quoted: MLS ranges hold commas.
pub fn format_mount_label(data: Option<&str>, label: &str) -> String {
    match data {
        Some(d) if !d.is_empty() => format!("{d},context=\"{label}\""),
        _ => format!("context=\"{label}\""),
    }
}

/// `linux.mountLabel`, refused on a host without SELinux (runc 1.1.5 passes it on anyway and
/// fails with the kernel's EINVAL on the first tmpfs; engines only set it where SELinux is
/// enabled) and when the mount options cannot carry it.
pub fn mount_label(spec: &oci_spec::runtime::Spec, selinux: bool) -> Result<Option<&str>> {
    let label = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref())
        .filter(|l| !l.is_empty());
    match label {
        Some(l) if l.contains('"') || l.contains('\0') => {
            bail!("linux.mountLabel {l:?}: a label cannot contain quotes or NUL")
        }
        Some(_) if !selinux => bail!(
            "linux.mountLabel: a mount label is specified in config, but SELinux is disabled or not supported on this host"
        ),
        label => Ok(label),
    }
}

/// The directory a tmpfs is about to cover, opened for reading: the fd keeps reaching its
/// content once the tmpfs hides it. It must be the very inode of the resolved target.
fn open_covered_dir(root: BorrowedFd, dest: &Path, target: &OwnedFd) -> Result<OwnedFd> {
    let dir = open_in_root(root, dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .context("tmpcopyup: open the directory to copy")?;
    let (a, b) = (fstat(&dir)?, fstat(target)?);
    if a.st_dev != b.st_dev || a.st_ino != b.st_ino {
        bail!("tmpcopyup: the destination changed while it was being mounted");
    }
    Ok(dir)
}

/// Fills the tmpfs just mounted on `dest` from `from`, then makes it read-only if asked.
fn tmpfs_copy_up(root: BorrowedFd, dest: &Path, from: &OwnedFd, readonly: bool) -> Result<()> {
    let mounted = open_in_root(root, dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .context("tmpcopyup: open the new tmpfs")?;
    if sysfs::fs_magic(&mounted)? != libc::TMPFS_MAGIC {
        bail!("tmpcopyup: the destination is no longer the new tmpfs");
    }
    copyup::copy_up(from, &mounted, &PathBuf::from(display(dest)))?;
    if readonly {
        let ro = MountAttr {
            set: libc::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        sysfs::mount_setattr_fd(mounted.as_fd(), false, &ro)
            .context("tmpcopyup: make the tmpfs read-only")?;
    }
    Ok(())
}

/// Bind mounts of a container with its own user namespace are cloned by the parent, in the
/// host's mount namespace, and sent to the init, which attaches them in order: the init, in
/// its user namespace, could not reach a source under a directory only host root may enter,
/// and an idmapped mount (mount_setattr(MOUNT_ATTR_IDMAP)) needs privilege over the source
/// filesystem's user namespace. Idmapped trees are mapped through `userns_pid`'s user
/// namespace (the init's) unless the mount has its own mappings. Each tree gets the
/// propagation `/` gets in the container's mount namespace before the binds (`root_prop`), so
/// it relates to the host's mounts as a clone made in there would: a copy of a shared host
/// mount must not stay the host's peer under an rslave root.
pub fn premake_bind_trees(
    spec: &oci_spec::runtime::Spec,
    bundle: &Path,
    userns_pid: nix::unistd::Pid,
) -> Result<Vec<(usize, OwnedFd)>> {
    let root_prop =
        super::before_pivot_propagation(super::rootfs_propagation(spec.linux().as_ref())?);
    let mut trees = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
        let typ = m.typ().as_deref().unwrap_or("");
        if !(opts.is_bind() || typ == "bind") {
            continue;
        }
        let what = || format!("mounts[{index}]: bind on {}", display(m.destination()));
        let source = m
            .source()
            .as_ref()
            .with_context(|| format!("{}: no source", what()))?;
        let source = if source.is_absolute() {
            source.clone()
        } else {
            bundle.join(source)
        };
        let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
        if opts.recursive_bind() {
            flags |= libc::AT_RECURSIVE as u32;
        }
        let tree = sysfs::open_tree(sysfs::cwd_fd(), &source, flags)
            .with_context(|| format!("{}: open_tree {}", what(), source.display()))?;
        apply_propagation_fd(&tree, &[root_prop]).with_context(what)?;
        if let Some(req) = idmap_request(m, &opts)? {
            idmap::idmap_tree(&tree, &req, userns_pid).with_context(what)?;
        }
        trees.push((index, tree));
    }
    Ok(trees)
}

fn attach_premade(ctx: &MountCtx, tree: &OwnedFd, dest: &Path, opts: &MountOptions) -> Result<()> {
    let st = fstat(tree)?;
    let target = if is_dir(&st) {
        mkdir_all(ctx.root, dest, Mode::from_bits_truncate(0o755))?
    } else {
        create_file(ctx.root, dest, Mode::from_bits_truncate(0o644))?
    };
    check_not_into_proc(&target, dest, "bind")?;
    attach_tree(tree, &target, opts)?;
    apply_propagation_fd(tree, &opts.propagation)
}

/// Bind-mounts host `source` onto container `dest` with the options applied on the detached
/// copy before it becomes visible.
pub fn bind(
    ctx: &MountCtx,
    source: &Path,
    dest: &Path,
    opts: &MountOptions,
    idmap: Option<&IdmapRequest>,
) -> Result<()> {
    let mut flags = libc::OPEN_TREE_CLONE;
    if opts.recursive_bind() {
        flags |= libc::AT_RECURSIVE as u32;
    }
    let tree = sysfs::open_tree(sysfs::cwd_fd(), source, flags)
        .with_context(|| format!("open_tree {}", source.display()))?;
    let st = fstat(&tree)?;
    let target = if is_dir(&st) {
        mkdir_all(ctx.root, dest, Mode::from_bits_truncate(0o755))?
    } else {
        create_file(ctx.root, dest, Mode::from_bits_truncate(0o644))?
    };
    check_not_into_proc(&target, dest, "bind")?;
    if let Some(req) = idmap {
        idmap::idmap_tree(&tree, req, nix::unistd::getpid())?;
    }
    attach_tree(&tree, &target, opts)?;
    apply_propagation_fd(&tree, &opts.propagation)
}

fn apply_propagation(root: BorrowedFd, dest: &Path, propagation: &[MsFlags]) -> Result<()> {
    if propagation.is_empty() {
        return Ok(());
    }
    let mounted = open_in_root(root, dest, OFlag::O_PATH)?;
    apply_propagation_fd(&mounted, propagation)
}

/// Files under /proc that lxcfs-style binds may replace; anything else under /proc is refused
/// so a config cannot hide or fake what the runtime and the kernel expose there.
const VALID_PROC_MOUNTS: &[&str] = &[
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
    "proc/sys/kernel/ns_last_pid",
];

fn check_proc_mount(dest: &Path, typ: &str, opts: &MountOptions) -> Result<()> {
    let clean = resolve::clean(dest);
    if clean == Path::new("proc") {
        if typ == "proc" && !opts.is_bind() {
            return Ok(());
        }
        bail!("/proc cannot be mounted because it is not of type proc");
    }
    if clean.starts_with("proc") && !VALID_PROC_MOUNTS.iter().any(|v| clean == Path::new(v)) {
        bail!(
            "{} cannot be mounted because it is inside /proc",
            display(dest)
        );
    }
    Ok(())
}

/// Catches destinations that reach procfs through a symlink, which the lexical check misses.
fn check_not_into_proc(target: &OwnedFd, dest: &Path, typ: &str) -> Result<()> {
    if typ == "proc" {
        return Ok(());
    }
    let magic = sysfs::fs_magic(target)?;
    let clean = resolve::clean(dest);
    if magic == libc::PROC_SUPER_MAGIC && !VALID_PROC_MOUNTS.iter().any(|v| clean == Path::new(v)) {
        bail!("destination resolves into procfs");
    }
    Ok(())
}

/// /proc and /sys must not be symlinks in the image (CVE-2023-27561).
fn refuse_symlink(root: BorrowedFd, dest: &Path, typ: &str) -> Result<()> {
    let Some((parent, name)) = resolve::split_parent(dest) else {
        return Ok(());
    };
    let dir = match open_in_root(root, &parent, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(d) => d,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // runc's wording, which engines and conformance tests match on.
    match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() => {
            bail!("filesystem {typ:?} must be mounted on ordinary directory (the destination is a symlink)")
        }
        Ok(st) if !is_dir(&st) => {
            bail!("filesystem {typ:?} must be mounted on ordinary directory (the destination is not a directory)")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_label_option() {
        let label = "system_u:object_r:container_file_t:s0:c1,c2";
        assert_eq!(
            format_mount_label(Some("mode=755,size=65536k"), label),
            "mode=755,size=65536k,context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        assert_eq!(
            format_mount_label(None, label),
            "context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        assert_eq!(format_mount_label(Some(""), "l"), "context=\"l\"");
        let mut spec = oci_spec::runtime::Spec::default();
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_mount_label(Some(label.to_string()));
        spec.set_linux(Some(linux.clone()));
        assert_eq!(mount_label(&spec, true).unwrap(), Some(label));
        // SELinux off: refused (runc fails at its first labelled mount).
        assert!(mount_label(&spec, false).is_err());
        assert_eq!(
            mount_label(&oci_spec::runtime::Spec::default(), false).unwrap(),
            None
        );
        linux.set_mount_label(Some("bad\"label".to_string()));
        spec.set_linux(Some(linux));
        assert!(mount_label(&spec, true).is_err());
    }

    #[test]
    fn proc_mount_rules() {
        let none = MountOptions::default();
        assert!(check_proc_mount(Path::new("/proc"), "proc", &none).is_ok());
        assert!(check_proc_mount(Path::new("/proc"), "tmpfs", &none).is_err());
        assert!(check_proc_mount(Path::new("/proc/./cpuinfo"), "bind", &none).is_ok());
        assert!(
            check_proc_mount(Path::new("/proc/sys/kernel/core_pattern"), "bind", &none).is_err()
        );
        assert!(check_proc_mount(Path::new("/procfoo"), "tmpfs", &none).is_ok());
    }
}
