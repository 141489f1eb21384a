//! A killed or slow runtime command never hurts the host or leaves anything behind: large
//! messages between hutch and the init, commands killed mid-way, slow hooks, corrupt state,
//! concurrent commands on one id.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

const T: Duration = Duration::from_secs(20);

/// Waits until `path` holds a pid (written by a hook) and returns it.
#[track_caller]
fn read_pid_file(path: &std::path::Path) -> i32 {
    wait_for_file(path, T);
    let deadline = Instant::now() + T;
    loop {
        if let Ok(pid) = fs::read_to_string(path).unwrap_or_default().trim().parse() {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A pid's start time, so later waits never mistake (or reap) a process that reused the pid.
#[track_caller]
fn start_of(pid: i32) -> u64 {
    proc_stat(pid)
        .map(|s| s.1)
        .unwrap_or_else(|| panic!("pid {pid} is already gone"))
}

/// An exclusive flock on a container's state directory, as a command working on it holds.
/// Held for its lock only: dropping it releases the lock.
struct DirLock(#[allow(dead_code)] fs::File);

impl DirLock {
    fn take(path: &std::path::Path) -> DirLock {
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        // SAFETY: flock on an fd we own.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        DirLock(f)
    }
}

/// The state passed between hutch and the init carries the annotations: megabytes of them
/// (and of environment) once made `create` succeed with a dead init, or fail with EMSGSIZE.
#[test]
fn multi_mib_annotations_and_env_reach_hooks_and_the_container() {
    let mut c = Ctr::new("big-msg");
    let big = "a".repeat(1024 * 1024);
    let annotations: serde_json::Map<String, serde_json::Value> = (0..4)
        .map(|i| (format!("org.example.big{i}"), json!(big)))
        .collect();
    c.config["annotations"] = serde_json::Value::Object(annotations);
    // 2.4 MiB of environment: execve allows a quarter of the stack limit, so raise it.
    let mut env = c.config["process"]["env"].as_array().cloned().unwrap();
    for i in 0..24 {
        env.push(json!(format!("BIG{i}={}", "e".repeat(100 * 1024))));
    }
    c.config["process"]["env"] = json!(env);
    c.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_STACK", "hard": 64u64 << 20, "soft": 64u64 << 20}]);
    let sizes = c.dir.join("hook-sizes");
    let hook = write_script(
        &c.dir.join("size-hook"),
        &format!("wc -c >> {}", sizes.display()),
    );
    // createContainer runs in the init (its state crosses the socket); startContainer's state
    // comes with the final message of create.
    fs::copy(&hook, c.rootfs.join("bin/size-hook")).unwrap();
    c.config["hooks"] = json!({
        "createContainer": [{"path": hook}],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "wc -c > /hook-size"]}],
    });
    c.sh("env | wc -c; cat /hook-size");
    c.create_ok();
    assert_eq!(c.status(), "created");
    let state = c.state();
    for i in 0..4 {
        assert_eq!(
            state["annotations"][format!("org.example.big{i}")]
                .as_str()
                .map(str::len),
            Some(big.len()),
            "annotation {i} in the state"
        );
    }
    let pid = c.pid();
    let pid_start = start_of(pid);
    c.start_ok();
    let _ = wait_dead(pid, pid_start, T);
    let out = c.ctr_stdout();
    let nums: Vec<usize> = out
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "container output: {out:?}");
    assert!(nums[0] > 24 * 100 * 1024, "env seen inside: {out:?}");
    assert!(
        nums[1] > 4 * 1024 * 1024,
        "startContainer hook state: {out:?}"
    );
    let hook_sizes = fs::read_to_string(&sizes).unwrap_or_default();
    let hook_size: usize = hook_sizes.trim().parse().unwrap_or(0);
    assert!(
        hook_size > 4 * 1024 * 1024,
        "createContainer hook state: {hook_sizes:?}"
    );
}

/// `state` and `kill` must never wait behind a command running hooks: with a slow poststart
/// hook, `start` holds the container; with a slow prestart hook, `create` does.
#[test]
fn state_and_kill_do_not_wait_behind_slow_hooks() {
    hutch_only!("runc has no cross-process lock; this checks hutch's own locking");
    for kind in ["poststart", "prestart"] {
        let mut c = Ctr::new(&format!("slowhook-{kind}"));
        let hook_pid = c.dir.join("hook.pid");
        let hook = write_script(
            &c.dir.join("slow-hook"),
            &format!("echo $$ > {}; exec sleep 60", hook_pid.display()),
        );
        c.config["hooks"] = json!({ kind: [{"path": hook}] });
        c.args(&["sleep", "100"]);
        c.save();
        let b = c.bundle.to_string_lossy().into_owned();
        let id = c.id.clone();
        let mut slow = if kind == "prestart" {
            Proc::spawn(
                c.cmd()
                    .args(["create", "--bundle", &b, &id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
        } else {
            c.create_ok();
            Proc::spawn(
                c.cmd()
                    .args(["start", &id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
        };
        let hook = read_pid_file(&hook_pid);
        let hook_start = proc_stat(hook).map(|s| s.1).unwrap_or(0);

        let st = c.rt(&["state", &id]);
        assert!(st.ok(), "{kind}: state while the hook runs: {st}");
        let state = parse_json(&st.stdout);
        let want = if kind == "prestart" {
            "creating"
        } else {
            "running"
        };
        assert_eq!(state["status"], want, "{kind}: {st}");
        let init = state["pid"].as_i64().unwrap_or(0) as i32;
        let init_start = if init > 0 { start_of(init) } else { 0 };
        if init > 0 {
            c.track(init);
        }
        c.rt(&["list"]).assert_ok();
        assert!(
            alive(hook, hook_start),
            "{kind}: the hook must still be running: state did not wait for it"
        );
        c.kill("KILL").assert_ok();
        if init > 0 {
            wait_dead(init, init_start, T).unwrap();
        }
        assert!(
            alive(hook, hook_start),
            "{kind}: kill must not have waited for the hook"
        );
        // The command running the hook is killed: its hook dies with it.
        let _ = slow.child.kill();
        let _ = slow.child.wait();
        wait_dead(hook, hook_start, T)
            .unwrap_or_else(|e| panic!("{kind}: hook outlived hutch: {e}"));
    }
}

/// A `create` killed while its prestart hook runs: the hook dies with it, the container reads
/// as stopped, and `delete --force` removes everything (state, cgroups, the init).
#[test]
fn killed_create_leaves_nothing_after_delete_force() {
    hutch_only!("runc leaves state behind a killed create");
    let mut c = Ctr::new("killed-create");
    let hook_pid = c.dir.join("hook.pid");
    let hook = write_script(
        &c.dir.join("slow-hook"),
        &format!("echo $$ > {}; exec sleep 60", hook_pid.display()),
    );
    c.config["hooks"] = json!({"prestart": [{"path": hook}]});
    c.save();
    let b = c.bundle.to_string_lossy().into_owned();
    let id = c.id.clone();
    let mut create = Proc::spawn(
        c.cmd()
            .args(["create", "--bundle", &b, &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let hook = read_pid_file(&hook_pid);
    let hook_start = proc_stat(hook).map(|s| s.1).unwrap_or(0);
    let init = c.state()["pid"].as_i64().unwrap_or(0) as i32;
    assert!(init > 0, "the init exists while prestart hooks run");
    let init_start = start_of(init);
    let _ = create.child.kill();
    let _ = create.child.wait();
    wait_dead(hook, hook_start, T).unwrap_or_else(|e| panic!("hook outlived create: {e}"));
    // The init goes by itself once its parent is gone; the cgroup stays for delete.
    wait_dead(init, init_start, T).unwrap();
    assert_eq!(c.status(), "stopped");
    assert!(
        !cgroup_dirs_named(&id).is_empty(),
        "the cgroup is still there for delete to find"
    );
    c.rt(&["delete", "--force", &id]).assert_ok();
    c.rt(&["state", &id]).assert_fail_with("does not exist");
    let leaks = c.leaks();
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// A temp directory of a create killed before it published the id is found by
/// `delete --force` of the id (and `list` never shows it).
#[test]
fn stale_temp_dir_of_a_killed_create_is_removed() {
    hutch_only!("hutch's own state layout");
    let c = Ctr::new("stale-temp");
    fs::create_dir_all(&c.root).unwrap();
    let temp = c.root.join(format!(".creating-{}-99999999", c.id));
    fs::create_dir(&temp).unwrap();
    fs::write(temp.join("config.json"), "{}").unwrap();
    let other = c.root.join(format!(".creating-{}x-99999999", c.id));
    fs::create_dir(&other).unwrap();
    let list = c.rt(&["list", "-q"]);
    list.assert_ok();
    assert_eq!(list.stdout.trim(), "");
    c.rt(&["delete", "--force", &c.id]).assert_ok();
    assert!(!temp.exists(), "the killed create's temp dir is left");
    assert!(other.exists(), "another id's temp dir must stay");
    fs::remove_dir(&other).unwrap();
}

/// A corrupt state file: `state` says so; `delete --force` still removes the container's
/// processes, cgroups and state.
#[test]
fn corrupt_state_file_is_reported_and_delete_force_cleans_up() {
    hutch_only!("hutch's own state layout");
    for garbage in ["truncated", "garbage"] {
        let mut c = Ctr::new(&format!("corrupt-{garbage}"));
        c.args(&["sleep", "100"]);
        c.create_ok();
        c.start_ok();
        let pid = c.pid();
        let pid_start = start_of(pid);
        let file = c.root.join(&c.id).join("state.json");
        let text = fs::read_to_string(&file).unwrap();
        let bad = if garbage == "truncated" {
            text[..text.len() / 2].to_string()
        } else {
            "\u{1}\u{2}not json at all".to_string()
        };
        fs::write(&file, bad).unwrap();
        let st = c.rt(&["state", &c.id]);
        st.assert_fail_with("corrupt");
        c.rt(&["delete", &c.id]).assert_fail_with("corrupt");
        assert!(
            alive(pid, pid_start),
            "a failed delete must not stop the container"
        );
        c.rt(&["delete", "--force", &c.id]).assert_ok();
        wait_dead(pid, pid_start, T).unwrap();
        let leaks = c.leaks();
        assert!(leaks.is_empty(), "{garbage}: {leaks:#?}");
    }
}

/// A `start` killed after it released the init but before it removed exec.fifo: the user's
/// process runs, so the container is running, not created (and cannot be started again).
#[test]
fn start_killed_after_releasing_the_init_reports_running() {
    hutch_only!("hutch's exec.fifo protocol (runc's init writes, start reads)");
    let mut c = Ctr::new("half-start");
    c.sh("echo started; exec sleep 100");
    c.create_ok();
    let fifo = c.root.join(&c.id).join("exec.fifo");
    // What `start` does before it is killed: the byte, without removing the fifo.
    let mut w = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    std::io::Write::write_all(&mut w, b"0").unwrap();
    drop(w);
    let deadline = Instant::now() + T;
    while !c.ctr_stdout().contains("started") {
        assert!(Instant::now() < deadline, "the process never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(fifo.exists());
    assert_eq!(c.status(), "running");
    c.start().assert_fail();
}

/// A command waiting for the lock while the container is deleted and re-created under the
/// same id must lock the new directory before acting on it, not act on the new container
/// under the old one's lock.
#[test]
fn a_waiting_command_locks_the_directory_it_acts_on() {
    hutch_only!("hutch's own state-directory locking");
    let mut c = Ctr::new("relock");
    c.args(&["sleep", "100"]);
    c.create_ok();
    let old_init = c.pid();
    let old_start = start_of(old_init);
    c.kill("KILL").assert_ok();
    wait_dead(old_init, old_start, T).unwrap();
    let dir = c.root.join(&c.id);
    let old_lock = DirLock::take(&dir);
    let id = c.id.clone();
    let mut waiting = Proc::spawn(
        c.cmd()
            .args(["delete", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    std::thread::sleep(Duration::from_millis(300));
    // The old container goes away and a new one takes its id while `delete` waits.
    let moved = c.dir.join("old-state");
    fs::rename(&dir, &moved).unwrap();
    c.create_ok();
    let new_init = c.pid();
    let new_start = start_of(new_init);
    let new_lock = DirLock::take(&dir);
    drop(old_lock);
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        alive(new_init, new_start),
        "delete acted on the new container without its lock"
    );
    assert!(
        dir.exists(),
        "delete removed the new container without its lock"
    );
    assert!(
        waiting.child.try_wait().unwrap().is_none(),
        "delete must still wait for the new container's lock"
    );
    drop(new_lock);
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(st) = waiting.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "delete never finished");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "delete of the new container: {status:?}");
    wait_dead(new_init, new_start, T).unwrap();
    // The old one's state goes back so the harness's delete --force removes it.
    fs::rename(&moved, &dir).unwrap();
}

#[test]
fn events_with_a_huge_interval_fail_cleanly() {
    let mut c = Ctr::new("events-huge");
    c.args(&["sleep", "100"]);
    c.create_ok();
    let out = c.rt(&["events", "--interval", "99999999999999999999h", &c.id]);
    out.assert_fail();
    assert_eq!(out.code(), 1, "an error, not an abort: {out}");
    assert!(
        out.stderr.contains("interval") || out.stderr.contains("duration"),
        "{out}"
    );
}

#[test]
fn ids_starting_with_a_dot_are_refused() {
    hutch_only!("runc accepts them (and then its list hides nothing); hutch's list would");
    let c = Ctr::new("dot-id");
    c.save();
    let b = c.bundle.to_string_lossy().into_owned();
    for bad in [".hidden", ".creating-x-1", ".x"] {
        let out = c.rt(&["create", "--bundle", &b, bad]);
        out.assert_fail_with("id");
        let left: Vec<_> = fs::read_dir(&c.root)
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "id {bad:?} left {left:?}");
    }
}

/// 30 parallel creates of one id: exactly one wins, the others fail cleanly and leave
/// nothing of theirs.
#[test]
fn parallel_creates_of_one_id_exactly_one_succeeds() {
    let mut c = Ctr::new("race-create");
    c.args(&["sleep", "100"]);
    c.save();
    let b = c.bundle.to_string_lossy().into_owned();
    let id = c.id.clone();
    let mut procs: Vec<_> = (0..30)
        .map(|_| {
            c.cmd()
                .args(["create", "--bundle", &b, &id])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn create")
        })
        .collect();
    let mut ok = 0;
    let mut errors = Vec::new();
    for p in procs.iter_mut() {
        let (st, _, err) = wait_child(p, CMD_TIMEOUT, "parallel create");
        if st.success() {
            ok += 1;
        } else {
            errors.push(err);
        }
    }
    assert_eq!(ok, 1, "exactly one create must win; errors: {errors:?}");
    for e in &errors {
        assert!(e.contains("already exists"), "a losing create said: {e}");
    }
    let pid = c.pid();
    assert!(pid > 0);
    let entries: Vec<_> = fs::read_dir(&c.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, vec![id.clone()], "only the winner's state");
}

/// Many containers created and force-deleted 8 at a time, several rounds: nothing is left.
#[test]
fn parallel_lifecycles_leave_nothing() {
    const ROUNDS: usize = 5;
    const CONTAINERS: usize = 50;
    for round in 0..ROUNDS {
        let ctrs: Vec<_> = (0..CONTAINERS)
            .map(|i| {
                let mut c = Ctr::new(&format!("par-{round}-{i}"));
                c.args(&["sleep", "100"]);
                c.save();
                std::sync::Mutex::new(c)
            })
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= ctrs.len() {
                        return;
                    }
                    let mut c = ctrs[i].lock().unwrap();
                    let b = c.bundle.to_string_lossy().into_owned();
                    let id = c.id.clone();
                    c.rt(&["run", "-d", "--bundle", &b, &id]).assert_ok();
                    let pid = c.pid();
                    assert!(pid > 0);
                    c.rt(&["delete", "--force", &id]).assert_ok();
                    let leaks = c.leaks();
                    assert!(leaks.is_empty(), "{id}: {leaks:#?}");
                });
            }
        });
    }
}

/// `kill` racing `delete --force` on the same container: both finish, nothing is left, and
/// kill never signals anything but the container.
#[test]
fn kill_racing_delete_leaves_nothing() {
    for i in 0..10 {
        let mut c = Ctr::new(&format!("kill-del-{i}"));
        c.args(&["sleep", "100"]);
        c.create_ok();
        c.start_ok();
        let pid = c.pid();
        let pid_start = start_of(pid);
        let id = c.id.clone();
        let mut kill = c
            .cmd()
            .args(["kill", &id, "KILL"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let del = c.rt(&["delete", "--force", &id]);
        let _ = wait_child(&mut kill, CMD_TIMEOUT, "kill");
        del.assert_ok();
        wait_dead(pid, pid_start, T).unwrap();
        let leaks = c.leaks();
        assert!(leaks.is_empty(), "{leaks:#?}");
    }
}

/// The intermediate process that joins a running container's namespaces for `exec` dies
/// without a word (here: SIGSYS on setns, from a filter the test puts on hutch): hutch must
/// report it, not wait forever for a message that will never come.
#[test]
fn exec_reports_an_intermediate_that_dies_silently() {
    hutch_only!("hutch's intermediate process");
    let mut c = Ctr::new("silent-intermediate");
    c.args(&["sleep", "100"]);
    c.create_ok();
    c.start_ok();
    let filtered = fixture("seccomp_exec");
    let mut cmd = std::process::Command::new(filtered);
    cmd.arg(libc::SYS_setns.to_string())
        .arg("kill")
        .arg(runtime())
        .arg("--root")
        .arg(&c.root)
        .args(["exec", &c.id, "true"])
        .stdin(Stdio::null());
    let out = exec_timeout(&mut cmd, T);
    out.assert_fail();
    assert!(
        out.stderr.contains("joining the container's namespaces"),
        "the error must say what died: {out}"
    );
}
