//! Tests: generated code through a BPF interpreter (every arch and path), then real filters
//! loaded into forked children, then the notify listener end to end.

use std::os::fd::OwnedFd;
use std::time::Instant;

use serde_json::{json, Value};

use super::abi::{Abi, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::bpf::interpret;
use super::profile::{
    NOTIFY_REFUSED, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD, RET_LOG, RET_TRACE,
    RET_TRAP, RET_USER_NOTIF,
};
use super::*;

const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("test profile parses")
}

fn prog(v: Value) -> Program {
    compile(&profile(v)).expect("test profile compiles")
}

fn compile_err(v: Value) -> String {
    format!(
        "{:#}",
        compile(&profile(v)).expect_err("profile must be rejected")
    )
}

fn nr(abi: Abi, name: &str) -> u32 {
    abi.syscall(name).expect("syscall exists on this ABI")
}

fn audit_arch(abi: Abi) -> u32 {
    match abi {
        Abi::I386 => AUDIT_ARCH_I386,
        Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
    }
}

fn run(p: &Program, abi: Abi, name: &str, args: [u64; 6]) -> u32 {
    interpret(p.instructions(), audit_arch(abi), nr(abi, name), args)
}

fn run0(p: &Program, abi: Abi, name: &str) -> u32 {
    run(p, abi, name, [0; 6])
}

fn docker() -> LinuxSeccomp {
    let text = std::fs::read_to_string("/work/shared/reference/configs/docker-config.json")
        .or_else(|_| std::fs::read_to_string("../shared/reference/configs/docker-config.json"));
    let config: Value = match text {
        Ok(t) => serde_json::from_str(&t).expect("docker config parses"),
        // Docker's profile shape, trimmed, when the reference configs are not around.
        Err(_) => json!({"linux": {"seccomp": {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["read", "write", "getpid", "exit_group", "socketcall", "mkdir"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]}}}),
    };
    serde_json::from_value(config["linux"]["seccomp"].clone()).expect("docker seccomp parses")
}

// ---------------------------------------------------------------------------------------------
// Translation and dispatch, through the interpreter.

#[test]
fn allow_list_with_default_errno() {
    // Without an architectures list runc adds no ENOSYS stub (it only covers listed arches).
    let bare = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getpid", "read"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(run0(&bare, Abi::X86_64, "mkdir"), EPERM);
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["getpid", "read"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(run0(&p, Abi::X86_64, "getpid"), RET_ALLOW);
    assert_eq!(run0(&p, Abi::X86_64, "read"), RET_ALLOW);
    assert_eq!(run0(&p, Abi::X86_64, "close"), EPERM);
    // Above the highest number the profile names (getpid, 39): runc's ENOSYS stub.
    assert_eq!(run0(&p, Abi::X86_64, "mkdir"), ENOSYS);
    // Arches the profile does not list get libseccomp's bad-arch action.
    assert_eq!(run0(&p, Abi::I386, "getpid"), RET_KILL_THREAD);
    assert_eq!(
        interpret(p.instructions(), 0xc000_00b7, 39, [0; 6]),
        RET_KILL_THREAD
    );
    // x32 numbers when x32 is not listed: bad arch; -1 (tracer skip): default action.
    assert_eq!(run0(&p, Abi::X32, "getpid"), RET_KILL_THREAD);
    assert_eq!(
        interpret(p.instructions(), AUDIT_ARCH_X86_64, u32::MAX, [0; 6]),
        EPERM
    );
}

#[test]
fn default_errno_ret_and_rule_errno_ret() {
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
        ]
    }));
    assert_eq!(run0(&p, Abi::X86_64, "mkdir"), RET_ERRNO | 18);
    assert_eq!(run0(&p, Abi::X86_64, "rmdir"), EPERM);
    assert_eq!(run0(&p, Abi::X86_64, "chdir"), RET_ERRNO | 38);
}

#[test]
fn every_action() {
    let cases = [
        ("SCMP_ACT_KILL", None, RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", None, RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", None, RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", None, RET_TRAP),
        ("SCMP_ACT_ERRNO", None, EPERM),
        ("SCMP_ACT_ERRNO", Some(22), RET_ERRNO | 22),
        ("SCMP_ACT_TRACE", None, RET_TRACE | libc::EPERM as u32),
        ("SCMP_ACT_TRACE", Some(7), RET_TRACE | 7),
        ("SCMP_ACT_LOG", None, RET_LOG),
        ("SCMP_ACT_NOTIFY", None, RET_USER_NOTIF),
        ("SCMP_ACT_ALLOW", None, RET_ALLOW),
    ];
    for (action, errno, want) in cases {
        // A default that differs from every rule action (runc drops rules equal to it).
        let default = if want == RET_TRAP {
            "SCMP_ACT_LOG"
        } else {
            "SCMP_ACT_TRAP"
        };
        let mut rule = json!({"names": ["getpid"], "action": action});
        if let Some(e) = errno {
            rule["errnoRet"] = json!(e);
        }
        let p = prog(json!({"defaultAction": default, "syscalls": [rule]}));
        assert_eq!(run0(&p, Abi::X86_64, "getpid"), want, "{action} {errno:?}");
        assert_eq!(p.needs_listener(), action == "SCMP_ACT_NOTIFY");
    }
    for (action, want) in [
        ("SCMP_ACT_KILL_PROCESS", RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", RET_TRAP),
        ("SCMP_ACT_LOG", RET_LOG),
        ("SCMP_ACT_ALLOW", RET_ALLOW),
    ] {
        let p = prog(json!({"defaultAction": action}));
        assert_eq!(run0(&p, Abi::X86_64, "mkdir"), want, "default {action}");
    }
}

#[test]
fn features_lists_parse_as_config_values() {
    for a in FEATURE_ACTIONS {
        let p = prog(json!({"defaultAction": "SCMP_ACT_KILL_PROCESS",
            "syscalls": [{"names": ["getpid"], "action": a}]}));
        assert!(!p.instructions().is_empty(), "{a}");
    }
    for op in FEATURE_OPERATORS {
        prog(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"],
            "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": op}]}]}),
        );
    }
    prog(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": FEATURE_ARCHES,
        "flags": FEATURE_FLAGS}),
    );
}

#[test]
fn config_errors_name_the_field() {
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}));
    assert!(e.contains("linux.seccomp.syscalls[1].errnoRet"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}));
    assert!(e.contains("linux.seccomp.defaultErrnoRet"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert!(e.contains("linux.seccomp.defaultAction"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(e.contains("linux.seccomp.syscalls[0].action"), "{e}");
    // Every syscall the init makes between an early load and execve (the listener itself
    // travels by sendmsg): refused, naming the rule and the name.
    for name in NOTIFY_REFUSED {
        let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mknod"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["mkdir", name], "action": "SCMP_ACT_NOTIFY"}]}));
        assert!(
            e.contains("linux.seccomp.syscalls[1].action")
                && e.contains("linux.seccomp.syscalls[1].names[1]")
                && e.contains(&format!("the {name} syscall")),
            "{e}"
        );
    }
    // NOTIFY on what only the container calls is fine.
    let p = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mknod", "mknodat", "mount", "mkdir", "mkdirat", "setxattr"],
         "action": "SCMP_ACT_NOTIFY"}]}),
    ))
    .expect("compiles");
    assert!(p.needs_listener());
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid", ""], "action": "SCMP_ACT_KILL"}]}));
    assert!(e.contains("linux.seccomp.syscalls[0].names[1]"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_KILL",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
    assert!(e.contains("linux.seccomp.syscalls[0].args[1].index"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}));
    assert!(e.contains("linux.seccomp.syscalls[0].errnoRet"), "{e}");
    // Unknown flags and actions are rejected by the config parser already.
    assert!(serde_json::from_value::<LinuxSeccomp>(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]})
    )
    .is_err());
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["getpid", "vm86old", "no_such_call", "socketcall", "arch_prctl",
                                "no_such_call"],
                      "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(p.unknown_syscalls(), ["no_such_call"]);
    // socketcall exists only on i386, arch_prctl only on x86_64: each applies where it exists.
    assert_eq!(run0(&p, Abi::I386, "socketcall"), RET_ALLOW);
    assert_eq!(run0(&p, Abi::X86_64, "arch_prctl"), RET_ALLOW);
    assert_eq!(run0(&p, Abi::I386, "getpid"), RET_ALLOW);
}

#[test]
fn i386_multiplexed_socket_and_ipc_calls() {
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["socket", "recv"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["shmat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"},
                      {"index": 2, "value": 0, "op": "SCMP_CMP_NE"}]}
        ]
    }));
    let i386 = |nr, args| interpret(p.instructions(), AUDIT_ARCH_I386, nr, args);
    // socket: the direct syscall and socketcall(SYS_SOCKET = 1, …).
    assert_eq!(run0(&p, Abi::I386, "socket"), EPERM);
    assert_eq!(i386(102, [1, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(i386(102, [3, 0, 0, 0, 0, 0]), RET_ALLOW);
    // recv exists only as socketcall(SYS_RECV = 10).
    assert_eq!(i386(102, [10, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(run0(&p, Abi::X86_64, "socket"), EPERM);
    // shmat: ipc(SHMAT = 21, …) with argument 0 replaced by the call number (libseccomp).
    assert_eq!(i386(117, [21, 0, 1, 0, 0, 0]), RET_ERRNO | 13);
    assert_eq!(i386(117, [21, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(i386(117, [22, 0, 1, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        run(&p, Abi::I386, "shmat", [7, 0, 1, 0, 0, 0]),
        RET_ERRNO | 13
    );
}

#[test]
fn arch_dispatch_uses_each_abis_numbers() {
    // 39 is getpid on x86_64 but mkdir on i386; 83 is mkdir on x86_64 and x32.
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["getpid", "rt_sigaction"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(
        interpret(p.instructions(), AUDIT_ARCH_X86_64, 39, [0; 6]),
        RET_ALLOW
    );
    assert_eq!(
        interpret(p.instructions(), AUDIT_ARCH_I386, 39, [0; 6]),
        EPERM
    );
    assert_eq!(
        interpret(p.instructions(), AUDIT_ARCH_I386, 20, [0; 6]),
        RET_ALLOW
    );
    assert_eq!(run0(&p, Abi::X32, "getpid"), RET_ALLOW);
    assert_eq!(run0(&p, Abi::X32, "mkdir"), EPERM);
    // x32 has its own rt_sigaction (512 | bit); x86_64's 13 with the bit is not it.
    assert_eq!(nr(Abi::X32, "rt_sigaction"), X32_SYSCALL_BIT | 512);
    assert_eq!(run0(&p, Abi::X32, "rt_sigaction"), RET_ALLOW);
    assert_eq!(
        interpret(
            p.instructions(),
            AUDIT_ARCH_X86_64,
            X32_SYSCALL_BIT | 13,
            [0; 6]
        ),
        EPERM
    );
    assert_eq!(run0(&p, Abi::X86_64, "rt_sigaction"), RET_ALLOW);
}

/// Reference semantics: libseccomp's unsigned comparisons on 64 bits (x86_64) or on the low
/// 32 bits of both sides (i386, x32).
fn reference(op: &str, arg: u64, value: u64, two: u64, wide: bool) -> bool {
    let m = |x: u64| if wide { x } else { x & 0xffff_ffff };
    let (a, v) = (m(arg), m(value));
    match op {
        "SCMP_CMP_NE" => a != v,
        "SCMP_CMP_LT" => a < v,
        "SCMP_CMP_LE" => a <= v,
        "SCMP_CMP_EQ" => a == v,
        "SCMP_CMP_GE" => a >= v,
        "SCMP_CMP_GT" => a > v,
        "SCMP_CMP_MASKED_EQ" => a & v == m(two) & v,
        _ => unreachable!(),
    }
}

#[test]
fn every_operator_on_both_halves_and_every_abi() {
    let interesting = [
        0u64,
        1,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x1_ffff_ffff,
        0x2_0000_0000,
        0x1234_5678_9abc_def0,
        0xffff_ffff_0000_0000,
        0xffff_fffe_ffff_ffff,
        u64::MAX - 1,
        u64::MAX,
    ];
    let masks = [
        0u64,
        0xff,
        0xffff_0000,
        0xffff_0000_0000_0000,
        0x7e02_0000,
        u64::MAX,
    ];
    for op in super::diff::OPS {
        for &value in &interesting {
            let twos: &[u64] = if op == "SCMP_CMP_MASKED_EQ" {
                &interesting
            } else {
                &[0]
            };
            let values: Vec<u64> = if op == "SCMP_CMP_MASKED_EQ" {
                masks.to_vec()
            } else {
                vec![value]
            };
            for &v in &values {
                for &two in twos {
                    let p = prog(json!({
                        "defaultAction": "SCMP_ACT_ALLOW",
                        "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                            "args": [{"index": 3, "value": v, "valueTwo": two, "op": op}]}]
                    }));
                    for abi in [Abi::X86_64, Abi::I386, Abi::X32] {
                        for &arg in &interesting {
                            let args = [0, 0, 0, arg, 0, 0];
                            let want = if reference(op, arg, v, two, abi.wide()) {
                                EPERM
                            } else {
                                RET_ALLOW
                            };
                            assert_eq!(
                                run(&p, abi, "getpid", args),
                                want,
                                "{op} value={v:#x} two={two:#x} arg={arg:#x} {abi:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn conditions_and_rules_combine_like_libseccomp() {
    // Conditions in one rule: AND. Several rules: OR. Docker's personality rules.
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mmap"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 2, "value": 3, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            // Two conditions on one argument: runc splits them into ORed rules.
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    for (v, want) in [
        (0, RET_ALLOW),
        (8, RET_ALLOW),
        (0xffff_ffff, RET_ALLOW),
        (1, EPERM),
    ] {
        assert_eq!(
            run(&p, Abi::X86_64, "personality", [v, 0, 0, 0, 0, 0]),
            want,
            "{v}"
        );
    }
    assert_eq!(
        run(
            &p,
            Abi::X86_64,
            "personality",
            [0x1_0000_0000, 0, 0, 0, 0, 0]
        ),
        EPERM
    );
    assert_eq!(run(&p, Abi::X86_64, "mmap", [0, 0, 3, 0, 0, 0]), RET_ALLOW);
    assert_eq!(run(&p, Abi::X86_64, "mmap", [0, 0, 4, 0, 0, 0]), EPERM);
    assert_eq!(run(&p, Abi::X86_64, "mmap", [1, 0, 3, 0, 0, 0]), EPERM);
    assert_eq!(run(&p, Abi::X86_64, "kill", [1, 9, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(run(&p, Abi::X86_64, "kill", [1, 15, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(run(&p, Abi::X86_64, "kill", [1, 2, 0, 0, 0, 0]), EPERM);
}

#[test]
fn unconditional_rule_wins_and_first_unconditional_wins() {
    for rules in [
        json!([{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
               {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]),
        json!([{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
               {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
    ] {
        let p = prog(json!({"defaultAction": "SCMP_ACT_KILL", "syscalls": rules}));
        assert_eq!(
            run(&p, Abi::X86_64, "getpid", [1, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
    }
    let p = prog(json!({"defaultAction": "SCMP_ACT_KILL", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5},
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6}]}));
    assert_eq!(run0(&p, Abi::X86_64, "getpid"), RET_ERRNO | 5);
    // A rule equal to the default action is dropped (runc), so it does not shadow others.
    let p = prog(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
    assert_eq!(run(&p, Abi::X86_64, "getpid", [1, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(
        run(&p, Abi::X86_64, "getpid", [2, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
}

#[test]
fn enosys_for_syscalls_newer_than_the_profile() {
    let p = compile(&docker()).expect("docker profile compiles");
    // Explicit rule: clone3 → ENOSYS (errnoRet 38) so glibc falls back to clone.
    assert_eq!(run0(&p, Abi::X86_64, "clone3"), ENOSYS);
    // Numbers above everything the profile names: ENOSYS on every ABI.
    assert_eq!(
        interpret(p.instructions(), AUDIT_ARCH_X86_64, 1000, [0; 6]),
        ENOSYS
    );
    assert_eq!(
        interpret(p.instructions(), AUDIT_ARCH_I386, 1000, [0; 6]),
        ENOSYS
    );
    assert_eq!(
        interpret(
            p.instructions(),
            AUDIT_ARCH_X86_64,
            X32_SYSCALL_BIT | 1000,
            [0; 6]
        ),
        ENOSYS
    );
    // Below that, an unlisted syscall gets the default.
    assert_eq!(run0(&p, Abi::X86_64, "kexec_load"), EPERM);
    assert_eq!(run0(&p, Abi::I386, "kexec_load"), EPERM);
    // A permissive default has no stub.
    let p = prog(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
    assert_eq!(
        interpret(p.instructions(), AUDIT_ARCH_X86_64, 1000, [0; 6]),
        RET_ALLOW
    );
    // A KILL default gets it too (runc: every non-permissive default).
    let p = prog(json!({"defaultAction": "SCMP_ACT_KILL_PROCESS",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}));
    assert_eq!(
        interpret(p.instructions(), AUDIT_ARCH_X86_64, 1000, [0; 6]),
        ENOSYS
    );
    assert_eq!(run0(&p, Abi::X86_64, "close"), RET_KILL_PROCESS);
    assert_eq!(run0(&p, Abi::X86_64, "mkdir"), ENOSYS);
}

#[test]
fn docker_profile_behaves() {
    let p = compile(&docker()).expect("docker profile compiles");
    for abi in [Abi::X86_64, Abi::I386, Abi::X32] {
        assert_eq!(run0(&p, abi, "read"), RET_ALLOW, "{abi:?}");
        assert_eq!(run0(&p, abi, "mkdir"), RET_ALLOW, "{abi:?}");
        assert_eq!(run0(&p, abi, "kexec_load"), EPERM, "{abi:?}");
        let pers = |v| run(&p, abi, "personality", [v, 0, 0, 0, 0, 0]);
        assert_eq!(pers(0xffff_ffff), RET_ALLOW, "{abi:?}");
        assert_eq!(pers(1), EPERM, "{abi:?}");
        // clone without namespace flags is allowed; CLONE_NEWUSER is not.
        let clone = |v| run(&p, abi, "clone", [v, 0, 0, 0, 0, 0]);
        assert_eq!(clone(libc::SIGCHLD as u64), RET_ALLOW, "{abi:?}");
        assert_eq!(clone(libc::CLONE_NEWUSER as u64), EPERM, "{abi:?}");
    }
    assert_eq!(run0(&p, Abi::I386, "socketcall"), RET_ALLOW);
    // The mask's high word is 0, so bits there do not matter (libseccomp: an always-true test).
    let clone_hi = run(
        &p,
        Abi::X86_64,
        "clone",
        [0x1_0000_0000 | libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
    );
    assert_eq!(clone_hi, RET_ALLOW);
}

#[test]
fn podman_profile_compiles_and_behaves() {
    let Ok(text) = std::fs::read_to_string("/work/shared/reference/configs/podman-config.json")
    else {
        return;
    };
    let config: Value = serde_json::from_str(&text).expect("podman config parses");
    let s: LinuxSeccomp =
        serde_json::from_value(config["linux"]["seccomp"].clone()).expect("podman seccomp");
    let p = compile(&s).expect("podman profile compiles");
    // podman: default ERRNO(ENOSYS); explicit ERRNO(EPERM) for the dangerous ones.
    assert_eq!(run0(&p, Abi::X86_64, "read"), RET_ALLOW);
    assert_eq!(run0(&p, Abi::X86_64, "sethostname"), EPERM);
    // setns is in podman's allow list before its ERRNO rule: the first unconditional rule
    // wins, as with libseccomp under runc.
    assert_eq!(run0(&p, Abi::X86_64, "setns"), RET_ALLOW);
    assert_eq!(run0(&p, Abi::I386, "vm86"), EPERM);
    assert_eq!(
        interpret(p.instructions(), AUDIT_ARCH_X86_64, 1000, [0; 6]),
        ENOSYS
    );
}

#[test]
fn long_jumps_in_a_large_program() {
    // Every x86_64 syscall with its own argument check: the dispatch tree's subtrees exceed
    // the 255-instruction reach of a conditional jump and need `ja` trampolines.
    let names: Vec<&str> = syscalls::SYSCALLS
        .iter()
        .filter(|(_, n, _)| n[0] >= 0)
        .map(|(name, _, _)| *name)
        .collect();
    let rules: Vec<Value> = names
        .iter()
        .map(|name| {
            json!({"names": [name], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 1, "value": nr(Abi::X86_64, name), "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let p = prog(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}));
    assert!(p.instructions().len() > 2000, "{}", p.instructions().len());
    assert!(
        p.instructions().iter().any(|i| i.code == 0x05),
        "expected a ja trampoline"
    );
    for name in names {
        let n = u64::from(nr(Abi::X86_64, name));
        assert_eq!(
            run(&p, Abi::X86_64, name, [0, n, 0, 0, 0, 0]),
            RET_ALLOW,
            "{name}"
        );
        assert_eq!(
            run(&p, Abi::X86_64, name, [0, n + 1, 0, 0, 0, 0]),
            EPERM,
            "{name}"
        );
    }
    // The same with i386 and x32 added would exceed BPF_MAXINSNS: a clear error, not a panic.
    let rules: Vec<Value> = syscalls::SYSCALLS
        .iter()
        .map(|(name, _, _)| {
            json!({"names": [name], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_GT"},
                            {"index": 2, "value": 1, "op": "SCMP_CMP_LT"}]})
        })
        .collect();
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules}));
    assert!(e.contains("more than the kernel's 4096"), "{e}");
}

/// Benchmark-style: compile Docker's default profile repeatedly and print the cost and size.
/// The release-mode number is in hack/bench-seccomp; this one runs unoptimized.
#[test]
fn bench_compile_docker_profile() {
    let s = docker();
    let p = compile(&s).expect("docker profile compiles");
    let runs = 200;
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(compile(std::hint::black_box(&s)).expect("compiles"));
    }
    let per = start.elapsed() / runs;
    eprintln!(
        "seccomp: docker profile → {} BPF instructions, compile {per:?} per run (test profile)",
        p.instructions().len()
    );
    assert!(p.instructions().len() < 1000, "{}", p.instructions().len());
    // Generous: unoptimized builds are ~10x slower than release.
    assert!(per.as_millis() < 20, "{per:?}");
}

// ---------------------------------------------------------------------------------------------
// Real filters in the kernel, each in a forked child (a filter cannot be removed).

/// Forks; the child sets no_new_privs, loads `p`, runs `body` and exits with its result
/// (100 = setup failed). Returns the child's wait status.
fn in_child(
    p: &Program,
    s: &LinuxSeccomp,
    body: impl FnOnce(Option<OwnedFd>) -> i32,
) -> nix::sys::wait::WaitStatus {
    // SAFETY: fork in a test process. The child only makes syscalls (and, in the notify test,
    // allocates, which glibc makes fork-safe) before _exit; it never returns into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: prctl with integer arguments only.
        let code = if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            100
        } else {
            match load(p, s) {
                Ok(fd) => body(fd),
                Err(_) => 101,
            }
        };
        // SAFETY: ends the child without running the parent's destructors or atexit handlers.
        unsafe { libc::_exit(code) }
    }
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).expect("waitpid")
}

/// A raw syscall's result: Ok(return value) or Err(errno).
fn sys(nr: libc::c_long, args: [u64; 3]) -> Result<i64, i32> {
    // SAFETY: the tests only pass integer arguments or pointers to live NUL-terminated strings.
    let r = unsafe { libc::syscall(nr, args[0], args[1], args[2]) };
    if r == -1 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

fn exited(status: nix::sys::wait::WaitStatus) -> i32 {
    match status {
        nix::sys::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("child did not exit normally: {other:?}"),
    }
}

#[test]
fn kernel_allow_list_errnos_and_enosys() {
    let s = profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["getpid", "exit_group", "exit"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}
        ]
    }));
    let p = compile(&s).expect("compiles");
    let dir = c"/nonexistent-hutch-seccomp-test";
    let status = in_child(&p, &s, |_| {
        let path = dir.as_ptr() as u64;
        if sys(libc::SYS_getpid, [0; 3]).is_err() {
            return 1;
        }
        if sys(libc::SYS_mkdir, [path, 0o755, 0]) != Err(libc::EPERM) {
            return 2;
        }
        if sys(libc::SYS_rmdir, [path, 0, 0]) != Err(libc::EXDEV) {
            return 3;
        }
        // Newer than anything the profile names: ENOSYS, not EPERM.
        if sys(1000, [0; 3]) != Err(libc::ENOSYS) {
            return 4;
        }
        0
    });
    assert_eq!(exited(status), 0);
}

#[test]
fn kernel_argument_filters() {
    let s = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            // getpid ignores its arguments, so the filter sees whatever we pass.
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
             "args": [{"index": 0, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GT"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 8,
             "args": [{"index": 1, "value": 0xffff_ffffu64, "op": "SCMP_CMP_NE"},
                      {"index": 2, "value": 5, "op": "SCMP_CMP_LE"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 25,
             "args": [{"index": 0, "value": 0xffff_0000u64, "valueTwo": 0x0002_0000,
                       "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    }));
    let p = compile(&s).expect("compiles");
    let status = in_child(&p, &s, |_| {
        let ok = |r: Result<i64, i32>| r.is_ok();
        let cases: [(bool, bool); 8] = [
            (
                sys(libc::SYS_getpid, [0x1_0000_0001, 0xffff_ffff, 0]) == Err(7),
                true,
            ),
            (
                ok(sys(libc::SYS_getpid, [0x1_0000_0000, 0xffff_ffff, 0])),
                true,
            ),
            (
                ok(sys(libc::SYS_getpid, [0xffff_ffff, 0xffff_ffff, 0])),
                true,
            ),
            (
                sys(libc::SYS_getpid, [0x2_0000_0000, 0xffff_ffff, 0]) == Err(7),
                true,
            ),
            // NE on the high word: 0x1_ffff_ffff differs from 0xffff_ffff.
            (sys(libc::SYS_getpid, [0, 0x1_ffff_ffff, 5]) == Err(8), true),
            (ok(sys(libc::SYS_getpid, [0, 0x1_ffff_ffff, 6])), true),
            (
                sys(libc::SYS_personality, [0x0002_0000, 0, 0]) == Err(libc::ENOTTY),
                true,
            ),
            // 0xffffffff queries the persona: (0xffffffff & mask) != 0x20000 → allowed.
            (ok(sys(libc::SYS_personality, [0xffff_ffff, 0, 0])), true),
        ];
        match cases.iter().position(|(got, want)| got != want) {
            Some(i) => 10 + i as i32,
            None => 0,
        }
    });
    assert_eq!(exited(status), 0);
}

#[test]
fn kernel_actions_kill_trap_log_trace() {
    use nix::sys::signal::Signal::SIGSYS;
    use nix::sys::wait::WaitStatus;
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ] {
        let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": action}]}));
        let p = compile(&s).expect("compiles");
        let status = in_child(&p, &s, |_| {
            let _ = sys(libc::SYS_getppid, [0; 3]);
            0
        });
        assert!(
            matches!(status, WaitStatus::Signaled(_, SIGSYS, _)),
            "{action}: {status:?}"
        );
    }
    let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
        {"names": ["getpgrp"], "action": "SCMP_ACT_TRACE"}]}));
    let p = compile(&s).expect("compiles");
    let status = in_child(&p, &s, |_| {
        if sys(libc::SYS_getppid, [0; 3]).is_err() {
            return 1;
        }
        // No tracer attached: the kernel fails the syscall with ENOSYS.
        if sys(libc::SYS_getpgrp, [0; 3]) != Err(libc::ENOSYS) {
            return 2;
        }
        0
    });
    assert_eq!(exited(status), 0);
}

#[test]
fn kernel_docker_profile() {
    let s = docker();
    let p = compile(&s).expect("compiles");
    let status = in_child(&p, &s, |_| {
        if sys(libc::SYS_getpid, [0; 3]).is_err() {
            return 1;
        }
        if sys(libc::SYS_unshare, [libc::CLONE_NEWUSER as u64, 0, 0]) != Err(libc::EPERM) {
            return 2;
        }
        if sys(libc::SYS_keyctl, [0, 0, 0]) != Err(libc::EPERM) {
            return 3;
        }
        if sys(libc::SYS_clone3, [0, 0, 0]) != Err(libc::ENOSYS) {
            return 4;
        }
        if sys(libc::SYS_personality, [0xffff_ffff, 0, 0]).is_err() {
            return 5;
        }
        if sys(1000, [0; 3]) != Err(libc::ENOSYS) {
            return 6;
        }
        0
    });
    assert_eq!(exited(status), 0);
}

#[test]
fn kernel_notify_listener_via_listener_path() {
    use std::io::IoSliceMut;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::net::UnixListener;

    let sock =
        std::env::temp_dir().join(format!("hutch-seccomp-agent-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).expect("bind agent socket");
    let s = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock, "listenerMetadata": "hello-agent",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    let p = compile(&s).expect("compiles");
    assert!(p.needs_listener());
    let sock_child = sock.clone();
    // SAFETY: see in_child; the agent side runs in this (parent) process.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = (|| {
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return 100;
            }
            let Ok(Some(fd)) = load(&p, &s) else {
                return 101;
            };
            // SAFETY: getpid has no arguments.
            let me = unsafe { libc::getpid() };
            let state = json!({"ociVersion": "1.2.1", "id": "c1", "status": "running",
                               "pid": me, "bundle": "/b"});
            if send_listener(&sock_child, "hello-agent", &state, me, fd).is_err() {
                return 102;
            }
            // Blocks until the agent answers.
            match sys(libc::SYS_getppid, [0; 3]) {
                Ok(4242) => 0,
                Ok(_) => 1,
                Err(_) => 2,
            }
        })();
        // SAFETY: ends the child without unwinding into the harness.
        unsafe { libc::_exit(code) }
    }

    // The agent: accept, read the state and the fd, answer one notification. Poll the accept
    // so a child that fails before connecting fails the test instead of hanging it.
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let child = nix::unistd::Pid::from_raw(pid);
                let st = nix::sys::wait::waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
                if !matches!(st, Ok(nix::sys::wait::WaitStatus::StillAlive)) {
                    panic!("the child ended before connecting: {st:?}");
                }
                assert!(Instant::now() < deadline, "timed out waiting for the child");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    conn.set_nonblocking(false).expect("blocking");
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .expect("recvmsg");
    let mut notify_fd = None;
    for c in msg.cmsgs().expect("cmsgs") {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            notify_fd = fds.first().copied();
        }
    }
    let n = msg.bytes;
    let state: Value = serde_json::from_slice(&buf[..n]).expect("state JSON");
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "hello-agent");
    assert_eq!(state["pid"], pid);
    assert_eq!(state["ociVersion"], "1.2.1");
    assert_eq!(state["state"]["id"], "c1");
    // SAFETY: the fd arrived with SCM_RIGHTS and is ours alone.
    let notify_fd = unsafe { OwnedFd::from_raw_fd(notify_fd.expect("an fd was attached")) };

    // SAFETY: seccomp_notif is plain data; zeroed is the state the kernel requires for RECV.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes one seccomp_notif into `req`.
    let rc = unsafe {
        libc::ioctl(
            notify_fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req,
        )
    };
    assert_eq!(rc, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    assert_eq!(req.data.nr as libc::c_long, libc::SYS_getppid);
    assert_eq!(req.data.arch, AUDIT_ARCH_X86_64);
    assert_eq!(req.pid as i32, pid);
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 4242,
        error: 0,
        flags: 0,
    };
    // SAFETY: the ioctl reads one seccomp_notif_resp from `resp`.
    let rc = unsafe {
        libc::ioctl(
            notify_fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp,
        )
    };
    assert_eq!(rc, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());

    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).expect("waitpid");
    let _ = std::fs::remove_file(&sock);
    assert_eq!(exited(status), 0);
}

/// An i386 syscall from this 64-bit process: `int 0x80` enters the kernel's i386 ABI, so the
/// filter sees AUDIT_ARCH_I386 and i386 numbers, without a 32-bit binary. Returns -errno.
fn int80(nr: u32, a: u32, b: u32) -> i32 {
    let ret: u32;
    // SAFETY: the tests only make integer-argument syscalls this way. rbx cannot be an asm
    // operand, so arg 1 is swapped in and out of it; r8-r11 may be clobbered by the kernel.
    unsafe {
        std::arch::asm!(
            "xchg {a}, rbx",
            "int 0x80",
            "xchg {a}, rbx",
            a = inout(reg) u64::from(a) => _,
            inlateout("eax") nr => ret,
            in("ecx") b,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    ret as i32
}

/// Whether this kernel runs i386 syscalls from 64-bit processes (CONFIG_IA32_EMULATION).
fn have_ia32() -> bool {
    let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"]}));
    let p = compile(&s).expect("compiles");
    // i386 getpid is 20.
    let status = in_child(&p, &s, |_| if int80(20, 0, 0) > 0 { 0 } else { 1 });
    matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0))
}

#[test]
fn kernel_compat_abis_i386_and_x32() {
    use nix::sys::signal::Signal::SIGSYS;
    use nix::sys::wait::WaitStatus;
    if !have_ia32() {
        eprintln!("skipped: no IA32 emulation in this kernel");
        return;
    }
    let s = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["getppid", "socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
             "args": [{"index": 0, "value": 0x1_0000_0005u64, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let p = compile(&s).expect("compiles");
    let status = in_child(&p, &s, |_| {
        let exdev = -libc::EXDEV;
        let checks = [
            int80(64, 0, 0) == exdev,        // i386 getppid
            int80(20, 0, 0) > 0,             // i386 getpid
            int80(20, 5, 0) == -libc::E2BIG, // low word of 0x1_0000_0005 on a 32-bit ABI
            int80(102, 1, 0) == exdev,       // socketcall(SYS_SOCKET, …)
            int80(102, 3, 0) != exdev,       // socketcall(SYS_CONNECT, …) is not filtered
            int80(359, 1, 1) == exdev,       // i386 socket
            sys(libc::SYS_getppid, [0; 3]) == Err(libc::EXDEV),
            sys(libc::SYS_getpid, [5, 0, 0]).is_ok(),
            sys(libc::SYS_getpid, [0x1_0000_0005, 0, 0]) == Err(libc::E2BIG),
            // x32 getppid: the filter answers before the kernel would reject a disabled x32.
            sys(X32_SYSCALL_BIT as libc::c_long | 110, [0; 3]) == Err(libc::EXDEV),
        ];
        match checks.iter().position(|ok| !ok) {
            Some(i) => 10 + i as i32,
            None => 0,
        }
    });
    assert_eq!(exited(status), 0);

    // ABIs the profile does not list: libseccomp's bad-arch action kills.
    let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    let p = compile(&s).expect("compiles");
    for abi in ["i386", "x32"] {
        let status = in_child(&p, &s, |_| {
            match abi {
                "i386" => int80(20, 0, 0),
                _ => sys(X32_SYSCALL_BIT as libc::c_long | 39, [0; 3]).map_or(1, |_| 0) as i32,
            };
            0
        });
        assert!(
            matches!(status, WaitStatus::Signaled(_, SIGSYS, _)),
            "{abi}: {status:?}"
        );
    }
}

#[test]
fn kernel_every_flag_loads() {
    // TSYNC with a listener needs TSYNC_ESRCH (added by load); WAIT_KILLABLE_RECV without a
    // listener is dropped (the kernel would reject it).
    for (notify, want_fd) in [(true, true), (false, false)] {
        let action = if notify {
            "SCMP_ACT_NOTIFY"
        } else {
            "SCMP_ACT_ERRNO"
        };
        let s = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": FEATURE_FLAGS,
            "syscalls": [{"names": ["getpgrp"], "action": action}]
        }));
        let p = compile(&s).expect("compiles");
        let status = in_child(&p, &s, |fd| if fd.is_some() == want_fd { 0 } else { 1 });
        assert_eq!(exited(status), 0, "notify={notify}");
    }
}

#[test]
fn saved_program_reads_back_identical_and_rejects_anything_else() {
    for program in [
        compile(&docker()).unwrap(),
        prog(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})),
    ] {
        let bytes = program.to_bytes();
        let back = Program::from_bytes(&bytes).unwrap();
        let raw = |p: &Program| {
            p.instructions()
                .iter()
                .map(|i| (i.code, i.jt, i.jf, i.k))
                .collect::<Vec<_>>()
        };
        assert_eq!(raw(&back), raw(&program));
        assert_eq!(back.needs_listener(), program.needs_listener());
        // Every cut of the file is refused, never read as a shorter filter.
        for len in [
            0,
            5,
            SAVED_MAGIC.len(),
            SAVED_MAGIC.len() + 1,
            bytes.len() - 1,
        ] {
            assert!(Program::from_bytes(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut other_version = bytes.clone();
        other_version[SAVED_MAGIC.len() - 2] = b'2';
        assert!(Program::from_bytes(&other_version).is_err());
    }
}
