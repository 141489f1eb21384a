//! `hutch spec`: writes a starter `config.json`, the same document `runc spec` writes.
//!
//! The document is built from local structs rather than `oci_spec` types so that field order
//! follows runc's (Go marshals struct fields in declaration order) and nothing runc omits appears
//! as `null`. It follows current runc: bounding/effective/permitted hold three capabilities and
//! the inheritable and ambient sets are absent (CVE-2022-29162), and the cgroup namespace is added
//! only on a cgroup v2 host.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::cli::SpecArgs;

const CONFIG_NAME: &str = "config.json";
const HOSTNAME: &str = "hutch";
const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
const DEFAULT_ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "TERM=xterm",
];
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    "/sys/devices/virtual/tpm",
];
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub fn run(args: SpecArgs) -> Result<i32> {
    let bundle = if args.bundle.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        args.bundle.to_path_buf()
    };
    let mut spec = example(cgroup2_host());
    if args.rootless {
        to_rootless(
            &mut spec,
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
    }
    let mut data = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut data,
        serde_json::ser::PrettyFormatter::with_indent(b"\t"),
    );
    spec.serialize(&mut ser)
        .context("serializing the default spec")?;

    let path = bundle.join(CONFIG_NAME);
    // O_EXCL rather than a stat first: no window in which another writer's file is clobbered.
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            bail!("File {CONFIG_NAME} exists. Remove it first")
        }
        Err(err) => return Err(err).with_context(|| format!("creating {}", path.display())),
    };
    file.write_all(&data)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}

fn cgroup2_host() -> bool {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    statfs("/sys/fs/cgroup").is_ok_and(|fs| fs.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    oci_version: String,
    process: Process,
    root: Root,
    hostname: String,
    mounts: Vec<Mount>,
    linux: Linux,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    terminal: bool,
    user: User,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    capabilities: Capabilities,
    rlimits: Vec<Rlimit>,
    no_new_privileges: bool,
}

#[derive(Serialize)]
struct User {
    uid: u32,
    gid: u32,
}

#[derive(Serialize)]
struct Capabilities {
    bounding: Vec<String>,
    effective: Vec<String>,
    permitted: Vec<String>,
}

#[derive(Serialize)]
struct Rlimit {
    #[serde(rename = "type")]
    kind: String,
    hard: u64,
    soft: u64,
}

#[derive(Serialize)]
struct Root {
    path: String,
    readonly: bool,
}

#[derive(Serialize)]
struct Mount {
    destination: String,
    #[serde(rename = "type")]
    kind: String,
    source: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Linux {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    uid_mappings: Vec<IdMapping>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gid_mappings: Vec<IdMapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Resources>,
    namespaces: Vec<Namespace>,
    masked_paths: Vec<String>,
    readonly_paths: Vec<String>,
}

#[derive(Serialize)]
struct IdMapping {
    #[serde(rename = "containerID")]
    container_id: u32,
    #[serde(rename = "hostID")]
    host_id: u32,
    size: u32,
}

#[derive(Serialize)]
struct Resources {
    devices: Vec<DeviceRule>,
}

#[derive(Serialize)]
struct DeviceRule {
    allow: bool,
    access: String,
}

#[derive(Serialize)]
struct Namespace {
    #[serde(rename = "type")]
    kind: String,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        destination: destination.to_string(),
        kind: kind.to_string(),
        source: source.to_string(),
        options: strings(options),
    }
}

fn example(cgroup2: bool) -> Spec {
    Spec {
        oci_version: crate::OCI_VERSION.to_string(),
        process: example_process(),
        root: Root {
            path: "rootfs".to_string(),
            readonly: true,
        },
        hostname: HOSTNAME.to_string(),
        mounts: example_mounts(),
        linux: example_linux(cgroup2),
    }
}

/// `sh` on a terminal, as root with the default capabilities.
fn example_process() -> Process {
    Process {
        terminal: true,
        user: User { uid: 0, gid: 0 },
        args: strings(&["sh"]),
        env: strings(DEFAULT_ENV),
        cwd: "/".to_string(),
        capabilities: Capabilities {
            bounding: strings(DEFAULT_CAPS),
            effective: strings(DEFAULT_CAPS),
            permitted: strings(DEFAULT_CAPS),
        },
        rlimits: vec![Rlimit {
            kind: "RLIMIT_NOFILE".to_string(),
            hard: 1024,
            soft: 1024,
        }],
        no_new_privileges: true,
    }
}

/// The filesystems every container needs: /proc, /dev and its pts, shm and mqueue, a
/// read-only /sys and cgroup view.
fn example_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

fn example_linux(cgroup2: bool) -> Linux {
    let mut namespaces = vec!["pid", "network", "ipc", "uts", "mount"];
    // On cgroup v1 a private cgroup namespace hides nothing useful and breaks the ro cgroup
    // mount for some controllers, so runc adds it only on unified hosts.
    if cgroup2 {
        namespaces.push("cgroup");
    }
    Linux {
        uid_mappings: Vec::new(),
        gid_mappings: Vec::new(),
        resources: Some(Resources {
            devices: vec![DeviceRule {
                allow: false,
                access: "rwm".to_string(),
            }],
        }),
        namespaces: namespaces
            .into_iter()
            .map(|kind| Namespace {
                kind: kind.to_string(),
            })
            .collect(),
        masked_paths: strings(MASKED_PATHS),
        readonly_paths: strings(READONLY_PATHS),
    }
}

/// What `runc spec --rootless` changes: a user namespace mapping the caller to root, no network
/// namespace (an unprivileged user cannot configure one), sysfs bound from the host (mounting a
/// fresh sysfs needs a network namespace the user owns), no uid=/gid= mount options (those ids
/// are not mapped), and no cgroup device rules (an unprivileged user cannot apply them).
fn to_rootless(spec: &mut Spec, euid: u32, egid: u32) {
    spec.linux
        .namespaces
        .retain(|ns| ns.kind != "network" && ns.kind != "user");
    spec.linux.namespaces.push(Namespace {
        kind: "user".to_string(),
    });
    spec.linux.uid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: euid,
        size: 1,
    }];
    spec.linux.gid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: egid,
        size: 1,
    }];
    for m in &mut spec.mounts {
        if m.destination.trim_end_matches('/') == "/sys" {
            *m = mount(
                "/sys",
                "none",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            );
            continue;
        }
        m.options
            .retain(|o| !o.starts_with("gid=") && !o.starts_with("uid="));
    }
    spec.linux.resources = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(spec: &Spec) -> String {
        let mut data = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(
            &mut data,
            serde_json::ser::PrettyFormatter::with_indent(b"\t"),
        );
        spec.serialize(&mut ser).unwrap();
        String::from_utf8(data).unwrap()
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hutch-spec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn default_spec_parses_as_oci_spec() {
        let text = render(&example(true));
        let spec: oci_spec::runtime::Spec = serde_json::from_str(&text).unwrap();
        assert_eq!(spec.version(), crate::OCI_VERSION);
        assert_eq!(spec.hostname().as_deref(), Some("hutch"));
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.args().as_ref().unwrap(), &vec!["sh".to_string()]);
        let caps = process.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 3);
        assert!(caps.inheritable().is_none());
        assert!(caps.ambient().is_none());
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 6);
        assert!(text.starts_with("{\n\t\"ociVersion\": "));
        // runc's field order.
        let order = [
            "\"ociVersion\"",
            "\"process\"",
            "\"root\"",
            "\"hostname\"",
            "\"mounts\"",
            "\"linux\"",
        ];
        let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(!text.contains("null"));
    }

    #[test]
    fn cgroup_namespace_only_on_v2() {
        let spec = example(false);
        assert!(!spec.linux.namespaces.iter().any(|n| n.kind == "cgroup"));
    }

    #[test]
    fn rootless() {
        let mut spec = example(true);
        to_rootless(&mut spec, 1000, 1001);
        let text = render(&spec);
        let parsed: oci_spec::runtime::Spec = serde_json::from_str(&text).unwrap();
        let linux = parsed.linux().as_ref().unwrap();
        let kinds: Vec<&str> = spec
            .linux
            .namespaces
            .iter()
            .map(|n| n.kind.as_str())
            .collect();
        assert_eq!(kinds, ["pid", "ipc", "uts", "mount", "cgroup", "user"]);
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 6);
        let uid = &linux.uid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (uid.container_id(), uid.host_id(), uid.size()),
            (0, 1000, 1)
        );
        let gid = &linux.gid_mappings().as_ref().unwrap()[0];
        assert_eq!(gid.host_id(), 1001);
        assert!(linux.resources().is_none());
        assert!(!text.contains("gid=5"));
        assert!(text.contains("\"rbind\""));
        assert!(text.contains("\"containerID\": 0"));
    }

    #[test]
    fn writes_config_once() {
        let dir = tempdir("write");
        let args = SpecArgs {
            bundle: crate::cli::BundleDir(dir.clone()),
            rootless: false,
        };
        assert_eq!(run(args.clone()).unwrap(), 0);
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let _: oci_spec::runtime::Spec = serde_json::from_str(&text).unwrap();
        let err = run(args).unwrap_err();
        assert_eq!(err.to_string(), "File config.json exists. Remove it first");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
