//! The state machine: create → created → start → running → stopped → delete, exit statuses,
//! signals, and every command refused in the wrong state.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

const T: Duration = Duration::from_secs(20);

/// A script that waits until the test creates /tmp/go in the rootfs, then prints `done`.
const WAIT_GO: &str = "while [ ! -e /tmp/go ]; do sleep 0.02; done; echo done";

#[test]
fn create_start_stop_delete() {
    let mut c = Ctr::new("lifecycle");
    c.sh(WAIT_GO);
    c.create_ok();

    let st = c.state();
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid > 0, "created container must have a pid: {st}");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "init {pid} does not exist"
    );
    assert_eq!(
        c.ctr_stdout(),
        "",
        "the user process must not run before start"
    );

    c.start_ok();
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid, "start must not change the init pid");

    fs::write(c.rootfs.join("tmp/go"), "").unwrap();
    c.wait_status("stopped", T);
    let st = c.state();
    assert_eq!(st["pid"], 0, "a stopped container reports pid 0: {st}");
    assert_eq!(c.ctr_stdout(), "done\n");

    c.delete().assert_ok();
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
    let leaks = c.leaks();
    assert!(leaks.is_empty(), "after delete: {leaks:#?}");
}

#[test]
fn state_json_has_runc_fields() {
    let mut c = Ctr::new("state-json");
    c.args(&["sleep", "100"]);
    c.config["annotations"] = json!({"org.example.key": "value-1", "other": "2"});
    c.create_ok();
    let out = c.rt(&["state", &c.id]);
    out.assert_ok();
    let st = parse_json(&out.stdout);
    for key in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(st.get(key).is_some(), "state lacks {key:?}: {st}");
    }
    assert!(
        st["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{st}"
    );
    assert_eq!(st["id"], c.id.as_str());
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert_eq!(st["bundle"], c.bundle.to_str().unwrap());
    assert_eq!(st["rootfs"], c.rootfs.to_str().unwrap());
    assert!(st["owner"].is_string(), "{st}");
    assert_eq!(st["annotations"]["org.example.key"], "value-1", "{st}");
    assert_eq!(st["annotations"]["other"], "2", "{st}");
    // RFC 3339 with a UTC offset: 2026-01-02T03:04:05.123Z or +00:00.
    let created = st["created"].as_str().unwrap();
    assert!(is_rfc3339(created), "created is not RFC3339: {created}");
}

#[test]
fn state_json_annotations_absent_when_unset() {
    hutch_only!("runc omits annotations too, but this pins hutch's omission of an empty map");
    let mut c = Ctr::new("state-noann");
    c.args(&["sleep", "100"]);
    if let Some(o) = c.config.as_object_mut() {
        o.remove("annotations");
    }
    c.create_ok();
    let st = c.state();
    assert!(
        st.get("annotations")
            .is_none_or(|a| a.is_null() || a.as_object().is_some_and(|m| m.is_empty())),
        "{st}"
    );
}

pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(|c| c.is_ascii_digit());
    let date_ok = digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10);
    let time_ok = (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    let zone_ok = rest == "Z"
        || rest == "z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':');
    date_ok && time_ok && zone_ok
}

#[test]
fn pid_file_and_reparenting_to_the_callers_subreaper() {
    let mut c = Ctr::new("pidfile");
    c.args(&["sleep", "100"]);
    c.create_ok();
    let text = fs::read_to_string(c.pid_file()).expect("pid file written by create");
    assert!(
        !text.ends_with('\n'),
        "pid file must hold the bare decimal pid: {text:?}"
    );
    let pid: i32 = text
        .parse()
        .unwrap_or_else(|_| panic!("pid file not decimal: {text:?}"));
    assert_eq!(pid, c.pid(), "pid file and state disagree");
    // create exited and left no monitor: the init was re-parented to us (a subreaper).
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        ppid,
        std::process::id() as i32,
        "init's parent should be the caller (subreaper)"
    );
    // No temp file left next to the pid file.
    let others: Vec<_> = fs::read_dir(&c.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("init.pid") && n != "init.pid")
        .collect();
    assert!(others.is_empty(), "stray pid temp files: {others:?}");
}

#[test]
fn pid_file_relative_path_is_relative_to_cwd() {
    let mut c = Ctr::new("pidfile-rel");
    c.args(&["sleep", "100"]);
    c.save();
    let mut cmd = c.cmd();
    cmd.current_dir(&c.dir)
        .args(["create", "--bundle"])
        .arg(&c.bundle)
        .args(["--pid-file", "rel.pid", &c.id]);
    exec_files(&mut cmd, CMD_TIMEOUT).assert_ok();
    let pid = c.pid();
    let text = fs::read_to_string(c.dir.join("rel.pid")).expect("relative pid file in cwd");
    assert_eq!(text, pid.to_string());
}

#[test]
fn exit_status_reaches_the_subreaper() {
    let mut c = Ctr::new("exit-subreaper");
    c.sh("exit 7");
    c.create_ok();
    let pid = c.pid();
    c.start_ok();
    let st = wait_dead(pid, proc_stat(pid).map(|s| s.1).unwrap_or(0), T).unwrap();
    c.reaped.insert(pid);
    let st = st.expect("the init should be our child (re-parented to the subreaper)");
    assert_eq!(wait_status_code(st), 7);
    c.wait_status("stopped", T);
}

#[test]
fn run_exits_with_container_status() {
    let mut c = Ctr::new("run-exit");
    c.sh("echo out; echo err >&2; exit 3");
    let out = c.run();
    assert_eq!(out.code(), 3, "{out}");
    assert_eq!(out.stdout, "out\n", "{out}");
    assert!(out.stderr.contains("err\n"), "{out}");
    // run without --keep deletes the container afterwards.
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
}

#[test]
fn run_exit_zero() {
    let mut c = Ctr::new("run-zero");
    c.args(&["true"]);
    let out = c.run();
    assert_eq!(out.code(), 0, "{out}");
}

#[test]
fn run_killed_by_signal_exits_128_plus_signal() {
    // Without a pid namespace, sh is not a namespace init and SIGKILL to itself works.
    let mut c = Ctr::new("run-sig");
    c.drop_ns("pid");
    c.sh("kill -9 $$");
    let out = c.run();
    assert_eq!(out.code(), 137, "{out}");
}

#[test]
fn run_killed_from_outside_exits_137() {
    let mut c = Ctr::new("run-kill-out");
    c.sh("echo ready; exec sleep 100");
    let mut cmd = c.run_cmd(&[]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    wait_running(&mut c);
    c.kill("KILL").assert_ok();
    let (status, _, err) = wait_child(&mut child, T, "run");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.code(),
        Some(137),
        "status {status:?} signal {:?}; stderr {err}",
        status.signal()
    );
}

#[test]
fn run_forwards_signals_to_the_container() {
    let mut c = Ctr::new("run-fwd");
    c.sh("trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done");
    let mut cmd = c.run_cmd(&[]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    wait_running(&mut c);
    std::thread::sleep(Duration::from_millis(200)); // let sh install its trap
                                                    // SAFETY: signalling the runtime process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let (status, out, err) = wait_child(&mut child, T, "run");
    assert_eq!(status.code(), Some(42), "stdout {out} stderr {err}");
    assert!(out.contains("got-term"), "stdout {out}");
}

/// Polls `state` until the container is running (it may not exist yet at first).
pub fn wait_running(c: &mut Ctr) {
    let deadline = Instant::now() + T;
    loop {
        let out = c.rt(&["state", &c.id]);
        if out.ok() {
            let v = parse_json(&out.stdout);
            if v["status"] == "running" {
                if let Some(pid) = v["pid"].as_i64() {
                    c.track(pid as i32);
                }
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "container never reached running: {out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_detached() {
    let mut c = Ctr::new("run-d");
    c.args(&["sleep", "100"]);
    c.save();
    let b = c.bundle.to_string_lossy().into_owned();
    let id = c.id.clone();
    let pf = c.pid_file().to_string_lossy().into_owned();
    let out = exec_files(
        c.cmd()
            .args(["run", "-d", "--bundle", &b, "--pid-file", &pf, &id]),
        CMD_TIMEOUT,
    );
    out.assert_ok();
    assert_eq!(c.status(), "running");
    let pid = c.pid();
    assert_eq!(fs::read_to_string(c.pid_file()).unwrap(), pid.to_string());
    c.kill("KILL").assert_ok();
    c.wait_status("stopped", T);
    c.delete().assert_ok();
}

#[test]
fn kill_default_named_and_numeric_signals() {
    let mut c = Ctr::new("kill-sigs");
    c.sh(
        "trap 'echo usr1' USR1; trap 'echo usr2' USR2; trap 'echo hup' HUP; \
         trap 'echo term; exit 0' TERM; echo ready; while :; do sleep 0.02; done",
    );
    c.create_ok();
    c.start_ok();
    let pid = c.pid();
    wait_output(&c, "ready\n");
    std::thread::sleep(Duration::from_millis(100));
    c.kill("10").assert_ok(); // SIGUSR1 by number
    wait_output(&c, "ready\nusr1\n");
    c.kill("USR2").assert_ok(); // bare name
    wait_output(&c, "ready\nusr1\nusr2\n");
    c.kill("SIGHUP").assert_ok(); // SIG-prefixed name
    wait_output(&c, "ready\nusr1\nusr2\nhup\n");
    c.rt(&["kill", &c.id]).assert_ok(); // default: SIGTERM
    wait_output(&c, "ready\nusr1\nusr2\nhup\nterm\n");
    let st = wait_dead(pid, 0, T).ok().flatten();
    c.reaped.insert(pid);
    if let Some(st) = st {
        assert_eq!(wait_status_code(st), 0);
    }
    c.wait_status("stopped", T);
}

#[test]
fn kill_9_and_sigkill_spellings() {
    for sig in ["9", "KILL", "SIGKILL"] {
        let mut c = Ctr::new("kill-9");
        c.args(&["sleep", "100"]);
        c.create_ok();
        c.start_ok();
        let pid = c.pid();
        c.kill(sig).assert_ok();
        let st = wait_dead(pid, 0, T).unwrap();
        c.reaped.insert(pid);
        assert_eq!(st.map(wait_status_code), Some(137), "signal spelled {sig}");
        c.wait_status("stopped", T);
    }
}

#[test]
fn kill_created_container_works() {
    // The spec allows kill in created and running; the init must die before the user process runs.
    let mut c = Ctr::new("kill-created");
    c.sh("echo should-not-run");
    c.create_ok();
    let pid = c.pid();
    c.kill("KILL").assert_ok();
    wait_dead(pid, 0, T).unwrap();
    c.reaped.insert(pid);
    c.wait_status("stopped", T);
    assert_eq!(c.ctr_stdout(), "");
}

fn wait_output(c: &Ctr, want: &str) {
    let deadline = Instant::now() + T;
    loop {
        let got = c.ctr_stdout();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "container output {got:?}, wanted {want:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_stopped_container_says_not_running() {
    let mut c = Ctr::new("kill-stopped");
    c.args(&["true"]);
    c.create_ok();
    c.start_ok();
    c.wait_status("stopped", T);
    c.kill("KILL").assert_fail_with("container not running");
    c.kill("TERM").assert_fail_with("container not running");
}

#[test]
fn kill_unknown_signal_is_refused() {
    let mut c = Ctr::new("kill-bad");
    c.args(&["sleep", "100"]);
    c.create_ok();
    c.start_ok();
    for bad in ["FOO", "SIGFOO", "-1", "99999", "9x"] {
        let out = c.kill(bad);
        out.assert_fail();
        assert!(
            out.stderr.to_lowercase().contains("signal"),
            "should name the signal problem:\n{out}"
        );
    }
    assert_eq!(
        c.status(),
        "running",
        "a refused kill must not touch the container"
    );
}

#[test]
fn kill_all_kills_every_process() {
    // No pid namespace: killing the init alone would leave its children running.
    let mut c = Ctr::new("kill-all");
    c.drop_ns("pid");
    c.sh("sleep 100 & sleep 100 & echo ready; wait");
    c.create_ok();
    c.start_ok();
    let pid = c.pid();
    wait_output(&c, "ready\n");
    let children: Vec<i32> = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(children.len(), 2, "expected two sleeps: {children:?}");
    let starts: Vec<u64> = children.iter().map(|p| proc_stat(*p).unwrap().1).collect();
    for &ch in &children {
        c.track(ch);
    }
    c.rt(&["kill", "--all", &c.id, "KILL"]).assert_ok();
    for (ch, st) in children.iter().zip(starts) {
        wait_dead(*ch, st, T).unwrap_or_else(|e| panic!("kill --all left a child: {e}"));
    }
    wait_dead(pid, 0, T).unwrap();
    c.wait_status("stopped", T);
}

#[test]
fn missing_container_does_not_exist() {
    let c = Ctr::new("missing");
    for args in [
        vec!["state", c.id.as_str()],
        vec!["start", c.id.as_str()],
        vec!["kill", c.id.as_str(), "KILL"],
        vec!["delete", c.id.as_str()],
    ] {
        c.rt(&args).assert_fail_with("container does not exist");
    }
}

#[test]
fn delete_force_of_missing_container_exits_zero() {
    let c = Ctr::new("delete-missing");
    c.rt(&["delete", "--force", &c.id]).assert_ok();
    c.rt(&["delete", "-f", &c.id]).assert_ok();
}

#[test]
fn delete_running_needs_force() {
    let mut c = Ctr::new("delete-running");
    c.args(&["sleep", "100"]);
    c.create_ok();
    c.start_ok();
    let pid = c.pid();
    let out = c.delete();
    out.assert_fail();
    assert_eq!(
        c.status(),
        "running",
        "a refused delete must not touch the container"
    );
    assert!(alive(pid, proc_stat(pid).unwrap().1));
    c.rt(&["delete", "--force", &c.id]).assert_ok();
    wait_dead(pid, 0, T).unwrap();
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
    let leaks = c.leaks();
    assert!(leaks.is_empty(), "{leaks:#?}");
}

#[test]
fn delete_force_of_created_container() {
    let mut c = Ctr::new("delete-created");
    c.sh("echo should-not-run");
    c.create_ok();
    let pid = c.pid();
    c.rt(&["delete", "--force", &c.id]).assert_ok();
    wait_dead(pid, 0, T).unwrap();
    assert_eq!(c.ctr_stdout(), "");
    let leaks = c.leaks();
    assert!(leaks.is_empty(), "{leaks:#?}");
}

#[test]
fn start_in_wrong_states_is_refused() {
    let mut c = Ctr::new("start-twice");
    c.sh(WAIT_GO);
    c.create_ok();
    c.start_ok();
    assert_eq!(c.status(), "running");
    c.start().assert_fail();
    assert_eq!(c.status(), "running");
    fs::write(c.rootfs.join("tmp/go"), "").unwrap();
    c.wait_status("stopped", T);
    c.start().assert_fail();
    assert_eq!(c.status(), "stopped");
    assert_eq!(
        c.ctr_stdout(),
        "done\n",
        "the process must have run exactly once"
    );
}

#[test]
fn concurrent_starts_run_the_process_once() {
    let mut c = Ctr::new("start-race");
    c.sh("echo once; sleep 0.5");
    c.create_ok();
    let outs: Vec<Out> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| c.start())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = outs.iter().filter(|o| o.ok()).count();
    assert_eq!(
        ok,
        1,
        "exactly one start should succeed: {:#?}",
        outs.iter().map(|o| o.to_string()).collect::<Vec<_>>()
    );
    c.wait_status("stopped", T);
    assert_eq!(c.ctr_stdout(), "once\n");
}

#[test]
fn duplicate_id_is_refused_and_original_untouched() {
    let mut c = Ctr::new("dup");
    c.args(&["sleep", "100"]);
    c.create_ok();
    let pid = c.pid();
    let b = c.bundle.to_string_lossy().into_owned();
    let id = c.id.clone();
    c.rt(&["create", "--bundle", &b, &id])
        .assert_fail_with("already exists");
    c.rt(&["run", "--bundle", &b, &id])
        .assert_fail_with("already exists");
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
}

#[test]
fn same_id_can_be_reused_after_delete() {
    let mut c = Ctr::new("reuse");
    c.sh("echo one");
    c.create_ok();
    c.start_ok();
    c.wait_status("stopped", T);
    c.delete().assert_ok();
    c.sh("echo two");
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "two\n");
}

#[test]
fn many_containers_in_one_root() {
    let mut c = Ctr::new("many");
    c.args(&["sleep", "100"]);
    c.save();
    let b = c.bundle.to_string_lossy().into_owned();
    let ids: Vec<String> = (0..4).map(|i| format!("{}-n{i}", c.id)).collect();
    std::thread::scope(|s| {
        for id in &ids {
            let c = &c;
            let b = &b;
            s.spawn(move || {
                c.rt(&["create", "--bundle", b, id]).assert_ok();
            });
        }
    });
    let out = c.rt(&["list", "--format", "json"]);
    out.assert_ok();
    let list = parse_json(&out.stdout);
    let got: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["id"].as_str())
        .collect();
    for id in &ids {
        assert!(
            got.contains(&id.as_str()),
            "{id} missing from list: {got:?}"
        );
    }
    let mut pids = Vec::new();
    for id in &ids {
        let st = parse_json(&c.rt(&["state", id]).assert_ok().stdout);
        assert_eq!(st["status"], "created");
        pids.push(st["pid"].as_i64().unwrap() as i32);
    }
    for id in &ids {
        c.rt(&["delete", "--force", id]).assert_ok();
    }
    for p in pids {
        wait_dead(p, 0, T).unwrap();
    }
    let left: Vec<_> = fs::read_dir(&c.root)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter().all(|n| !n.to_string_lossy().contains("-n")),
        "state left: {left:?}"
    );
}

/// A recorded init pid that now names another process (pid reuse) must read as stopped, and
/// `kill` must not signal that process: the start time recorded at create tells them apart.
#[test]
fn pid_reuse_is_detected() {
    hutch_only!("edits hutch's own state.json");
    let mut c = Ctr::new("pid-reuse");
    c.args(&["sleep", "30"]);
    c.create_ok();
    let pid = c.state()["pid"].as_i64().unwrap() as i32;
    let state_path = c.root.join(&c.id).join("state.json");
    let mut state: serde_json::Value = parse_json(&fs::read_to_string(&state_path).unwrap());
    // A live process that is not the container: the test itself, with the init's start time.
    state["init_pid"] = json!(std::process::id());
    fs::write(&state_path, state.to_string()).unwrap();
    assert_eq!(c.state()["status"], "stopped");
    // SIGUSR1 would end this test process if it were sent.
    c.rt(&["kill", &c.id.clone(), "USR1"])
        .assert_fail_with("container not running");
    // Put the real pid back so the guard can clean the container up.
    state["init_pid"] = json!(pid);
    fs::write(&state_path, state.to_string()).unwrap();
    c.rt(&["delete", "--force", &c.id.clone()]).assert_ok();
}

/// Waits for the init of a created container that `sig` should end, and returns its wait
/// status, which the test process gets as the init's subreaper.
fn created_init_ends(c: &mut Ctr, sig: &str) -> Option<i32> {
    c.sh("echo should-not-run");
    c.create_ok();
    let pid = c.pid();
    c.kill(sig).assert_ok();
    let st = wait_dead(pid, 0, T)
        .unwrap_or_else(|e| panic!("kill {sig} of a created container left its init: {e}"));
    c.reaped.insert(pid);
    c.wait_status("stopped", T);
    assert_eq!(
        c.ctr_stdout(),
        "",
        "kill {sig}: the user process must never run"
    );
    c.delete().assert_ok();
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
    st
}

#[test]
fn kill_term_int_hup_stop_a_created_container() {
    // The init of a created container is pid 1 of its pid namespace, which the kernel shields
    // from every signal it has no handler for; engines send TERM first and would otherwise
    // wait out their grace period.
    for (sig, num) in [("TERM", 15), ("INT", 2), ("HUP", 1)] {
        let mut c = Ctr::new("kill-created-term");
        let code = created_init_ends(&mut c, sig).map(wait_status_code);
        if is_hutch() {
            // It cannot die of the signal (pid 1 of a pid namespace); it exits 128+signal, the
            // status a shell reports for a process the signal killed. (runc's init exits 2.)
            assert_eq!(code, Some(128 + num), "exit status after kill {sig}");
        }
    }
}

#[test]
fn kill_of_a_created_container_ends_it_for_every_signal_whose_default_is_to_end() {
    hutch_only!("runc 1.1.5's created init ignores USR1, USR2, ALRM and real-time signals");
    for (sig, num) in [
        ("USR1", 10),
        ("USR2", 12),
        ("ALRM", 14),
        ("QUIT", 3),
        ("RTMIN+1", 35),
    ] {
        let mut c = Ctr::new("kill-created-sig");
        assert_eq!(
            created_init_ends(&mut c, sig).map(wait_status_code),
            Some(128 + num),
            "kill {sig}"
        );
    }
    // Signals whose default is to be ignored (and PIPE, as hutch and runc ignore it) leave the
    // container created.
    let mut c = Ctr::new("kill-created-ign");
    c.sh("echo ran");
    c.create_ok();
    let pid = c.pid();
    for sig in ["WINCH", "CHLD", "URG", "PIPE"] {
        c.kill(sig).assert_ok();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        alive(pid, 0),
        "an ignored signal ended the created container"
    );
    assert_eq!(c.status(), "created");
    c.start_ok();
    wait_output(&c, "ran\n");
}

#[test]
fn kill_created_container_without_its_own_pid_namespace_dies_of_the_signal() {
    // Not pid 1 of a namespace, the init can die of the signal itself: a wait status "killed
    // by SIGTERM", not an exit with 143.
    let mut c = Ctr::new("kill-created-hostpid");
    c.drop_ns("pid");
    let st = created_init_ends(&mut c, "TERM").expect("the init's wait status");
    assert!(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGTERM,
        "wait status {st:#x}: the init must die of SIGTERM"
    );
}

#[test]
fn kill_all_of_a_stopped_container_signals_what_is_left_in_its_cgroup() {
    // Without a pid namespace of its own, the init's children outlive it (containerd's shim
    // runs `kill --all` when the main process of a container in a pod with a shared pid
    // namespace exits).
    let mut c = Ctr::new("kill-all-stopped");
    c.drop_ns("pid");
    c.sh("sleep 100 >/dev/null 2>&1 & echo $!");
    c.create_ok();
    let init = c.pid();
    c.start_ok();
    wait_dead(init, 0, T).unwrap();
    c.reaped.insert(init);
    c.wait_status("stopped", T);
    let deadline = Instant::now() + T;
    let child: i32 = loop {
        if let Ok(pid) = c.ctr_stdout().trim().parse() {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "no child pid: {:?}",
            c.ctr_stdout()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let start = proc_stat(child).expect("the child is alive").1;
    c.track(child);
    assert!(alive(child, start));
    c.rt(&["kill", "--all", &c.id, "KILL"]).assert_ok();
    wait_dead(child, start, T).unwrap_or_else(|e| panic!("kill --all left the child: {e}"));
    // Nothing left: kill --all still succeeds; a plain kill is still refused.
    c.rt(&["kill", "--all", &c.id, "TERM"]).assert_ok();
    c.kill("TERM").assert_fail_with("container not running");
    c.delete().assert_ok();
    let leaks = c.leaks();
    assert!(leaks.is_empty(), "{leaks:#?}");
}

#[test]
fn delete_of_a_created_container_without_force_removes_it() {
    // runtime.md says delete of a container that is not stopped must fail; runc 1.1.5 instead
    // kills a created container and deletes it, and engines rely on that: Docker 20.10's
    // libcontainerd (remote/client.go, (*client).Start) deletes a task whose start failed
    // without killing it, and containerd 1.6's runc shim turns that into a plain `delete`
    // (pkg/process: createdState.Delete -> (*Init).delete -> runtime.Delete(id, nil)); `ctr run`
    // does the same. So hutch keeps runc's behaviour.
    let mut c = Ctr::new("delete-created");
    c.sh("echo should-not-run");
    c.create_ok();
    let pid = c.pid();
    c.delete().assert_ok();
    wait_dead(pid, 0, T).unwrap();
    c.reaped.insert(pid);
    assert_eq!(c.ctr_stdout(), "");
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
    let leaks = c.leaks();
    assert!(leaks.is_empty(), "{leaks:#?}");
}

#[test]
fn create_without_process_succeeds_and_start_fails_naming_it() {
    hutch_only!("runc 1.1.5 refuses a config without process at create; the spec requires it only for start");
    let mut c = Ctr::new("no-process");
    c.config.as_object_mut().unwrap().remove("process");
    c.create_ok();
    let st = c.state();
    assert_eq!(st["status"], "created", "{st}");
    let pid = c.pid();
    c.start().assert_fail_with("process");
    assert_eq!(
        c.status(),
        "created",
        "a refused start must not touch the container"
    );
    assert!(alive(pid, 0));
    c.delete().assert_ok();
    wait_dead(pid, 0, T).unwrap();
    c.reaped.insert(pid);
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
    let leaks = c.leaks();
    assert!(leaks.is_empty(), "{leaks:#?}");

    // run: create + start, so it fails the same way, and leaves nothing.
    let mut r = Ctr::new("no-process-run");
    r.config.as_object_mut().unwrap().remove("process");
    r.run().assert_fail_with("process");
    r.rt(&["state", &r.id]).assert_fail_with("does not exist");
    let leaks = r.leaks();
    assert!(leaks.is_empty(), "{leaks:#?}");
}
