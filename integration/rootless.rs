//! Rootless: the runtime run by an unprivileged user (`Ctr::rootless`: the test user
//! `hutch-rootless`, its config from the runtime's own `spec --rootless`, state under its
//! `$XDG_RUNTIME_DIR`). Checked from inside (what the container sees of its user namespace)
//! and outside (owners of what it wrote, state files, cgroup files, what another user may do).
//! The cgroup delegation test is in `rootless_cgroups` (it also runs in the cgroup v2 VM).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use serde_json::json;

use crate::common::rootless::{have_id_map_helpers, test_user};
use crate::common::*;

/// Runs the runtime as `nobody` (another unprivileged user) with the test user's `--root`.
fn as_nobody(c: &Ctr, args: &[&str]) -> Out {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(runtime())
        .arg("--root")
        .arg(&c.root)
        .args(args)
        .stdin(std::process::Stdio::null());
    exec_timeout(&mut cmd, CMD_TIMEOUT)
}

/// Each line of `text` with its runs of blanks made one space (uid_map pads its columns).
fn squeezed_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn lifecycle_as_an_unprivileged_user() {
    let user = test_user();
    let mut c = Ctr::rootless("rl-life");
    c.args(&["sleep", "1000"]);
    c.create_ok();
    // The default root is under $XDG_RUNTIME_DIR, the user's, closed to everyone else.
    let state_dir = c.root.join(&c.id);
    assert_eq!(fs::metadata(&state_dir).unwrap().uid(), user.uid);
    let root_mode = fs::metadata(&c.root).unwrap().permissions().mode();
    assert_eq!(
        root_mode & 0o077,
        0,
        "{} is mode {root_mode:o}",
        c.root.display()
    );
    assert_eq!(c.status(), "created");
    c.start_ok();
    assert_eq!(c.status(), "running");
    let init = c.pid();
    let out = c.rt_piped(&["exec", &c.id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    out.assert_ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"], "{out}");
    assert_eq!(lines[1], ["0", &user.uid.to_string(), "1"], "{out}");
    // runc 1.1 lists a container's processes from its cgroup only, and there is none here.
    if is_hutch() {
        let ps = c.rt_piped(&["ps", "--format", "json", &c.id]);
        ps.assert_ok();
        let pids: Vec<i32> = serde_json::from_str(ps.stdout.trim()).unwrap();
        assert!(
            pids.contains(&init),
            "ps lists {pids:?}, not the init {init}"
        );
    }
    // The container's processes are the user's on the host.
    let host_uid = fs::metadata(format!("/proc/{init}")).unwrap().uid();
    assert_eq!(host_uid, user.uid);
    c.kill("KILL").assert_ok();
    c.wait_status("stopped", Duration::from_secs(10));
    c.delete().assert_ok();
    assert!(!state_dir.exists(), "delete left {}", state_dir.display());
}

#[test]
fn own_id_maps_to_root_and_setgroups_is_denied() {
    let user = test_user();
    let mut c = Ctr::rootless("rl-ownid");
    c.sh("cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; id -g");
    let out = c.run_ok();
    let lines = squeezed_lines(&out);
    assert_eq!(
        lines,
        [
            format!("0 {} 1", user.uid),
            format!("0 {} 1", user.gid),
            "deny".into(),
            "0".into(),
            "0".into()
        ]
    );
}

#[test]
fn subordinate_ranges_are_mapped_through_newuidmap() {
    assert!(
        have_id_map_helpers(),
        "newuidmap/newgidmap missing: apt-get install uidmap"
    );
    let user = test_user();
    let mut c = Ctr::rootless("rl-subid");
    let (sub_uid, sub_gid) = (user.subuid.0, user.subgid.0);
    c.config["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": user.uid, "size": 1},
        {"containerID": 1, "hostID": sub_uid, "size": 65536}
    ]);
    c.config["linux"]["gidMappings"] = json!([
        {"containerID": 0, "hostID": user.gid, "size": 1},
        {"containerID": 1, "hostID": sub_gid, "size": 65536}
    ]);
    // A directory of the user's that the container's uid 1000 may write too.
    let shared = c.dir.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&shared, Some(user.uid), Some(user.gid)).unwrap();
    c.add_mount(json!({
        "destination": "/mnt", "type": "bind",
        "source": shared.to_str().unwrap(), "options": ["rbind", "rw"]
    }));
    c.args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let maps = c.rt_piped(&[
        "exec",
        &c.id,
        "cat",
        "/proc/self/uid_map",
        "/proc/self/setgroups",
    ]);
    maps.assert_ok();
    let lines = squeezed_lines(&maps.stdout);
    assert_eq!(
        lines,
        [
            format!("0 {} 1", user.uid),
            format!("1 {sub_uid} 65536"),
            "allow".into()
        ]
    );
    c.rt_piped(&["exec", &c.id, "touch", "/mnt/by-root"])
        .assert_ok();
    c.rt_piped(&[
        "exec",
        "--user",
        "1000:1000",
        &c.id,
        "touch",
        "/mnt/by-1000",
    ])
    .assert_ok();
    let owner = |name: &str| {
        let m = fs::metadata(shared.join(name)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("by-root"), (user.uid, user.gid));
    assert_eq!(owner("by-1000"), (sub_uid + 999, sub_gid + 999));
    c.kill("KILL").assert_ok();
    c.wait_status("stopped", Duration::from_secs(10));
}

#[test]
fn mapping_ids_the_user_does_not_own_fails_cleanly() {
    let mut c = Ctr::rootless("rl-badmap");
    c.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    let out = c.create();
    out.assert_fail();
    if is_hutch() {
        assert!(out.stderr.contains("linux.uidMappings"), "{out}");
    }
    assert!(
        !c.root.join(&c.id).exists(),
        "a failed create left its state"
    );
}

#[test]
fn another_users_containers_are_out_of_reach() {
    let mut c = Ctr::rootless("rl-other");
    c.args(&["sleep", "1000"]);
    c.create_ok();
    for args in [
        vec!["state", c.id.as_str()],
        vec!["kill", c.id.as_str(), "KILL"],
        vec!["delete", "--force", c.id.as_str()],
        vec!["exec", c.id.as_str(), "true"],
        vec!["list"],
    ] {
        let out = as_nobody(&c, &args);
        out.assert_fail();
        if is_hutch() {
            assert!(
                out.stderr.contains("may manage only its own containers"),
                "{out}"
            );
        }
    }
    // Nothing of the state is readable by another user either.
    let mut cat = std::process::Command::new("setpriv");
    cat.args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(c.root.join(&c.id).join("state.json"));
    exec_timeout(&mut cat, CMD_TIMEOUT).assert_fail();
    assert_eq!(
        c.status(),
        "created",
        "another user's commands changed the container"
    );
}

#[test]
fn limits_without_a_writable_cgroup_are_skipped_with_a_warning() {
    hutch_only!("runc fails create here (cannot set limits: container could not join or create cgroup); the issue asks for a warning per field");
    let mut c = Ctr::rootless("rl-nocg");
    c.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 32}
    });
    c.sh("echo ran");
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "ran");
    for field in ["linux.resources.memory", "linux.resources.pids"] {
        assert!(
            out.stderr.contains(field),
            "no warning naming {field}:\n{out}"
        );
    }
}

#[test]
fn unmapped_tty_group_on_devpts_is_dropped_and_other_unmapped_ids_are_named() {
    hutch_only!("runc 1.1 fails the devpts mount with a bare EINVAL");
    let mut c = Ctr::rootless("rl-devpts");
    let mounts = c.config["mounts"].as_array_mut().unwrap();
    let devpts = mounts.iter_mut().find(|m| m["type"] == "devpts").unwrap();
    devpts["options"]
        .as_array_mut()
        .unwrap()
        .push(json!("gid=5"));
    c.sh("ls -n /dev/pts/ptmx >/dev/null && echo ok");
    assert_eq!(c.run_ok().trim(), "ok");

    let mut bad = Ctr::rootless("rl-uidopt");
    let mounts = bad.config["mounts"].as_array_mut().unwrap();
    let shm = mounts
        .iter()
        .position(|m| m["destination"] == "/dev/shm")
        .unwrap();
    mounts[shm]["options"]
        .as_array_mut()
        .unwrap()
        .push(json!("uid=1000"));
    let out = bad.run();
    out.assert_fail();
    assert!(
        out.stderr.contains(&format!("mounts[{shm}]")) && out.stderr.contains("uid=1000"),
        "{out}"
    );
}

/// CVE-2019-5736, rootless: the runtime binary the user runs is the user's own file, which the
/// container's root (the same host uid) could write. A process exec'd into the created
/// container holds the init's /proc/1/exe open (the rootless init is dumpable, for the owner's
/// `exec`); once `start` replaces the init's image, it reopens that for writing. It must reach
/// only a sealed copy.
#[test]
fn runtime_binary_stays_out_of_reach_rootless() {
    exe_attack(true);
}

/// The same attack on a binary installed as packages install it (root's, 0755): hutch runs it
/// without a copy (what the container's init runs is the binary itself), and it is out of
/// reach because no process of a rootless container may write root's files.
#[test]
fn root_owned_runtime_binary_is_out_of_reach_without_a_copy() {
    exe_attack(false);
}

fn exe_attack(owned_by_user: bool) {
    let user = test_user();
    let mut c = Ctr::rootless("rl-exe");
    let copy = c.dir.join("bin").join(runtime_name());
    fs::create_dir(c.dir.join("bin")).unwrap();
    fs::copy(runtime(), &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    if owned_by_user {
        for p in [c.dir.join("bin"), copy.clone()] {
            std::os::unix::fs::chown(&p, Some(user.uid), Some(user.gid)).unwrap();
        }
    }
    let before = fs::read(&copy).unwrap();
    c.args(&["sh", "-c", "touch /tmp/started; sleep 1000"]);
    c.save();
    let xdg = c.xdg_runtime_dir();
    let as_user = |args: &[&str]| {
        let mut real = std::process::Command::new("setpriv");
        real.arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .args(["--clear-groups", "--"])
            .arg(&copy)
            .args(args)
            .env("XDG_RUNTIME_DIR", &xdg)
            .stdin(std::process::Stdio::null());
        exec_files(&mut real, CMD_TIMEOUT)
    };
    let bundle = c.bundle.to_str().unwrap().to_string();
    let pid_file = c.pid_file().to_str().unwrap().to_string();
    as_user(&[
        "create",
        "--bundle",
        &bundle,
        "--pid-file",
        &pid_file,
        &c.id,
    ])
    .assert_ok();
    let init = c.pid();
    c.track(init);
    if is_hutch() {
        let exe = fs::read_link(format!("/proc/{init}/exe")).unwrap();
        assert_eq!(
            exe == copy,
            !owned_by_user,
            "the init runs {}",
            exe.display()
        );
    }
    let holder = "exec 3< /proc/1/exe; touch /tmp/holding; \
                  while [ ! -e /tmp/started ]; do sleep 0.02; done; \
                  if (echo x >> /proc/self/fd/3) 2>/dev/null; then echo WROTE; else echo refused; fi \
                  > /tmp/result";
    let holder_pid_file = c.dir.join("holder.pid");
    let holder_pid = holder_pid_file.to_str().unwrap().to_string();
    as_user(&[
        "exec",
        "-d",
        "--pid-file",
        &holder_pid,
        &c.id,
        "sh",
        "-c",
        holder,
    ])
    .assert_ok();
    let holder: i32 = fs::read_to_string(&holder_pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let holder_start = proc_stat(holder).map(|(_, start)| start).unwrap_or(0);
    c.track(holder);
    wait_for_file(&c.rootfs.join("tmp/holding"), Duration::from_secs(10));
    as_user(&["start", &c.id]).assert_ok();
    wait_for_file(&c.rootfs.join("tmp/result"), Duration::from_secs(10));
    // The holder ends there; reaped now (it is our child: a detached exec's process comes back
    // to the subreaper), or the killed init could not finish exiting.
    wait_dead(holder, holder_start, Duration::from_secs(10)).unwrap();
    let result = fs::read_to_string(c.rootfs.join("tmp/result")).unwrap();
    let after = fs::read(&copy).unwrap();
    assert_eq!(result.trim(), "refused");
    assert!(
        before == after,
        "the user's runtime binary was modified from inside the container"
    );
    c.kill("KILL").assert_ok();
    c.wait_status("stopped", Duration::from_secs(10));
}
