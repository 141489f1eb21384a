//! Cgroups: limits land in the cgroup files and the kernel enforces them, pause/resume, ps,
//! events, update, kill --all, and nothing left behind. Runs on the host's layout (v1/hybrid
//! here) and, through `hack/vm-run.sh`, on a pure cgroup v2 kernel.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

pub fn is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The host directory of `pid`'s cgroup that holds `controller`'s files.
pub fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/PID/cgroup");
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let _ = it.next();
        let (ctrls, path) = (it.next().unwrap(), it.next().unwrap());
        let path = path.trim_start_matches('/');
        if is_v2() && ctrls.is_empty() {
            return Path::new("/sys/fs/cgroup").join(path);
        }
        if !is_v2() && ctrls.split(',').any(|c| c == controller) {
            return Path::new("/sys/fs/cgroup").join(ctrls).join(path);
        }
    }
    panic!("pid {pid} has no {controller} cgroup:\n{text}");
}

pub fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("reading {}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

/// A sleeping container, created and started; returns its init pid.
fn started(c: &mut Ctr, resources: serde_json::Value) -> i32 {
    c.config["linux"]["resources"] = resources;
    c.create_ok();
    c.start_ok();
    c.pid()
}

fn memsw_available(pid: i32) -> bool {
    is_v2()
        || cgroup_dir(pid, "memory")
            .join("memory.memsw.limit_in_bytes")
            .exists()
}

#[test]
fn limits_land_in_the_cgroup_files() {
    let mut c = Ctr::new("cg-limits");
    c.args(&["sleep", "100"]);
    let pid = started(
        &mut c,
        json!({
            "memory": {"limit": 67108864, "reservation": 33554432},
            "pids": {"limit": 32},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
        }),
    );
    if is_v2() {
        let d = cgroup_dir(pid, "");
        assert_eq!(read(&d, "memory.max"), "67108864");
        assert_eq!(read(&d, "memory.low"), "33554432");
        assert_eq!(read(&d, "pids.max"), "32");
        assert_eq!(read(&d, "cpu.weight"), "20"); // runc's conversion of 512 shares
        assert_eq!(read(&d, "cpu.max"), "50000 100000");
        assert_eq!(read(&d, "cpuset.cpus"), "0");
    } else {
        assert_eq!(
            read(&cgroup_dir(pid, "memory"), "memory.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(
            read(&cgroup_dir(pid, "memory"), "memory.soft_limit_in_bytes"),
            "33554432"
        );
        assert_eq!(read(&cgroup_dir(pid, "pids"), "pids.max"), "32");
        assert_eq!(read(&cgroup_dir(pid, "cpu"), "cpu.shares"), "512");
        assert_eq!(read(&cgroup_dir(pid, "cpu"), "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&cgroup_dir(pid, "cpu"), "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&cgroup_dir(pid, "cpuset"), "cpuset.cpus"), "0");
    }
    // cpuset is enforced: the init may only run on CPU 0.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(status_field(&status, "Cpus_allowed_list"), Some("0"));
}

#[test]
fn limits_are_visible_inside() {
    let mut c = Ctr::new("cg-inside");
    let script = if is_v2() {
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"
    } else {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
    };
    c.sh(script);
    c.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 64}});
    let out = c.run_ok();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["67108864", "64"],
        "{out}"
    );
}

#[test]
fn memory_limit_ooms() {
    let mut c = Ctr::new("cg-oom");
    c.args(&["tail", "/dev/zero"]);
    c.config["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    if !is_v2() && !Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        c.config["linux"]["resources"] = json!({"memory": {"limit": 33554432}});
    }
    let out = c.run();
    assert_eq!(
        out.code(),
        137,
        "tail /dev/zero should be OOM-killed:\n{out}"
    );
}

#[test]
fn pids_limit_stops_forks() {
    let mut c = Ctr::new("cg-pids");
    c.sh("for i in $(seq 1 20); do sleep 2 & done; wait");
    c.config["linux"]["resources"] = json!({"pids": {"limit": 5}});
    let out = c.run();
    assert!(
        out.stderr.contains("fork") || out.stdout.contains("fork"),
        "no fork failure:\n{out}"
    );
}

#[test]
fn devices_are_denied_but_defaults_allowed() {
    let mut c = Ctr::new("cg-devices");
    for set in ["bounding", "effective", "permitted"] {
        c.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_MKNOD"));
    }
    // Podman's list: deny-all only; the runtime adds the defaults (null, zero, tty...).
    c.config["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    c.sh(
        "echo ok > /dev/null && head -c1 /dev/zero >/dev/null && echo defaults-ok; \
         mknod /tmp/mem c 1 1 && echo mknod-ok; head -c1 /tmp/mem >/dev/null 2>&1 || echo mem-denied",
    );
    let out = c.run_ok();
    for want in ["defaults-ok", "mknod-ok", "mem-denied"] {
        assert!(out.contains(want), "missing {want}:\n{out}");
    }
}

#[test]
fn pause_and_resume() {
    let mut c = Ctr::new("cg-pause");
    c.sh("i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.02; done");
    let _pid = started(&mut c, json!({}));
    let count = |c: &Ctr| fs::read_to_string(c.rootfs.join("count")).unwrap_or_default();
    std::thread::sleep(Duration::from_millis(200));
    c.rt(&["pause", &c.id]).assert_ok();
    assert_eq!(c.status(), "paused");
    let a = count(&c);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a, count(&c), "the counter moved while paused");
    c.rt(&["pause", &c.id]).assert_fail();
    c.rt(&["resume", &c.id]).assert_ok();
    assert_eq!(c.status(), "running");
    std::thread::sleep(Duration::from_millis(300));
    assert_ne!(a, count(&c), "the counter did not move after resume");
    c.rt(&["resume", &c.id]).assert_fail_with("not paused");
    // delete --force of a paused container works.
    c.rt(&["pause", &c.id]).assert_ok();
    c.rt(&["delete", "--force", &c.id]).assert_ok();
}

#[test]
fn ps_lists_container_pids() {
    let mut c = Ctr::new("cg-ps");
    c.sh("sleep 100 & sleep 100 & wait");
    let pid = started(&mut c, json!({}));
    let deadline = Instant::now() + Duration::from_secs(5);
    let pids = loop {
        let out = c.rt(&["ps", "--format", "json", &c.id]);
        out.assert_ok();
        let v: Vec<i32> = serde_json::from_str(out.stdout.trim()).expect("ps json is an int array");
        if v.len() == 3 || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(pids.contains(&pid), "{pids:?} lacks init {pid}");
    assert_eq!(pids.len(), 3, "{pids:?}");
    let out = c.rt(&["ps", &c.id]);
    out.assert_ok();
    let lines = out.stdout_lines();
    assert!(lines[0].split_whitespace().any(|f| f == "PID"), "{out}");
    assert_eq!(lines.len(), 4, "{out}");
    let out = c.rt(&["ps", &c.id, "-o", "pid,comm"]);
    out.assert_ok();
    assert!(out.stdout.contains("sleep"), "{out}");
}

/// Kills the container; hutch's event stream then ends by itself (runc's does not: it is
/// stopped here).
fn stop_events(c: &Ctr, child: &mut std::process::Child) -> String {
    c.kill("KILL").assert_ok();
    if !is_hutch() {
        let _ = child.kill();
    }
    let (st, stdout, stderr) = wait_child(child, Duration::from_secs(10), "events");
    if is_hutch() {
        assert!(st.success(), "events failed: {stderr}");
    }
    stdout
}

#[test]
fn events_stats() {
    let mut c = Ctr::new("cg-events");
    c.args(&["sleep", "100"]);
    started(
        &mut c,
        json!({"pids": {"limit": 50}, "memory": {"limit": 67108864}}),
    );
    let out = c.rt(&["events", "--stats", &c.id]);
    out.assert_ok();
    let v = parse_json(out.stdout.trim());
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], c.id.as_str());
    let d = &v["data"];
    assert_eq!(d["pids"]["current"], 1, "{d}");
    assert_eq!(d["pids"]["limit"], 50, "{d}");
    assert_eq!(d["memory"]["usage"]["limit"], 67108864, "{d}");
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{d}"
    );
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{d}");
    for k in ["blkio", "hugetlb", "cpuset"] {
        assert!(d[k].is_object(), "{k}: {d}");
    }
    // Streaming: one stats line per interval, and it ends when the container does.
    let mut child = c
        .cmd()
        .args(["events", "--interval", "100ms", &c.id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Room for a slow start (TCG in the VMs): two lines need only 100 ms once it runs.
    std::thread::sleep(Duration::from_millis(1500));
    let stdout = stop_events(&c, &mut child);
    let n = stdout
        .lines()
        .filter(|l| l.contains("\"type\":\"stats\""))
        .count();
    assert!(n >= 2, "only {n} stats lines:\n{stdout}");
}

#[test]
fn events_report_oom() {
    let mut c = Ctr::new("cg-oomev");
    // The allocation starts only once `events` watches (the test creates /go).
    c.sh("while [ ! -e /go ]; do sleep 0.05; done; tail /dev/zero; sleep 100");
    let mut res = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    let pid = started(&mut c, json!({}));
    if !memsw_available(pid) {
        res = json!({"memory": {"limit": 33554432}});
    }
    let mut upd = c.cmd();
    upd.args(["update", "-r", "-", &c.id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = upd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(res.to_string().as_bytes())
        .unwrap();
    let (st, _, err) = wait_child(&mut child, CMD_TIMEOUT, "update");
    assert!(st.success(), "{err}");
    let mut ev = c
        .cmd()
        .args(["events", "--interval", "1s", &c.id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    fs::write(c.rootfs.join("go"), "").unwrap();
    // Wait for the kernel's OOM kill (slow under emulation), then for events' next poll.
    let (file, key) = if is_v2() {
        (cgroup_dir(pid, "").join("memory.events"), "oom_kill ")
    } else {
        (
            cgroup_dir(pid, "memory").join("memory.oom_control"),
            "oom_kill ",
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = fs::read_to_string(&file).unwrap_or_default();
        let n: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or(0);
        if n > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no OOM kill within 30s:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let stdout = stop_events(&c, &mut ev);
    assert!(
        stdout.lines().any(|l| l.contains("\"type\":\"oom\"")),
        "no oom event:\n{stdout}"
    );
}

#[test]
fn update_changes_limits() {
    let mut c = Ctr::new("cg-update");
    c.args(&["sleep", "100"]);
    let pid = started(
        &mut c,
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}}),
    );
    let memsw = memsw_available(pid);
    // Flags (runc's), raising memory above the current memory+swap.
    let mut args = vec!["update", "--memory", "256m", "--cpu-share", "256"];
    if memsw {
        args.extend(["--memory-swap", "512m"]);
    }
    args.push(&c.id);
    c.rt(&args).assert_ok();
    // Docker's JSON on stdin: zero means unchanged.
    let mut cmd = c.cmd();
    cmd.args(["update", "--resources", "-", &c.id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"memory":{"limit":0,"reservation":0,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"pids":{"limit":80},"blockIO":{"weight":0}}"#)
        .unwrap();
    let (st, _, err) = wait_child(&mut child, CMD_TIMEOUT, "update -r -");
    assert!(st.success(), "update -r - failed: {err}");
    if is_v2() {
        let d = cgroup_dir(pid, "");
        assert_eq!(read(&d, "memory.max"), "268435456");
        assert_eq!(read(&d, "memory.swap.max"), "268435456");
        assert_eq!(read(&d, "pids.max"), "80");
        assert_eq!(read(&d, "cpu.weight"), "10");
    } else {
        let m = cgroup_dir(pid, "memory");
        assert_eq!(read(&m, "memory.limit_in_bytes"), "268435456");
        if memsw {
            assert_eq!(read(&m, "memory.memsw.limit_in_bytes"), "536870912");
        }
        assert_eq!(read(&cgroup_dir(pid, "pids"), "pids.max"), "80");
        assert_eq!(read(&cgroup_dir(pid, "cpu"), "cpu.shares"), "256");
    }
    // Lowering again (memsw written after memory), and bad values are refused by name.
    let mut args = vec!["update", "--memory", "64m"];
    if memsw {
        args.extend(["--memory-swap", "64m"]);
    }
    args.push(&c.id);
    c.rt(&args).assert_ok();
    c.rt(&["update", "--cpuset-cpus", "9999", &c.id])
        .assert_fail();
    hutch_only!("hutch's error wording");
    c.rt(&["update", "--l3-cache-schema", "L3:0=f", &c.id])
        .assert_fail_with("RDT");
    c.rt(&["update", "--cpuset-cpus", "9999", &c.id])
        .assert_fail_with("cpu.cpus");
}

#[test]
fn kill_all_kills_every_process() {
    let mut c = Ctr::new("cg-killall");
    // Shares the host pid namespace: the cgroup is the only boundary.
    c.drop_ns("pid");
    c.sh("sleep 100 & sleep 100 & wait");
    let pid = started(&mut c, json!({}));
    let dir = cgroup_dir(pid, "pids");
    let deadline = Instant::now() + Duration::from_secs(5);
    while read(&dir, "cgroup.procs").lines().count() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pids: Vec<i32> = read(&dir, "cgroup.procs")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    for &p in &pids {
        c.track(p);
    }
    c.rt(&["kill", "--all", &c.id, "9"]).assert_ok();
    for &p in &pids {
        wait_dead(p, 0, Duration::from_secs(5)).unwrap();
    }
}

#[test]
fn delete_removes_the_cgroup() {
    let mut c = Ctr::new("cg-delete");
    c.args(&["sleep", "100"]);
    let (path, nested) = if systemd_driver() {
        let slice = format!("hutch-it{}.slice", std::process::id());
        let scope = format!("hutch-{}.scope", c.id);
        (
            format!("{slice}:hutch:{}", c.id),
            format!("/{slice}/{scope}"),
        )
    } else {
        let nested = format!("/hutch-it-{}/{}", std::process::id(), c.id);
        (nested.clone(), nested)
    };
    c.config["linux"]["cgroupsPath"] = json!(path);
    let pid = started(&mut c, json!({"pids": {"limit": 10}}));
    let dir = cgroup_dir(pid, "pids");
    assert!(
        dir.ends_with(nested.trim_start_matches('/')),
        "{}",
        dir.display()
    );
    c.rt(&["delete", "--force", &c.id]).assert_ok();
    assert!(!dir.exists(), "{} left after delete", dir.display());
    if systemd_driver() {
        // The slice is systemd's, made for the scope and removed by it when empty.
        return;
    }
    // The parent hutch created is gone too (unless another test still uses it); runc leaves it.
    if !is_hutch() {
        // runc keeps the parents it created: tidy up after it.
        let rel = Path::new(&nested)
            .parent()
            .unwrap()
            .strip_prefix("/")
            .unwrap()
            .to_path_buf();
        for h in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let _ = fs::remove_dir(h.path().join(&rel));
        }
        let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(&rel));
    }
    hutch_only!("runc keeps the parents it created");
    let parent = dir.parent().unwrap();
    if parent.exists() {
        assert!(fs::read_dir(parent)
            .unwrap()
            .flatten()
            .any(|e| e.path().is_dir()));
    }
}

#[test]
fn failed_create_leaves_no_cgroup() {
    let mut c = Ctr::new("cg-failed");
    let path = if systemd_driver() {
        format!("hutch-it-failed.slice:hutch:{}", c.id)
    } else {
        format!("/hutch-it-failed/{}", c.id)
    };
    c.config["linux"]["cgroupsPath"] = json!(path);
    c.config["linux"]["resources"] = json!({"cpu": {"cpus": "9999"}, "pids": {"limit": 10}});
    let out = c.create();
    out.assert_fail();
    if is_hutch() {
        out.assert_fail_with("linux.resources.cpu.cpus");
    }
    let roots: Vec<PathBuf> = if is_v2() {
        vec![PathBuf::from("/sys/fs/cgroup")]
    } else {
        fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect()
    };
    for r in roots {
        let d = r.join(path.trim_start_matches('/'));
        assert!(!d.exists(), "{} left after a failed create", d.display());
    }
    assert!(c.rt(&["state", &c.id]).stderr.contains("does not exist"));
    if !is_hutch() {
        // runc keeps the parent it created: tidy up after it.
        for h in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let _ = fs::remove_dir(h.path().join("hutch-it-failed"));
        }
        let _ = fs::remove_dir("/sys/fs/cgroup/hutch-it-failed");
    }
}

/// Without systemd (this host; the systemd VM runs `systemd_driver::`), `--systemd-cgroup`
/// fails clearly and leaves nothing.
#[test]
fn systemd_driver_without_systemd_fails_clearly() {
    if Path::new("/run/systemd/system").exists() {
        eprintln!("SKIP: systemd runs here (see systemd_driver::)");
        return;
    }
    let mut c = Ctr::new("cg-systemd");
    c.config["linux"]["cgroupsPath"] = json!("system.slice:hutch:x");
    c.save();
    let b = c.bundle.to_string_lossy().into_owned();
    let id = c.id.clone();
    c.rt(&["--systemd-cgroup", "create", "--bundle", &b, &id])
        .assert_fail_with("systemd");
}

/// v1 cpuset: a parent cgroup someone else made but has not filled in yet (empty cpus/mems, as
/// a concurrent runtime leaves it for a moment) must not make the container's cgroup empty
/// too, which no process could join (ENOSPC).
#[test]
fn v1_cpuset_parent_made_by_another_is_filled_in() {
    let cpuset = Path::new("/sys/fs/cgroup/cpuset");
    if systemd_driver() {
        eprintln!("SKIP: a cgroupfs parent; under systemd the unit's slice is systemd's");
        return;
    }
    if is_v2() || !cpuset.join("cpuset.cpus").exists() {
        eprintln!("SKIP: no v1 cpuset hierarchy here");
        return;
    }
    let mut c = Ctr::new("cg-cpuset-parent");
    let parent_name = format!("hutch-it-cpuset-{}", c.id);
    let parent = cpuset.join(&parent_name);
    fs::create_dir(&parent).unwrap();
    assert_eq!(
        read(&parent, "cpuset.cpus"),
        "",
        "a new v1 cpuset starts empty"
    );
    c.config["linux"]["cgroupsPath"] = json!(format!("/{parent_name}/{}", c.id));
    c.sh("echo joined");
    let out = c.run();
    let cpus = read(&parent, "cpuset.cpus");
    // Tidy up what the test made (and, for runc, the parents it keeps) before asserting.
    for h in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = fs::remove_dir(h.path().join(&parent_name).join(&c.id));
        let _ = fs::remove_dir(h.path().join(&parent_name));
    }
    assert!(out.ok() && out.stdout.contains("joined"), "{out}");
    assert!(!cpus.is_empty(), "the parent's cpuset.cpus was left empty");
}
