//! `linux.seccomp` observed from inside real containers: every action, the argument operators
//! (with 64-bit comparisons), the default action, the per-ABI dispatch (i386 via `int $0x80`,
//! x32), `SCMP_ACT_NOTIFY` end to end with a small agent, Docker's default profile, filter
//! flags, profile errors, the filter on `exec`, and capabilities that only show through
//! behaviour (an ambient capability used by a non-root process).
//!
//! The per-ABI and 64-bit-argument tests use `fixtures/seccomp_sys.c` (`common::fixture`).

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

const ARCHES: [&str; 3] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
/// mkdir(2) and mkdirat(2): libcs use either.
const MKDIR: [&str; 2] = ["mkdir", "mkdirat"];
/// Exit status of a process killed by SIGSYS (128 + 31).
const SIGSYS_STATUS: i32 = 159;

/// A profile for the three x86 ABIs.
fn profile(default: &str, syscalls: Value) -> Value {
    json!({"defaultAction": default, "architectures": ARCHES, "syscalls": syscalls})
}

fn set_seccomp(c: &mut Ctr, seccomp: Value) {
    c.config["linux"]["seccomp"] = seccomp;
}

/// Default ALLOW with one rule `names → action` (plus extra fields merged into the rule).
fn one_rule(c: &mut Ctr, names: &[&str], action: &str, extra: Value) {
    let mut rule = json!({"names": names, "action": action});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            rule[k] = v;
        }
    }
    set_seccomp(c, profile("SCMP_ACT_ALLOW", json!([rule])));
}

/// No core files from the SIGSYS deaths (core_pattern may be a relative file name).
fn no_core_dumps(c: &mut Ctr) {
    let rl = c.config["process"]["rlimits"]
        .as_array_mut()
        .expect("process.rlimits");
    rl.push(json!({"type": "RLIMIT_CORE", "hard": 0, "soft": 0}));
}

const MKDIR_SCRIPT: &str =
    "mkdir /tmp/d; echo \"rc=$?\"; if [ -d /tmp/d ]; then echo created; else echo absent; fi";

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

#[test]
fn filter_is_installed_in_the_container_process() {
    let mut c = Ctr::new("sc-status");
    one_rule(&mut c, &MKDIR, "SCMP_ACT_ERRNO", json!({}));
    c.args(&["cat", "/proc/self/status"]);
    let out = c.run();
    out.assert_ok();
    assert_eq!(status_field(&out.stdout, "Seccomp"), Some("2"), "{out}");
    if let Some(n) = status_field(&out.stdout, "Seccomp_filters") {
        assert_eq!(n, "1", "one filter, loaded once:\n{out}");
    }
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), Some("1"), "{out}");
}

#[test]
fn no_seccomp_config_means_no_filter() {
    let mut c = Ctr::new("sc-none");
    c.args(&["cat", "/proc/self/status"]);
    let out = c.run();
    out.assert_ok();
    assert_eq!(status_field(&out.stdout, "Seccomp"), Some("0"), "{out}");
}

#[test]
fn errno_action_returns_the_chosen_errno() {
    for (errno, message) in [
        (None, "Operation not permitted"),
        (Some(1), "Operation not permitted"),
        (Some(13), "Permission denied"),
        (Some(28), "No space left on device"),
    ] {
        let mut c = Ctr::new("sc-errno");
        let extra = match errno {
            Some(e) => json!({ "errnoRet": e }),
            None => json!({}),
        };
        one_rule(&mut c, &MKDIR, "SCMP_ACT_ERRNO", extra);
        c.sh(&format!("{MKDIR_SCRIPT}; echo still-here"));
        let out = c.run();
        out.assert_ok();
        assert_eq!(
            out.stdout, "rc=1\nabsent\nstill-here\n",
            "errnoRet {errno:?}:\n{out}"
        );
        assert!(
            out.stderr
                .contains(&format!("can't create directory '/tmp/d': {message}")),
            "errnoRet {errno:?}: expected {message:?}:\n{out}"
        );
    }
}

/// Docker's default profile's rules (an allow-list a busybox shell can live with, with clone
/// allowed by argument) with `drop` taken out of every rule's names.
fn docker_rules_without(drop: &[&str]) -> Option<Value> {
    let p = docker_seccomp()?;
    let mut rules = p["syscalls"].as_array().unwrap().clone();
    for r in &mut rules {
        r["names"]
            .as_array_mut()
            .unwrap()
            .retain(|n| !drop.contains(&n.as_str().unwrap()));
    }
    rules.retain(|r| !r["names"].as_array().unwrap().is_empty());
    Some(Value::Array(rules))
}

#[test]
fn allow_list_with_an_errno_default_and_default_errno_ret() {
    let Some(rules) = docker_rules_without(&MKDIR) else {
        return;
    };
    let mut c = Ctr::new("sc-allowlist");
    let mut p = profile("SCMP_ACT_ERRNO", rules);
    p["defaultErrnoRet"] = json!(13);
    set_seccomp(&mut c, p);
    c.sh(&format!(
        "echo hello; ls /bin/busybox; cat /etc/group >/dev/null && echo cat-ok; {MKDIR_SCRIPT}"
    ));
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        out.stdout, "hello\n/bin/busybox\ncat-ok\nrc=1\nabsent\n",
        "{out}"
    );
    assert!(
        out.stderr.contains("'/tmp/d': Permission denied"),
        "the unlisted mkdir gets defaultErrnoRet 13:\n{out}"
    );
}

#[test]
fn default_errno_without_default_errno_ret_is_eperm() {
    let Some(rules) = docker_rules_without(&MKDIR) else {
        return;
    };
    let mut c = Ctr::new("sc-default-eperm");
    set_seccomp(&mut c, profile("SCMP_ACT_ERRNO", rules));
    c.sh(MKDIR_SCRIPT);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "rc=1\nabsent\n", "{out}");
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
}

#[test]
fn kill_and_trap_actions_end_the_process_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        // Seen from inside: the shell survives, its mkdir child died of SIGSYS.
        let mut c = Ctr::new("sc-kill");
        no_core_dumps(&mut c);
        one_rule(&mut c, &MKDIR, action, json!({}));
        c.sh(&format!("echo before; {MKDIR_SCRIPT}"));
        let out = c.run();
        out.assert_ok();
        assert_eq!(
            out.stdout,
            format!("before\nrc={SIGSYS_STATUS}\nabsent\n"),
            "{action}:\n{out}"
        );

        // The container's own process: `run` reports 128 + SIGSYS.
        let mut c = Ctr::new("sc-kill-init");
        no_core_dumps(&mut c);
        one_rule(&mut c, &MKDIR, action, json!({}));
        c.args(&["mkdir", "/tmp/d"]);
        let out = c.run();
        assert_eq!(out.code(), SIGSYS_STATUS, "{action}:\n{out}");
        assert!(!c.rootfs.join("tmp/d").exists(), "{action}: mkdir ran");
    }
}

#[test]
fn trap_delivers_a_sigsys_the_process_can_see() {
    // TRAP delivers SIGSYS to the caller instead of running the call: the shell's own kill(2)
    // (a builtin) makes the shell itself receive it, and its SYS trap shows it arrived.
    let mut c = Ctr::new("sc-trap");
    one_rule(
        &mut c,
        &["kill"],
        "SCMP_ACT_TRAP",
        json!({"args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}),
    );
    c.sh("trap 'echo got-sigsys' SYS; trap '' USR1; kill -USR1 $$; echo after");
    let out = c.run();
    out.assert_ok();
    assert!(
        out.stdout.contains("got-sigsys\n") && out.stdout.ends_with("after\n"),
        "{out}"
    );
}

#[test]
fn log_action_lets_the_call_through() {
    let mut c = Ctr::new("sc-log");
    one_rule(&mut c, &MKDIR, "SCMP_ACT_LOG", json!({}));
    c.sh(MKDIR_SCRIPT);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "rc=0\ncreated\n", "{out}");
}

#[test]
fn trace_without_a_tracer_is_enosys() {
    for extra in [json!({}), json!({"errnoRet": 42})] {
        let mut c = Ctr::new("sc-trace");
        one_rule(&mut c, &MKDIR, "SCMP_ACT_TRACE", extra.clone());
        c.sh(MKDIR_SCRIPT);
        let out = c.run();
        out.assert_ok();
        assert_eq!(out.stdout, "rc=1\nabsent\n", "{extra}:\n{out}");
        assert!(
            out.stderr.contains("Function not implemented"),
            "{extra}:\n{out}"
        );
    }
}

#[test]
fn allow_rule_under_an_errno_default_for_one_syscall() {
    // Default ERRNO with a rule that allows mkdir again: mkdir works, an unlisted call (chmod)
    // is refused. The shell itself needs the rest of an allow-list.
    let Some(Value::Array(mut rules)) =
        docker_rules_without(&["mkdir", "mkdirat", "chmod", "fchmodat", "fchmodat2"])
    else {
        return;
    };
    rules.push(json!({"names": MKDIR, "action": "SCMP_ACT_ALLOW"}));
    let mut c = Ctr::new("sc-allow");
    set_seccomp(&mut c, profile("SCMP_ACT_ERRNO", Value::Array(rules)));
    c.sh(&format!(
        "{MKDIR_SCRIPT}; chmod 700 /tmp/d 2>/dev/null; echo chmod=$?"
    ));
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "rc=0\ncreated\nchmod=1\n", "{out}");
}

// ---------------------------------------------------------------------------------------------
// Argument filters
// ---------------------------------------------------------------------------------------------

/// Which of these signals the shell may send itself (all ignored, so sending is harmless).
const SIGNALS: [u64; 6] = [1, 2, 10, 12, 14, 15];
const KILL_SCRIPT: &str = "for s in 1 2 10 12 14 15; do trap '' $s; done; \
     for s in 1 2 10 12 14 15; do if kill -$s $$ 2>/dev/null; then echo $s:ok; else echo $s:denied; fi; done";

fn kill_outcome(denied: &[u64]) -> String {
    SIGNALS
        .iter()
        .map(|s| {
            let v = if denied.contains(s) { "denied" } else { "ok" };
            format!("{s}:{v}\n")
        })
        .collect()
}

#[test]
fn every_operator_on_an_argument() {
    // kill(2)'s argument 1 (the signal), tested with each operator.
    let cases: &[(&str, u64, Option<u64>, &[u64])] = &[
        ("SCMP_CMP_EQ", 10, None, &[10]),
        ("SCMP_CMP_NE", 10, None, &[1, 2, 12, 14, 15]),
        ("SCMP_CMP_LT", 10, None, &[1, 2]),
        ("SCMP_CMP_LE", 10, None, &[1, 2, 10]),
        ("SCMP_CMP_GT", 12, None, &[14, 15]),
        ("SCMP_CMP_GE", 12, None, &[12, 14, 15]),
        // (sig & 3) == 2
        ("SCMP_CMP_MASKED_EQ", 3, Some(2), &[2, 10, 14]),
    ];
    for &(op, value, value_two, denied) in cases {
        let mut c = Ctr::new("sc-op");
        let mut arg = json!({"index": 1, "value": value, "op": op});
        if let Some(v2) = value_two {
            arg["valueTwo"] = json!(v2);
        }
        one_rule(
            &mut c,
            &["kill"],
            "SCMP_ACT_ERRNO",
            json!({ "args": [arg] }),
        );
        c.sh(KILL_SCRIPT);
        let out = c.run();
        out.assert_ok();
        assert_eq!(out.stdout, kill_outcome(denied), "{op} {value}:\n{out}");
    }
}

#[test]
fn conditions_on_different_arguments_are_anded() {
    // kill(pid == 1, sig == SIGUSR1) is refused (the shell is pid 1 in its pid namespace); the
    // same signal to another process and another signal to pid 1 both go through. (Never
    // signal pid 0 or -1 here: the container may share the test's process group.)
    let mut c = Ctr::new("sc-and");
    one_rule(
        &mut c,
        &["kill"],
        "SCMP_ACT_ERRNO",
        json!({"args": [
            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"},
        ]}),
    );
    c.sh("trap '' USR1 USR2; sleep 30 & p=$!; echo pid=$$; \
          kill -USR1 $$ 2>/dev/null && echo self-usr1:ok || echo self-usr1:denied; \
          kill -USR1 $p 2>/dev/null && echo child-usr1:ok || echo child-usr1:denied; \
          kill -USR2 $$ 2>/dev/null && echo self-usr2:ok || echo self-usr2:denied; \
          kill -9 $p");
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        out.stdout, "pid=1\nself-usr1:denied\nchild-usr1:ok\nself-usr2:ok\n",
        "{out}"
    );
}

#[test]
fn two_conditions_on_one_argument_are_ored_as_in_runc() {
    // runc turns a rule with two conditions on the same argument into one rule per condition;
    // `sig <= 2 || sig >= 12` (an AND would match nothing).
    let mut c = Ctr::new("sc-or");
    one_rule(
        &mut c,
        &["kill"],
        "SCMP_ACT_ERRNO",
        json!({"args": [
            {"index": 1, "value": 2, "op": "SCMP_CMP_LE"},
            {"index": 1, "value": 12, "op": "SCMP_CMP_GE"},
        ]}),
    );
    c.sh(KILL_SCRIPT);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, kill_outcome(&[1, 2, 12, 14, 15]), "{out}");
}

#[test]
fn several_rules_for_one_syscall_are_ored() {
    let mut c = Ctr::new("sc-rules-or");
    set_seccomp(
        &mut c,
        profile(
            "SCMP_ACT_ALLOW",
            json!([
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 14, "op": "SCMP_CMP_EQ"}]},
            ]),
        ),
    );
    c.sh(KILL_SCRIPT);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, kill_outcome(&[1, 14]), "{out}");
}

#[test]
fn masked_eq_on_a_mode_argument() {
    // Refuse chmod to a mode without group/other bits: (mode & 077) == 0.
    let mut c = Ctr::new("sc-masked");
    set_seccomp(
        &mut c,
        profile(
            "SCMP_ACT_ALLOW",
            json!([
                {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 1, "value": 0o77, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 2, "value": 0o77, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            ]),
        ),
    );
    c.sh("touch /tmp/f; for m in 700 755 750 600 604; do \
          chmod $m /tmp/f 2>/dev/null && echo $m:ok || echo $m:denied; done; stat -c %a /tmp/f");
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        out.stdout, "700:denied\n755:ok\n750:ok\n600:denied\n604:ok\n604\n",
        "{out}"
    );
}

#[test]
fn personality_zero_allowed_others_refused() {
    // busybox linux64 calls personality(PER_LINUX = 0), linux32 personality(PER_LINUX32 = 8).
    let mut c = Ctr::new("sc-personality");
    one_rule(
        &mut c,
        &["personality"],
        "SCMP_ACT_ERRNO",
        json!({"args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]}),
    );
    c.sh("linux64 echo linux64-ok; linux32 echo linux32-ok; echo rc=$?");
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "linux64-ok\nrc=1\n", "{out}");
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
}

#[test]
fn unconditional_rule_wins_over_conditional_ones() {
    // libseccomp: an unconditional rule for a syscall beats conditional rules for it.
    let mut c = Ctr::new("sc-uncond");
    set_seccomp(
        &mut c,
        profile(
            "SCMP_ACT_ALLOW",
            json!([
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            ]),
        ),
    );
    c.sh("trap '' USR1 USR2; kill -USR1 $$; kill -USR2 $$");
    let out = c.run();
    assert!(!out.ok(), "{out}");
    assert_eq!(
        out.stderr.matches("Operation not permitted").count(),
        2,
        "both kills get the unconditional rule's EPERM:\n{out}"
    );
    assert!(!out.stderr.contains("Permission denied"), "{out}");
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let mut c = Ctr::new("sc-unknown-name");
    one_rule(
        &mut c,
        &["no_such_syscall", "mkdir", "mkdirat", "another_fake_one"],
        "SCMP_ACT_ERRNO",
        json!({}),
    );
    c.sh(MKDIR_SCRIPT);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "rc=1\nabsent\n", "{out}");
}

// ---------------------------------------------------------------------------------------------
// Per-ABI dispatch and 64-bit arguments (fixtures/seccomp_sys.c)
// ---------------------------------------------------------------------------------------------

/// Copies `fixtures/seccomp_sys.c`, built, to /bin/sys in the container.
fn install_sys(c: &Ctr) {
    fs::copy(fixture("seccomp_sys"), c.rootfs.join("bin/sys")).expect("copy the fixture");
}

/// A shell line running `sys ARGS` and printing `LABEL:ret=N`, or `LABEL:status=S` when the
/// fixture was killed.
fn sys_line(label: &str, args: &str) -> String {
    format!("o=$(sys {args}); s=$?; if [ $s = 0 ]; then echo \"{label}:$o\"; else echo \"{label}:status=$s\"; fi; ")
}

/// The `LABEL:result` lines of `sys_line`s, in order.
fn sys_outcomes(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Runs the lines in a container with `seccomp` and returns `label → result`.
fn sys_results(name: &str, seccomp: Value, lines: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut c = Ctr::new(name);
    install_sys(&c);
    no_core_dumps(&mut c);
    set_seccomp(&mut c, seccomp);
    let script: String = lines.iter().map(|(l, a)| sys_line(l, a)).collect();
    c.sh(&script);
    let out = c.run();
    out.assert_ok();
    let got = sys_outcomes(&out.stdout);
    assert_eq!(got.len(), lines.len(), "{out}");
    got
}

#[track_caller]
fn expect(got: &[(String, String)], label: &str, want: &str) {
    let v = got
        .iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no result for {label}: {got:?}"));
    assert_eq!(v.1, want, "{label} (all results: {got:?})");
}

#[track_caller]
fn expect_success(got: &[(String, String)], label: &str) {
    let v = &got.iter().find(|(l, _)| l == label).unwrap().1;
    let n: i64 = v
        .strip_prefix("ret=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{label}: {v} (all: {got:?})"));
    assert!(n >= 0, "{label}: {v} (all results: {got:?})");
}

// x86_64 numbers
const X64_GETPID: &str = "39";
const X64_PERSONALITY: &str = "135";
const X64_KEYCTL: &str = "250";
const X64_ADD_KEY: &str = "248";
const X64_CLONE3: &str = "435";
// i386 numbers
const I386_GETPID: &str = "20";
const I386_MKDIR: &str = "39"; // = x86_64 getpid: a filter that mixes the ABIs up shows
const I386_PERSONALITY: &str = "136";

#[test]
fn i386_syscalls_follow_the_architectures_list() {
    // Without SCMP_ARCH_X86 an i386 syscall is a bad arch: killed (libseccomp's KILL).
    let getpid_errno = json!([{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]);
    let got = sys_results(
        "sc-i386-absent",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": getpid_errno}),
        &[
            ("x64", &format!("x64 {X64_GETPID}")),
            ("i386", &format!("i386 {I386_GETPID}")),
        ],
    );
    expect(&got, "x64", "ret=-13");
    expect(&got, "i386", &format!("status={SIGSYS_STATUS}"));

    // With it, the rule applies to i386's own getpid number, and i386's syscall 39 (mkdir) is
    // not x86_64's 39 (getpid).
    let got = sys_results(
        "sc-i386-listed",
        profile("SCMP_ACT_ALLOW", getpid_errno.clone()),
        &[
            ("x64", &format!("x64 {X64_GETPID}")),
            ("i386", &format!("i386 {I386_GETPID}")),
            ("i386mkdir", &format!("i386 {I386_MKDIR} s:/tmp/d32 0755")),
            ("check", "x64 21 s:/tmp/d32 0"), // access(2)
        ],
    );
    expect(&got, "x64", "ret=-13");
    expect(&got, "i386", "ret=-13");
    expect(&got, "i386mkdir", "ret=0");
    expect(&got, "check", "ret=0");
}

#[test]
fn i386_rule_by_name_and_arguments() {
    // An argument rule on personality applies on i386 too (its own number, 32-bit compare).
    let got = sys_results(
        "sc-i386-args",
        profile(
            "SCMP_ACT_ALLOW",
            json!([{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                    "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]),
        ),
        &[
            ("i386-0", &format!("i386 {I386_PERSONALITY} 0")),
            ("i386-8", &format!("i386 {I386_PERSONALITY} 8")),
            ("x64-8", &format!("x64 {X64_PERSONALITY} 8")),
        ],
    );
    expect(&got, "i386-0", "ret=0");
    expect(&got, "i386-8", "ret=-22");
    expect(&got, "x64-8", "ret=-22");
}

#[test]
fn x32_syscalls_follow_the_architectures_list() {
    // Whether or not this kernel runs x32 code, seccomp sees the call first.
    let rules = json!([{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]);
    let got = sys_results(
        "sc-x32-absent",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": rules}),
        &[
            ("x32", &format!("x32 {X64_GETPID}")),
            ("x64", &format!("x64 {X64_GETPID}")),
        ],
    );
    expect(&got, "x32", &format!("status={SIGSYS_STATUS}"));
    expect(&got, "x64", "ret=-13");

    let got = sys_results(
        "sc-x32-listed",
        profile("SCMP_ACT_ALLOW", rules),
        &[("x32", &format!("x32 {X64_GETPID}"))],
    );
    expect(&got, "x32", "ret=-13");
}

#[test]
fn arguments_are_compared_on_all_64_bits() {
    // personality(2) takes an unsigned int, but seccomp sees the whole register: a value with
    // only high bits set must not match a rule on 0, and GT/LT must look at the high word.
    let rule = |op: &str, v: u64, errno: u32| {
        json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno,
               "args": [{"index": 0, "value": v, "op": op}]})
    };
    for (op, value, expectations) in [
        (
            "SCMP_CMP_EQ",
            0u64,
            vec![("0", true), ("0x100000000", false), ("0xffffffff", false)],
        ),
        (
            "SCMP_CMP_GT",
            0xffff_ffff,
            vec![("0xffffffff", false), ("0x100000000", true), ("0", false)],
        ),
        (
            "SCMP_CMP_LT",
            0x1_0000_0000,
            vec![
                ("0xffffffff", true),
                ("0x100000000", false),
                ("0x100000001", false),
            ],
        ),
        (
            "SCMP_CMP_GE",
            0x1_0000_0008,
            vec![
                ("0x100000008", true),
                ("0x100000007", false),
                ("0x200000000", true),
                ("8", false),
            ],
        ),
        (
            "SCMP_CMP_LE",
            0x1_0000_0000,
            vec![
                ("0x100000000", true),
                ("0x100000001", false),
                ("0xffffffff", true),
            ],
        ),
        (
            "SCMP_CMP_NE",
            0x1_0000_0000,
            vec![("0x100000000", false), ("0", true)],
        ),
        // (arg & 0xffff00000000) == 0x000100000000: a mask reaching into the high word
        (
            "SCMP_CMP_MASKED_EQ",
            0xffff_0000_0000,
            vec![
                ("0x100000000", true),
                ("0x1ffffffff", true),
                ("0x200000000", false),
                ("0", false),
            ],
        ),
    ] {
        let mut r = rule(op, value, 33);
        if op == "SCMP_CMP_MASKED_EQ" {
            r["args"][0]["valueTwo"] = json!(0x1_0000_0000u64);
        }
        let lines: Vec<(String, String)> = expectations
            .iter()
            .map(|(v, _)| (format!("p{v}"), format!("x64 {X64_PERSONALITY} {v}")))
            .collect();
        let refs: Vec<(&str, &str)> = lines
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let got = sys_results("sc-64bit", profile("SCMP_ACT_ALLOW", json!([r])), &refs);
        for (v, denied) in expectations {
            let label = format!("p{v}");
            let res = &got.iter().find(|(l, _)| *l == label).unwrap().1;
            assert_eq!(
                res == "ret=-33",
                denied,
                "{op} {value:#x} on personality({v}): {res} (all: {got:?})"
            );
        }
    }
}

#[test]
fn syscalls_beyond_the_profile_get_enosys_like_runc() {
    // runc's stub: with a non-allowing default, numbers above the highest one the profile names
    // return ENOSYS (so libcs fall back from newer syscalls) instead of the default errno.
    let Some(rules) = docker_rules_without(&["getpid"]) else {
        return;
    };
    let mut p = profile("SCMP_ACT_ERRNO", rules);
    p["defaultErrnoRet"] = json!(13);
    let got = sys_results(
        "sc-enosys",
        p,
        &[
            ("unlisted", &format!("x64 {X64_GETPID}")),
            ("beyond", "x64 1000"),
            ("i386-beyond", "i386 1000"),
        ],
    );
    expect(&got, "unlisted", "ret=-13");
    expect(&got, "beyond", "ret=-38");
    expect(&got, "i386-beyond", "ret=-38");
}

// ---------------------------------------------------------------------------------------------
// Docker's default profile
// ---------------------------------------------------------------------------------------------

fn docker_config_path() -> PathBuf {
    repo_dir().join("../shared/reference/configs/docker-config.json")
}

/// `linux.seccomp` of a real Docker config (None, with a SKIP line, when it is not here).
fn docker_seccomp() -> Option<Value> {
    let p = docker_config_path();
    match fs::read_to_string(&p) {
        Ok(text) => Some(parse_json(&text)["linux"]["seccomp"].clone()),
        Err(e) => {
            eprintln!("SKIP: {}: {e}", p.display());
            None
        }
    }
}

const ALL_SYS_ADMIN: &[&str] = &[
    "CAP_SYS_ADMIN",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_SETUID",
    "CAP_SETGID",
];

const DOCKER_SCRIPT: &str = "echo hello; ls / >/dev/null && echo ls-ok; \
    cat /etc/passwd >/dev/null && echo cat-ok; sh -c 'echo nested-sh'; \
    echo x | grep -q x && echo pipe-ok; mkdir /tmp/d && echo mkdir-ok; \
    unshare -m true; echo unshare=$?; \
    mount -t tmpfs t /mnt; echo mount=$?; \
    hostname other; echo hostname=$?; ";

#[test]
fn docker_default_profile_lets_a_shell_work_and_denies_the_rest() {
    let Some(docker) = docker_seccomp() else {
        return;
    };
    // The container holds CAP_SYS_ADMIN, so without the profile every one of those calls works
    // (the control); only the profile refuses them.
    for with_profile in [false, true] {
        let mut c = Ctr::new("sc-docker");
        c.config["process"]["capabilities"] = json!({
            "bounding": ALL_SYS_ADMIN, "effective": ALL_SYS_ADMIN, "permitted": ALL_SYS_ADMIN,
        });
        c.set_ns("uts", None);
        install_sys(&c);
        let mut script = DOCKER_SCRIPT.to_string();
        script += &sys_line("keyctl", &format!("x64 {X64_KEYCTL} 0 -3 0"));
        script += &sys_line("add_key", &format!("x64 {X64_ADD_KEY} s:user s:k s:v 1 -3"));
        script += &sys_line("p0", &format!("x64 {X64_PERSONALITY} 0"));
        script += &sys_line("p8", &format!("x64 {X64_PERSONALITY} 8"));
        script += &sys_line("phigh", &format!("x64 {X64_PERSONALITY} 0x100000000"));
        script += &sys_line("i386getpid", &format!("i386 {I386_GETPID}"));
        script += &sys_line("clone3", &format!("x64 {X64_CLONE3} 0 0"));
        if with_profile {
            set_seccomp(&mut c, docker.clone());
        }
        c.sh(&script);
        let out = c.run();
        out.assert_ok();
        let o = &out.stdout;
        for line in [
            "hello",
            "ls-ok",
            "cat-ok",
            "nested-sh",
            "pipe-ok",
            "mkdir-ok",
        ] {
            assert!(
                o.lines().any(|l| l == line),
                "{line} (profile {with_profile}):\n{out}"
            );
        }
        let want = if with_profile { "1" } else { "0" };
        for call in ["unshare", "mount", "hostname"] {
            assert!(
                o.lines().any(|l| l == format!("{call}={want}")),
                "{call} should exit {want} (profile {with_profile}):\n{out}"
            );
        }
        if with_profile {
            assert!(out.stderr.contains("Operation not permitted"), "{out}");
        }
        let got = sys_outcomes(o);
        if with_profile {
            expect(&got, "keyctl", "ret=-1");
            expect(&got, "add_key", "ret=-1");
            expect(&got, "phigh", "ret=-1"); // only the exact 64-bit values are allowed
            expect(&got, "clone3", "ret=-38"); // the profile's own errnoRet
        } else {
            assert_ne!(got.iter().find(|g| g.0 == "keyctl").unwrap().1, "ret=-1");
            expect(&got, "phigh", "ret=0");
        }
        expect(&got, "p0", "ret=0");
        expect_success(&got, "p8");
        expect_success(&got, "i386getpid");
    }
}

#[test]
fn docker_default_profile_for_a_non_root_user_without_no_new_privileges() {
    // Docker's usual shape: noNewPrivileges unset, user switch, no CAP_SYS_ADMIN. The filter
    // must still be loaded (the kernel then needs CAP_SYS_ADMIN, so the runtime loads it while
    // it still has it) and the user's shell must work under it.
    let Some(docker) = docker_seccomp() else {
        return;
    };
    let mut c = Ctr::new("sc-docker-user");
    set_seccomp(&mut c, docker);
    c.config["process"]["noNewPrivileges"] = json!(false);
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [1000]});
    c.sh(
        "id -u; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; \
          mkdir /tmp/u && echo mkdir-ok; unshare -U true; echo unshare=$?",
    );
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        out.stdout, "1000\nNoNewPrivs:\t0\nSeccomp:\t2\nmkdir-ok\nunshare=1\n",
        "{out}"
    );
}

#[test]
fn filter_without_no_new_privileges_for_a_non_root_user() {
    let mut c = Ctr::new("sc-nnp-off");
    one_rule(&mut c, &MKDIR, "SCMP_ACT_ERRNO", json!({"errnoRet": 13}));
    c.config["process"]["noNewPrivileges"] = json!(false);
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.sh(&format!(
        "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; {MKDIR_SCRIPT}"
    ));
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        out.stdout, "NoNewPrivs:\t0\nSeccomp:\t2\nrc=1\nabsent\n",
        "{out}"
    );
    assert!(out.stderr.contains("Permission denied"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// exec
// ---------------------------------------------------------------------------------------------

/// Creates and starts `c` running `sleep 60`.
fn start_sleeper(c: &mut Ctr) {
    c.args(&["sleep", "60"]);
    c.create_ok();
    c.start_ok();
}

/// Kills the sleeper and waits until it is stopped (before any assertion, so a failure does not
/// leave it running).
fn stop_sleeper(c: &mut Ctr) {
    c.kill("KILL");
    c.wait_status("stopped", CMD_TIMEOUT);
}

#[test]
fn exec_gets_the_filter_too() {
    let mut c = Ctr::new("sc-exec");
    one_rule(&mut c, &MKDIR, "SCMP_ACT_ERRNO", json!({"errnoRet": 28}));
    start_sleeper(&mut c);
    let id = c.id.clone();
    let out = c.rt_piped(&[
        "exec",
        &id,
        "sh",
        "-c",
        &format!("grep '^Seccomp:' /proc/self/status; {MKDIR_SCRIPT}"),
    ]);
    stop_sleeper(&mut c);
    out.assert_ok();
    assert_eq!(out.stdout, "Seccomp:\t2\nrc=1\nabsent\n", "{out}");
    assert!(out.stderr.contains("No space left on device"), "{out}");
}

/// `exec` loads the filter `create` compiled and saved in the state directory; a saved program
/// that is gone or damaged must never mean an exec without the filter.
#[test]
fn exec_without_a_usable_saved_filter_compiles_the_profile() {
    hutch_only!("the saved program (seccomp.bpf in the state directory) is hutch's");
    let mut c = Ctr::new("sc-exec-saved");
    one_rule(&mut c, &MKDIR, "SCMP_ACT_ERRNO", json!({"errnoRet": 28}));
    start_sleeper(&mut c);
    let id = c.id.clone();
    let saved = c.root.join(&id).join("seccomp.bpf");
    let mut outputs = Vec::new();
    let saved_at_create = std::fs::read(&saved);
    for damage in ["as saved", "cut short", "garbage", "removed"] {
        match damage {
            "cut short" => std::fs::write(&saved, b"hutch-seccomp-bpf-1\n\x00\x06\x00").unwrap(),
            "garbage" => std::fs::write(&saved, b"\x06\x00\x00\x00\x00\x00\xff\x7f").unwrap(),
            "removed" => std::fs::remove_file(&saved).unwrap(),
            _ => {}
        }
        outputs.push((damage, c.rt_piped(&["exec", &id, "sh", "-c", MKDIR_SCRIPT])));
    }
    stop_sleeper(&mut c);
    assert!(
        saved_at_create.is_ok(),
        "create saves the program: {saved_at_create:?}"
    );
    for (damage, out) in outputs {
        out.assert_ok();
        assert_eq!(
            out.stdout, "rc=1\nabsent\n",
            "saved program {damage}: {out}"
        );
        assert!(
            out.stderr.contains("No space left on device"),
            "{damage}: {out}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SCMP_ACT_NOTIFY
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Answer {
    /// Fail the call with this errno.
    Errno(i32),
    /// Let the kernel run the call (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    Continue,
    /// Pretend the call returned this value, without running it.
    Value(i64),
}

#[derive(Debug, Default)]
struct AgentReport {
    /// The JSON message of each connection.
    messages: Vec<Value>,
    /// (syscall number, arch, pid) of each notification, in order.
    notifications: Vec<(i32, u32, u32)>,
    errors: Vec<String>,
}

/// A seccomp agent on a unix socket: receives the state and the listener fd of each
/// connection, answers notifications with `answers` in order (then `Continue`), until `stop`.
struct Agent {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<AgentReport>>,
}

impl Agent {
    fn start(path: &Path, answers: Vec<Answer>) -> Agent {
        Agent::start_on(
            UnixListener::bind(path).expect("bind the agent socket"),
            answers,
        )
    }
    fn start_on(listener: UnixListener, answers: Vec<Answer>) -> Agent {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || agent_loop(listener, answers, s));
        Agent {
            stop,
            thread: Some(thread),
        }
    }
    fn finish(mut self) -> AgentReport {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().expect("agent thread")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn agent_loop(listener: UnixListener, answers: Vec<Answer>, stop: Arc<AtomicBool>) -> AgentReport {
    let mut report = AgentReport::default();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut answers = answers.into_iter();
    let deadline = Instant::now() + CMD_TIMEOUT;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, _)) => match receive_state(&stream) {
                Ok((msg, fd)) => {
                    report.messages.push(msg);
                    match fd {
                        Some(fd) => fds.push(fd),
                        None => report.errors.push("a message without an fd".into()),
                    }
                }
                Err(e) => report.errors.push(format!("receiving the state: {e}")),
            },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => report.errors.push(format!("accept: {e}")),
        }
        let mut pfds: Vec<libc::pollfd> = fds
            .iter()
            .map(|f| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: poll over a valid array of pollfd.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 20) };
        if n <= 0 {
            if fds.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        }
        for p in &pfds {
            if p.revents & libc::POLLIN != 0 {
                let answer = answers.next().unwrap_or(Answer::Continue);
                match answer_one(p.fd, answer) {
                    Ok(Some(n)) => report.notifications.push(n),
                    Ok(None) => {}
                    Err(e) => report.errors.push(e),
                }
            }
        }
        // A listener whose filter has no task left polls HUP: drop it.
        let hup: Vec<RawFd> = pfds
            .iter()
            .filter(|p| {
                p.revents & (libc::POLLHUP | libc::POLLERR) != 0 && p.revents & libc::POLLIN == 0
            })
            .map(|p| p.fd)
            .collect();
        fds.retain(|f| !hup.contains(&f.as_raw_fd()));
    }
    report
}

/// NOTIF_RECV one notification and NOTIF_SEND the answer. Ok(None): the caller died meanwhile.
fn answer_one(fd: RawFd, answer: Answer) -> Result<Option<(i32, u32, u32)>, String> {
    // SAFETY: the kernel requires a zeroed seccomp_notif; both structs are plain data.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: ioctl on a seccomp listener with the struct its request number names.
    if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::EINTR) => Ok(None),
            _ => Err(format!("SECCOMP_IOCTL_NOTIF_RECV: {e}")),
        };
    }
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: 0,
        flags: 0,
    };
    match answer {
        Answer::Errno(e) => resp.error = -e,
        Answer::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        Answer::Value(v) => resp.val = v,
    }
    // SAFETY: as above.
    if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) } < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOENT) {
            return Err(format!("SECCOMP_IOCTL_NOTIF_SEND: {e}"));
        }
    }
    Ok(Some((req.data.nr, req.data.arch, req.pid)))
}

/// One recvmsg with SCM_RIGHTS (the fd comes with the first bytes), then the rest of the JSON.
fn receive_state(stream: &UnixStream) -> Result<(Value, Option<OwnedFd>), String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let first = scm::recv_with_fds(stream)?;
    let mut fds = first.fds;
    let mut data = first.data;
    // The sender may split the JSON; read until it parses (or EOF).
    let mut s = stream;
    while serde_json::from_slice::<Value>(&data).is_err() {
        let mut more = [0u8; 4096];
        match s.read(&mut more) {
            Ok(0) => break,
            Ok(k) => data.extend_from_slice(&more[..k]),
            Err(e) => return Err(format!("reading the rest of the state: {e}")),
        }
    }
    let v: Value = serde_json::from_slice(&data)
        .map_err(|e| format!("invalid JSON ({e}): {}", String::from_utf8_lossy(&data)))?;
    if fds.len() > 1 {
        return Err(format!("{} fds sent, expected one", fds.len()));
    }
    Ok((v, fds.pop()))
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

fn notify_profile(c: &mut Ctr, socket: &Path, metadata: Option<&str>) {
    let mut p = profile(
        "SCMP_ACT_ALLOW",
        json!([{"names": MKDIR, "action": "SCMP_ACT_NOTIFY"}]),
    );
    p["listenerPath"] = json!(socket);
    if let Some(m) = metadata {
        p["listenerMetadata"] = json!(m);
    }
    set_seccomp(c, p);
}

#[track_caller]
fn check_message(msg: &Value, c: &Ctr, status: &str, metadata: Option<&str>) {
    assert!(
        msg["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "ociVersion: {msg:#}"
    );
    assert_eq!(msg["fds"], json!(["seccompFd"]), "fds: {msg:#}");
    let pid = msg["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "pid: {msg:#}");
    match metadata {
        Some(m) => assert_eq!(msg["metadata"], json!(m), "metadata: {msg:#}"),
        None => assert!(
            msg.get("metadata").is_none_or(|m| m.is_null() || m == ""),
            "metadata: {msg:#}"
        ),
    }
    let st = &msg["state"];
    assert_eq!(st["id"], json!(c.id), "state.id: {msg:#}");
    assert_eq!(st["status"], json!(status), "state.status: {msg:#}");
    assert!(
        st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "state.ociVersion: {msg:#}"
    );
    let bundle = st["bundle"].as_str().unwrap_or_default();
    assert_eq!(
        fs::canonicalize(bundle).ok(),
        fs::canonicalize(&c.bundle).ok(),
        "state.bundle: {msg:#}"
    );
    assert!(st["pid"].as_i64().unwrap_or(0) > 0, "state.pid: {msg:#}");
}

#[test]
fn notify_agent_answers_for_the_container() {
    let mut c = Ctr::new("sc-notify");
    let socket = c.socket_path("agent.sock");
    notify_profile(&mut c, &socket, Some("hello agent: {\"json\": true}"));
    c.sh("mkdir /tmp/a; echo a=$?; \
          mkdir /tmp/b; echo b=$?; [ -d /tmp/b ] && echo b-exists; \
          mkdir /tmp/c; echo c=$?; [ -d /tmp/c ] || echo c-missing; echo done");
    let agent = Agent::start(
        &socket,
        vec![
            Answer::Errno(libc::ENOSPC),
            Answer::Continue,
            Answer::Value(0),
        ],
    );
    let out = c.run();
    let report = agent.finish();
    out.assert_ok();
    assert!(
        report.errors.is_empty(),
        "agent: {:?}\n{out}",
        report.errors
    );
    assert_eq!(
        out.stdout, "a=1\nb=0\nb-exists\nc=0\nc-missing\ndone\n",
        "{out}\n{report:#?}"
    );
    assert!(
        out.stderr.contains("'/tmp/a': No space left on device"),
        "{out}"
    );
    assert_eq!(report.messages.len(), 1, "{report:#?}");
    let msg = &report.messages[0];
    check_message(msg, &c, "creating", Some("hello agent: {\"json\": true}"));
    // The process the filter was loaded in is the container's init.
    assert_eq!(msg["pid"], msg["state"]["pid"], "{msg:#}");
    assert_eq!(report.notifications.len(), 3, "{report:#?}");
    for &(nr, arch, pid) in &report.notifications {
        assert!(nr == 83 || nr == 258, "mkdir or mkdirat: {report:#?}");
        assert_eq!(arch, AUDIT_ARCH_X86_64);
        assert!(pid > 0);
    }
}

#[test]
fn notify_without_metadata() {
    let mut c = Ctr::new("sc-notify-nometa");
    let socket = c.socket_path("agent.sock");
    notify_profile(&mut c, &socket, None);
    c.sh(MKDIR_SCRIPT);
    let agent = Agent::start(&socket, vec![Answer::Errno(libc::EROFS)]);
    let out = c.run();
    let report = agent.finish();
    out.assert_ok();
    assert_eq!(out.stdout, "rc=1\nabsent\n", "{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert_eq!(report.messages.len(), 1, "{report:#?}");
    check_message(&report.messages[0], &c, "creating", None);
}

/// A listenerPath longer than a socket address holds is still reached (through its
/// directory's descriptor).
#[test]
fn notify_agent_past_the_socket_address_limit() {
    hutch_only!("runc 1.1.5 dials the path as given: EINVAL past 107 bytes");
    let mut c = Ctr::new("sc-notify-long");
    let deep = c.dir.join("a".repeat(120));
    std::fs::create_dir(&deep).unwrap();
    let socket = deep.join("agent.sock");
    notify_profile(&mut c, &socket, None);
    c.sh(MKDIR_SCRIPT);
    let agent = Agent::start_on(bind_at_long_path(&socket), vec![Answer::Errno(libc::EROFS)]);
    let out = c.run();
    let report = agent.finish();
    out.assert_ok();
    assert_eq!(out.stdout, "rc=1\nabsent\n", "{out}");
    assert_eq!(report.messages.len(), 1, "{report:#?}");
}

#[test]
fn notify_on_exec_sends_a_second_listener() {
    let mut c = Ctr::new("sc-notify-exec");
    let socket = c.socket_path("agent.sock");
    notify_profile(&mut c, &socket, Some("m"));
    let agent = Agent::start(&socket, vec![Answer::Errno(libc::EXDEV)]);
    start_sleeper(&mut c);
    let id = c.id.clone();
    let out = c.rt_piped(&["exec", &id, "sh", "-c", MKDIR_SCRIPT]);
    stop_sleeper(&mut c);
    let report = agent.finish();
    out.assert_ok();
    assert_eq!(out.stdout, "rc=1\nabsent\n", "{out}\n{report:#?}");
    assert!(out.stderr.contains("Invalid cross-device link"), "{out}");
    assert!(report.errors.is_empty(), "agent: {:?}", report.errors);
    assert_eq!(report.messages.len(), 2, "init and exec: {report:#?}");
    check_message(&report.messages[0], &c, "creating", Some("m"));
    check_message(&report.messages[1], &c, "running", Some("m"));
    assert_ne!(
        report.messages[0]["pid"], report.messages[1]["pid"],
        "the exec'd process has its own filter: {report:#?}"
    );
    assert_eq!(report.notifications.len(), 1, "{report:#?}");
}

#[test]
fn notify_without_a_listener_path_is_refused() {
    let mut c = Ctr::new("sc-notify-nopath");
    one_rule(&mut c, &MKDIR, "SCMP_ACT_NOTIFY", json!({}));
    let out = c.create();
    out.assert_fail();
    if is_hutch() {
        assert!(out.stderr.contains("listenerPath"), "{out}");
    }
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
}

#[test]
fn notify_with_no_agent_listening_fails_cleanly() {
    let mut c = Ctr::new("sc-notify-noagent");
    let socket = c.socket_path("nobody.sock");
    notify_profile(&mut c, &socket, None);
    let out = c.create();
    out.assert_fail();
    if is_hutch() {
        assert!(out.stderr.contains("listenerPath"), "{out}");
    }
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
}

/// A NOTIFY rule on a syscall the runtime itself makes after loading the filter (here the
/// sync socket's sendmsg/recvmsg, with noNewPrivileges false so the filter is loaded before
/// the capability drop) used to hang `create` forever: the listener travels by that very
/// sendmsg. It is refused at once, naming the rule, and nothing is left behind.
#[test]
fn notify_on_a_syscall_the_runtime_makes_is_refused_at_once() {
    hutch_only!("runc refuses NOTIFY only on write (and hangs on sendmsg)");
    for name in ["sendmsg", "recvmsg", "execve"] {
        let mut c = Ctr::new(&format!("sc-notify-own-{name}"));
        c.config["process"]["noNewPrivileges"] = json!(false);
        let socket = c.socket_path("agent.sock");
        let mut p = profile(
            "SCMP_ACT_ALLOW",
            json!([{"names": ["mkdirat", name], "action": "SCMP_ACT_NOTIFY"}]),
        );
        p["listenerPath"] = json!(socket);
        set_seccomp(&mut c, p);
        let agent = Agent::start(&socket, vec![]);
        let started = Instant::now();
        let out = c.create();
        let report = agent.finish();
        out.assert_fail();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: took {:?}\n{out}",
            started.elapsed()
        );
        assert!(
            out.stderr.contains("linux.seccomp.syscalls[0]")
                && out.stderr.contains(&format!("{name} syscall"))
                && out.stderr.contains("names[1]"),
            "{name}: {out}"
        );
        assert!(report.messages.is_empty(), "{name}: {report:#?}");
        c.rt(&["state", &c.id]).assert_fail_with("does not exist");
    }
}

/// ERRNO or KILL on the syscalls the runtime makes after an early load (noNewPrivileges
/// false) never hang `create`: it fails, and nothing is left behind.
#[test]
fn errno_or_kill_on_the_runtimes_own_syscalls_fails_fast() {
    hutch_only!("what runc 1.1.5 reports differs");
    let cases = [
        ("recvmsg", "SCMP_ACT_ERRNO"),
        ("sendmsg", "SCMP_ACT_ERRNO"),
        ("sendmsg", "SCMP_ACT_KILL"),
        ("recvmsg", "SCMP_ACT_KILL_PROCESS"),
        ("capset", "SCMP_ACT_ERRNO"),
        ("capset", "SCMP_ACT_KILL"),
    ];
    for (name, action) in cases {
        let mut c = Ctr::new(&format!("sc-own-{name}-{}", action.len()));
        c.config["process"]["noNewPrivileges"] = json!(false);
        no_core_dumps(&mut c);
        one_rule(&mut c, &[name], action, json!({}));
        let started = Instant::now();
        let out = c.create();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} {action}: took {:?}\n{out}",
            started.elapsed()
        );
        if out.ok() {
            // The denied call came after Commit (the init's last read of the socket): the
            // init is dead, and nothing runs.
            c.wait_status("stopped", Duration::from_secs(10));
            c.start().assert_fail();
        } else {
            assert!(!out.stderr.trim().is_empty(), "{name} {action}: {out}");
        }
        eprintln!(
            "{name} {action}: create ok={} {}",
            out.ok(),
            out.stderr.trim()
        );
        let _ = c.rt(&["delete", "--force", &c.id]);
        c.rt(&["state", &c.id]).assert_fail_with("does not exist");
    }
}

// ---------------------------------------------------------------------------------------------
// Flags and profile errors
// ---------------------------------------------------------------------------------------------

fn flags_case(flags: Value) {
    let mut c = Ctr::new("sc-flags");
    one_rule(&mut c, &MKDIR, "SCMP_ACT_ERRNO", json!({}));
    c.config["linux"]["seccomp"]["flags"] = flags.clone();
    c.sh(MKDIR_SCRIPT);
    let out = c.run();
    out.assert_ok();
    assert_eq!(out.stdout, "rc=1\nabsent\n", "flags {flags}:\n{out}");
}

#[test]
fn empty_flags_list() {
    flags_case(json!([]));
}

#[test]
fn filter_flags_are_accepted() {
    hutch_only!(
        "runc 1.1.5 refuses every seccomp flag (\"seccomp flags are not yet supported by runc\")"
    );
    for flags in [
        json!(["SECCOMP_FILTER_FLAG_LOG"]),
        json!(["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]),
        json!(["SECCOMP_FILTER_FLAG_TSYNC"]),
        json!(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]),
        // Only meaningful with a listener: accepted (and left out) without one.
        json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]),
    ] {
        flags_case(flags);
    }
}

#[test]
fn wait_killable_recv_flag_with_notify() {
    hutch_only!("runc 1.1.5 refuses every seccomp flag");
    let mut c = Ctr::new("sc-flag-wkr");
    let socket = c.socket_path("agent.sock");
    notify_profile(&mut c, &socket, None);
    c.config["linux"]["seccomp"]["flags"] = json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]);
    c.sh(MKDIR_SCRIPT);
    let agent = Agent::start(&socket, vec![Answer::Errno(libc::EACCES)]);
    let out = c.run();
    let report = agent.finish();
    out.assert_ok();
    assert_eq!(out.stdout, "rc=1\nabsent\n", "{out}\n{report:#?}");
}

/// `create` with this `linux.seccomp` must fail and leave nothing behind (the harness checks
/// leftovers when the container is dropped); returns the runtime's stderr.
#[track_caller]
fn refused(seccomp: &Value) -> String {
    let mut c = Ctr::new("sc-bad");
    set_seccomp(&mut c, seccomp.clone());
    let out = c.create();
    assert!(!out.ok(), "accepted {seccomp}:\n{out}");
    assert!(out.status.code().is_some(), "died of a signal:\n{out}");
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
    out.stderr
}

#[test]
fn unknown_flag_is_refused_naming_the_field() {
    let mut p = profile("SCMP_ACT_ALLOW", json!([]));
    p["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_BOGUS"]);
    let err = refused(&p);
    hutch_only!("the wording of the error is hutch's");
    assert!(
        err.contains("linux.seccomp.flags"),
        "the error should name linux.seccomp.flags:\n{err}"
    );
}

/// (profile, the field the error must name)
fn bad_profiles() -> Vec<(Value, &'static str)> {
    let mk = |rule: Value| profile("SCMP_ACT_ALLOW", json!([rule]));
    vec![
        (
            profile("SCMP_ACT_BOGUS", json!([])),
            "linux.seccomp.defaultAction",
        ),
        (
            mk(json!({"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"})),
            "linux.seccomp.syscalls[0].action",
        ),
        (
            mk(json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_BOGUS"}]})),
            "linux.seccomp.syscalls[0].args[0].op",
        ),
        (
            mk(json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]})),
            "linux.seccomp.syscalls[0].args[0].index",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_BOGUS"]}),
            "linux.seccomp.architectures",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/nonexistent.sock"}),
            "linux.seccomp.defaultAction",
        ),
    ]
}

#[test]
fn bad_profiles_are_refused_cleanly() {
    for (p, _) in bad_profiles() {
        refused(&p);
    }
}

#[test]
fn bad_profile_errors_name_the_field() {
    hutch_only!("the wording of the errors is hutch's");
    let mut unnamed = Vec::new();
    for (p, field) in bad_profiles() {
        let err = refused(&p);
        if !err.contains(field) {
            unnamed.push(format!("{field}: {}", err.trim()));
        }
    }
    assert!(
        unnamed.is_empty(),
        "errors that do not name the field:\n{}",
        unnamed.join("\n")
    );
}

#[test]
fn errno_ret_on_an_action_without_errno_is_refused() {
    hutch_only!(
        "runc 1.1.5 ignores errnoRet on actions other than ERRNO/TRACE (the spec says MUST error)"
    );
    let err = refused(&profile(
        "SCMP_ACT_ALLOW",
        json!([{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]),
    ));
    assert!(err.contains("errnoRet"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Capabilities seen through behaviour
// ---------------------------------------------------------------------------------------------

#[test]
fn ambient_capability_works_for_a_non_root_user() {
    // uid 1000 binding port 80 needs CAP_NET_BIND_SERVICE in its effective set after exec,
    // which a non-root process only keeps through the ambient set. The binding nc is stopped
    // by `timeout` (status 143) when it did bind; it fails at once with status 1 when not.
    let nbs = ["CAP_NET_BIND_SERVICE"];
    for (ambient, want_bound) in [(true, true), (false, false)] {
        let mut c = Ctr::new("sc-ambient");
        let mut caps = json!({
            "bounding": nbs, "effective": nbs, "permitted": nbs, "inheritable": nbs,
        });
        if ambient {
            caps["ambient"] = json!(nbs);
        }
        c.config["process"]["capabilities"] = caps;
        c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c.sh("grep -E '^Cap(Eff|Amb):' /proc/self/status; \
              timeout 1 nc -l -p 80 2>/dev/null; echo nc=$?");
        let out = c.run();
        out.assert_ok();
        let mask = format!("{:016x}", cap_mask(&nbs));
        let none = format!("{:016x}", 0);
        let (eff, amb, nc) = if want_bound {
            (&mask, &mask, "nc=143")
        } else {
            (&none, &none, "nc=1")
        };
        assert_eq!(
            out.stdout,
            format!("CapEff:\t{eff}\nCapAmb:\t{amb}\n{nc}\n"),
            "ambient={ambient}:\n{out}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Calls hutch makes itself after an early filter load
// ---------------------------------------------------------------------------------------------

/// Without no_new_privs the filter is loaded before the capabilities are dropped (the load
/// needs CAP_SYS_ADMIN), so the container's profile applies to whatever hutch does after it
/// (issue 10 #5). hutch does its own steps and checks first: a profile denying any of them must
/// not break the container. Only the capability drop itself has to follow the load; a profile
/// denying it fails `create` with the step named, never leaves the container with the
/// runtime's capabilities. As root and as a user (whose uid switch empties the effective set
/// the load needs).
#[test]
fn profile_denying_hutchs_own_calls_after_an_early_load() {
    hutch_only!("runc 1.1.5 loads the filter before setgroups, the uid switch and chdir");
    // (syscall denied with EPERM, None: the container runs | Some(error text create shows))
    let table: &[(&str, Option<&str>)] = &[
        ("getcwd", None),
        ("chdir", None),
        ("fchdir", None),
        ("setgroups", None),
        ("setresuid", None),
        ("setresgid", None),
        ("prctl", None),
        ("close_range", None),
        ("capget", Some("process.capabilities")),
        ("capset", Some("process.capabilities")),
    ];
    let mut failures = Vec::new();
    for (syscall, want_error) in table {
        for uid in [0, 1000] {
            let mut c = Ctr::new(&format!("sc-own-{}", syscall.replace('_', "-")));
            c.config["process"]["noNewPrivileges"] = json!(false);
            c.config["process"]["user"] = json!({"uid": uid, "gid": uid});
            c.args(&["echo", "ran"]);
            one_rule(&mut c, &[syscall], "SCMP_ACT_ERRNO", json!({"errnoRet": 1}));
            let out = c.run();
            let verdict = match want_error {
                None if out.ok() && out.stdout.trim() == "ran" => None,
                None => Some(format!("should run:\n{out}")),
                Some(text) if !out.ok() && out.stderr.contains(text) => None,
                Some(text) => Some(format!("should fail naming {text:?}:\n{out}")),
            };
            if let Some(v) = verdict {
                failures.push(format!("{syscall} denied, uid {uid}: {v}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
