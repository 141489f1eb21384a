//! Linux namespaces: which ones the container gets new, which it joins by path, and how the
//! spawning process arranges both.
//!
//! New namespaces are created by the `clone` that makes the container's init (one syscall, and
//! the init is born as pid 1 of its pid namespace). Namespaces joined by path must be entered
//! with `setns` before that clone, and hutch must not change its own namespaces, so when there
//! are joins an intermediate process is forked: it joins, then clones the init (as a sibling,
//! CLONE_PARENT, so the init is still hutch's child) and exits. Joining the user namespace
//! first makes every new namespace owned by it, as the spec requires. A new time namespace
//! takes the same path: its offsets must be written by the process that unshares it, before
//! any process enters it.
//! The cgroup namespace is the exception to clone-time creation: the init unshares it itself
//! after being placed in its cgroup, so that cgroup becomes the namespace's root.
//! A new user namespace's id maps are written from outside it ([`id_map`]).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

mod id_map;

use id_map::check_joined_mappings;
pub use id_map::{format_id_map, write_id_mappings};

/// nix has no name for CLONE_NEWTIME (it does not fit clone(2)'s flags; unshare takes it).
const NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

#[derive(Debug, Clone)]
pub struct NamespacePlan {
    /// Namespaces the init gets new (as CLONE_NEW* flags).
    pub new: CloneFlags,
    /// Namespaces joined by path, in the order they must be entered (user first).
    pub joins: Vec<(LinuxNamespaceType, PathBuf)>,
    /// For `exec`: a pidfd of the process whose namespaces `joins` names (the container's init).
    /// They are entered through it, all at once, so a recycled pid cannot redirect the join.
    pub owner: Option<Rc<OwnedFd>>,
    /// The container's mount namespace is the runtime's own (left out of `linux.namespaces`, or
    /// joined by a path that names hutch's): the rootfs is entered with chroot, and nothing is
    /// mounted (it would change the host and outlive the container).
    pub shares_mount_ns: bool,
}

impl NamespacePlan {
    pub fn from_spec(spec: &Spec) -> Result<Self> {
        let mut plan = NamespacePlan {
            new: CloneFlags::empty(),
            joins: Vec::new(),
            owner: None,
            shares_mount_ns: false,
        };
        let mut seen = Vec::new();
        let namespaces = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .map(|v| v.as_slice())
            .unwrap_or_default();
        for (i, ns) in namespaces.iter().enumerate() {
            let typ = ns.typ();
            if seen.contains(&typ) {
                bail!("config.json: linux.namespaces[{i}]: namespace type {typ} given twice");
            }
            seen.push(typ);
            match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    if !path.is_absolute() {
                        bail!(
                            "config.json: linux.namespaces[{i}].path: {:?} must be an absolute path",
                            path
                        );
                    }
                    plan.joins.push((typ, path.clone()));
                }
                _ => plan.new |= clone_flag(typ),
            }
        }
        // The user namespace first (its owner rules how the others may be entered), the mount
        // namespace last (entering it hides the host paths of the others).
        plan.joins.sort_by_key(|(typ, _)| join_order(*typ));
        // Decided here, in hutch: once the init joined its namespaces, its /proc/self/ns/mnt is
        // the joined one.
        plan.shares_mount_ns =
            !plan.has(LinuxNamespaceType::Mount) || plan.joins_own(LinuxNamespaceType::Mount);
        plan.check(spec)?;
        Ok(plan)
    }

    /// Only joins (for `exec`, which enters an existing container): the namespaces of the
    /// process `owner` (a pidfd) that differ from hutch's, named by their /proc paths.
    pub fn for_joins(joins: Vec<(LinuxNamespaceType, PathBuf)>, owner: OwnedFd) -> Result<Self> {
        let shares_mount_ns = !joins.iter().any(|(t, _)| *t == LinuxNamespaceType::Mount);
        let mut plan = NamespacePlan {
            new: CloneFlags::empty(),
            joins,
            owner: Some(Rc::new(owner)),
            shares_mount_ns,
        };
        plan.joins.sort_by_key(|(typ, _)| join_order(*typ));
        Ok(plan)
    }

    fn check(&self, spec: &Spec) -> Result<()> {
        let linux = spec.linux().as_ref();
        let has_mappings = linux.is_some_and(|l| {
            l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
                || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        });
        if has_mappings && !self.new.contains(CloneFlags::CLONE_NEWUSER) {
            // containerd's CRI (1.7+) gives a user-namespaced pod's containers both the pod's
            // namespace by path and its mappings; they describe that namespace, so they must
            // match it (runc 1.2 checks the same), and then there is nothing to write.
            match self.joins.iter().find(|(t, _)| *t == LinuxNamespaceType::User) {
                Some((_, path)) if !self.joins_own(LinuxNamespaceType::User) => {
                    if let Some(l) = linux {
                        check_joined_mappings(path, l)?;
                    }
                }
                _ => bail!(
                    "config.json: linux.uidMappings/gidMappings require a user namespace of the container's own (new or joined by path)"
                ),
            }
        }
        if self.new.contains(CloneFlags::CLONE_NEWUSER) && !has_mappings {
            bail!(
                "config.json: linux.uidMappings: a new user namespace needs uid and gid mappings"
            );
        }
        let has_offsets =
            linux.is_some_and(|l| l.time_offsets().as_ref().is_some_and(|o| !o.is_empty()));
        if has_offsets && !self.new.contains(NEWTIME) {
            bail!("config.json: linux.timeOffsets require a new time namespace");
        }
        if self.shares_mount_ns {
            check_without_mount_ns(spec)?;
        }
        if let Some(sysctls) = linux.and_then(|l| l.sysctl().as_ref()) {
            for key in sysctls.keys() {
                self.check_sysctl(key)?;
            }
        }
        // Both names live in the uts namespace: without one of the container's own, setting
        // either would rename the host (runc 1.2 refuses domainname too).
        for (field, value) in [
            ("hostname", spec.hostname()),
            ("domainname", spec.domainname()),
        ] {
            if value.as_ref().is_some_and(|v| !v.is_empty())
                && (!self.has(LinuxNamespaceType::Uts) || self.joins_own(LinuxNamespaceType::Uts))
            {
                bail!("config.json: {field}: setting the {field} requires a uts namespace of the container's own");
            }
        }
        Ok(())
    }

    /// A sysctl may only be set in a namespace of the container's own: otherwise it would change
    /// the host (runc's rules: ipc sysctls need an ipc namespace, net.* a network namespace,
    /// anything not namespaced is refused).
    fn check_sysctl(&self, key: &str) -> Result<()> {
        const IPC_SYSCTLS: &[&str] = &[
            "kernel.msgmax",
            "kernel.msgmnb",
            "kernel.msgmni",
            "kernel.sem",
            "kernel.shmall",
            "kernel.shmmax",
            "kernel.shmmni",
            "kernel.shm_rmid_forced",
        ];
        let dotted = key.replace('/', ".");
        let needs = if IPC_SYSCTLS.contains(&dotted.as_str()) || dotted.starts_with("fs.mqueue.") {
            LinuxNamespaceType::Ipc
        } else if dotted.starts_with("net.") {
            LinuxNamespaceType::Network
        } else if dotted == "kernel.hostname" || dotted == "kernel.domainname" {
            LinuxNamespaceType::Uts
        } else {
            bail!("config.json: linux.sysctl: {key:?} is not in a separate kernel namespace");
        };
        if !self.has(needs) || self.joins_own(needs) {
            bail!("config.json: linux.sysctl: {key:?} needs a {needs} namespace of the container's own: it would change the host's value");
        }
        Ok(())
    }

    /// The namespace of `typ` is joined by a path that names hutch's own namespace.
    fn joins_own(&self, typ: LinuxNamespaceType) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some((_, path)) = self.joins.iter().find(|(t, _)| *t == typ) else {
            return false;
        };
        let own = format!("/proc/self/ns/{}", proc_ns_name(typ));
        match (std::fs::metadata(path), std::fs::metadata(own)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        }
    }

    /// The container's user namespace is not hutch's: new, or joined by a path that names
    /// another (a pod's, as containerd's CRI gives it).
    pub fn has_own_user_ns(&self) -> bool {
        self.is_new(LinuxNamespaceType::User)
            || (self.has(LinuxNamespaceType::User) && !self.joins_own(LinuxNamespaceType::User))
    }

    pub fn is_new(&self, typ: LinuxNamespaceType) -> bool {
        self.new.contains(clone_flag(typ))
    }

    /// New or joined.
    pub fn has(&self, typ: LinuxNamespaceType) -> bool {
        self.is_new(typ) || self.joins.iter().any(|(t, _)| *t == typ)
    }

    /// Whether an intermediate process must clone the init (see the module docs). Joining or
    /// creating a pid or time namespace would be harmless to hutch itself, but its later
    /// children (poststart hooks in `run`) would land in them, so hutch never changes its own.
    pub fn needs_intermediate(&self) -> bool {
        !self.joins.is_empty() || self.new.contains(NEWTIME)
    }

    /// Flags for the init's clone: every new namespace except cgroup (unshared by the init
    /// after it joined its cgroup) and time (unshared by the spawner, which must write the
    /// offsets before any process enters it).
    pub fn clone_flags(&self) -> CloneFlags {
        self.new - CloneFlags::CLONE_NEWCGROUP - NEWTIME
    }

    /// Enters every namespace to be joined: through the owner's pidfd when there is one
    /// (setns(pidfd), kernel 5.8), else by path. Files are all opened first: entering a mount
    /// namespace would hide the paths of the others.
    pub fn join_all(&self) -> Result<()> {
        if let Some(owner) = &self.owner {
            let flags = self
                .joins
                .iter()
                .fold(CloneFlags::empty(), |f, (typ, _)| f | clone_flag(*typ));
            if flags.is_empty() {
                return Ok(());
            }
            match nix::sched::setns(owner.as_fd(), flags) {
                Ok(()) => return Ok(()),
                // Kernels before 5.8 take only namespace fds: the paths below, checked after.
                Err(nix::errno::Errno::EINVAL) => {}
                Err(err) => {
                    return Err(err)
                        .context("joining the container's namespaces (setns on its pidfd)")
                }
            }
        }
        let mut files = Vec::new();
        for (typ, path) in &self.joins {
            let file = File::open(path)
                .with_context(|| format!("opening {typ} namespace {}", path.display()))?;
            files.push((*typ, path, file));
        }
        if let Some(owner) = &self.owner {
            // Still alive after the opens: the pid was not recycled, the files are its own.
            crate::syscall::process::pidfd_send_signal(owner.as_fd(), 0)
                .context("container not running (its init exited while exec joined it)")?;
        }
        for (typ, path, file) in files {
            nix::sched::setns(file.as_fd(), clone_flag(typ))
                .with_context(|| format!("joining {typ} namespace {}", path.display()))?;
        }
        Ok(())
    }

    /// Creates the time namespace for the init's clone and sets its clock offsets.
    pub fn unshare_time(&self, spec: &Spec) -> Result<()> {
        if !self.new.contains(NEWTIME) {
            return Ok(());
        }
        nix::sched::unshare(NEWTIME).context("creating the time namespace")?;
        let offsets = spec
            .linux()
            .as_ref()
            .and_then(|l| l.time_offsets().as_ref());
        let Some(offsets) = offsets else {
            return Ok(());
        };
        let mut text = String::new();
        for (clock, offset) in offsets {
            if clock != "monotonic" && clock != "boottime" {
                bail!("config.json: linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)");
            }
            text.push_str(&format!(
                "{clock} {} {}\n",
                offset.secs().unwrap_or(0),
                offset.nanosecs().unwrap_or(0)
            ));
        }
        std::fs::write("/proc/self/timens_offsets", text)
            .context("config.json: linux.timeOffsets: writing /proc/self/timens_offsets")
    }
}

/// Without a mount namespace of its own the container shares the runtime's (config-linux.md:
/// a type left out is inherited), and hutch only chroots into the rootfs: every field that
/// needs a mount is refused, as a mount would be made in the host's namespace and outlive the
/// container (runc makes them there and leaves them; it refuses masked and readonly paths).
fn check_without_mount_ns(spec: &Spec) -> Result<()> {
    const WHY: &str = "needs a mount namespace of the container's own (without one, mounts would \
                       be made in the runtime's mount namespace and outlive the container)";
    if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        bail!("config.json: mounts: mounting {WHY}");
    }
    let linux = spec.linux().as_ref();
    for (field, paths) in [
        (
            "linux.maskedPaths",
            linux.and_then(|l| l.masked_paths().as_ref()),
        ),
        (
            "linux.readonlyPaths",
            linux.and_then(|l| l.readonly_paths().as_ref()),
        ),
    ] {
        if paths.is_some_and(|p| !p.is_empty()) {
            bail!("config.json: {field}: {WHY}");
        }
    }
    if linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .is_some_and(|p| !p.is_empty())
    {
        bail!("config.json: linux.rootfsPropagation: {WHY}");
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        bail!("config.json: root.readonly: a read-only root {WHY}");
    }
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        bail!("config.json: process.terminal: the console (a devpts of the container's own, /dev/console) {WHY}");
    }
    Ok(())
}

/// The namespace's file name under /proc/<pid>/ns.
pub fn proc_ns_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

fn join_order(typ: LinuxNamespaceType) -> u8 {
    match typ {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    }
}

pub fn clone_flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => NEWTIME,
    }
}
