//! Reading a bundle's `config.json` and checking it once, before anything is forked: every
//! error here names the field or file, and nothing later meets a surprise it cannot report.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;

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
    let root = spec
        .root()
        .as_ref()
        .context("config.json: root: the field is required")?;
    let root_path = root.path();
    if root_path.as_os_str().is_empty() {
        bail!("config.json: root.path: the field is required");
    }
    let rootfs_joined = dir.join(root_path);
    let rootfs = fs::canonicalize(&rootfs_joined)
        .with_context(|| format!("config.json: root.path: rootfs {}", rootfs_joined.display()))?;
    if !rootfs.is_dir() {
        bail!(
            "config.json: root.path: rootfs {} is not a directory",
            rootfs.display()
        );
    }
    validate(&spec)?;
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        raw,
    })
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

fn validate(spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .context("config.json: process: the field is required")?;
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
    // Relative mount destinations are allowed (runtime-spec 1.2: relative to "/").
    let Some(linux) = spec.linux() else {
        bail!("config.json: linux: the field is required on Linux");
    };
    for (field, paths) in [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ] {
        for p in paths.iter().flatten() {
            if !p.starts_with('/') {
                bail!("config.json: {field}: {p:?} must be an absolute path");
            }
        }
    }
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
}
