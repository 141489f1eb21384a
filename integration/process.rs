//! The container process: args, env, cwd, user and groups, umask, rlimits, capabilities,
//! no_new_privs, oom_score_adj.

use serde_json::json;

use crate::common::*;

/// The whitespace-separated values of a /proc/PID/status field.
#[track_caller]
fn status_words<'a>(status: &'a str, key: &str) -> Vec<&'a str> {
    status_field(status, key)
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .split_whitespace()
        .collect()
}

#[test]
fn args_are_passed_exactly() {
    let mut c = Ctr::new("args");
    c.args(&[
        "sh",
        "-c",
        "for a in \"$@\"; do printf '<%s>' \"$a\"; done",
        "argv0",
        "a b",
        "",
        "c\"d",
        "$HOME",
        "*",
    ]);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "<a b><><c\"d><$HOME><*>");
}

#[test]
fn args0_is_found_on_the_containers_path() {
    let mut c = Ctr::new("args-path");
    c.config["process"]["env"] = json!(["PATH=/opt/tools"]);
    std::fs::create_dir_all(c.rootfs.join("opt/tools")).unwrap();
    // A busybox-interpreted script (the shebang /bin/sh exists in the rootfs).
    write_script(
        &c.rootfs.join("opt/tools/mytool"),
        "echo mytool ran with $1",
    );
    c.args(&["mytool", "x"]);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "mytool ran with x\n");
}

/// Runs `env` in the container with a variable in the runtime's own environment, which must not
/// reach the container.
fn run_env_with_a_runtime_env_var(c: &mut Ctr) -> Out {
    c.args(&["env"]);
    let out = exec_timeout(c.run_cmd(&[]).env("HUTCH_IT_LEAK", "leaked"), CMD_TIMEOUT);
    out.assert_ok();
    out
}

#[test]
fn env_is_exactly_process_env() {
    let mut c = Ctr::new("env");
    c.config["process"]["env"] = json!([
        "PATH=/bin:/sbin",
        "A=1",
        "B=two words",
        "EMPTY=",
        "HOME=/home/user"
    ]);
    let out = run_env_with_a_runtime_env_var(&mut c);
    let mut got: Vec<&str> = out.stdout.lines().collect();
    got.sort();
    assert_eq!(
        got,
        [
            "A=1",
            "B=two words",
            "EMPTY=",
            "HOME=/home/user",
            "PATH=/bin:/sbin"
        ],
        "{out}"
    );
}

#[test]
fn env_without_home_gets_only_home_added() {
    // runc adds HOME from the user's passwd entry when process.env lacks it; nothing else.
    let mut c = Ctr::new("env-home");
    c.config["process"]["env"] = json!(["PATH=/bin", "X=y"]);
    let out = run_env_with_a_runtime_env_var(&mut c);
    let mut got: Vec<&str> = out.stdout.lines().collect();
    got.retain(|l| !l.starts_with("HOME="));
    got.sort();
    assert_eq!(got, ["PATH=/bin", "X=y"], "{out}");
    if let Some(home) = out.stdout.lines().find(|l| l.starts_with("HOME=")) {
        assert_eq!(home, "HOME=/root");
    }
}

#[test]
fn cwd() {
    let mut c = Ctr::new("cwd");
    c.config["process"]["cwd"] = json!("/home/user");
    c.args(&["pwd"]);
    assert_eq!(c.run_ok(), "/home/user\n");
}

#[test]
fn cwd_is_created_if_missing() {
    let mut c = Ctr::new("cwd-missing");
    c.config["process"]["cwd"] = json!("/new/work/dir");
    c.args(&["pwd"]);
    assert_eq!(c.run_ok(), "/new/work/dir\n");
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let mut c = Ctr::new("user");
    c.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 100, 2000]});
    c.sh("id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status");
    let out = c.run();
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    let st = out.stdout.as_str();
    assert_eq!(status_words(st, "Uid"), ["1000"; 4]);
    assert_eq!(status_words(st, "Gid"), ["1000"; 4]);
    let mut groups = status_words(st, "Groups");
    groups.sort();
    assert_eq!(
        groups,
        ["100", "2000", "5"],
        "supplementary groups are exactly additionalGids"
    );
}

#[test]
fn no_additional_gids_means_no_supplementary_groups() {
    let mut c = Ctr::new("user-nogroups");
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.sh("grep '^Groups:' /proc/self/status");
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        status_field(&out.stdout, "Groups").unwrap(),
        "",
        "host groups leaked: {out}"
    );
}

#[test]
fn umask_set_and_default() {
    let mut c = Ctr::new("umask");
    c.config["process"]["user"]["umask"] = json!(0o027);
    c.sh("umask; touch /tmp/f; stat -c %a /tmp/f");
    assert_eq!(c.run_ok(), "0027\n640\n");

    let mut d = Ctr::new("umask-default");
    d.args(&["sh", "-c", "umask"]);
    assert_eq!(d.run_ok(), "0022\n", "runc's default umask is 0022");
}

#[test]
fn rlimits_are_applied() {
    let mut c = Ctr::new("rlimits");
    c.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
        {"type": "RLIMIT_NPROC", "soft": 500, "hard": 600},
    ]);
    c.sh("ulimit -Sn; ulimit -Hn; grep -E '^Max (core file size|processes)' /proc/self/limits");
    let out = c.run();
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "2000");
    let words = |prefix: &str| -> Vec<&str> {
        let line = lines.iter().find(|l| l.starts_with(prefix));
        line.unwrap_or_else(|| panic!("no {prefix:?} line:\n{out}"))
            .split_whitespace()
            .collect()
    };
    assert_eq!(&words("Max core")[4..6], ["0", "4096"], "{out}");
    assert_eq!(&words("Max processes")[2..4], ["500", "600"], "{out}");
}

#[test]
fn rlimit_above_the_hard_maximum_fails_cleanly() {
    // This sandbox has no CAP_SYS_RESOURCE and a hard NOFILE max of 20000.
    let mut hard = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) };
    let can_raise = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_field(&s, "CapBnd").map(|v| u64::from_str_radix(v, 16).unwrap()))
        .is_some_and(|m| m & (1 << cap_bit("SYS_RESOURCE")) != 0);
    if can_raise {
        eprintln!("SKIP: this machine can raise hard limits (has CAP_SYS_RESOURCE)");
        return;
    }
    let mut c = Ctr::new("rlimit-eperm");
    let too_high = hard.rlim_max + 1000;
    c.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": too_high, "hard": too_high}]);
    let out = c.create();
    out.assert_fail();
    assert!(
        out.stderr.contains("rlimit") || out.stderr.contains("RLIMIT"),
        "{out}"
    );
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
}

const BND: &[&str] = &[
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_RAW",
    "CAP_SYS_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETUID",
];
const PRM: &[&str] = &[
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
];
const EFF: &[&str] = &["CAP_CHOWN", "CAP_KILL"];
const INH: &[&str] = &["CAP_KILL", "CAP_NET_BIND_SERVICE"];
const AMB: &[&str] = &["CAP_KILL"];

/// Five different sets, so a mix-up between two of them shows.
fn caps_config(c: &mut Ctr) {
    c.config["process"]["capabilities"] = json!({
        "bounding": BND,
        "effective": EFF,
        "permitted": PRM,
        "inheritable": INH,
        "ambient": AMB,
    });
    c.config["process"]["noNewPrivileges"] = json!(true);
}

fn cap_line(out: &Out, key: &str) -> u64 {
    let v = status_field(&out.stdout, key).unwrap_or_else(|| panic!("no {key} in {out}"));
    u64::from_str_radix(v, 16).unwrap()
}

/// Runs `cat /proc/self/status` in the container; asserts it succeeded.
fn run_proc_status(c: &mut Ctr) -> Out {
    c.args(&["cat", "/proc/self/status"]);
    let out = c.run();
    out.assert_ok();
    out
}

/// Asserts the five capability masks of the container process (bounding, inheritable, ambient,
/// permitted, effective); a failure names the mask.
#[track_caller]
fn assert_cap_sets(out: &Out, bnd: u64, inh: u64, amb: u64, prm: u64, eff: u64) {
    for (key, want) in [
        ("CapBnd", bnd),
        ("CapInh", inh),
        ("CapAmb", amb),
        ("CapPrm", prm),
        ("CapEff", eff),
    ] {
        assert_eq!(cap_line(out, key), want, "{key}");
    }
}

#[test]
fn capabilities_non_root() {
    let mut c = Ctr::new("caps-user");
    caps_config(&mut c);
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let out = run_proc_status(&mut c);
    // execve by a non-root user of a file without file caps: permitted = effective = ambient.
    let (bnd, inh, amb) = (cap_mask(BND), cap_mask(INH), cap_mask(AMB));
    assert_cap_sets(&out, bnd, inh, amb, amb, amb);
}

#[test]
fn capabilities_root() {
    let mut c = Ctr::new("caps-root");
    caps_config(&mut c);
    let out = run_proc_status(&mut c);
    // execve as uid 0 under no_new_privs: permitted stays the configured set, effective = permitted.
    let (bnd, inh, amb, prm) = (cap_mask(BND), cap_mask(INH), cap_mask(AMB), cap_mask(PRM));
    assert_cap_sets(&out, bnd, inh, amb, prm, prm);
}

#[test]
fn capabilities_all_sets_equal_non_root() {
    // With every set equal, the kernel's execve rules derive nothing: all five masks must be
    // exactly the configured set.
    let mut c = Ctr::new("caps-eff");
    c.config["process"]["capabilities"] = json!({
        "bounding": EFF, "effective": EFF, "permitted": EFF, "inheritable": EFF, "ambient": EFF,
    });
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let out = run_proc_status(&mut c);
    let eff = cap_mask(EFF);
    assert_cap_sets(&out, eff, eff, eff, eff, eff);
}

#[test]
fn no_inheritable_capabilities_unless_configured() {
    let mut c = Ctr::new("caps-noinh");
    c.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
    });
    let out = run_proc_status(&mut c);
    assert_eq!(cap_line(&out, "CapInh"), 0);
    assert_eq!(cap_line(&out, "CapAmb"), 0);
    assert_eq!(
        cap_line(&out, "CapBnd"),
        cap_mask(&["CAP_CHOWN", "CAP_KILL"])
    );
    assert_eq!(
        cap_line(&out, "CapEff"),
        cap_mask(&["CAP_CHOWN", "CAP_KILL"])
    );
}

#[test]
fn no_capabilities_at_all() {
    let mut c = Ctr::new("caps-none");
    c.config["process"]["capabilities"] = json!({});
    let out = run_proc_status(&mut c);
    assert_cap_sets(&out, 0, 0, 0, 0, 0);
}

#[test]
fn dropped_capability_is_really_gone() {
    // Without CAP_SYS_ADMIN, root inside cannot mount or set the hostname.
    let mut c = Ctr::new("caps-enforced");
    c.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
    });
    c.sh("mount -t tmpfs x /mnt 2>/dev/null && echo mounted || echo refused; hostname other 2>/dev/null && echo renamed || echo refused");
    assert_eq!(c.run_ok(), "refused\nrefused\n");
}

#[test]
fn no_new_privileges() {
    for (flag, want) in [(true, "1"), (false, "0")] {
        let mut c = Ctr::new("nnp");
        c.config["process"]["noNewPrivileges"] = json!(flag);
        c.sh("grep '^NoNewPrivs:' /proc/self/status");
        let out = c.run();
        out.assert_ok();
        assert_eq!(
            status_field(&out.stdout, "NoNewPrivs"),
            Some(want),
            "noNewPrivileges={flag}"
        );
    }
}

#[test]
fn oom_score_adj() {
    let mut c = Ctr::new("oom");
    c.config["process"]["oomScoreAdj"] = json!(345);
    c.args(&["cat", "/proc/self/oom_score_adj"]);
    assert_eq!(c.run_ok(), "345\n");
}

#[test]
fn stdin_pipe_reaches_the_container() {
    use std::io::Write;
    let mut c = Ctr::new("stdin");
    c.args(&["sh", "-c", "read line; echo got:$line; cat"]);
    let mut cmd = c.run_cmd(&[]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello\nrest of input\n").unwrap();
    drop(stdin); // EOF must reach the container so cat exits
    let (status, out, err) = wait_child(&mut child, std::time::Duration::from_secs(30), "run");
    assert!(status.success(), "{err}");
    assert_eq!(out, "got:hello\nrest of input\n");
}

#[test]
fn stdio_are_the_callers_pipes() {
    // The container's fds 0-2 must be the very pipes the caller passed (no runtime relay).
    let mut c = Ctr::new("stdio-pipes");
    c.sh("readlink /proc/self/fd/1; readlink /proc/self/fd/2 >&2");
    let out = exec_timeout(&mut c.run_cmd(&[]), CMD_TIMEOUT);
    out.assert_ok();
    assert!(out.stdout.starts_with("pipe:["), "{out}");
    assert!(out.stderr.contains("pipe:["), "{out}");
}

/// linux.personality LINUX32: `uname -m` reports a 32-bit machine.
#[test]
fn personality_linux32() {
    hutch_only!("runc 1.1.5 ignores linux.personality (added in runc 1.2)");
    let mut c = Ctr::new("personality");
    c.config["linux"]["personality"] = serde_json::json!({"domain": "LINUX32"});
    c.sh("uname -m");
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "i686", "{out}");
}

/// process.ioPriority: the process runs in the configured I/O class and level.
#[test]
fn io_priority() {
    hutch_only!("runc 1.1.5 predates process.ioPriority");
    let mut c = Ctr::new("ioprio");
    c.config["process"]["ioPriority"] =
        serde_json::json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    c.sh("ionice -p $$");
    let out = c.run();
    out.assert_ok();
    assert!(out.stdout.to_lowercase().contains("idle"), "{out}");
}

/// process.scheduler: SCHED_BATCH shows as policy 3 in /proc/self/stat (field 41).
#[test]
fn scheduler_policy() {
    hutch_only!("runc 1.1.5 predates process.scheduler");
    let mut c = Ctr::new("sched");
    c.config["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_BATCH", "nice": 5});
    c.sh("cut -d')' -f2 /proc/self/stat | awk '{print $39, $17}'");
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["3", "5"],
        "{out}"
    );
}
