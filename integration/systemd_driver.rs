//! The systemd cgroup driver (`--systemd-cgroup`), on a host whose PID 1 is systemd: the
//! container's transient unit, its properties as `systemctl show` reports them, the cgroup
//! files, `update`, and nothing left loaded after `delete`. Run by `hack/systemd-vm.sh`; on a
//! host without systemd every test prints SKIP.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::cgroups::{cgroup_dir, is_v2};
use crate::common::*;

fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").exists()
}

macro_rules! needs_systemd {
    () => {
        if !systemd_runs() {
            eprintln!("SKIP: systemd is not PID 1 here (run in hack/systemd-vm.sh)");
            return;
        }
    };
}

/// `systemctl show UNIT -p PROP` → the value.
fn show(unit: &str, prop: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", unit, "-p", prop, "--value"])
        .output()
        .expect("systemctl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The runtime command with `--systemd-cgroup` before the subcommand, as engines pass it (the
/// harness adds it itself under `HUTCH_IT_CGROUP_DRIVER=systemd`).
fn systemd_cmd(c: &Ctr) -> Command {
    let mut cmd = c.cmd();
    if !systemd_driver() {
        cmd.arg("--systemd-cgroup");
    }
    cmd
}

fn rt_systemd(c: &Ctr, args: &[&str]) -> Out {
    exec_files(systemd_cmd(c).args(args), CMD_TIMEOUT)
}

fn create_systemd(c: &mut Ctr) -> Out {
    c.save();
    let mut cmd = systemd_cmd(c);
    cmd.args(["create", "--bundle"])
        .arg(&c.bundle)
        .arg("--pid-file")
        .arg(c.pid_file())
        .arg(&c.id);
    c.create_by(cmd)
}

fn own_v2_cgroup(pid: i32) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_default()
        .to_string()
}

/// A container whose cgroupsPath is `system.slice:hutch-it:<id>`, and that scope's name.
fn in_scope(name: &str) -> (Ctr, String) {
    let mut c = Ctr::new(name);
    c.config["linux"]["cgroupsPath"] = json!(format!("system.slice:hutch-it:{}", c.id));
    let unit = format!("hutch-it-{}.scope", c.id);
    (c, unit)
}

#[test]
fn container_runs_in_a_transient_scope_with_its_limits() {
    needs_systemd!();
    let (mut c, unit) = in_scope("sd-scope");
    c.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 40},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000}
    });
    c.args(&["sleep", "1000"]);
    let out = create_systemd(&mut c);
    assert!(out.ok(), "create failed:\n{out}");
    let init = c.pid();
    assert_eq!(own_v2_cgroup(init), format!("/system.slice/{unit}"));
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(show(&unit, "Delegate"), "yes");
    // The property systemd keeps per hierarchy: MemoryLimit on v1, as runc sets it there.
    let memory_property = if is_v2() { "MemoryMax" } else { "MemoryLimit" };
    assert_eq!(show(&unit, memory_property), "67108864");
    assert_eq!(show(&unit, "TasksMax"), "40");
    assert_eq!(show(&unit, "CPUQuotaPerSecUSec"), "500ms");
    // The default device list, as systemd enforces it too.
    assert_eq!(show(&unit, "DevicePolicy"), "strict");
    let allowed = show(&unit, "DeviceAllow");
    assert!(
        allowed.contains("1:3") && allowed.contains("rwm"),
        "DeviceAllow={allowed}"
    );
    // The files, in the unit's cgroup of each controller (one tree on v2; systemd's v1 layout).
    let init = c.pid();
    let (memory, pids) = (cgroup_dir(init, "memory"), cgroup_dir(init, "pids"));
    assert!(
        memory.ends_with(format!("system.slice/{unit}")),
        "{}",
        memory.display()
    );
    let read = |dir: &Path, f: &str| fs::read_to_string(dir.join(f)).unwrap().trim().to_string();
    let memory_limit = if is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(read(&memory, memory_limit), "67108864");
    assert_eq!(read(&pids, "pids.max"), "40");
    if is_v2() {
        assert_eq!(read(&memory, "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read(&cgroup_dir(init, "cpu"), "cpu.cfs_quota_us"), "50000");
    }

    rt_systemd(
        &c,
        &[
            "update",
            "--memory",
            "134217728",
            "--pids-limit",
            "50",
            &c.id,
        ],
    )
    .assert_ok();
    assert_eq!(show(&unit, memory_property), "134217728");
    assert_eq!(show(&unit, "TasksMax"), "50");
    assert_eq!(read(&memory, memory_limit), "134217728");
    assert_eq!(read(&pids, "pids.max"), "50");

    c.start_ok();
    rt_systemd(&c, &["kill", &c.id, "KILL"]).assert_ok();
    c.wait_status("stopped", Duration::from_secs(10));
    rt_systemd(&c, &["delete", &c.id]).assert_ok();
    assert_eq!(
        show(&unit, "LoadState"),
        "not-found",
        "the unit stayed loaded"
    );
    for dir in [&memory, &pids] {
        assert!(!dir.exists(), "{} left", dir.display());
    }
}

#[test]
fn default_unit_and_annotations() {
    needs_systemd!();
    let mut c = Ctr::new("sd-default");
    let prefix = if is_hutch() { "hutch" } else { "runc" };
    let unit = format!("{prefix}-{}.scope", c.id);
    c.config["annotations"] = json!({"org.systemd.property.TimeoutStopSec": "17"});
    c.args(&["sleep", "1000"]);
    let out = create_systemd(&mut c);
    assert!(out.ok(), "create failed:\n{out}");
    assert_eq!(own_v2_cgroup(c.pid()), format!("/system.slice/{unit}"));
    assert_eq!(show(&unit, "TimeoutStopUSec"), "17s");
    rt_systemd(&c, &["delete", "--force", &c.id]).assert_ok();
    assert_eq!(show(&unit, "LoadState"), "not-found");
}

#[test]
fn failed_create_leaves_no_unit() {
    needs_systemd!();
    let (mut c, unit) = in_scope("sd-fail");
    c.args(&["/no/such/program"]);
    let out = create_systemd(&mut c);
    out.assert_fail();
    assert_eq!(
        show(&unit, "LoadState"),
        "not-found",
        "a failed create left its unit"
    );
}

/// A property systemd does not know, asked for by an annotation, fails `create` naming it; it is
/// not dropped as a limit an old systemd lacks would be (the user asked for it by name).
#[test]
fn unknown_annotation_property_fails_create() {
    needs_systemd!();
    let (mut c, unit) = in_scope("sd-unknown");
    c.config["annotations"] = json!({"org.systemd.property.NoSuchProperty": "1"});
    c.args(&["sleep", "1000"]);
    let out = create_systemd(&mut c);
    out.assert_fail();
    assert!(out.stderr.contains("NoSuchProperty"), "{out}");
    assert_eq!(show(&unit, "LoadState"), "not-found");
    let leaks = c.leaks();
    assert!(leaks.is_empty(), "{leaks:?}");
}

#[test]
fn malformed_cgroups_path_is_named() {
    needs_systemd!();
    let mut c = Ctr::new("sd-badpath");
    c.config["linux"]["cgroupsPath"] = json!("/not/slice/form");
    let out = create_systemd(&mut c);
    out.assert_fail();
    if is_hutch() {
        assert!(out.stderr.contains("linux.cgroupsPath"), "{out}");
    }
}

/// `features` says the driver is built (it runs everywhere: no systemd needed).
#[test]
fn features_report_the_systemd_driver() {
    hutch_only!("runc 1.1.5 has no cgroup.systemd in features");
    let c = Ctr::new("sd-features");
    let out = c.rt_piped(&["features"]);
    out.assert_ok();
    let f = parse_json(&out.stdout);
    assert_eq!(f["linux"]["cgroup"]["systemd"], true, "{f}");
    let unsafe_annotations = f["potentiallyUnsafeConfigAnnotations"].to_string();
    assert!(unsafe_annotations.contains("org.systemd.property."), "{f}");
}

/// Rootless `--systemd-cgroup`: the scope is the user's manager's (`user@UID.service`, started
/// here as a login would), under that manager's cgroup, with the limits delegated to the user.
#[test]
fn rootless_container_runs_in_the_users_manager() {
    needs_systemd!();
    if !is_v2() {
        eprintln!("SKIP: systemd delegates controllers to a user's manager on cgroup v2 only");
        return;
    }
    hutch_only!("runc 1.1 talks to the user's session bus, which needs dbus-user-session; hutch uses the manager's private socket");
    let user = crate::common::rootless::test_user();
    let manager = format!("user@{}.service", user.uid);
    let started = Command::new("systemctl")
        .args(["start", &manager])
        .status()
        .unwrap();
    assert!(started.success(), "systemctl start {manager}");
    let manager_cgroup = show(&manager, "ControlGroup");
    let mut c = Ctr::rootless("sd-rootless");
    // The user's runtime directory, where its manager listens; the state goes there too.
    let xdg = format!("/run/user/{}", user.uid);
    c.root = Path::new(&xdg).join(runtime_name());
    c.config["linux"]["resources"] = json!({"pids": {"limit": 33}});
    c.args(&["sleep", "1000"]);
    c.save();
    let mut cmd = c.cmd();
    cmd.env("XDG_RUNTIME_DIR", &xdg)
        .arg("--systemd-cgroup")
        .args(["create", "--bundle"])
        .arg(&c.bundle)
        .arg("--pid-file")
        .arg(c.pid_file())
        .arg(&c.id);
    let out = c.create_by(cmd);
    assert!(out.ok(), "create failed:\n{out}");
    let pid: i32 = fs::read_to_string(c.pid_file())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let prefix = if is_hutch() { "hutch" } else { "runc" };
    let scope = format!("{manager_cgroup}/user.slice/{prefix}-{}.scope", c.id);
    assert_eq!(own_v2_cgroup(pid), scope);
    let dir = Path::new("/sys/fs/cgroup").join(scope.trim_start_matches('/'));
    assert_eq!(
        fs::read_to_string(dir.join("pids.max")).unwrap().trim(),
        "33"
    );
    let mut delete = c.cmd();
    delete
        .env("XDG_RUNTIME_DIR", &xdg)
        .args(["delete", "--force", &c.id]);
    exec_files(&mut delete, CMD_TIMEOUT).assert_ok();
    assert!(!dir.exists(), "{} left", dir.display());
}
