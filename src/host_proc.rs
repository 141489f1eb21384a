//! Reading /proc as hutch itself sees it: its mount table, a process's cgroup membership and
//! start time. One parser for each file, used by cgroups, rootfs and container.
//!
//! Not for anything inside the container: writes there go through the verified procfs fd
//! (`rootfs::procfs`).
//!
//! Hand-written rather than the `procfs` crate (issue 11 asked to weigh it). Measured on this
//! tree, release build: 4,100,352 bytes with these parsers, 4,164,640 with `procfs` 0.18
//! (default features off) doing the same three reads: +64 KiB of the 92 KiB left under the
//! 4 MiB goal, for rustix and hex next to nix. `hutch state` makes 94 syscalls against 98 (the
//! crate reads /proc/sys/kernel/osrelease and opens /proc/<pid> before its stat file);
//! `hack/bench --quick` showed no difference beyond noise either way. And its mountinfo reader
//! leaves the kernel's octal escapes in the root and mount point (a path with a space would
//! not match) and keeps super options in a hash map (`name=systemd` split into key and value),
//! so the cgroup code would still need its own matching around it. These parsers borrow from
//! the text and allocate only what a caller keeps.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::unistd::Pid;

/// One line of /proc/<pid>/mountinfo, borrowed from the text. Paths are kept escaped as the
/// kernel writes them (`\040` for a space) until asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mount<'a> {
    root: &'a str,
    mount_point: &'a str,
    optional: &'a str,
    /// The file system type (`cgroup2`, `proc`, `ext4`...).
    pub fs_type: &'a str,
    /// The super block options, comma-separated (for a v1 cgroup: its controllers).
    pub super_options: &'a str,
}

impl<'a> Mount<'a> {
    /// The path inside its file system that is mounted (`/` for the whole of it).
    pub fn root(&self) -> Cow<'a, str> {
        unescape(self.root)
    }

    pub fn mount_point(&self) -> PathBuf {
        PathBuf::from(unescape(self.mount_point).into_owned())
    }

    /// Whether the mount is in a shared peer group (an optional `shared:N` field).
    pub fn is_shared(&self) -> bool {
        self.optional
            .split(' ')
            .any(|field| field.starts_with("shared:"))
    }

    pub fn super_options(&self) -> impl Iterator<Item = &'a str> {
        self.super_options.split(',').filter(|o| !o.is_empty())
    }
}

/// The lines of a mountinfo text; lines it cannot read are skipped.
pub fn mounts(text: &str) -> impl Iterator<Item = Mount<'_>> {
    text.lines().filter_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        // mount id, parent id, major:minor, root, mount point, options, optional fields...
        let mut fields = left.splitn(7, ' ');
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        let optional = fields.nth(1).unwrap_or_default();
        // file system type, source, super options
        let mut fields = right.splitn(3, ' ');
        let fs_type = fields.next()?;
        let super_options = fields.nth(1).unwrap_or_default();
        Some(Mount {
            root,
            mount_point,
            optional,
            fs_type,
            super_options,
        })
    })
}

/// hutch's own /proc/self/mountinfo, for [`mounts`].
pub fn own_mountinfo() -> Result<String> {
    std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")
}

/// Decodes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash); borrowed when there is none.
fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = (u32::from(d[0] - b'0') << 6)
                    | (u32::from(d[1] - b'0') << 3)
                    | u32::from(d[2] - b'0');
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// One line of /proc/<pid>/cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership<'a> {
    /// A v1 hierarchy's controllers as the kernel names them (`cpu,cpuacct`, `name=systemd`);
    /// empty for the cgroup2 tree.
    pub controllers: &'a str,
    /// The cgroup, from the hierarchy's root as the reader's cgroup namespace sees it.
    pub path: &'a str,
}

/// The lines of a /proc/<pid>/cgroup text (`id:controllers:path`).
pub fn memberships(text: &str) -> impl Iterator<Item = Membership<'_>> {
    text.lines().filter_map(|line| {
        let mut fields = line.splitn(3, ':');
        let _hierarchy_id = fields.next()?;
        Some(Membership {
            controllers: fields.next()?,
            path: fields.next()?,
        })
    })
}

/// /proc/<pid>/cgroup (`None`: hutch's own, /proc/self/cgroup), for [`memberships`].
pub fn cgroup_file(pid: Option<Pid>) -> Result<String> {
    let path = match pid {
        Some(pid) => Path::new("/proc").join(pid.to_string()).join("cgroup"),
        None => PathBuf::from("/proc/self/cgroup"),
    };
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Whether hutch runs inside a user namespace other than the initial one: the initial one maps
/// every id (`0 0 4294967295`), any other maps less.
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| !maps_every_id(&map))
}

fn maps_every_id(uid_map: &str) -> bool {
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// Field 22 (starttime, in clock ticks since boot) of /proc/<pid>/stat, and whether the
/// process has exited: a zombie, or a task already exiting (PF_EXITING). A pid namespace's
/// init that was killed stays exiting until every process of its namespace is reaped, which
/// may be up to another parent (the caller's subreaper); it will never run the container
/// again. None when there is no such process.
pub fn process_start_time(pid: Pid) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<(u64, bool)> {
    const PF_EXITING: u64 = 0x4;
    // The command name (field 2) may contain spaces and parentheses: fields resume after the
    // last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let flags: u64 = fields.nth(5)?.parse().ok()?;
    let start = fields.nth(12)?.parse().ok()?;
    let exited = state == "Z" || state == "X" || flags & PF_EXITING != 0;
    Some((start, exited))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
26 25 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
35 26 0:33 /docker/a\\040b /sys/fs/cgroup/cpu,cpuacct rw master:3 shared:17 - cgroup cgroup rw,cpu,cpuacct
41 22 0:41 / /work/with\\040space\\134x rw,relatime - ext4 /dev/sdc rw
not a mountinfo line
";

    #[test]
    fn mountinfo_fields() {
        let m: Vec<Mount> = mounts(MOUNTINFO).collect();
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].mount_point(), PathBuf::from("/"));
        assert!(m[0].is_shared());
        assert_eq!(m[2].fs_type, "cgroup2");
        assert!(!m[2].is_shared());
        assert_eq!(m[3].root(), "/docker/a b");
        assert!(m[3].is_shared(), "shared: after another optional field");
        assert_eq!(
            m[3].super_options().collect::<Vec<_>>(),
            ["rw", "cpu", "cpuacct"]
        );
        assert_eq!(m[4].mount_point(), PathBuf::from("/work/with space\\x"));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/tab\\011nl\\012"), "/tab\tnl\n");
        assert_eq!(unescape("/plain\\"), "/plain\\");
        assert_eq!(unescape("/short\\04"), "/short\\04");
        assert!(matches!(unescape("/plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn own_mountinfo_has_root() {
        let text = own_mountinfo().expect("own mountinfo");
        assert!(mounts(&text).any(|m| m.mount_point() == Path::new("/")));
    }

    #[test]
    fn cgroup_lines() {
        let text = "12:cpu,cpuacct:/user.slice\n1:name=systemd:/a:b\n0::/\nbroken\n";
        let m: Vec<Membership> = memberships(text).collect();
        assert_eq!(
            m,
            [
                Membership {
                    controllers: "cpu,cpuacct",
                    path: "/user.slice"
                },
                Membership {
                    controllers: "name=systemd",
                    path: "/a:b"
                },
                Membership {
                    controllers: "",
                    path: "/"
                },
            ]
        );
        assert!(cgroup_file(None).is_ok());
        assert!(cgroup_file(Some(Pid::this())).is_ok());
    }

    #[test]
    fn stat_fields() {
        let line = "42 (a) b) c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse_stat(line), Some((987654, false)));
        let exiting = "42 (x) S 1 42 42 0 -1 4194564 1 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat(exiting), Some((5, true)));
        let zombie = "42 (x) Z 1 42 42 0 -1 0 1 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat(zombie), Some((5, true)));
        assert_eq!(parse_stat("42 (x)"), None);
    }

    #[test]
    fn own_start_time_is_read() {
        let (start, exited) = process_start_time(Pid::this()).expect("own stat");
        assert!(!exited);
        assert!(start > 0);
    }

    #[test]
    fn the_initial_user_namespace_maps_every_id() {
        assert!(maps_every_id("         0          0 4294967295\n"));
        assert!(!maps_every_id("         0       1000          1\n"));
        assert!(!maps_every_id("0 0 4294967295\n1 1 1\n"));
    }
}
