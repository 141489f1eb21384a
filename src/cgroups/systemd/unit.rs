//! Where a container goes under the systemd driver: `linux.cgroupsPath` as `slice:prefix:name`
//! (runc's rules), the unit's name, and the cgroup directory systemd gives that unit.
//!
//! - empty cgroupsPath: the default slice (`system.slice`, rootless `user.slice`), prefix
//!   `hutch`, the container id as name;
//! - `slice:prefix:name` with any part empty taking its default (slice as above, prefix none);
//! - a name ending in `.slice` asks for a slice unit of that name instead of a scope (as runc);
//! - slice names nest by their dashes: `a-b.slice` is `/a.slice/a-b.slice`, `-.slice` the root.

use std::path::PathBuf;

use anyhow::{bail, Result};

const SLICE: &str = ".slice";

/// The unit a container runs in, and its place in the cgroup tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// `hutch-<id>.scope`, or a slice name.
    pub name: String,
    /// The slice the unit goes in (the `Slice=` property of a scope); empty for a slice unit,
    /// whose parent follows from its own name.
    pub slice: String,
    /// The unit's cgroup, relative to the cgroup root (no leading `/`).
    pub cgroup: PathBuf,
}

/// The unit for `cgroups_path` (`linux.cgroupsPath`) and container `id`.
pub fn unit_for(cgroups_path: Option<&str>, id: &str, rootless: bool) -> Result<Unit> {
    let default_slice = if rootless {
        "user.slice"
    } else {
        "system.slice"
    };
    let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
        None => (default_slice, "hutch", id),
        Some(path) => {
            let parts: Vec<&str> = path.split(':').collect();
            let [slice, prefix, name] = parts[..] else {
                bail!(
                    "linux.cgroupsPath: expected \"slice:prefix:name\" for the systemd cgroup driver, got {path:?}"
                );
            };
            let slice = if slice.is_empty() {
                default_slice
            } else {
                slice
            };
            (slice, prefix, if name.is_empty() { id } else { name })
        }
    };
    check_name_part("name", name)?;
    check_name_part("prefix", prefix)?;
    if name.ends_with(SLICE) {
        let cgroup = expand_slice(name)?;
        return Ok(Unit {
            name: name.to_string(),
            slice: String::new(),
            cgroup,
        });
    }
    let name = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    let cgroup = expand_slice(slice)?.join(&name);
    Ok(Unit {
        name,
        slice: slice.to_string(),
        cgroup,
    })
}

/// systemd unit names may not hold `/` (nor NUL); they must stay one path component.
fn check_name_part(what: &str, s: &str) -> Result<()> {
    if s.contains('/') || s.contains('\0') || s == "." || s == ".." {
        bail!("linux.cgroupsPath: invalid {what} {s:?} for a systemd unit");
    }
    Ok(())
}

/// The cgroup path of slice `slice`: each dash-separated prefix is a parent slice.
pub fn expand_slice(slice: &str) -> Result<PathBuf> {
    let invalid = || anyhow::anyhow!("linux.cgroupsPath: invalid slice name {slice:?}");
    let Some(stem) = slice.strip_suffix(SLICE).filter(|s| !s.is_empty()) else {
        return Err(invalid());
    };
    if slice.contains('/') {
        return Err(invalid());
    }
    if stem == "-" {
        return Ok(PathBuf::new());
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for component in stem.split('-') {
        if component.is_empty() {
            return Err(invalid());
        }
        prefix.push_str(component);
        path.push(format!("{prefix}{SLICE}"));
        prefix.push('-');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_nest_by_dashes() {
        assert_eq!(expand_slice("-.slice").unwrap(), PathBuf::new());
        assert_eq!(
            expand_slice("system.slice").unwrap(),
            PathBuf::from("system.slice")
        );
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            PathBuf::from("a.slice/a-b.slice/a-b-c.slice")
        );
        for bad in [
            "",
            ".slice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
            "a.scope",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_and_explicit_units() {
        let u = unit_for(None, "c1", false).unwrap();
        assert_eq!(u.name, "hutch-c1.scope");
        assert_eq!(u.slice, "system.slice");
        assert_eq!(u.cgroup, PathBuf::from("system.slice/hutch-c1.scope"));
        assert_eq!(unit_for(Some(""), "c1", true).unwrap().slice, "user.slice");

        let u = unit_for(
            Some("kubepods-besteffort.slice:cri-containerd:abc"),
            "x",
            false,
        )
        .unwrap();
        assert_eq!(u.name, "cri-containerd-abc.scope");
        assert_eq!(
            u.cgroup,
            PathBuf::from("kubepods.slice/kubepods-besteffort.slice/cri-containerd-abc.scope")
        );
        let u = unit_for(Some(":docker:"), "id9", false).unwrap();
        assert_eq!(u.name, "docker-id9.scope");
        assert_eq!(u.slice, "system.slice");
        let u = unit_for(Some("machine.slice::n"), "x", false).unwrap();
        assert_eq!(u.name, "n.scope");
        let u = unit_for(Some("system.slice:p:my-app.slice"), "x", false).unwrap();
        assert_eq!(u.name, "my-app.slice");
        assert!(u.slice.is_empty());
        assert_eq!(u.cgroup, PathBuf::from("my.slice/my-app.slice"));
    }

    #[test]
    fn malformed_paths_name_the_field() {
        for bad in [
            "/abs/path",
            "a:b",
            "a:b:c:d",
            "bad:p:n",
            "system.slice:p:a/b",
        ] {
            let err = unit_for(Some(bad), "x", false).unwrap_err().to_string();
            assert!(err.contains("linux.cgroupsPath"), "{bad}: {err}");
        }
    }
}
