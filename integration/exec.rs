//! `exec`: a new process in a running container, with runc's flags.

use std::fs;

use serde_json::json;

use crate::common::*;

/// A running container whose init sleeps; exec tests run their commands beside it.
fn running(name: &str) -> Ctr {
    let mut c = Ctr::new(name);
    c.args(&["sleep", "60"]);
    c.create_ok();
    c.start_ok();
    c.state();
    c
}

fn ns_of(pid: i32, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[test]
fn exec_output_and_exit_status() {
    let c = running("exec-basic");
    let out = c.rt_piped(&["exec", &c.id, "sh", "-c", "echo from-exec; exit 7"]);
    assert_eq!(out.code(), 7, "{out}");
    assert!(out.stdout.contains("from-exec"), "{out}");
}

/// Everything after the id is the process's command line, word for word, even words that are
/// runc's flags with one dash (which runc's parser accepts elsewhere): `exec c1 find / -user
/// root` must not run `find / --user root`. Flags before the id, one dash or two, still count.
#[test]
fn exec_command_line_is_passed_verbatim() {
    let c = running("exec-verbatim");
    let words = [
        "-user", "-root", "-all", "-debug", "-help", "--tty", "-e", "x=1",
    ];
    let mut args = vec!["exec", "-env", "FROM_FLAG=yes", &c.id, "sh", "-c"];
    args.push(r#"printf '%s|' "$FROM_FLAG" "$@""#);
    args.push("sh");
    args.extend(words);
    let out = c.rt_piped(&args);
    out.assert_ok();
    assert_eq!(out.stdout, format!("yes|{}|", words.join("|")), "{out}");
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup_of_the_init() {
    let mut c = running("exec-ns");
    let init = c.state()["pid"].as_i64().unwrap() as i32;
    let out = c.rt_piped(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "for n in mnt uts ipc net pid; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup",
    ]);
    out.assert_ok();
    let lines = out.stdout_lines();
    for (i, kind) in ["mnt", "uts", "ipc", "net", "pid"].iter().enumerate() {
        assert_eq!(
            lines[i],
            ns_of(init, kind),
            "{kind} namespace differs:\n{out}"
        );
    }
    let init_cgroups = fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let exec_cgroups: String = lines[5..].iter().map(|l| format!("{l}\n")).collect();
    // Inside a cgroup namespace the paths read relative; compare only without one.
    if ns_of(init, "cgroup") == ns_of(std::process::id() as i32, "cgroup") {
        assert_eq!(exec_cgroups, init_cgroups, "{out}");
    }
}

#[test]
fn exec_user_cwd_env_flags() {
    let c = running("exec-flags");
    let out = c.rt_piped(&[
        "exec",
        "-u",
        "1000:1000",
        "--cwd",
        "/tmp",
        "-e",
        "FOO=bar",
        &c.id,
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $FOO",
    ]);
    out.assert_ok();
    assert_eq!(out.stdout_lines(), ["1000", "1000", "/tmp", "bar"], "{out}");
}

#[test]
fn exec_process_file() {
    let c = running("exec-process");
    let process = json!({
        "args": ["sh", "-c", "echo $X; pwd; exit 4"],
        "env": ["X=from-process-json", "PATH=/bin"],
        "cwd": "/etc",
        "user": {"uid": 0, "gid": 0}
    });
    let file = c.dir.join("process.json");
    fs::write(&file, process.to_string()).unwrap();
    let out = c.rt_piped(&["exec", "--process", file.to_str().unwrap(), &c.id]);
    assert_eq!(out.code(), 4, "{out}");
    assert_eq!(out.stdout_lines(), ["from-process-json", "/etc"], "{out}");
}

/// `exec -d` returns once the process runs its program: the pid file's process is `sleep` at
/// once, never still hutch between its last setup step and the execve (that window showed in
/// a loaded CI run; several execs make it likely to show again should it come back).
#[test]
fn exec_detached_writes_the_pid_file() {
    let mut c = running("exec-detach");
    let pid_file = c.dir.join("exec.pid");
    let mut pids = Vec::new();
    for round in 0..8 {
        let _ = fs::remove_file(&pid_file);
        let out = c.rt(&[
            "exec",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &c.id.clone(),
            "sleep",
            "30",
        ]);
        out.assert_ok();
        let text = fs::read_to_string(&pid_file).unwrap();
        assert!(!text.ends_with('\n'), "pid file has a newline: {text:?}");
        let pid: i32 = text.parse().unwrap();
        c.track(pid);
        let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(cmdline.starts_with("sleep"), "round {round}: {cmdline:?}");
        pids.push(pid);
    }
    // The exec'd process was re-parented to this test (a subreaper, as containerd's shim is):
    // reap it here, as the shim would, so the killed init can finish exiting.
    c.rt(&["delete", "--force", &c.id.clone()]).assert_ok();
    for pid in pids {
        wait_dead(pid, 0, CMD_TIMEOUT).unwrap();
    }
}

#[test]
fn exec_sees_only_its_stdio() {
    let c = running("exec-fds");
    let out = c.rt_piped(&["exec", &c.id, "ls", "/proc/self/fd"]);
    out.assert_ok();
    // ls's own directory fd is the 4th.
    assert_eq!(out.stdout_lines(), ["0", "1", "2", "3"], "{out}");
}

#[test]
fn exec_into_a_stopped_container_fails() {
    let mut c = Ctr::new("exec-stopped");
    c.args(&["true"]);
    c.create_ok();
    c.start_ok();
    let deadline = std::time::Instant::now() + CMD_TIMEOUT;
    while c.state()["status"] != "stopped" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = c.rt_piped(&["exec", &c.id, "true"]);
    out.assert_fail();
    assert!(out.stderr.contains("stopped"), "{out}");
}

#[test]
fn exec_into_a_missing_container_fails() {
    let c = Ctr::new("exec-missing");
    c.rt_piped(&["exec", "no-such-container", "true"])
        .assert_fail_with("does not exist");
}

#[test]
fn exec_in_a_paused_container_needs_ignore_paused() {
    let c = running("exec-paused");
    c.rt(&["pause", &c.id]).assert_ok();
    let out = c.rt_piped(&["exec", &c.id, "true"]);
    out.assert_fail();
    assert!(out.stderr.contains("paused"), "{out}");
    c.rt(&["resume", &c.id]).assert_ok();
}

#[test]
fn exec_cpu_affinity_final() {
    hutch_only!("runc 1.1.5 predates execCPUAffinity");
    let c = running("exec-affinity");
    let process = json!({
        "args": ["sh", "-c", "grep Cpus_allowed_list /proc/self/status"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "execCPUAffinity": {"initial": "0", "final": "0"}
    });
    let file = c.dir.join("process.json");
    fs::write(&file, process.to_string()).unwrap();
    let out = c.rt_piped(&["exec", "--process", file.to_str().unwrap(), &c.id]);
    out.assert_ok();
    assert!(out.stdout.contains("Cpus_allowed_list:\t0\n"), "{out}");
}

#[test]
fn exec_preserve_fds() {
    let c = running("exec-preserve");
    let script = format!(
        "exec 3</etc/hostname; exec {} --root {} exec --preserve-fds 1 {} readlink /proc/self/fd/3",
        runtime().display(),
        c.root.display(),
        c.id
    );
    let out = exec_timeout(
        std::process::Command::new("sh").arg("-c").arg(script),
        CMD_TIMEOUT,
    );
    out.assert_ok();
    assert!(out.stdout.contains("hostname"), "{out}");
}

/// `exec -e K=V` overrides `process.env`'s K: one entry per key, the later value (issue 10 #12;
/// runc does the same). Programs read the first `K=` in their environment, so a duplicate would
/// hide the override.
#[test]
fn exec_env_overrides_the_configs_entry_once() {
    let mut c = Ctr::new("exec-env");
    c.config["process"]["env"] = json!(["PATH=/bin:/usr/bin", "K=base", "A=1"]);
    c.args(&["sleep", "60"]);
    c.create_ok();
    c.start_ok();
    let out = c.rt_piped(&[
        "exec", "-e", "K=cli", "-e", "B=2", "-e", "K=cli2", &c.id, "env",
    ]);
    out.assert_ok();
    let vars = lines_but_home(&out);
    assert_eq!(
        vars,
        ["PATH=/bin:/usr/bin", "K=cli2", "A=1", "B=2"],
        "{out}"
    );
}

/// `env`'s output without HOME (which runc adds when the env lacks it).
fn lines_but_home(out: &Out) -> Vec<&str> {
    let lines = out.stdout_lines().into_iter();
    lines.filter(|l| !l.starts_with("HOME=")).collect()
}

/// The same for `exec --process FILE` whose env names a key twice: the later entry wins, and
/// it appears once.
#[test]
fn exec_process_file_env_has_one_entry_per_key() {
    let c = running("exec-env-process");
    let process = json!({
        "args": ["env"],
        "env": ["PATH=/bin", "K=p1", "Z=3", "K=p2"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0}
    });
    let file = c.dir.join("process.json");
    fs::write(&file, process.to_string()).unwrap();
    let out = c.rt_piped(&["exec", "--process", file.to_str().unwrap(), &c.id]);
    out.assert_ok();
    let vars = lines_but_home(&out);
    assert_eq!(vars, ["PATH=/bin", "K=p2", "Z=3"], "{out}");
}

/// linux.personality applies to exec'd processes as to the init (issue 10 #14).
#[test]
fn exec_gets_the_containers_personality() {
    hutch_only!("runc 1.1.5 ignores linux.personality (added in runc 1.2)");
    let mut c = Ctr::new("exec-personality");
    c.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    c.args(&["sleep", "60"]);
    c.create_ok();
    c.start_ok();
    let init = c.pid();
    let out = c.rt_piped(&["exec", &c.id, "uname", "-m"]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "i686", "{out}");
    // The init's own, as a reference: the same domain.
    let persona = fs::read_to_string(format!("/proc/{init}/personality")).unwrap();
    assert_eq!(persona.trim(), "00000008", "init's personality");
}
