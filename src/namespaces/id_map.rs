//! A user namespace's id maps: checked against a joined namespace's own, and written for a
//! new one from outside it, by the parent.
//!
//! Root (with CAP_SETUID/CAP_SETGID in its user namespace) writes any mapping directly. An
//! unprivileged caller may write only a single line mapping its own effective id, and for gids
//! only once `setgroups` is denied in the namespace (the kernel's rule: otherwise a user could
//! drop a supplementary group that guards a file). Anything more, such as the caller's
//! `/etc/subuid` ranges, goes through the setuid `newuidmap`/`newgidmap` helpers (shadow's,
//! Debian package `uidmap`), which check the ranges against /etc/subuid and /etc/subgid.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use nix::unistd::{getegid, geteuid, Pid};
use oci_spec::runtime::{LinuxIdMapping, Spec};

/// The mappings of a joined user namespace must be the namespace's own. They can be read when the
/// path is a process's (`/proc/PID/ns/user`, as engines pass it); for a bind-mounted namespace
/// file they are taken as given (reading them would need a process inside).
pub(super) fn check_joined_mappings(path: &Path, linux: &oci_spec::runtime::Linux) -> Result<()> {
    let Some(pid_dir) = path
        .strip_prefix("/proc")
        .ok()
        .filter(|rest| {
            let mut c = rest.components();
            let pid = c.next().and_then(|p| p.as_os_str().to_str());
            pid.is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
                && c.as_path() == Path::new("ns/user")
        })
        .and_then(|_| path.parent().and_then(Path::parent))
    else {
        return Ok(());
    };
    for (field, file, maps) in [
        ("uidMappings", "uid_map", linux.uid_mappings()),
        ("gidMappings", "gid_map", linux.gid_mappings()),
    ] {
        let map_path = pid_dir.join(file);
        let actual = std::fs::read_to_string(&map_path).with_context(|| {
            format!(
                "config.json: linux.{field}: reading {} to compare with the joined user namespace {}",
                map_path.display(),
                path.display()
            )
        })?;
        let mut actual: Vec<[u64; 3]> = actual
            .lines()
            .filter_map(|l| {
                let v: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                <[u64; 3]>::try_from(v).ok()
            })
            .collect();
        let mut given: Vec<[u64; 3]> = maps
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| [m.container_id().into(), m.host_id().into(), m.size().into()])
            .collect();
        actual.sort_unstable();
        given.sort_unstable();
        if given != actual {
            bail!(
                "config.json: linux.{field} {} do not match the joined user namespace {} (its {file}: {})",
                format_id_map(maps.as_deref().unwrap_or_default()).trim().replace('\n', ", "),
                path.display(),
                actual
                    .iter()
                    .map(|[c, h, n]| format!("{c} {h} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(())
}

/// Writes the init's uid and gid maps: directly when hutch may, else through the setuid
/// helpers.
pub fn write_id_mappings(pid: Pid, spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let uid = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid = linux.gid_mappings().as_deref().unwrap_or_default();
    let privileged = geteuid().is_root();
    let own_uid = geteuid().as_raw();
    let own_gid = getegid().as_raw();
    write_map(
        pid,
        IdKind::Uid,
        uid,
        privileged || only_own_id(uid, own_uid),
    )
    .context("config.json: linux.uidMappings")?;
    let direct_gid = privileged || only_own_id(gid, own_gid);
    if !privileged && direct_gid && !gid.is_empty() {
        deny_setgroups(pid).context("config.json: linux.gidMappings")?;
    }
    write_map(pid, IdKind::Gid, gid, direct_gid).context("config.json: linux.gidMappings")
}

#[derive(Clone, Copy)]
enum IdKind {
    Uid,
    Gid,
}

impl IdKind {
    fn file(self) -> &'static str {
        match self {
            IdKind::Uid => "uid_map",
            IdKind::Gid => "gid_map",
        }
    }
    fn helper(self) -> &'static str {
        match self {
            IdKind::Uid => "newuidmap",
            IdKind::Gid => "newgidmap",
        }
    }
    fn ranges_file(self) -> &'static str {
        match self {
            IdKind::Uid => "/etc/subuid",
            IdKind::Gid => "/etc/subgid",
        }
    }
}

/// The one mapping an unprivileged process may write itself: its own id, once.
fn only_own_id(maps: &[LinuxIdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.size() == 1 && m.host_id() == own)
}

fn deny_setgroups(pid: Pid) -> Result<()> {
    let path = Path::new("/proc").join(pid.to_string()).join("setgroups");
    std::fs::write(&path, "deny").with_context(|| format!("writing deny to {}", path.display()))
}

fn write_map(pid: Pid, kind: IdKind, mappings: &[LinuxIdMapping], direct: bool) -> Result<()> {
    if mappings.is_empty() {
        return Ok(());
    }
    if direct {
        let path = Path::new("/proc").join(pid.to_string()).join(kind.file());
        return std::fs::write(&path, format_id_map(mappings))
            .with_context(|| format!("writing {}", path.display()));
    }
    let mut helper = Command::new(kind.helper());
    helper.arg(pid.to_string());
    for m in mappings {
        helper.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let shown = format_id_map(mappings).trim().replace('\n', ", ");
    let output = helper.output().with_context(|| {
        format!(
            "mapping {shown} needs {} (Debian package uidmap), as more than the caller's own id is mapped",
            kind.helper()
        )
    })?;
    if !output.status.success() {
        bail!(
            "{} {shown}: {} (the caller's ranges are in {})",
            kind.helper(),
            String::from_utf8_lossy(&output.stderr).trim(),
            kind.ranges_file()
        );
    }
    Ok(())
}

/// Id mappings as `/proc/<pid>/uid_map` and `gid_map` take them: one `inside outside count`
/// line each, all written at once.
pub fn format_id_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    #[test]
    fn map_lines() {
        let m = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(100000u32)
            .size(65536u32)
            .build()
            .unwrap();
        assert_eq!(format_id_map(&[m]), "0 100000 65536\n");
    }
}
