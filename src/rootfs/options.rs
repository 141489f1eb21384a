//! A mount's `options`, parsed the way runc does and split by the mechanism that applies each
//! part: mount(2) flags, propagation, recursive mount attributes, idmapping, tmpcopyup, and
//! filesystem data.

use anyhow::{bail, Result};
use nix::mount::MsFlags;

use crate::syscall::fs::MountAttr;

/// nix has no name for it; it is a plain mount(2) flag since Linux 5.10.
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// What a mount's `options` ask for, split by the mechanism that applies each part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// MS_* flags for mount(2), and for binds the per-mount attributes.
    pub flags: MsFlags,
    /// Flags the options explicitly turned off (`rw`, `suid`, `dev`, ...): binds clear them.
    pub cleared: MsFlags,
    /// Propagation changes in order (MS_SHARED etc., with MS_REC for the r-variants).
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes (`rro`, `rnosuid`, ...) for mount_setattr(AT_RECURSIVE).
    pub rec_attr: MountAttr,
    /// `idmap` (false) or `ridmap` (true).
    pub idmap: Option<bool>,
    /// `tmpcopyup`: a tmpfs starts with a copy of the directory it covers.
    pub copy_up: bool,
    /// Everything not recognised: filesystem data such as `mode=755`.
    pub data: Vec<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            rec_attr: MountAttr::default(),
            idmap: None,
            copy_up: false,
            data: Vec::new(),
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    pub fn recursive_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC)
    }

    pub fn data(&self) -> Option<String> {
        if self.data.is_empty() {
            None
        } else {
            Some(self.data.join(","))
        }
    }

    /// The non-recursive attribute change a bind mount needs to honour `flags`/`cleared`.
    pub fn bind_attr(&self) -> MountAttr {
        let map = [
            (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
            (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
            (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
            (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
            (MsFlags::MS_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
            (MS_NOSYMFOLLOW, libc::MOUNT_ATTR_NOSYMFOLLOW),
        ];
        let mut attr = MountAttr::default();
        for (ms, at) in map {
            if self.flags.contains(ms) {
                attr.set |= at;
            } else if self.cleared.contains(ms) {
                attr.clr |= at;
            }
        }
        let atime = if self.flags.contains(MsFlags::MS_NOATIME) {
            Some(libc::MOUNT_ATTR_NOATIME)
        } else if self.flags.contains(MsFlags::MS_STRICTATIME) {
            Some(libc::MOUNT_ATTR_STRICTATIME)
        } else if self.flags.contains(MsFlags::MS_RELATIME)
            || self
                .cleared
                .intersects(MsFlags::MS_NOATIME | MsFlags::MS_STRICTATIME)
        {
            Some(libc::MOUNT_ATTR_RELATIME)
        } else {
            None
        };
        if let Some(mode) = atime {
            // The atime modes are one field: the kernel wants all of it cleared to set one.
            attr.clr |= libc::MOUNT_ATTR__ATIME;
            attr.set |= mode;
        }
        attr
    }
}

/// Parses fstab-style options the way runc does: later options override earlier ones.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    for opt in options {
        let opt = opt.as_str();
        if let Some((clear, flag)) = ms_flag(opt) {
            if clear {
                o.flags.remove(flag);
                o.cleared.insert(flag);
            } else {
                o.flags.insert(flag);
                o.cleared.remove(flag);
            }
        } else if let Some(p) = propagation_flag(opt) {
            o.propagation.push(p);
        } else if let Some((clear, attr)) = rec_attr_flag(opt) {
            if clear {
                o.rec_attr.clr |= attr;
                o.rec_attr.set &= !attr;
            } else {
                if attr & libc::MOUNT_ATTR__ATIME == attr {
                    o.rec_attr.clr |= libc::MOUNT_ATTR__ATIME;
                    o.rec_attr.set &= !libc::MOUNT_ATTR__ATIME;
                }
                o.rec_attr.set |= attr;
                o.rec_attr.clr &= !attr | libc::MOUNT_ATTR__ATIME;
            }
        } else {
            match opt {
                "idmap" => o.idmap = Some(false),
                "ridmap" => o.idmap = Some(true),
                // Only tmpfs mounts act on it (as in runc and crun); others ignore it.
                "tmpcopyup" => o.copy_up = true,
                "defaults" | "" => {}
                _ => o.data.push(opt.to_string()),
            }
        }
    }
    o
}

/// `(clears, flag)` for a mount(2) flag option.
fn ms_flag(opt: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    Some(match opt {
        "acl" => (false, F::MS_POSIXACL),
        "noacl" => (true, F::MS_POSIXACL),
        "async" => (true, F::MS_SYNCHRONOUS),
        "sync" => (false, F::MS_SYNCHRONOUS),
        "atime" => (true, F::MS_NOATIME),
        "noatime" => (false, F::MS_NOATIME),
        "bind" => (false, F::MS_BIND),
        "rbind" => (false, F::MS_BIND | F::MS_REC),
        "dev" => (true, F::MS_NODEV),
        "nodev" => (false, F::MS_NODEV),
        "diratime" => (true, F::MS_NODIRATIME),
        "nodiratime" => (false, F::MS_NODIRATIME),
        "dirsync" => (false, F::MS_DIRSYNC),
        "exec" => (true, F::MS_NOEXEC),
        "noexec" => (false, F::MS_NOEXEC),
        "iversion" => (false, F::MS_I_VERSION),
        "noiversion" => (true, F::MS_I_VERSION),
        "lazytime" => (false, F::MS_LAZYTIME),
        "nolazytime" => (true, F::MS_LAZYTIME),
        "loud" => (true, F::MS_SILENT),
        "silent" => (false, F::MS_SILENT),
        "mand" => (false, F::MS_MANDLOCK),
        "nomand" => (true, F::MS_MANDLOCK),
        "relatime" => (false, F::MS_RELATIME),
        "norelatime" => (true, F::MS_RELATIME),
        "strictatime" => (false, F::MS_STRICTATIME),
        "nostrictatime" => (true, F::MS_STRICTATIME),
        "nosymfollow" => (false, MS_NOSYMFOLLOW),
        "symfollow" => (true, MS_NOSYMFOLLOW),
        "remount" => (false, F::MS_REMOUNT),
        "ro" => (false, F::MS_RDONLY),
        "rw" => (true, F::MS_RDONLY),
        "suid" => (true, F::MS_NOSUID),
        "nosuid" => (false, F::MS_NOSUID),
        _ => return None,
    })
}

/// MS_* propagation flags for `shared`, `rslave`, ... (also `linux.rootfsPropagation`).
pub fn propagation_flag(opt: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match opt {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

/// `(clears, MOUNT_ATTR_*)` for the recursive options.
fn rec_attr_flag(opt: &str) -> Option<(bool, u64)> {
    Some(match opt {
        "rro" => (false, libc::MOUNT_ATTR_RDONLY),
        "rrw" => (true, libc::MOUNT_ATTR_RDONLY),
        "rnosuid" => (false, libc::MOUNT_ATTR_NOSUID),
        "rsuid" => (true, libc::MOUNT_ATTR_NOSUID),
        "rnodev" => (false, libc::MOUNT_ATTR_NODEV),
        "rdev" => (true, libc::MOUNT_ATTR_NODEV),
        "rnoexec" => (false, libc::MOUNT_ATTR_NOEXEC),
        "rexec" => (true, libc::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (false, libc::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (true, libc::MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (false, libc::MOUNT_ATTR_RELATIME),
        "rnoatime" => (false, libc::MOUNT_ATTR_NOATIME),
        "rstrictatime" => (false, libc::MOUNT_ATTR_STRICTATIME),
        // Clearing one bit of the atime field is EINVAL; back to the default (relatime).
        "ratime" | "rnorelatime" | "rnostrictatime" => (true, libc::MOUNT_ATTR__ATIME),
        "rnosymfollow" => (false, libc::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (true, libc::MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// `uid=`/`gid=` data options name ids of the container's user namespace, and one that is not
/// mapped there makes the kernel refuse the mount with a bare EINVAL. devpts' `gid=N` (the tty
/// group, 5, in every engine's default config) is dropped when unmapped, as runc's rootless
/// specs do: new ptys then get the creating process's group. Any other is an error naming the
/// option and the mapping.
pub fn check_id_options(opts: &mut MountOptions, typ: &str) -> Result<()> {
    if !opts
        .data
        .iter()
        .any(|d| d.starts_with("uid=") || d.starts_with("gid="))
    {
        return Ok(());
    }
    let mapped = |file: &str, id: u32| -> bool {
        std::fs::read_to_string(file)
            .map(|text| id_is_mapped(&text, id))
            .unwrap_or(true)
    };
    let mut kept = Vec::with_capacity(opts.data.len());
    for d in opts.data.drain(..) {
        let (field, file) = if d.starts_with("uid=") {
            ("uidMappings", "/proc/self/uid_map")
        } else if d.starts_with("gid=") {
            ("gidMappings", "/proc/self/gid_map")
        } else {
            kept.push(d);
            continue;
        };
        let id = d[4..]
            .parse::<u32>()
            .map_err(|_| anyhow::anyhow!("option {d}: not a number"))?;
        if mapped(file, id) {
            kept.push(d);
        } else if typ == "devpts" && field == "gidMappings" {
            continue;
        } else {
            bail!("option {d}: id {id} is not mapped in the container's user namespace (linux.{field})");
        }
    }
    opts.data = kept;
    Ok(())
}

/// Whether `id` falls in one of a uid_map/gid_map's `inside outside count` lines.
fn id_is_mapped(map: &str, id: u32) -> bool {
    map.lines().any(|line| {
        let v: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        matches!(v[..], [inside, _, count] if (inside..inside + count).contains(&u64::from(id)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ids() {
        assert!(id_is_mapped("0 0 4294967295\n", 5));
        assert!(!id_is_mapped("         0       1001          1\n", 5));
        assert!(id_is_mapped("0 1001 1\n1 100000 65536\n", 5));
        assert!(!id_is_mapped("0 1001 1\n1 100000 65536\n", 65537));
    }

    fn opts(v: &[&str]) -> MountOptions {
        parse_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_data() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data().as_deref(), Some("mode=755,size=65536k"));
        assert!(!o.is_bind());
    }

    #[test]
    fn later_options_win() {
        let o = opts(&["ro", "rw", "nodev", "dev", "noexec"]);
        assert_eq!(o.flags, MsFlags::MS_NOEXEC);
        assert!(o.cleared.contains(MsFlags::MS_RDONLY | MsFlags::MS_NODEV));
        let o = opts(&["rw", "ro"]);
        assert_eq!(o.flags, MsFlags::MS_RDONLY);
        assert!(o.cleared.is_empty());
    }

    #[test]
    fn bind_and_propagation() {
        let o = opts(&["rbind", "rprivate", "shared", "tmpcopyup"]);
        assert!(o.is_bind() && o.recursive_bind());
        assert_eq!(
            o.propagation,
            vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC, MsFlags::MS_SHARED]
        );
        assert!(o.data.is_empty());
        assert!(o.copy_up);
        let o = opts(&["bind"]);
        assert!(o.is_bind() && !o.recursive_bind());
    }

    #[test]
    fn bind_attributes() {
        let o = opts(&["bind", "ro", "nosuid", "exec", "noatime"]);
        let a = o.bind_attr();
        assert_eq!(
            a.set,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(a.clr, libc::MOUNT_ATTR_NOEXEC | libc::MOUNT_ATTR__ATIME);
        assert!(opts(&["bind"]).bind_attr().is_empty());
    }

    #[test]
    fn recursive_attributes_and_idmap() {
        let o = opts(&["rbind", "rro", "rnosuid", "rnoatime", "ridmap"]);
        assert_eq!(
            o.rec_attr.set,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.rec_attr.clr, libc::MOUNT_ATTR__ATIME);
        assert_eq!(o.idmap, Some(true));
        let o = opts(&["rro", "rrw"]);
        assert_eq!(o.rec_attr.set, 0);
        assert_eq!(o.rec_attr.clr, libc::MOUNT_ATTR_RDONLY);
        assert_eq!(opts(&["idmap"]).idmap, Some(false));
    }
}
