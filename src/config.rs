//! Reading a bundle's `config.json` and checking it once, before anything is forked: every
//! error here names the field or file, and nothing later meets a surprise it cannot report.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxIdMapping, Process, Spec};

pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute, canonical root filesystem path.
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// config.json as read, kept in the state directory for later commands.
    pub raw: Vec<u8>,
}

pub fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let dir = if bundle.as_os_str().is_empty() {
        std::env::current_dir().context("reading the current directory (the default bundle)")?
    } else if bundle.is_absolute() {
        bundle.to_path_buf()
    } else {
        std::env::current_dir()
            .context("reading the current directory")?
            .join(bundle)
    };
    let config_path = dir.join("config.json");
    let raw = fs::read(&config_path)
        .with_context(|| format!("reading bundle config {}", config_path.display()))?;
    let spec = parse_spec(&raw).with_context(|| format!("parsing {}", config_path.display()))?;
    validate(&spec)?;
    let root_path = spec
        .root()
        .as_ref()
        .map(|r| r.path().as_path())
        .unwrap_or(Path::new(""));
    let rootfs_joined = dir.join(root_path);
    let rootfs = fs::canonicalize(&rootfs_joined)
        .with_context(|| format!("config.json: root.path: rootfs {}", rootfs_joined.display()))?;
    if !rootfs.is_dir() {
        bail!(
            "config.json: root.path: rootfs {} is not a directory",
            rootfs.display()
        );
    }
    check_no_symlink(&dir, root_path, &rootfs)?;
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        raw,
    })
}

/// The rootfs must be named by its real path, as runc requires ("not an absolute path, or a
/// symlink"): a symlink may point anywhere on the host, and whoever can rewrite it between
/// two commands chooses what the container's root is. A relative path is taken from the
/// bundle's real directory, so a bundle reached through a symlink is fine (runc works from
/// the bundle as its current directory, which is also real).
fn check_no_symlink(dir: &Path, root_path: &Path, rootfs: &Path) -> Result<()> {
    let base = if root_path.is_absolute() {
        PathBuf::from("/")
    } else {
        fs::canonicalize(dir).with_context(|| format!("bundle {}", dir.display()))?
    };
    let lexical = lexical_clean(&base.join(root_path));
    if lexical != rootfs {
        bail!(
            "config.json: root.path: rootfs {} is a symlink or goes through one (to {}): give the real path",
            lexical.display(),
            rootfs.display()
        );
    }
    Ok(())
}

/// `.` and `..` removed without looking at the filesystem (`..` of `/` is `/`).
fn lexical_clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out
}

pub fn parse_spec(raw: &[u8]) -> Result<Spec> {
    // The error names the field that failed (`linux.seccomp.flags[1]: unknown variant …`).
    let mut de = serde_json::Deserializer::from_slice(raw);
    let spec: Spec = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path.is_empty() || path == "." {
            anyhow::anyhow!("{inner}")
        } else {
            anyhow::anyhow!("{path}: {inner}")
        }
    })?;
    // The deserializer stops after one value: anything but whitespace after it is a config
    // that was not meant (a concatenation, a half-written edit), so it is refused.
    de.end()
        .map_err(|err| anyhow::anyhow!("after the JSON object: {err}"))?;
    check_oci_version(spec.version())?;
    Ok(spec)
}

/// Any 1.x version is accepted: engines write the version they were built with, and a newer
/// minor version is compatible by the spec's own rules (refusing it breaks whole test suites).
fn check_oci_version(version: &str) -> Result<()> {
    if version.is_empty() {
        bail!("config.json: ociVersion: the field is required");
    }
    let major = version.split('.').next().unwrap_or_default();
    if major != "1" {
        bail!("config.json: ociVersion: unsupported version {version:?} (hutch implements 1.x)");
    }
    Ok(())
}

/// The checks that need nothing but the config (the fuzz target runs them on any input).
pub fn validate(spec: &Spec) -> Result<()> {
    let root = spec
        .root()
        .as_ref()
        .context("config.json: root: the field is required")?;
    if root.path().as_os_str().is_empty() {
        bail!("config.json: root.path: the field is required");
    }
    // `process` is required by `start` only (runtime.md), which refuses a container without it.
    let process = spec.process().as_ref();
    if let Some(process) = process {
        let args = process.args().as_deref().unwrap_or_default();
        if args.is_empty() || args[0].is_empty() {
            bail!("config.json: process.args: at least one argument is required");
        }
        if !process.cwd().is_absolute() {
            bail!(
                "config.json: process.cwd: {:?} must be an absolute path",
                process.cwd()
            );
        }
    }
    // Relative mount destinations are allowed (runtime-spec 1.2: relative to "/").
    let Some(linux) = spec.linux() else {
        bail!("config.json: linux: the field is required on Linux");
    };
    if let Some(process) = process {
        check_user(process, spec).context("config.json")?;
    }
    // Relative maskedPaths/readonlyPaths are taken relative to the container's "/", as runc
    // and crun do (they resolve them after pivot_root, from "/").
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.destination().as_os_str().is_empty() {
            bail!("config.json: mounts[{i}].destination: the field is required");
        }
    }
    check_hooks(spec)?;
    for (i, dev) in linux.devices().iter().flatten().enumerate() {
        if !dev.path().is_absolute() {
            bail!(
                "config.json: linux.devices[{i}].path: {:?} must be an absolute path",
                dev.path()
            );
        }
    }
    Ok(())
}

/// Hooks are checked before anything is made (runc finds a relative path or a zero timeout
/// only when it runs the hook, after the container exists).
fn check_hooks(spec: &Spec) -> Result<()> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    #[allow(deprecated)]
    let kinds = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.iter().flatten().enumerate() {
            if !hook.path().is_absolute() {
                bail!(
                    "config.json: hooks.{kind}[{i}].path: {:?} must be an absolute path",
                    hook.path()
                );
            }
            if let Some(t) = hook.timeout().filter(|t| *t <= 0) {
                bail!("config.json: hooks.{kind}[{i}].timeout: {t} must be greater than zero");
            }
        }
    }
    Ok(())
}

/// The ids the process will take (`create` and `exec`): (uid_t)-1 means "leave unchanged" to
/// the set*id calls, so the process would silently stay root; and in a user namespace of the
/// container's own an unmapped id can only fail later, less clearly.
pub fn check_user(process: &Process, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let uid_maps = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or_default();
    let gid_maps = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or_default();
    let user = process.user();
    check_id("process.user.uid", user.uid(), uid_maps, "uidMappings")?;
    check_id("process.user.gid", user.gid(), gid_maps, "gidMappings")?;
    for (i, gid) in user.additional_gids().iter().flatten().enumerate() {
        check_id(
            &format!("process.user.additionalGids[{i}]"),
            *gid,
            gid_maps,
            "gidMappings",
        )?;
    }
    Ok(())
}

fn check_id(field: &str, id: u32, maps: &[LinuxIdMapping], maps_field: &str) -> Result<()> {
    if id == u32::MAX {
        bail!("{field}: {id} is not a valid id (the kernel reads it as -1, \"leave unchanged\")");
    }
    let mapped = maps
        .iter()
        .any(|m| id >= m.container_id() && u64::from(id - m.container_id()) < u64::from(m.size()));
    if !maps.is_empty() && !mapped {
        bail!("{field}: {id} is not mapped in the container's user namespace (linux.{maps_field})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Vec<u8> {
        serde_json::to_vec(&Spec::default()).expect("the default spec serializes")
    }

    #[test]
    fn a_config_parses() {
        parse_spec(&minimal()).expect("the default spec parses");
        let mut spaced = minimal();
        spaced.extend_from_slice(b" \n\t\r\n");
        parse_spec(&spaced).expect("trailing whitespace is fine");
    }

    #[test]
    fn trailing_garbage_is_refused() {
        for tail in [
            &b"x"[..],
            b" {}",
            b"\n{\"ociVersion\":\"1.0.0\"}",
            b"]",
            b"\0",
        ] {
            let mut raw = minimal();
            raw.extend_from_slice(tail);
            let err = parse_spec(&raw).expect_err("trailing garbage must be refused");
            let msg = format!("{err:#}");
            assert!(msg.contains("trailing characters"), "{msg}");
        }
    }

    fn valid() -> Spec {
        parse_spec(&minimal()).expect("the default spec parses")
    }

    #[test]
    fn the_default_spec_is_valid() {
        validate(&valid()).expect("the default spec validates");
    }

    #[test]
    fn relative_hook_paths_are_refused_before_anything_runs() {
        let mut v: serde_json::Value = serde_json::to_value(valid()).unwrap();
        v["hooks"] = serde_json::json!({"poststop": [{"path": "/bin/true"}, {"path": "bin/true"}]});
        let spec = parse_spec(v.to_string().as_bytes()).unwrap();
        let err = format!("{:#}", validate(&spec).unwrap_err());
        assert!(err.contains("hooks.poststop[1].path"), "{err}");
        v["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/true", "timeout": 0}]});
        let spec = parse_spec(v.to_string().as_bytes()).unwrap();
        let err = format!("{:#}", validate(&spec).unwrap_err());
        assert!(err.contains("hooks.createRuntime[0].timeout"), "{err}");
    }

    #[test]
    fn an_empty_mount_destination_is_refused() {
        let mut v: serde_json::Value = serde_json::to_value(valid()).unwrap();
        v["mounts"] =
            serde_json::json!([{"destination": "/tmp", "type": "tmpfs"}, {"destination": ""}]);
        let spec = parse_spec(v.to_string().as_bytes()).unwrap();
        let err = format!("{:#}", validate(&spec).unwrap_err());
        assert!(err.contains("mounts[1].destination"), "{err}");
    }

    #[test]
    fn a_rootfs_through_a_symlink_is_refused() {
        let tmp = std::env::temp_dir().join(format!("hutch-config-test-{}", std::process::id()));
        let bundle = tmp.join("bundle");
        let real = tmp.join("elsewhere");
        fs::create_dir_all(&bundle).unwrap();
        fs::create_dir_all(real.join("sub")).unwrap();
        fs::create_dir_all(bundle.join("rootfs")).unwrap();
        std::os::unix::fs::symlink(&real, bundle.join("link")).unwrap();
        // A bundle reached through a symlink is fine, as in runc.
        std::os::unix::fs::symlink(&bundle, tmp.join("bundle-link")).unwrap();
        let config = |root: &str| {
            let mut v: serde_json::Value = serde_json::to_value(valid()).unwrap();
            v["root"]["path"] = serde_json::json!(root);
            fs::write(bundle.join("config.json"), v.to_string()).unwrap();
        };
        config("rootfs");
        load_bundle(&bundle).expect("a real rootfs");
        load_bundle(&tmp.join("bundle-link")).expect("a real rootfs in a symlinked bundle");
        config("./rootfs/../rootfs");
        load_bundle(&bundle).expect("dots are not symlinks");
        for bad in ["link", "link/sub", "link/../elsewhere"] {
            config(bad);
            let err = format!("{:#}", load_bundle(&bundle).err().expect(bad));
            assert!(
                err.contains("root.path") && err.contains("symlink"),
                "{bad}: {err}"
            );
        }
        let abs = bundle.join("link").to_string_lossy().into_owned();
        config(&abs);
        assert!(load_bundle(&bundle).is_err(), "absolute symlink accepted");
        let _ = fs::remove_dir_all(&tmp);
    }
}
