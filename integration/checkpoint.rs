//! `checkpoint` and `restore` with CRIU: a busy container is dumped, killed and brought back,
//! and keeps going where it was. Debian's criu 3.17 cannot start on this host's kernel (6.18)
//! and runs on Debian's 6.1: `hack/test.sh` runs these in the VM `hack/vm-run.sh` boots, for
//! hutch and again for runc; where `criu check` fails every test prints SKIP.
//!
//! Engines run a checkpointed container detached with pipes for its stdio (containerd's shim
//! does); the tests do too, which also proves that a restored process writes to the pipes the
//! restoring caller passes, not to the dumped ones.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

fn criu_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        Command::new("criu")
            .arg("check")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

macro_rules! needs_criu {
    () => {
        if !criu_works() {
            eprintln!("SKIP: `criu check` fails on this kernel (run in hack/vm-run.sh)");
            return;
        }
    };
}

/// Counts in /tmp/count and on stdout, ten times a second.
const COUNTER: &str =
    "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; echo $i; sleep 0.1; done";

/// What a detached runtime command wrote, and the read end of the pipe the container got as
/// stdout.
struct Detached {
    out: Out,
    stdout: File,
}

/// Runs the runtime with `args` as containerd's shim runs a detached container: stdout and
/// stderr are pipes the container inherits. The command's own output is what the pipes hold
/// once it exits (the container keeps the write ends open, so there is no EOF to wait for).
fn rt_detached(c: &Ctr, args: &[&str]) -> Detached {
    let (out_r, out_w) = nix::unistd::pipe().unwrap();
    let (err_r, err_w) = nix::unistd::pipe().unwrap();
    let mut cmd = c.cmd();
    cmd.args(args)
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));
    let line = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "timed out: {line}");
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = File::from(out_r);
    let stderr = drain(&File::from(err_r));
    let out = Out {
        cmdline: line,
        status,
        stdout: String::new(),
        stderr,
    };
    set_nonblocking(&stdout);
    Detached { out, stdout }
}

fn set_nonblocking(f: &File) {
    let flags = nix::fcntl::fcntl(f, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(f, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
}

/// What a pipe holds now, without waiting for more.
fn drain(mut f: &File) -> String {
    set_nonblocking(f);
    let mut acc = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        acc.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&acc).into_owned()
}

/// The counter's value, once it has one.
fn count(c: &Ctr) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = fs::read_to_string(c.rootfs.join("tmp/count")).unwrap_or_default();
        if let Ok(n) = text.trim().parse() {
            return n;
        }
        assert!(Instant::now() < deadline, "the counter never counted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the counter passes `above`; panics if it does not within 20 s.
fn counts_past(c: &Ctr, above: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = count(c);
        if n > above {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "the counter stays at {n}, expected it past {above}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A counter container, running detached.
fn counter(name: &str) -> (Ctr, File) {
    let mut c = Ctr::new(name);
    c.sh(COUNTER);
    c.save();
    let bundle = c.bundle.display().to_string();
    let run = rt_detached(&c, &["run", "-d", "--bundle", &bundle, &c.id.clone()]);
    assert!(run.out.ok(), "run -d failed:\n{}", run.out);
    c.pid();
    counts_past(&c, 2);
    (c, run.stdout)
}

fn images(c: &Ctr, name: &str) -> PathBuf {
    c.dir.join(name)
}

/// `checkpoint --image-path DIR [EXTRA…] ID`, which must succeed.
#[track_caller]
fn checkpoint(c: &Ctr, image_dir: &Path, extra: &[&str]) {
    let dir = image_dir.display().to_string();
    let mut args = vec!["checkpoint", "--image-path", &dir];
    args.extend_from_slice(extra);
    args.push(&c.id);
    let out = c.rt_piped(&args);
    assert!(
        out.ok(),
        "checkpoint failed:\n{out}\n{}",
        criu_log(image_dir, "dump.log")
    );
}

fn restore_detached(c: &Ctr, image_dir: &Path, extra: &[&str]) -> Detached {
    let dir = image_dir.display().to_string();
    let bundle = c.bundle.display().to_string();
    let mut args = vec!["restore", "-d", "--image-path", &dir, "--bundle", &bundle];
    args.extend_from_slice(extra);
    args.push(&c.id);
    rt_detached(c, &args)
}

/// The end of CRIU's log, for a failure's message.
fn criu_log(image_dir: &Path, name: &str) -> String {
    let text = fs::read_to_string(image_dir.join(name)).unwrap_or_default();
    let lines: Vec<_> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(25)..].join("\n");
    format!("--- {name} (end) ---\n{tail}")
}

/// `restore_detached`, which must succeed (CRIU's log says why when it does not).
#[track_caller]
fn restore_ok(c: &Ctr, image_dir: &Path, extra: &[&str]) -> Detached {
    let restored = restore_detached(c, image_dir, extra);
    assert!(
        restored.out.ok(),
        "restore failed:\n{}\n{}",
        restored.out,
        criu_log(image_dir, "restore.log")
    );
    restored
}

/// The lines of text a pipe has received by now, as numbers.
fn numbers(pipe: &File) -> Vec<u64> {
    drain(pipe)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn checkpoint_stops_the_container_and_restore_resumes_it() {
    needs_criu!();
    let mut c = Ctr::new("cr-counter");
    c.sh(COUNTER);
    let hook_log = c.dir.join("create-runtime.json");
    c.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat >> {0}; echo >> {0}", hook_log.display())],
    }]});
    c.save();
    let bundle = c.bundle.display().to_string();
    let run = rt_detached(&c, &["run", "-d", "--bundle", &bundle, &c.id.clone()]);
    assert!(run.out.ok(), "run -d failed:\n{}", run.out);
    let first_pid = c.pid();
    let first_cgroup = fs::read_to_string(format!("/proc/{first_pid}/cgroup")).unwrap();
    counts_past(&c, 2);

    let img = images(&c, "img");
    checkpoint(&c, &img, &[]);
    // The processes are gone with the container, and the counter stands still.
    assert!(
        !c.rt(&["state", &c.id]).ok(),
        "the container outlived its checkpoint"
    );
    let stopped_at = count(&c);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        count(&c),
        stopped_at,
        "something still counts after the checkpoint"
    );
    assert!(
        img.join("inventory.img").exists(),
        "no images in {}",
        img.display()
    );

    let restored = restore_ok(&c, &img, &[]);
    assert_eq!(c.status(), "running");
    let pid = c.pid();
    // It goes on from where it was (a fresh start would count from 1 again).
    let resumed = counts_past(&c, stopped_at);
    assert!(resumed > stopped_at);
    // In the container's cgroups again.
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(
        cgroup, first_cgroup,
        "the restored init is not in the container's cgroups"
    );
    // Its stdout is the pipe the restoring caller passed: the numbers go on there.
    std::thread::sleep(Duration::from_millis(300));
    let after = numbers(&restored.stdout);
    assert!(
        after.iter().any(|n| *n > stopped_at),
        "nothing past {stopped_at} on the new stdout pipe: {after:?}"
    );
    // createRuntime ran at create and again at restore, with the restored init's pid.
    let log = fs::read_to_string(&hook_log).unwrap();
    let states: Vec<_> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(states.len(), 2, "createRuntime hook runs: {log}");
    assert_eq!(parse_json(states[1])["pid"], json!(pid), "{log}");
    drop(run);

    c.rt(&["delete", "--force", &c.id]).assert_ok();
}

#[test]
fn leave_running_keeps_the_container_and_its_images_restore() {
    needs_criu!();
    let (mut c, _stdout) = counter("cr-leave");
    let pid = c.pid();
    let img = images(&c, "img");
    checkpoint(&c, &img, &["--leave-running"]);
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid, "--leave-running must leave the same process");
    let at = count(&c);
    counts_past(&c, at);

    // The images are a complete checkpoint: once the container is gone, they bring it back.
    c.rt(&["delete", "--force", &c.id]).assert_ok();
    let _restored = restore_ok(&c, &img, &[]);
    assert_eq!(c.status(), "running");
    counts_past(&c, count(&c));
    c.rt(&["delete", "--force", &c.id]).assert_ok();
}

#[test]
fn pre_dump_then_dump_restores() {
    needs_criu!();
    let (mut c, _stdout) = counter("cr-predump");
    let pre = images(&c, "pre");
    checkpoint(&c, &pre, &["--pre-dump"]);
    assert_eq!(
        c.status(),
        "running",
        "a pre-dump leaves the container running"
    );
    let pages = fs::read_dir(&pre)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("pages-"))
        .count();
    assert!(pages > 0, "the pre-dump wrote no memory pages");
    counts_past(&c, count(&c));

    let fin = images(&c, "final");
    checkpoint(&c, &fin, &["--parent-path", "../pre"]);
    let parent = fs::read_link(fin.join("parent")).unwrap();
    assert_eq!(
        parent,
        Path::new("../pre"),
        "the dump's link to its parent images"
    );
    let stopped_at = count(&c);
    let _restored = restore_ok(&c, &fin, &[]);
    counts_past(&c, stopped_at);
    c.rt(&["delete", "--force", &c.id]).assert_ok();
}

#[test]
fn restore_hands_the_terminal_to_the_console_socket() {
    needs_criu!();
    let mut c = Ctr::new("cr-console");
    c.config["process"]["terminal"] = json!(true);
    c.sh("while read line; do echo got-$line; done");
    let sock = c.socket_path("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || crate::console::recv_fd(listener));
    c.create_with(&["--console-socket", sock.to_str().unwrap()])
        .assert_ok();
    let (_, first) = receiver.join().unwrap().unwrap();
    c.start_ok();
    let mut master = File::from(first);
    master.write_all(b"one\n").unwrap();
    crate::console::read_until(&mut master, "got-one", Duration::from_secs(20));

    let img = images(&c, "img");
    checkpoint(&c, &img, &[]);
    drop(master);
    fs::remove_file(&sock).unwrap();
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || crate::console::recv_fd(listener));
    let _restored = restore_ok(&c, &img, &["--console-socket", sock.to_str().unwrap()]);
    let (_, fd): (String, OwnedFd) = receiver.join().unwrap().unwrap();
    let mut master = File::from(fd);
    master.write_all(b"two\n").unwrap();
    crate::console::read_until(&mut master, "got-two", Duration::from_secs(20));
    assert_eq!(c.status(), "running");
    c.rt(&["delete", "--force", &c.id]).assert_ok();
}

#[test]
fn foreground_restore_waits_and_exits_with_the_status() {
    needs_criu!();
    let mut c = Ctr::new("cr-foreground");
    c.sh("i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done; exit 7");
    c.save();
    let bundle = c.bundle.display().to_string();
    let run = rt_detached(&c, &["run", "-d", "--bundle", &bundle, &c.id.clone()]);
    assert!(run.out.ok(), "run -d failed:\n{}", run.out);
    c.pid();
    counts_past(&c, 2);
    let img = images(&c, "img");
    checkpoint(&c, &img, &[]);
    let stopped_at = count(&c);
    assert!(
        stopped_at < 30,
        "the container finished before its checkpoint"
    );

    let dir = img.display().to_string();
    let out = c.rt(&["restore", "--image-path", &dir, "--bundle", &bundle, &c.id]);
    assert_eq!(out.code(), 7, "{out}");
    assert_eq!(
        count(&c),
        30,
        "the restored process did not finish its count"
    );
    assert!(
        !c.rt(&["state", &c.id]).ok(),
        "a foreground restore deletes its container"
    );
}

#[test]
fn restore_without_images_fails_and_leaves_nothing() {
    needs_criu!();
    let mut c = Ctr::new("cr-noimages");
    c.sh(COUNTER);
    c.save();
    let empty = images(&c, "empty");
    fs::create_dir_all(&empty).unwrap();
    let restored = restore_detached(&c, &empty, &[]);
    assert!(!restored.out.ok(), "restore from nothing succeeded");
    assert!(
        !c.rt(&["state", &c.id]).ok(),
        "a failed restore left its container"
    );
    // Ctr's drop checks that no state, mount, process or cgroup is left.
}

/// A restore killed while CRIU works leaves the rootfs bound under the state directory;
/// `delete` must detach it before removing the directory, and never reach into the rootfs.
#[test]
fn killed_restore_is_cleaned_up_without_touching_the_rootfs() {
    needs_criu!();
    hutch_only!(
        "runc 1.1.5's delete --force of a killed restore removes files of the rootfs through \
         its criu-root bind and leaves the state, the mount and the cgroup"
    );
    let mut c = Ctr::new("cr-killed");
    c.sh(COUNTER);
    let armed = c.dir.join("armed");
    let marker = c.dir.join("in-hook");
    // Blocks only once armed: at restore, not at the first run.
    c.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "if [ -e {0} ]; then touch {1}; sleep 60; fi",
            armed.display(),
            marker.display()
        )],
    }]});
    c.save();
    let bundle = c.bundle.display().to_string();
    let run = rt_detached(&c, &["run", "-d", "--bundle", &bundle, &c.id.clone()]);
    assert!(run.out.ok(), "run -d failed:\n{}", run.out);
    c.pid();
    counts_past(&c, 2);
    let img = images(&c, "img");
    checkpoint(&c, &img, &[]);

    fs::write(&armed, "").unwrap();
    let dir = img.display().to_string();
    let mut restore = c.cmd();
    restore
        .args([
            "restore",
            "-d",
            "--image-path",
            &dir,
            "--bundle",
            &bundle,
            &c.id,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = restore.spawn().unwrap();
    wait_for_file(&marker, Duration::from_secs(30));
    child.kill().unwrap();
    child.wait().unwrap();

    let out = c.rt(&["delete", "--force", &c.id]);
    assert!(out.ok(), "delete of a killed restore failed:\n{out}");
    assert!(
        c.rootfs.join("bin/busybox").exists() && c.rootfs.join("tmp/count").exists(),
        "the rootfs lost its files when the killed restore was cleaned up"
    );
    assert!(
        !c.root.join(&c.id).exists(),
        "the state directory outlived delete"
    );
    // Ctr's drop checks that no mount (the rootfs bind), process or cgroup is left.
}

/// A bind mount from the host and a network namespace joined by path are external to the
/// checkpoint: the restored container gets the same host directory and the same namespace
/// back (the config's, found again by path).
#[test]
fn binds_and_namespaces_joined_by_path_come_back() {
    needs_criu!();
    use std::os::unix::fs::MetadataExt;
    let mut c = Ctr::new("cr-external");
    let shared = c.dir.join("shared");
    fs::create_dir(&shared).unwrap();
    let netns = c.dir.join("netns");
    fs::write(&netns, "").unwrap();
    let made = Command::new("unshare")
        .arg(format!("--net={}", netns.display()))
        .arg("true")
        .status()
        .unwrap();
    assert!(made.success(), "unshare --net=FILE failed");
    c.set_ns("network", Some(netns.to_str().unwrap()));
    c.add_mount(json!({
        "destination": "/data",
        "type": "bind",
        "source": shared,
        "options": ["rbind", "rw"],
    }));
    c.sh("i=0; while true; do i=$((i+1)); echo $i > /data/count; echo $i > /tmp/count; sleep 0.1; done");
    c.save();
    let bundle = c.bundle.display().to_string();
    let run = rt_detached(&c, &["run", "-d", "--bundle", &bundle, &c.id.clone()]);
    assert!(run.out.ok(), "run -d failed:\n{}", run.out);
    c.pid();
    counts_past(&c, 2);
    let img = images(&c, "img");
    checkpoint(&c, &img, &[]);
    let host_count = || -> u64 {
        fs::read_to_string(shared.join("count"))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let stopped_at = host_count();
    assert!(stopped_at > 0, "the bind mount never saw the counter");

    restore_ok(&c, &img, &[]);
    let pid = c.pid();
    counts_past(&c, count(&c));
    let deadline = Instant::now() + Duration::from_secs(20);
    while host_count() <= stopped_at {
        assert!(
            Instant::now() < deadline,
            "the host directory no longer sees the counter"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let inside = fs::metadata(format!("/proc/{pid}/ns/net")).unwrap().ino();
    let joined = fs::metadata(&netns).unwrap().ino();
    assert_eq!(
        inside, joined,
        "the restored container is not in the joined network namespace"
    );
    c.rt(&["delete", "--force", &c.id]).assert_ok();
    nix::mount::umount2(&netns, nix::mount::MntFlags::MNT_DETACH).unwrap();
}
