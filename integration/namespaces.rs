//! Namespaces: each kind new, each kind joined by path, user namespace mappings, the time
//! namespace, hostname/domainname and namespaced sysctls.

use std::fs;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

const KINDS: &[(&str, &str)] = &[
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("mount", "mnt"),
    ("cgroup", "cgroup"),
];

fn print_ns_script(links: &[&str]) -> String {
    links
        .iter()
        .map(|l| format!("echo {l}=$(readlink /proc/self/ns/{l});"))
        .collect::<String>()
}

fn parse_ns(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect()
}

#[test]
fn each_namespace_kind_is_new() {
    let mut c = Ctr::new("ns-new");
    for (kind, _) in KINDS {
        c.set_ns(kind, None);
    }
    let links: Vec<&str> = KINDS.iter().map(|k| k.1).collect();
    c.sh(&format!("{} echo pid1=$$", print_ns_script(&links)));
    let out = c.run();
    out.assert_ok();
    let got = parse_ns(&out.stdout);
    for (_, link) in KINDS {
        let inside = got
            .iter()
            .find(|(k, _)| k == link)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert!(
            inside.starts_with(&format!("{link}:[")),
            "no {link} ns inside: {}",
            out.stdout
        );
        assert_ne!(
            inside,
            ns_link("self", link),
            "{link} namespace is the host's"
        );
    }
    assert!(
        out.stdout.contains("pid1=1\n"),
        "the process should be pid 1 in its pid ns: {}",
        out.stdout
    );
}

#[test]
fn namespaces_left_out_are_shared_with_the_host() {
    let mut c = Ctr::new("ns-host");
    // Keep only mount (needed for the rootfs); share pid, net, ipc, uts with the host.
    c.drop_ns("pid")
        .drop_ns("network")
        .drop_ns("ipc")
        .drop_ns("uts")
        .drop_ns("cgroup");
    if let Some(o) = c.config.as_object_mut() {
        o.remove("hostname");
    }
    c.sh(&print_ns_script(&["pid", "net", "ipc", "uts", "mnt"]));
    let out = c.run();
    out.assert_ok();
    let got = parse_ns(&out.stdout);
    for link in ["pid", "net", "ipc", "uts"] {
        let inside = got
            .iter()
            .find(|(k, _)| k == link)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert_eq!(inside, ns_link("self", link), "{link} should be the host's");
    }
    let mnt = got.iter().find(|(k, _)| k == "mnt").unwrap().1.clone();
    assert_ne!(mnt, ns_link("self", "mnt"));
}

#[test]
fn join_namespaces_of_a_holder_process_by_path() {
    // A holder we start in fresh net, ipc and uts namespaces.
    let holder =
        Proc::spawn(Command::new("unshare").args(["--net", "--ipc", "--uts", "sleep", "100"]));
    let hp = holder.pid().to_string();
    // Wait until unshare has exec'd sleep in the new namespaces.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ns_link(&hp, "net") == ns_link("self", "net") {
        assert!(
            std::time::Instant::now() < deadline,
            "unshare did not set up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut c = Ctr::new("ns-join");
    for (kind, link) in [("network", "net"), ("ipc", "ipc"), ("uts", "uts")] {
        c.set_ns(kind, Some(&format!("/proc/{hp}/ns/{link}")));
    }
    if let Some(o) = c.config.as_object_mut() {
        o.remove("hostname");
    }
    c.sh(&print_ns_script(&["net", "ipc", "uts"]));
    let out = c.run();
    out.assert_ok();
    let got = parse_ns(&out.stdout);
    for link in ["net", "ipc", "uts"] {
        let inside = got
            .iter()
            .find(|(k, _)| k == link)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert_eq!(
            inside,
            ns_link(&hp, link),
            "{link}: should have joined the holder's namespace"
        );
        assert_ne!(inside, ns_link("self", link));
    }
}

#[test]
fn join_pid_and_network_namespaces_of_another_container() {
    let mut a = Ctr::new("ns-join-a");
    a.args(&["sleep", "100"]);
    a.create_ok();
    a.start_ok();
    let apid = a.pid();

    let mut b = Ctr::new("ns-join-b");
    b.set_ns("pid", Some(&format!("/proc/{apid}/ns/pid")));
    b.set_ns("network", Some(&format!("/proc/{apid}/ns/net")));
    b.sh("cat /proc/1/cmdline | tr '\\0' ' '; echo; echo net=$(readlink /proc/self/ns/net)");
    let out = b.run();
    out.assert_ok();
    let mut lines = out.stdout.lines();
    assert_eq!(
        lines.next().unwrap_or("").trim(),
        "sleep 100",
        "pid 1 should be container A's init: {out}"
    );
    assert_eq!(
        lines.next().unwrap_or(""),
        format!("net={}", ns_link(&apid.to_string(), "net"))
    );
}

#[test]
fn join_namespace_path_that_is_not_a_namespace_fails_cleanly() {
    let mut c = Ctr::new("ns-badpath");
    let f = c.dir.join("not-a-ns");
    std::fs::write(&f, "x").unwrap();
    c.set_ns("network", Some(f.to_str().unwrap()));
    let out = c.create();
    out.assert_fail();
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
}

#[test]
fn user_namespace_with_mappings() {
    let mut c = Ctr::new("userns");
    c.user_ns(100000, 200000);
    c.sh(
        "cat /proc/self/uid_map; cat /proc/self/gid_map; id -u; id -g; readlink /proc/self/ns/user",
    );
    let out = c.run();
    out.assert_ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(lines.len() >= 5, "{out}");
    assert_eq!(lines[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], ["0", "200000", "65536"], "{out}");
    assert_eq!(lines[2], ["0"]);
    assert_eq!(lines[3], ["0"]);
    assert_ne!(lines[4][0], ns_link("self", "user"));
}

#[test]
fn user_namespace_ids_seen_from_the_host() {
    let mut c = Ctr::new("userns-host");
    c.user_ns(100000, 200000);
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.args(&["sleep", "100"]);
    c.create_ok();
    c.start_ok();
    let pid = c.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid: Vec<&str> = status_field(&status, "Uid")
        .unwrap()
        .split_whitespace()
        .collect();
    let gid: Vec<&str> = status_field(&status, "Gid")
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(uid, ["101000"; 4], "host uid of container uid 1000");
    assert_eq!(gid, ["201000"; 4], "host gid of container gid 1000");
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
}

#[test]
fn user_namespace_multiple_mapping_ranges() {
    let mut c = Ctr::new("userns-multi");
    c.set_ns("user", None);
    c.config["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": 300000, "size": 1000},
        {"containerID": 1000, "hostID": 301000, "size": 64536}
    ]);
    c.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    c.sh("cat /proc/self/uid_map");
    let out = c.run();
    out.assert_ok();
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![vec!["0", "300000", "1000"], vec!["1000", "301000", "64536"]],
        "{out}"
    );
}

/// containerd's CRI (1.7+) starts a user-namespaced pod's containers with the pod's user
/// namespace by path *and* its uidMappings/gidMappings. The mappings describe the joined
/// namespace: the container runs in it (nothing new to map), and mappings that do not match it
/// are refused, naming both (as runc 1.2 does).
#[test]
fn join_user_namespace_by_path_with_its_mappings() {
    let mut a = Ctr::new("userns-join-a");
    a.user_ns(300000, 300000);
    a.args(&["sleep", "100"]);
    a.create_ok();
    a.start_ok();
    let apid = a.pid().to_string();
    let a_userns = ns_link(&apid, "user");
    let joined = |c: &mut Ctr, host_id: u32| {
        c.set_ns("user", Some(&format!("/proc/{apid}/ns/user")));
        for key in ["uidMappings", "gidMappings"] {
            c.config["linux"][key] = json!([{"containerID": 0, "hostID": host_id, "size": 65536}]);
        }
    };

    let mut b = Ctr::new("userns-join-b");
    joined(&mut b, 300000);
    // A bind source under a directory only host root may enter, as containerd keeps a pod's
    // /etc/hostname: the container's root (host uid 300000) could not open it itself.
    let private = b.dir.join("private");
    fs::create_dir_all(&private).unwrap();
    fs::write(private.join("hostname"), "joined-pod\n").unwrap();
    fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    b.add_mount(json!({
        "destination": "/etc/hostname",
        "type": "bind",
        "source": private.join("hostname"),
        "options": ["rbind", "rprivate", "rw"]
    }));
    b.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user; cat /etc/hostname");
    let out = b.run();
    out.assert_ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        vec![
            vec!["0", "300000", "65536"],
            vec!["0", "300000", "65536"],
            vec!["0"],
            vec![a_userns.as_str()],
            vec!["joined-pod"],
        ],
        "container B should run in A's user namespace: {out}"
    );

    // runc 1.1.5 does not compare them (1.2 does).
    if is_hutch() {
        let mut m = Ctr::new("userns-join-mismatch");
        joined(&mut m, 400000);
        m.args(&["true"]);
        m.create()
            .assert_fail_with("do not match the joined user namespace");
    }
}

#[test]
fn time_namespace_offsets() {
    hutch_only!("runc 1.1.5 does not know the time namespace");
    let mut c = Ctr::new("timens");
    c.set_ns("time", None);
    c.config["linux"]["timeOffsets"] = json!({
        "monotonic": {"secs": 864000, "nanosecs": 0},
        "boottime": {"secs": 1728000, "nanosecs": 0}
    });
    c.sh("readlink /proc/self/ns/time; cut -d. -f1 /proc/uptime");
    let out = c.run();
    out.assert_ok();
    let mut lines = out.stdout.lines();
    let ns = lines.next().unwrap_or("");
    assert!(ns.starts_with("time:["), "{out}");
    assert_ne!(ns, ns_link("self", "time"));
    let uptime: u64 = lines.next().unwrap_or("0").trim().parse().unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uptime >= 1728000 + host as u64 - 5,
        "boottime offset not applied: {uptime}"
    );
}

#[test]
fn hostname() {
    let mut c = Ctr::new("uts-host");
    c.config["hostname"] = json!("box-one");
    c.sh("hostname; cat /proc/sys/kernel/hostname");
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "box-one\nbox-one\n");
}

#[test]
fn domainname() {
    hutch_only!("runc 1.1.5 ignores domainname (runtime-spec 1.1 field)");
    let mut c = Ctr::new("uts-domain");
    c.config["hostname"] = json!("box-two");
    c.config["domainname"] = json!("example.test");
    c.sh("hostname; cat /proc/sys/kernel/domainname");
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "box-two\nexample.test\n");
}

#[test]
fn hostname_without_uts_namespace_is_refused() {
    // The host's own hostname, so a runtime that wrongly sets it changes nothing.
    let host_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut c = Ctr::new("uts-none");
    c.drop_ns("uts");
    c.config["hostname"] = json!(host_before.trim());
    let out = c.create();
    out.assert_fail();
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
}

/// Restores host sysctls on drop, so a runtime that writes them to the host (instead of the
/// container's namespaces) cannot leave the machine changed.
struct HostSysctls(Vec<(&'static str, String)>);

impl HostSysctls {
    fn save(paths: &[&'static str]) -> HostSysctls {
        HostSysctls(
            paths
                .iter()
                .map(|p| (*p, std::fs::read_to_string(p).unwrap()))
                .collect(),
        )
    }
    fn changed(&self) -> Vec<&'static str> {
        self.0
            .iter()
            .filter(|(p, v)| std::fs::read_to_string(p).unwrap() != *v)
            .map(|(p, _)| *p)
            .collect()
    }
}

impl Drop for HostSysctls {
    fn drop(&mut self) {
        for (p, v) in &self.0 {
            if std::fs::read_to_string(p).unwrap() != *v {
                let _ = std::fs::write(p, v);
            }
        }
    }
}

#[test]
fn namespaced_sysctls() {
    let saved = HostSysctls::save(&[
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/kernel/shm_rmid_forced",
    ]);
    let host_fwd = saved.0[0].1.clone();
    let host_shm = saved.0[1].1.clone();
    let want_fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    let want_shm = if host_shm.trim() == "1" { "0" } else { "1" };
    let mut c = Ctr::new("sysctl");
    c.config["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": want_fwd,
        "kernel.shm_rmid_forced": want_shm,
    });
    c.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced");
    let out = c.run();
    assert!(
        saved.changed().is_empty(),
        "the runtime changed host sysctls {:?} (restored)",
        saved.changed()
    );
    out.assert_ok();
    assert_eq!(out.stdout, format!("{want_fwd}\n{want_shm}\n"));
}

#[test]
fn network_namespace_has_only_loopback() {
    let mut c = Ctr::new("netns-lo");
    c.sh("ls /sys/class/net");
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["lo"],
        "{out}"
    );
}

#[test]
fn cgroup_namespace_root_is_the_containers_cgroup() {
    let mut c = Ctr::new("cgroupns");
    c.set_ns("cgroup", None);
    c.sh("grep '^0::' /proc/self/cgroup");
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "0::/\n", "{out}");
}

// ---------------------------------------------------------------------------------------------
// A namespace type left out of linux.namespaces is the runtime's (config-linux.md; issue 10 #1)
// ---------------------------------------------------------------------------------------------

/// Runs a container whose config leaves out `kind` (after `tweak`), and checks from inside
/// that its `link` namespace is the test process's (the runtime's), and that the host's
/// hostname is as it was.
fn left_out_is_the_runtimes(kind: &str, link: &str, tweak: impl FnOnce(&mut Ctr)) {
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut c = Ctr::new(&format!("ns-left-out-{kind}"));
    c.drop_ns(kind);
    assert!(
        !c.namespaces().iter().any(|n| n["type"] == kind),
        "{kind} still in the config"
    );
    tweak(&mut c);
    c.sh(&print_ns_script(&[link]));
    let out = c.run();
    out.assert_ok();
    let got = parse_ns(&out.stdout);
    let inside = got
        .iter()
        .find(|(k, _)| k == link)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(inside.starts_with(&format!("{link}:[")), "{out}");
    assert_eq!(
        inside,
        ns_link("self", link),
        "{kind} left out: the container should share the runtime's"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        hostname,
        "the host's hostname changed"
    );
}

#[test]
fn left_out_pid_namespace_is_the_runtimes() {
    left_out_is_the_runtimes("pid", "pid", |_| {});
}

#[test]
fn left_out_network_namespace_is_the_runtimes() {
    left_out_is_the_runtimes("network", "net", |_| {});
}

#[test]
fn left_out_ipc_namespace_is_the_runtimes() {
    left_out_is_the_runtimes("ipc", "ipc", |_| {});
}

#[test]
fn left_out_uts_namespace_is_the_runtimes() {
    left_out_is_the_runtimes("uts", "uts", |c| {
        if let Some(o) = c.config.as_object_mut() {
            o.remove("hostname");
        }
    });
}

#[test]
fn left_out_cgroup_namespace_is_the_runtimes() {
    left_out_is_the_runtimes("cgroup", "cgroup", |_| {});
}

#[test]
fn left_out_user_namespace_is_the_runtimes() {
    left_out_is_the_runtimes("user", "user", |_| {});
}

#[test]
fn left_out_time_namespace_is_the_runtimes() {
    left_out_is_the_runtimes("time", "time", |_| {});
}

/// Everything in the default config that needs a mount, removed.
fn without_mounts(c: &mut Ctr) {
    c.config["mounts"] = json!([]);
    c.config["linux"]["maskedPaths"] = json!([]);
    c.config["linux"]["readonlyPaths"] = json!([]);
    c.config["root"]["readonly"] = json!(false);
}

/// The line of `/` in our mountinfo without its mount id (propagation fields included).
fn host_root_mount() -> String {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .map(|l| l.split(' ').skip(2).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Without `mount` the container is in the runtime's mount namespace, chrooted into its rootfs
/// (runc and crun do the same), and the host's mount table is untouched: nothing is mounted
/// for it, no propagation changes (runc makes the config's mounts in the host's namespace and
/// leaves them behind; hutch refuses a config that needs a mount, see the test below).
#[test]
fn left_out_mount_namespace_is_the_runtimes() {
    hutch_only!(
        "runc 1.1.5 binds the rootfs onto itself in the runtime's mount namespace and leaves it"
    );
    let root_before = host_root_mount();
    let mut c = Ctr::new("ns-left-out-mount");
    c.drop_ns("mount");
    without_mounts(&mut c);
    // No /proc inside (nothing is mounted): the init shows what its root holds, then waits.
    c.sh("ls /; ls -A /proc | wc -l; sleep 60");
    c.create_ok();
    let pid = c.pid();
    assert_eq!(
        ns_link(&pid.to_string(), "mnt"),
        ns_link("self", "mnt"),
        "the container's mount namespace should be the runtime's"
    );
    let root = fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(
        root,
        fs::canonicalize(&c.rootfs).unwrap(),
        "the init should be chrooted into the rootfs"
    );
    c.start_ok();
    // exec'd processes join no mount namespace: they must land in the same root.
    let out = c.rt_piped(&["exec", &c.id, "ls", "/"]);
    out.assert_ok();
    assert!(out.stdout_lines().contains(&"bin"), "{out}");
    let host_only = fs::read_dir("/")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| !c.rootfs.join(n).exists())
        .expect("a host directory the rootfs lacks");
    assert!(
        !out.stdout_lines().contains(&host_only.as_str()),
        "exec sees the host's / ({host_only}):\n{out}"
    );
    assert!(
        mounts_under(&c.dir).is_empty(),
        "mounts made in the host's namespace: {:?}",
        mounts_under(&c.dir)
    );
    assert_eq!(host_root_mount(), root_before, "the host's / changed");
    c.kill("KILL").assert_ok();
    c.wait_status("stopped", CMD_TIMEOUT);
    let inside = fs::read_to_string(c.stdout_file()).unwrap();
    let lines: Vec<&str> = inside.lines().collect();
    assert!(lines.contains(&"bin") && lines.contains(&"etc"), "{inside}");
    assert_eq!(lines.last(), Some(&"0"), "/proc should be empty: {inside}");
}

/// What would need a mount without a mount namespace of the container's own is refused
/// before anything is made: the mount would land in the host's namespace.
#[test]
fn left_out_mount_namespace_refuses_what_needs_a_mount() {
    hutch_only!("runc makes the mounts in the runtime's mount namespace and leaves them there");
    let root_before = host_root_mount();
    type Tweak = fn(&mut Ctr);
    let cases: &[(&str, Tweak)] = &[
        ("mounts", |c| {
            c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
        }),
        ("linux.maskedPaths", |c| {
            c.config["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
        }),
        ("linux.readonlyPaths", |c| {
            c.config["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
        }),
        ("root.readonly", |c| {
            c.config["root"]["readonly"] = json!(true)
        }),
        ("linux.rootfsPropagation", |c| {
            c.config["linux"]["rootfsPropagation"] = json!("private");
        }),
        ("process.terminal", |c| {
            c.config["process"]["terminal"] = json!(true);
        }),
    ];
    for (field, tweak) in cases {
        let mut c = Ctr::new("ns-no-mnt-refused");
        c.drop_ns("mount");
        without_mounts(&mut c);
        tweak(&mut c);
        let out = c.create();
        out.assert_fail();
        let err = fs::read_to_string(c.stderr_file()).unwrap_or_default() + &out.stderr;
        assert!(
            err.contains(field) && err.contains("mount namespace"),
            "{field}: {err}\n{out}"
        );
        c.rt(&["state", &c.id]).assert_fail_with("does not exist");
    }
    assert_eq!(host_root_mount(), root_before, "the host's / changed");
}
