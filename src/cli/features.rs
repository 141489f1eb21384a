//! `hutch features`: the runtime-spec features document (runtime-spec features.md).
//!
//! Engines read this to decide what to put in a config (containerd's shim runs it at startup), so
//! it must claim only what hutch implements today. Update the constants below as features land;
//! the rest of the file only shapes them into runc's JSON layout (Go struct field order, 4-space
//! indent, trailing newline).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;

const OCI_VERSION_MIN: &str = "1.0.0";
const OCI_VERSION_MAX: &str = "1.3.0";

/// Every hook kind hutch runs, in lifecycle order.
const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Mount options hutch understands, sorted as runc prints them. runc's list minus "acl"/"noacl",
/// which runc itself dropped because no mount flag implements them.
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// Namespace types hutch can create or join, sorted.
const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

// Cgroup management lands in a later issue.
const CGROUP_V1: bool = true;
const CGROUP_V2: bool = true;
const CGROUP_SYSTEMD: bool = true;
const CGROUP_SYSTEMD_USER: bool = true;
const CGROUP_RDMA: bool = true;

const SECCOMP_ENABLED: bool = true;
/// What hutch's own seccomp compiler (src/seccomp) implements.
const SECCOMP_ACTIONS: &[&str] = crate::seccomp::FEATURE_ACTIONS;
const SECCOMP_OPERATORS: &[&str] = crate::seccomp::FEATURE_OPERATORS;
const SECCOMP_ARCHS: &[&str] = crate::seccomp::FEATURE_ARCHES;
const SECCOMP_KNOWN_FLAGS: &[&str] = crate::seccomp::FEATURE_FLAGS;
const SECCOMP_SUPPORTED_FLAGS: &[&str] = crate::seccomp::FEATURE_FLAGS;

// features-linux.md: whether support is built in, not whether this host has the LSM. hutch applies
// `process.apparmorProfile`, `process.selinuxLabel` and `linux.mountLabel` where the host has the
// LSM, and refuses them where it does not (as runc).
const APPARMOR_ENABLED: bool = true;
const SELINUX_ENABLED: bool = true;
/// Not implemented: a config with `linux.intelRdt` is refused (src/intel_rdt.rs).
const INTEL_RDT_ENABLED: bool = false;
const IDMAP_MOUNTS_ENABLED: bool = true;
/// `linux.netDevices` (src/netdev.rs).
const NET_DEVICES_ENABLED: bool = true;

/// Annotations whose presence in a config changes what hutch does in ways an engine passing
/// user-supplied annotations should know about (runc lists "bundle", "org.systemd.property.").
/// A trailing '.' marks a prefix.
const POTENTIALLY_UNSAFE_CONFIG_ANNOTATIONS: &[&str] = &["org.systemd.property."];

const ANNOTATION_VERSION: &str = "io.github.hutch.version";

pub fn run() -> Result<i32> {
    let text = render().context("serializing the features document")?;
    super::print_stdout(&text)?;
    Ok(0)
}

fn render() -> Result<String> {
    let mut data = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut data,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    features().serialize(&mut ser)?;
    data.push(b'\n');
    Ok(String::from_utf8(data)?)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Features {
    oci_version_min: &'static str,
    oci_version_max: &'static str,
    hooks: Vec<&'static str>,
    mount_options: Vec<&'static str>,
    linux: Linux,
    annotations: BTreeMap<&'static str, &'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    potentially_unsafe_config_annotations: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Linux {
    namespaces: Vec<&'static str>,
    capabilities: Vec<String>,
    cgroup: Cgroup,
    seccomp: Seccomp,
    apparmor: Enabled,
    selinux: Enabled,
    intel_rdt: Enabled,
    mount_extensions: MountExtensions,
    net_devices: Enabled,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cgroup {
    v1: bool,
    v2: bool,
    systemd: bool,
    systemd_user: bool,
    rdma: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Seccomp {
    enabled: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    operators: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    archs: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    known_flags: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    supported_flags: Vec<&'static str>,
}

#[derive(Serialize)]
struct Enabled {
    enabled: bool,
}

#[derive(Serialize)]
struct MountExtensions {
    idmap: Enabled,
}

/// Every capability the `caps` crate knows (hutch sets capabilities through it), in kernel
/// number order as runc prints them.
fn capabilities() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|cap| cap.index());
    all.into_iter().map(|cap| cap.to_string()).collect()
}

fn features() -> Features {
    Features {
        oci_version_min: OCI_VERSION_MIN,
        oci_version_max: OCI_VERSION_MAX,
        hooks: HOOKS.to_vec(),
        mount_options: MOUNT_OPTIONS.to_vec(),
        linux: Linux {
            namespaces: NAMESPACES.to_vec(),
            capabilities: capabilities(),
            cgroup: Cgroup {
                v1: CGROUP_V1,
                v2: CGROUP_V2,
                systemd: CGROUP_SYSTEMD,
                systemd_user: CGROUP_SYSTEMD_USER,
                rdma: CGROUP_RDMA,
            },
            seccomp: Seccomp {
                enabled: SECCOMP_ENABLED,
                actions: SECCOMP_ACTIONS.to_vec(),
                operators: SECCOMP_OPERATORS.to_vec(),
                archs: SECCOMP_ARCHS.to_vec(),
                known_flags: SECCOMP_KNOWN_FLAGS.to_vec(),
                supported_flags: SECCOMP_SUPPORTED_FLAGS.to_vec(),
            },
            apparmor: Enabled {
                enabled: APPARMOR_ENABLED,
            },
            selinux: Enabled {
                enabled: SELINUX_ENABLED,
            },
            intel_rdt: Enabled {
                enabled: INTEL_RDT_ENABLED,
            },
            mount_extensions: MountExtensions {
                idmap: Enabled {
                    enabled: IDMAP_MOUNTS_ENABLED,
                },
            },
            net_devices: Enabled {
                enabled: NET_DEVICES_ENABLED,
            },
        },
        annotations: BTreeMap::from([(ANNOTATION_VERSION, env!("CARGO_PKG_VERSION"))]),
        potentially_unsafe_config_annotations: POTENTIALLY_UNSAFE_CONFIG_ANNOTATIONS.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_oci_features() {
        let text = render().unwrap();
        let parsed: oci_spec::runtime::Features = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.oci_version_min(), OCI_VERSION_MIN);
        assert_eq!(parsed.oci_version_max(), OCI_VERSION_MAX);
        assert_eq!(parsed.hooks().as_ref().unwrap().len(), 6);
        let linux = parsed.linux().as_ref().unwrap();
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), NAMESPACES.len());
        let caps = linux.capabilities().as_ref().unwrap();
        assert_eq!(caps.len(), 41);
        assert_eq!(caps[0], "CAP_CHOWN");
        assert_eq!(caps[40], "CAP_CHECKPOINT_RESTORE");
        let cgroup = linux.cgroup().as_ref().unwrap();
        assert_eq!(*cgroup.v2(), Some(true));
        assert_eq!(*linux.seccomp().as_ref().unwrap().enabled(), Some(true));
        let idmap = linux.mount_extensions().as_ref().unwrap().idmap().as_ref();
        assert_eq!(idmap.and_then(|m| *m.enabled()), Some(true));
        let net_devices = linux.net_devices().as_ref().unwrap();
        assert_eq!(*net_devices.enabled(), Some(true));
        let intel_rdt = linux.intel_rdt().as_ref().unwrap();
        assert_eq!(*intel_rdt.enabled(), Some(false));
        let annotations = parsed.annotations().as_ref().unwrap();
        assert_eq!(
            annotations.get(ANNOTATION_VERSION).map(String::as_str),
            Some(env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn layout_matches_runc() {
        let text = render().unwrap();
        assert!(
            text.starts_with("{\n    \"ociVersionMin\": \"1.0.0\",\n"),
            "{text}"
        );
        assert!(text.ends_with("}\n"));
        assert!(!text.contains("null"));
        let keys = [
            "\"ociVersionMin\"",
            "\"ociVersionMax\"",
            "\"hooks\"",
            "\"mountOptions\"",
            "\"linux\"",
            "\"annotations\"",
        ];
        let pos: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn lists_are_sorted_and_unique() {
        for list in [MOUNT_OPTIONS, NAMESPACES] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
    }
}
