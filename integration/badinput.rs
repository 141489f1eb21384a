//! Hostile and broken input, table-driven: every row is a bundle or a command the runtime must
//! refuse with a non-zero status and a one-line error naming the field or path (its needle),
//! leaving nothing behind: no state directory under `--root` (hidden ones included), no cgroup
//! directory in any hierarchy, no mount, no process and no file outside the bundle.
//!
//! One test function per group; every row of a group runs even when one fails, and the failure
//! names the row. Rows whose command leaves a legitimate container (a bad signal to a running
//! one, a second `start`) check that the container is still intact before it is removed.

use std::fs;
use std::os::unix::fs::symlink;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::*;

/// How a row runs its failing command.
type RunFn = Box<dyn Fn(&mut Ctr) -> Out>;

struct Row {
    name: &'static str,
    /// Must appear (case-insensitively) in the error, hutch's wording (not checked for runc).
    needle: String,
    run: RunFn,
    /// The row's command acts on a container the row made on purpose: it must still be there
    /// (and alive) after the refused command; it is then removed and checked like the rest.
    keeps_container: bool,
    /// Also run with `--log FILE --log-format json`: the file must hold an error record.
    json_log: bool,
}

fn row(name: &'static str, needle: &str, run: impl Fn(&mut Ctr) -> Out + 'static) -> Row {
    Row {
        name,
        needle: needle.to_string(),
        run: Box::new(run),
        keeps_container: false,
        json_log: false,
    }
}

impl Row {
    fn keeps(mut self) -> Row {
        self.keeps_container = true;
        self
    }
    fn json_log(mut self) -> Row {
        self.json_log = true;
        self
    }
}

/// A row that saves a patched config and runs `create`.
fn cfg(name: &'static str, needle: &str, patch: impl Fn(&mut Ctr) + 'static) -> Row {
    row(name, needle, move |c| {
        patch(c);
        c.save();
        create_saved(c)
    })
}

/// A row whose config.json is the given text (made from the base config).
fn raw(name: &'static str, needle: &str, text: impl Fn(&Value) -> Vec<u8> + 'static) -> Row {
    row(name, needle, move |c| {
        c.save();
        fs::write(c.bundle.join("config.json"), text(&c.config)).unwrap();
        create_saved(c)
    })
}

/// `create` of the bundle as it is on disk (no re-save of `c.config`), with a pid file.
fn create_saved(c: &mut Ctr) -> Out {
    let b = c.bundle.to_string_lossy().into_owned();
    let pid_file = c.pid_file().to_string_lossy().into_owned();
    let id = c.id.clone();
    rt(c, &["create", "--bundle", &b, "--pid-file", &pid_file, &id])
}

/// `create` with the bundle saved, under another id.
fn create_as(c: &mut Ctr, id: &str) -> Out {
    c.save();
    let b = c.bundle.to_string_lossy().into_owned();
    rt(c, &["create", "--bundle", &b, id])
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

fn with(v: &Value, patch: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = v.clone();
    patch(&mut v);
    bytes(&v)
}

/// A running container (`sleep`), created and started.
fn running(c: &mut Ctr) {
    c.args(&["sleep", "100"]);
    c.create_ok();
    c.start_ok();
}

/// Every process whose command line names `needle`, or whose root or cwd is under `dir`.
fn processes_of(needle: &str, dir: &Path) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let under =
            |link: &str| fs::read_link(e.path().join(link)).is_ok_and(|p| p.starts_with(dir));
        // A zombie holds nothing (and may be another test's child, waited for there).
        if proc_stat(pid.parse().unwrap_or(0)).is_some_and(|(st, _)| st == 'Z') {
            continue;
        }
        if (!needle.is_empty() && cmdline.contains(needle)) || under("root") || under("cwd") {
            out.push(format!("pid {pid}: {cmdline}"));
        }
    }
    out
}

/// Files in the test directory outside the bundle and the state root (the harness's own
/// output files and what a row sets up in `setup/` excepted): a refused command must not make
/// any.
fn files_outside(c: &Ctr, keeps: bool) -> Vec<PathBuf> {
    fn walk(dir: &Path, skip: &[PathBuf], out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if skip.contains(&p) {
                continue;
            }
            out.push(p.clone());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, skip, out);
            }
        }
    }
    let mut skip = vec![
        c.bundle.clone(),
        c.root.clone(),
        c.stdout_file(),
        c.stderr_file(),
        c.dir.join("log.json"),
        setup_dir(c),
    ];
    if keeps {
        // The row made a container with `--pid-file` on purpose; for the others a pid file
        // left by a failed create is a leak.
        skip.push(c.pid_file());
    }
    let mut out = Vec::new();
    walk(&c.dir, &skip, &mut out);
    out.sort();
    out
}

/// Where a row keeps what it needs outside the bundle.
fn setup_dir(c: &Ctr) -> PathBuf {
    let d = c.dir.join("setup");
    fs::create_dir_all(&d).unwrap();
    d
}

/// What is left of container `id` (and of anything `c`'s test directory holds).
fn left_behind(c: &mut Ctr, files_before: &[PathBuf], keeps: bool) -> Vec<String> {
    // The harness's check: state named for the id (`.creating-ID-*` too), the processes seen,
    // mounts under the test directory, cgroup directories named for the id in every hierarchy.
    let mut problems = c.leaks();
    // Stricter: a refused command leaves nothing at all under --root.
    for e in fs::read_dir(&c.root).into_iter().flatten().flatten() {
        problems.push(format!("left under --root: {}", e.path().display()));
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = c.dir.to_string_lossy().into_owned();
    for line in mountinfo.lines() {
        if line.contains(&dir) || line.contains(&c.id) {
            problems.push(format!("mount left: {line}"));
        }
    }
    for p in processes_of(&c.id, &c.dir) {
        problems.push(format!("process left: {p}"));
    }
    for f in files_outside(c, keeps) {
        if !files_before.contains(&f) {
            problems.push(format!("file made outside the bundle: {}", f.display()));
        }
    }
    problems
}

fn run_row(row: &Row) {
    let mut c = Ctr::new(&format!("bad-{}", row.name));
    c.args(&["sh", "-c", "echo user-process-ran"]);
    let files_before = files_outside(&c, row.keeps_container);
    let log = c.dir.join("log.json");
    let out = if row.json_log {
        with_json_log(&log, || (row.run)(&mut c))
    } else {
        (row.run)(&mut c)
    };
    assert!(!out.ok(), "the command succeeded:\n{out}");
    assert!(
        out.status.code().is_some(),
        "the runtime died of a signal:\n{out}"
    );
    eprintln!("row {}: {}", row.name, out.stderr.trim());
    if is_hutch() {
        let err = out.stderr.trim();
        assert!(
            err.to_lowercase().contains(&row.needle.to_lowercase()),
            "the error does not name {:?}:\n{out}",
            row.needle
        );
        assert_eq!(err.lines().count(), 1, "not a one-line error:\n{out}");
        assert!(err.len() < 2048, "a {}-byte error:\n{out}", err.len());
    }
    assert!(
        !out.stdout.contains("user-process-ran") && !c.ctr_stdout().contains("user-process-ran"),
        "the user process ran:\n{out}"
    );
    if row.json_log {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let has_error = text.lines().any(|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["level"] == "error" && v["msg"].is_string())
        });
        assert!(
            has_error,
            "no JSON error record in the --log file:\n{text}\n{out}"
        );
    }
    let id = c.id.clone();
    if row.keeps_container {
        let st = c.state();
        assert!(
            st["status"] == "created" || st["status"] == "running",
            "the container did not survive the refused command: {st}"
        );
        c.rt(&["delete", "--force", &id]).assert_ok();
    }
    let problems = left_behind(&mut c, &files_before, row.keeps_container);
    assert!(problems.is_empty(), "left behind: {problems:#?}\n{out}");
}

thread_local! {
    static JSON_LOG: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

fn with_json_log(log: &Path, f: impl FnOnce() -> Out) -> Out {
    JSON_LOG.with(|l| *l.borrow_mut() = Some(log.to_path_buf()));
    let out = f();
    JSON_LOG.with(|l| *l.borrow_mut() = None);
    out
}

/// The runtime with the row's global flags (`--log` when the row asks for it) + `args`.
fn rt(c: &Ctr, args: &[&str]) -> Out {
    let mut cmd = c.cmd();
    if let Some(log) = JSON_LOG.with(|l| l.borrow().clone()) {
        cmd.arg("--log").arg(log).arg("--log-format").arg("json");
    }
    exec_files(cmd.args(args), CMD_TIMEOUT)
}

fn create_logged(c: &mut Ctr) -> Out {
    c.save();
    let b = c.bundle.to_string_lossy().into_owned();
    let id = c.id.clone();
    rt(c, &["create", "--bundle", &b, &id])
}

/// Rows runc 1.1.5 accepts, and why hutch refuses them: skipped when runc is under test.
const RUNC_ACCEPTS: &[(&str, &str)] = &[
    (
        "trailing-brace",
        "runc reads one JSON value and ignores the rest (issue 9 item 15)",
    ),
    (
        "trailing-object",
        "runc reads one JSON value and ignores the rest (issue 9 item 15)",
    ),
    (
        "exec-process-trailing-garbage",
        "runc reads one JSON value and ignores the rest",
    ),
    (
        "update-resources-trailing-garbage",
        "runc reads one JSON value and ignores the rest",
    ),
    (
        "oci-version-2",
        "runc does not check ociVersion; hutch takes any 1.x only",
    ),
    ("oci-version-missing", "runc does not check ociVersion"),
    (
        "leading-dot",
        "runc accepts it, then `list` hides it (issue 9 item 11)",
    ),
    (
        "maps-without-userns",
        "runc ignores id mappings without a user namespace",
    ),
    (
        "unknown-capability",
        "runc warns and skips unknown capabilities",
    ),
    (
        "arg-index-6",
        "runc accepts a seccomp argument index past the sixth",
    ),
    (
        "device-access-bogus",
        "runc accepts unknown device access letters",
    ),
    ("signal-empty", "runc takes an empty signal as SIGTERM"),
];

fn check_rows(group: &str, rows: Vec<Row>) {
    let mut failures = Vec::new();
    let n = rows.len();
    for row in &rows {
        if let Some((_, why)) = RUNC_ACCEPTS.iter().find(|(n, _)| *n == row.name) {
            if !is_hutch() {
                eprintln!("SKIP row {} (hutch-only: {why})", row.name);
                continue;
            }
        }
        let result = catch_unwind(AssertUnwindSafe(|| run_row(row)));
        if let Err(panic) = result {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("row {:?}: {msg}", row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{group}: {} of {n} rows failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ------------------------------------------------------------------------------ config.json --

#[test]
fn bad_json() {
    let ten_mb = "x".repeat(10 << 20);
    check_rows(
        "bad_json",
        vec![
            raw("malformed", "config.json", |_| {
                b"{\"ociVersion\": \"1.2.0\", bad".to_vec()
            }),
            raw("truncated", "config.json", |v| {
                let b = bytes(v);
                b[..b.len() / 2].to_vec()
            }),
            raw("empty-file", "config.json", |_| Vec::new()),
            raw("array", "config.json", |_| b"[]".to_vec()),
            raw("null", "config.json", |_| b"null".to_vec()),
            raw("not-utf8", "config.json", |v| {
                let mut b = b"\xff\xfe".to_vec();
                b.extend(bytes(v));
                b
            }),
            raw("deep-nesting", "config.json", |_| {
                let mut b = vec![b'['; 100_000];
                b.extend(vec![b']'; 100_000]);
                b
            }),
            // issue 9, item 15: serde_json stops after one value.
            raw("trailing-brace", "trailing characters", |v| {
                let mut b = bytes(v);
                b.extend(b"}");
                b
            })
            .json_log(),
            raw("trailing-object", "trailing characters", |v| {
                let mut b = bytes(v);
                b.extend(b"\n{\"ociVersion\": \"1.0.0\"}\n");
                b
            }),
            raw("args-a-string", "process.args", |v| {
                with(v, |v| v["process"]["args"] = json!("sh"))
            }),
            raw("readonly-a-string", "root.readonly", |v| {
                with(v, |v| v["root"]["readonly"] = json!("yes"))
            }),
            raw("uid-negative", "process.user.uid", |v| {
                with(v, |v| v["process"]["user"]["uid"] = json!(-1))
            }),
            raw("uid-too-big", "process.user.uid", |v| {
                with(v, |v| v["process"]["user"]["uid"] = json!(1u64 << 40))
            }),
            raw("namespaces-an-object", "linux.namespaces", |v| {
                with(v, |v| v["linux"]["namespaces"] = json!({}))
            }),
            // No `process` is no bad input: create succeeds and start refuses it (issue 10,
            // item 7; lifecycle::create_without_process_succeeds_and_start_fails_naming_it).
            raw("no-root", "root", |v| {
                with(v, |v| {
                    v.as_object_mut().unwrap().remove("root");
                })
            }),
            raw("empty-root-path", "root.path", |v| {
                with(v, |v| v["root"]["path"] = json!(""))
            }),
            raw("oci-version-2", "ociVersion", |v| {
                with(v, |v| v["ociVersion"] = json!("2.0.0"))
            }),
            raw("oci-version-missing", "ociVersion", |v| {
                with(v, |v| {
                    v.as_object_mut().unwrap().remove("ociVersion");
                })
            }),
            raw("oci-version-number", "ociVersion", |v| {
                with(v, |v| v["ociVersion"] = json!(1))
            }),
            raw("empty-args", "process.args", |v| {
                with(v, |v| v["process"]["args"] = json!([]))
            }),
            raw("relative-cwd", "process.cwd", |v| {
                with(v, |v| v["process"]["cwd"] = json!("tmp"))
            }),
            // 10 MB, refused by the last field: the error must not echo the payload.
            raw("ten-megabytes", "process.args", move |v| {
                with(v, |v| {
                    v["annotations"] = json!({ "big": ten_mb.clone() });
                    v["process"]["args"] = json!(7);
                })
            }),
        ],
    );
}

// ------------------------------------------------------------------------------------- ids --

#[test]
fn bad_ids() {
    let long = "a".repeat(1025);
    let bad =
        |name: &'static str, id: String| row(name, "container id", move |c| create_as(c, &id));
    check_rows(
        "bad_ids",
        vec![
            bad("empty", String::new()),
            bad("dot", ".".into()),
            bad("dotdot", "..".into()),
            bad("slash", "a/b".into()),
            bad("dotdot-slash", "../escape".into()),
            bad("kib", long),
            bad("control-byte", "a\u{1}b".into()),
            bad("newline", "a\nb".into()),
            bad("space", "a b".into()),
            // issue 9, item 11: hidden from `list`.
            bad("leading-dot", ".hidden".into()),
        ],
    );
}

// ---------------------------------------------------------------------------------- rootfs --

#[test]
fn bad_rootfs() {
    check_rows(
        "bad_rootfs",
        vec![
            cfg("missing", "no-such-rootfs", |c| {
                c.config["root"]["path"] = json!("no-such-rootfs");
            }),
            cfg("a-file", "root.path", |c| {
                fs::write(c.bundle.join("rootfs-file"), "x").unwrap();
                c.config["root"]["path"] = json!("rootfs-file");
            }),
            // runc: "rootfs is not an absolute path or is a symlink".
            cfg("symlink-out", "root.path", |c| {
                let out = setup_dir(c).join("outside-rootfs");
                fs::rename(&c.rootfs, &out).unwrap();
                symlink(&out, &c.rootfs).unwrap();
            }),
            cfg("dangling-symlink", "root.path", |c| {
                symlink("/nonexistent-hutch-rootfs", c.bundle.join("dangling")).unwrap();
                c.config["root"]["path"] = json!("dangling");
            }),
        ],
    );
}

// ---------------------------------------------------------------------------------- mounts --

/// A tmpfs mount the kernel refuses (`size=` is not a number): the mount point is made, then
/// the mount fails, so a destination that escaped would leave a directory on the host.
fn failing_tmpfs(dest: &str) -> Value {
    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["size=lots"]})
}

#[test]
fn bad_mounts() {
    let rows = vec![
        cfg("dest-dotdot", "escaped-dotdot", |c| {
            let dest = format!("/../../../../../../..{}/escaped-dotdot", c.dir.display());
            c.add_mount(failing_tmpfs(&dest));
        }),
        cfg("dest-relative-dotdot", "escaped-rel", |c| {
            let dest = format!("../../../../../../..{}/escaped-rel", c.dir.display());
            c.add_mount(failing_tmpfs(&dest));
        }),
        cfg("dest-symlink-out", "/escape/escaped-link", |c| {
            // Absolute inside the container: resolved on the host, it names the test dir.
            symlink(&c.dir, c.rootfs.join("escape")).unwrap();
            c.add_mount(failing_tmpfs("/escape/escaped-link"));
        }),
        cfg("dest-symlink-dotdot", "escaped-updir", |c| {
            symlink("../../../../../../../../..", c.rootfs.join("up")).unwrap();
            let dest = format!("/up{}/escaped-updir", c.dir.display());
            c.add_mount(failing_tmpfs(&dest));
        }),
        cfg("source-missing", "/nonexistent-hutch-source", |c| {
            c.add_mount(json!({"destination": "/mnt", "type": "bind",
                "source": "/nonexistent-hutch-source", "options": ["rbind"]}));
        }),
        cfg("source-missing-relative", "no-such-source", |c| {
            c.add_mount(json!({"destination": "/mnt", "type": "bind",
                "source": "no-such-source", "options": ["bind"]}));
        }),
        cfg("bad-option", "on /mnt", |c| {
            c.add_mount(failing_tmpfs("/mnt"));
        }),
        cfg("unknown-fs-type", "nosuchfs", |c| {
            c.add_mount(json!({"destination": "/mnt", "type": "nosuchfs", "source": "x"}));
        }),
        cfg("empty-destination", "].destination", |c| {
            c.add_mount(json!({"destination": "", "type": "tmpfs", "source": "tmpfs"}));
        }),
    ];
    // A mount point that escaped would be made in the row's test directory (files_outside).
    check_rows("bad_mounts", rows);
}

// -------------------------------------------------------------------- namespaces and id maps --

fn userns(c: &mut Ctr, uid: Value, gid: Value) {
    c.set_ns("user", None);
    c.config["linux"]["uidMappings"] = uid;
    c.config["linux"]["gidMappings"] = gid;
}

#[test]
fn bad_namespaces() {
    let map =
        |cid: u64, hid: u64, size: u64| json!([{"containerID": cid, "hostID": hid, "size": size}]);
    check_rows(
        "bad_namespaces",
        vec![
            cfg("duplicate", "linux.namespaces", |c| {
                c.namespaces().push(json!({"type": "pid"}));
            }),
            cfg("unknown-type", "linux.namespaces", |c| {
                c.namespaces().push(json!({"type": "foo"}));
            }),
            cfg("path-not-a-namespace", "not-a-namespace", |c| {
                let p = c.bundle.join("not-a-namespace");
                fs::write(&p, "x").unwrap();
                c.set_ns("network", Some(&p.to_string_lossy()));
            }),
            cfg("path-missing", "/proc/999999999/ns/net", |c| {
                c.set_ns("network", Some("/proc/999999999/ns/net"));
            }),
            cfg("path-relative", "linux.namespaces", |c| {
                c.set_ns("network", Some("ns/net"));
            }),
            cfg("path-wrong-kind", "/proc/1/ns/net", |c| {
                c.set_ns("uts", Some("/proc/1/ns/net"));
            }),
            cfg("no-mount-namespace", "mount namespace", |c| {
                c.drop_ns("mount");
            }),
            cfg("userns-without-maps", "uidMappings", |c| {
                c.set_ns("user", None);
            }),
            cfg("maps-without-userns", "uidMappings", move |c| {
                c.config["linux"]["uidMappings"] = map(0, 100000, 65536);
                c.config["linux"]["gidMappings"] = map(0, 100000, 65536);
            }),
            cfg("map-size-zero", "uidMappings", move |c| {
                userns(c, map(0, 100000, 0), map(0, 100000, 65536));
            }),
            cfg("maps-overlap", "uidMappings", |c| {
                let m = json!([{"containerID": 0, "hostID": 100000, "size": 100},
                               {"containerID": 50, "hostID": 200000, "size": 100}]);
                userns(
                    c,
                    m,
                    json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
                );
            }),
            cfg("map-host-id-wraps", "gidMappings", move |c| {
                userns(c, map(0, 100000, 65536), map(0, 4294967295, 10));
            }),
        ],
    );
}

// --------------------------------------------------------------------------------- process --

#[test]
fn bad_process() {
    check_rows(
        "bad_process",
        vec![
            cfg("unknown-rlimit", "rlimits", |c| {
                c.config["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]);
            }),
            cfg("rlimit-soft-above-hard", "RLIMIT_NOFILE", |c| {
                c.config["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]);
            }),
            cfg("unknown-capability", "capabilities", |c| {
                c.config["process"]["capabilities"]["bounding"] = json!(["CAP_FOO"]);
            }),
            cfg("executable-missing", "no-such-binary", |c| {
                c.args(&["/no-such-binary"]);
            })
            .json_log(),
            cfg("hook-relative-path", "hooks.prestart[0].path", |c| {
                c.config["hooks"] = json!({"prestart": [{"path": "bin/true"}]});
            }),
            cfg("hook-missing", "/nonexistent-hutch-hook", |c| {
                c.config["hooks"] = json!({"createRuntime": [{"path": "/nonexistent-hutch-hook"}]});
            }),
            cfg("hook-fails", "createRuntime", |c| {
                c.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
            }),
            cfg("hook-timeout-zero", "hooks.prestart[0].timeout", |c| {
                c.config["hooks"] = json!({"prestart": [{"path": "/bin/true", "timeout": 0}]});
            }),
            row("console-socket-missing", "console", |c| {
                c.config["process"]["terminal"] = json!(true);
                let sock = c.dir.join("no-such.sock").to_string_lossy().into_owned();
                c.create_with(&["--console-socket", &sock])
            }),
            row("pid-file-dir-missing", "pid", |c| {
                c.save();
                let b = c.bundle.to_string_lossy().into_owned();
                let id = c.id.clone();
                let pf = c.dir.join("no/such/dir/pid").to_string_lossy().into_owned();
                c.rt(&["create", "--bundle", &b, "--pid-file", &pf, &id])
            }),
        ],
    );
}

// --------------------------------------------------------------------------------- seccomp --

fn seccomp_row(name: &'static str, needle: &str, profile: Value) -> Row {
    cfg(name, needle, move |c| {
        c.config["linux"]["seccomp"] = profile.clone();
    })
}

#[test]
fn bad_seccomp() {
    let allow_read = |extra: Value| {
        let mut r = json!({"names": ["read"], "action": "SCMP_ACT_ALLOW"});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    check_rows(
        "bad_seccomp",
        vec![
            seccomp_row(
                "unknown-action",
                "linux.seccomp.defaultAction",
                json!({"defaultAction": "SCMP_ACT_NOPE"}),
            ),
            seccomp_row(
                "unknown-arch",
                "architectures",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_FOO"]}),
            ),
            seccomp_row(
                "unknown-operator",
                "op",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [allow_read(
                    json!({"args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}))]}),
            ),
            seccomp_row(
                "arg-index-6",
                "index",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [allow_read(
                    json!({"args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}))]}),
            ),
            seccomp_row(
                "unknown-flag",
                "flags",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]}),
            ),
            seccomp_row(
                "notify-default",
                "defaultAction",
                json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/x.sock"}),
            ),
            seccomp_row(
                "notify-write",
                "write",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock",
                       "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
            ),
            seccomp_row(
                "notify-without-listener",
                "listenerPath",
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            ),
            seccomp_row(
                "empty-syscall-name",
                "names",
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": [""], "action": "SCMP_ACT_ERRNO"}]}),
            ),
        ],
    );
}

// ----------------------------------------------------------------------- sysctls and cgroups --

#[test]
fn bad_sysctls_and_cgroups() {
    check_rows(
        "bad_sysctls_and_cgroups",
        vec![
            cfg("sysctl-not-namespaced", "kernel.panic", |c| {
                c.config["linux"]["sysctl"] = json!({"kernel.panic": "1"});
            }),
            cfg("sysctl-net-without-netns", "net.ipv4.ip_forward", |c| {
                c.drop_ns("network");
                c.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            }),
            cfg("sysctl-climbs-out", "net/../kernel/panic", |c| {
                c.set_ns("network", None);
                c.config["linux"]["sysctl"] = json!({"net/../kernel/panic": "1"});
            }),
            cfg("sysctl-unknown-key", "net.ipv4.no_such_key", |c| {
                c.set_ns("network", None);
                c.config["linux"]["sysctl"] = json!({"net.ipv4.no_such_key": "1"});
            }),
            cfg("sysctl-bad-value", "net.ipv4.ip_forward", |c| {
                c.set_ns("network", None);
                c.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "lots"});
            }),
            // `..` is cleaned (as runc's CleanPath does); the create then fails, and nothing
            // may be left wherever the path led.
            cfg("cgroups-path-dotdot", "no-such-binary", |c| {
                let id = c.id.clone();
                // Named so the harness's search of every hierarchy finds it by the id.
                c.config["linux"]["cgroupsPath"] = json!(format!("../../../../escape_{id}"));
                c.args(&["/no-such-binary"]);
            }),
            cfg("memory-negative", "memory", |c| {
                c.config["linux"]["resources"] = json!({"memory": {"limit": -5}});
            }),
            cfg("swap-below-memory", "memory", |c| {
                c.config["linux"]["resources"] =
                    json!({"memory": {"limit": 100_000_000, "swap": 50_000_000}});
            }),
            cfg("cpu-quota-tiny", "cpu", |c| {
                c.config["linux"]["resources"] = json!({"cpu": {"quota": 1, "period": 100000}});
            }),
            cfg("cpus-absurd", "cpus", |c| {
                c.config["linux"]["resources"] = json!({"cpu": {"cpus": "1000000-1000001"}});
            }),
            cfg("blkio-weight-absurd", "weight", |c| {
                c.config["linux"]["resources"] = json!({"blockIO": {"weight": 5000}});
            }),
            cfg("hugepage-size-bogus", "hugepage", |c| {
                c.config["linux"]["resources"] =
                    json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]});
            }),
            cfg("device-access-bogus", "devices[0].access", |c| {
                c.config["linux"]["resources"] = json!({"devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwx"}]});
            }),
            cfg("device-major-negative", "devices[0].major", |c| {
                c.config["linux"]["resources"] =
                    json!({"devices": [{"allow": true, "type": "c", "major": -5, "access": "r"}]});
            }),
            cfg("unified-key-climbs-out", "unified", |c| {
                c.config["linux"]["resources"] = json!({"unified": {"../cgroup.procs": "1"}});
            }),
            cfg("unified-key-unknown", "memory.no_such_file", |c| {
                c.config["linux"]["resources"] = json!({"unified": {"memory.no_such_file": "1"}});
            }),
        ],
    );
}

// -------------------------------------------------------------------------------- commands --

#[test]
fn bad_commands() {
    let missing = |name: &'static str, args: &'static [&'static str]| {
        row(name, "does not exist", move |c| rt(c, args))
    };
    let bad_signal = |name: &'static str, sig: &'static str| {
        row(name, "signal", move |c| {
            running(c);
            let id = c.id.clone();
            rt(c, &["kill", &id, sig])
        })
        .keeps()
    };
    check_rows(
        "bad_commands",
        vec![
            missing("start-missing", &["start", "no-such-container"]).json_log(),
            missing("state-missing", &["state", "no-such-container"]),
            missing("kill-missing", &["kill", "no-such-container"]),
            missing("delete-missing", &["delete", "no-such-container"]),
            missing("pause-missing", &["pause", "no-such-container"]),
            missing("resume-missing", &["resume", "no-such-container"]),
            missing("ps-missing", &["ps", "no-such-container"]),
            missing(
                "events-missing",
                &["events", "--stats", "no-such-container"],
            ),
            missing("exec-missing", &["exec", "no-such-container", "true"]),
            missing(
                "update-missing",
                &["update", "--pids-limit", "10", "no-such-container"],
            ),
            bad_signal("signal-unknown-name", "SIGFOO").json_log(),
            bad_signal("signal-too-big", "999"),
            bad_signal("signal-negative", "-1"),
            bad_signal("signal-rtmin-overflow", "RTMIN+100"),
            bad_signal("signal-empty", ""),
            row("double-start", "running", |c| {
                running(c);
                let id = c.id.clone();
                rt(c, &["start", &id])
            })
            .keeps(),
            row("duplicate-id", "already exists", |c| {
                c.args(&["sleep", "100"]);
                c.create_ok();
                let id = c.id.clone();
                let b = c.bundle.to_string_lossy().into_owned();
                rt(c, &["create", "--bundle", &b, &id])
            })
            .keeps()
            .json_log(),
            row("delete-running", "running", |c| {
                running(c);
                let id = c.id.clone();
                rt(c, &["delete", &id])
            })
            .keeps(),
            row(
                "exec-process-trailing-garbage",
                "trailing characters",
                |c| {
                    running(c);
                    let p = c.bundle.join("process.json");
                    let mut text = serde_json::to_vec(&c.config["process"]).unwrap();
                    text.extend(b"}garbage");
                    fs::write(&p, text).unwrap();
                    let id = c.id.clone();
                    rt(c, &["exec", "--process", &p.to_string_lossy(), &id])
                },
            )
            .keeps(),
            row("exec-process-missing", "no-such-process.json", |c| {
                running(c);
                let p = c.bundle.join("no-such-process.json");
                let id = c.id.clone();
                rt(c, &["exec", "--process", &p.to_string_lossy(), &id])
            })
            .keeps(),
            row(
                "update-resources-trailing-garbage",
                "trailing characters",
                |c| {
                    running(c);
                    let p = c.bundle.join("resources.json");
                    fs::write(&p, "{\"pids\": {\"limit\": 10}} x").unwrap();
                    let id = c.id.clone();
                    rt(c, &["update", "-r", &p.to_string_lossy(), &id])
                },
            )
            .keeps(),
            row("create-logged-bad-config", "process.args", |c| {
                c.config["process"]["args"] = json!([]);
                create_logged(c)
            })
            .json_log(),
        ],
    );
}
