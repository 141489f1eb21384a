//! Safety: inherited fds, masked and read-only paths, symlinks in mount destinations, and the
//! runtime binary out of the container's reach.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// The fds of the container's init (`sh`), listed by a child so sh itself opens nothing:
/// `ls -l` lines "... N -> target".
const LIST_FDS: &str = "ls -l /proc/$$/fd";

fn fd_numbers(out: &str) -> Vec<u32> {
    let mut v: Vec<u32> = out
        .lines()
        .filter_map(|l| fd_entry(l).map(|e| e.0))
        .collect();
    v.sort();
    v
}

fn fd_entry(line: &str) -> Option<(u32, String)> {
    let (left, target) = line.split_once(" -> ")?;
    Some((
        left.split_whitespace().last()?.parse().ok()?,
        target.to_string(),
    ))
}

/// `run` with an extra file inherited as fd 3 (and fd 7), as containerd's shim passes its socket.
fn run_with_inherited_fds(c: &mut Ctr, extra: &[&str]) -> Out {
    let f3 = fs::File::create(c.dir.join("inherited3")).unwrap();
    let f7 = fs::File::create(c.dir.join("inherited7")).unwrap();
    let mut cmd = c.run_cmd(extra);
    with_inherited_fd(&mut cmd, f3.as_raw_fd(), 3);
    with_inherited_fd(&mut cmd, f7.as_raw_fd(), 7);
    let out = exec_timeout(&mut cmd, CMD_TIMEOUT);
    drop((f3, f7));
    out
}

/// The caller's /dev/null as stdin (a shim's or `run -d </dev/null`) lives on the host's /dev
/// mount: the container's process gets its own /dev/null on that fd instead, as runc does
/// (CRIU cannot dump a file of a mount outside the container; the container has no business
/// holding one).
#[test]
fn host_dev_null_stdio_becomes_the_containers_own() {
    let mut c = Ctr::new("devnull-stdio");
    c.sh("grep mnt_id /proc/self/fdinfo/0 | tr -dc 0-9; echo; \
         awk '$5 == \"/dev\" { print $1 }' /proc/self/mountinfo; readlink /proc/self/fd/0");
    // create + start: the runtime passes its stdio through (`run` in the foreground may relay).
    c.create_ok();
    c.start_ok();
    c.wait_status("stopped", CMD_TIMEOUT);
    let out = std::fs::read_to_string(c.stdout_file()).unwrap_or_default();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[2], "/dev/null", "stdin is /dev/null: {out}");
    assert_eq!(
        lines[0], lines[1],
        "stdin's mount is the container's /dev: {out}"
    );
}

#[test]
fn only_stdio_reaches_the_container() {
    let mut c = Ctr::new("fds");
    c.sh(LIST_FDS);
    let out = run_with_inherited_fds(&mut c, &[]);
    out.assert_ok();
    assert_eq!(fd_numbers(&out.stdout), [0, 1, 2], "leaked fds:\n{out}");
}

#[test]
fn preserve_fds_passes_exactly_n_extra_fds() {
    let mut c = Ctr::new("fds-preserve");
    c.sh(LIST_FDS);
    let out = run_with_inherited_fds(&mut c, &["--preserve-fds", "1"]);
    out.assert_ok();
    assert_eq!(fd_numbers(&out.stdout), [0, 1, 2, 3], "{out}");
    let t3 = out
        .stdout
        .lines()
        .filter_map(fd_entry)
        .find(|e| e.0 == 3)
        .unwrap()
        .1;
    assert!(
        t3.ends_with("/inherited3"),
        "fd 3 is not the caller's file: {t3}"
    );
}

#[test]
fn create_with_inherited_fd_leaks_nothing() {
    let mut c = Ctr::new("fds-create");
    c.sh(LIST_FDS);
    let f3 = fs::File::create(c.dir.join("inherited3")).unwrap();
    let so = fs::File::create(c.stdout_file()).unwrap();
    let mut cmd = c.create_cmd(&[]);
    cmd.stdout(so);
    with_inherited_fd(&mut cmd, f3.as_raw_fd(), 3);
    let st = cmd.status().unwrap();
    assert!(st.success());
    drop(f3);
    c.start_ok();
    c.wait_status("stopped", Duration::from_secs(20));
    assert_eq!(fd_numbers(&c.ctr_stdout()), [0, 1, 2], "{}", c.ctr_stdout());
}

#[test]
fn masked_paths_are_masked() {
    let mut c = Ctr::new("masked");
    fs::create_dir_all(c.rootfs.join("secret-dir")).unwrap();
    fs::write(c.rootfs.join("secret-dir/key"), "s3cret").unwrap();
    fs::write(c.rootfs.join("etc/secret.txt"), "s3cret").unwrap();
    let masked = c.config["linux"]["maskedPaths"].as_array_mut().unwrap();
    for p in ["/secret-dir", "/etc/secret.txt", "/does/not/exist"] {
        masked.push(json!(p));
    }
    // /proc/timer_list and /proc/keys are in spec's default maskedPaths and are not empty on
    // the host; /proc/kcore too where the kernel has it.
    let kcore = std::path::Path::new("/proc/kcore").exists();
    c.sh(&format!(
        "echo timer_list=$(cat /proc/timer_list | wc -c); echo keys=$(cat /proc/keys | wc -c); \
         echo dir=$(ls -A /secret-dir | wc -l); echo file=$(cat /etc/secret.txt | wc -c); \
         stat -c '%t:%T' /proc/timer_list; \
         touch /secret-dir/new 2>/dev/null && echo dir-writable || echo dir-ro; {}",
        if kcore {
            "echo kcore=$(cat /proc/kcore | wc -c)"
        } else {
            "echo kcore=0"
        }
    ));
    let out = c.run();
    out.assert_ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        &l[..4],
        ["timer_list=0", "keys=0", "dir=0", "file=0"],
        "{out}"
    );
    assert_eq!(l[4], "1:3", "a masked file must be /dev/null bound over it");
    assert_eq!(
        l[5], "dir-ro",
        "a masked directory must be a read-only tmpfs"
    );
    assert_eq!(l[6], "kcore=0");
    assert_eq!(
        fs::read_to_string(c.rootfs.join("secret-dir/key")).unwrap(),
        "s3cret"
    );
}

#[test]
fn readonly_paths_are_readonly() {
    let mut c = Ctr::new("ro-paths");
    fs::create_dir_all(c.rootfs.join("data")).unwrap();
    c.config["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/data"));
    c.sh(
        "echo x 2>&1 > /proc/sys/kernel/hostname; touch /data/x 2>&1; \
         echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable || echo sysrq-ro; \
         cat /proc/sys/kernel/ostype",
    );
    let out = c.run();
    out.assert_ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert!(
        l[0].to_lowercase().contains("read-only file system"),
        "{out}"
    );
    assert!(
        l[1].to_lowercase().contains("read-only file system"),
        "{out}"
    );
    assert_eq!(l[2], "sysrq-ro");
    assert_eq!(l[3], "Linux", "readonly paths must stay readable");
    assert!(!c.rootfs.join("data/x").exists());
}

#[test]
fn symlink_mount_destination_stays_inside_the_rootfs() {
    let mut c = Ctr::new("symlink-escape");
    // A host directory the container must not reach, and symlinks in the rootfs pointing at it
    // (absolute, and relative with enough ../ to leave the rootfs).
    let host = c.dir.join("hostside");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("marker"), "host").unwrap();
    let src = c.dir.join("bindsrc");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("payload"), "payload").unwrap();
    let host_s = host.to_str().unwrap();
    std::os::unix::fs::symlink(&host, c.rootfs.join("evil")).unwrap();
    let ups = "../".repeat(20);
    std::os::unix::fs::symlink(
        format!("{ups}{}", host_s.trim_start_matches('/')),
        c.rootfs.join("evil2"),
    )
    .unwrap();
    c.add_mount(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
    c.add_mount(json!({"destination": "/evil2/sub", "type": "bind", "source": src, "options": ["rbind", "rw"]}));
    c.sh(&format!(
        "echo inside > /evil/written; cat /evil2/sub/payload; echo; \
         grep -c ' {host_s} tmpfs' /proc/mounts; ls {host_s}"
    ));
    let out = c.run();
    out.assert_ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        l[0], "payload",
        "the bind must be reachable through the symlink inside: {out}"
    );
    assert_eq!(
        l[1], "1",
        "the tmpfs must be mounted at the symlink's target inside the rootfs: {out}"
    );
    // The host directory was never touched.
    let mut names: Vec<String> = fs::read_dir(&host)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["marker"],
        "the host directory was written through a symlink"
    );
    assert!(
        !c.rootfs
            .join(host_s.trim_start_matches('/'))
            .join("written")
            .exists(),
        "write went to disk, not the tmpfs"
    );
}

#[test]
fn symlink_to_host_file_as_bind_destination() {
    // /etc/target -> /etc/passwd-of-the-host: binding onto it must bind the rootfs's path.
    let mut c = Ctr::new("symlink-file");
    let host_file = c.dir.join("host-file");
    fs::write(&host_file, "host original\n").unwrap();
    std::os::unix::fs::symlink(&host_file, c.rootfs.join("etc/target")).unwrap();
    let src = c.dir.join("srcfile");
    fs::write(&src, "bound\n").unwrap();
    c.add_mount(json!({"destination": "/etc/target", "type": "bind", "source": src, "options": ["bind", "rw"]}));
    c.sh("cat /etc/target; echo changed > /etc/target");
    let out = c.run();
    assert_eq!(
        fs::read_to_string(&host_file).unwrap(),
        "host original\n",
        "host file written: {out}"
    );
    if out.ok() {
        assert_eq!(out.stdout.lines().next(), Some("bound"), "{out}");
    }
}

/// A private copy of the runtime for the CVE-2019-5736 tests: a vulnerable runtime only damages
/// the copy, which is compared with its bytes from before.
struct RuntimeCopy {
    dir: PathBuf,
    bin: PathBuf,
    before: Vec<u8>,
}

impl RuntimeCopy {
    fn new(tag: &str) -> RuntimeCopy {
        let dir = run_dir().join(format!("{tag}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let bin = dir.join(runtime_name());
        fs::copy(runtime(), &bin).unwrap();
        let before = fs::read(&bin).unwrap();
        RuntimeCopy { dir, bin, before }
    }

    /// Deletes the victim `b` (the copy's container), then checks what the attacker `a` printed:
    /// it scanned to the end and wrote nothing (`wrote` says what a WROTE line means), and the
    /// copy is unchanged.
    #[track_caller]
    fn finish(self, a: &Ctr, b: &Ctr, wrote: &str) {
        let got = a.ctr_stdout();
        let after = fs::read(&self.bin).unwrap();
        let _ = exec_files(
            Command::new(&self.bin)
                .arg("--root")
                .arg(&b.root)
                .args(["delete", "--force", &b.id]),
            CMD_TIMEOUT,
        );
        assert!(got.ends_with("scanned\n"), "{got}");
        assert!(!got.contains("WROTE"), "{wrote}:\n{got}");
        assert!(
            self.before == after,
            "the runtime binary was modified from inside a container:\n{got}"
        );
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn runtime_binary_is_not_writable_from_a_container() {
    // CVE-2019-5736: a process in one container writes to /proc/PID/exe of a runtime process that
    // is visible in its pid namespace (here: the init of a second container joining the first
    // one's pid namespace, waiting in `created`). A copy of the runtime is used, so a vulnerable
    // runtime only damages the copy.
    let rt = RuntimeCopy::new("rt-copy");
    let copy = rt.bin.clone();

    let mut a = Ctr::new("exe-a");
    a.sh("while [ ! -e /tmp/go ]; do sleep 0.02; done; \
          for p in /proc/[0-9]*; do [ \"$p\" = /proc/$$ ] && continue; \
          (echo x >> $p/exe) 2>/dev/null && echo WROTE $p; done; echo scanned");
    a.create_ok();
    a.start_ok();
    let apid = a.pid();
    let mut b = Ctr::new("exe-b");
    b.set_ns("pid", Some(&format!("/proc/{apid}/ns/pid")));
    b.args(&["sleep", "100"]);
    b.save();
    let out = exec_files(
        Command::new(&copy)
            .arg("--root")
            .arg(&b.root)
            .args(["create", "--bundle"])
            .arg(&b.bundle)
            .arg(&b.id),
        CMD_TIMEOUT,
    );
    out.assert_ok();
    let bpid = b.pid();
    fs::write(a.rootfs.join("tmp/go"), "").unwrap();
    // When A's init exits, the kernel kills B's init (same pid namespace), and A's exit waits
    // until that zombie, our child, is reaped: reap it while waiting.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while a.status() != "stopped" {
        if try_reap(bpid).is_some() {
            b.reaped.insert(bpid);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "container A did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.finish(&a, &b, "container wrote to a process image");
}

#[test]
fn container_cannot_see_the_runtime_binary_path() {
    // While `create` waits for start, the init must not be a runtime process whose /proc/PID/exe
    // leads to the host binary file (it is either exec'd into the user program or sealed).
    let mut c = Ctr::new("exe-sealed");
    c.args(&["sleep", "100"]);
    c.create_ok();
    let pid = c.pid();
    let exe = fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rt = fs::canonicalize(runtime())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_ne!(
        exe, rt,
        "the created container's init runs the runtime binary from its host path"
    );
}

/// A pipe whose buffer is already full: a process writing to it blocks until the test drains
/// it. Returns (read end, write end); both blocking.
fn full_pipe() -> (fs::File, fs::File) {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array we own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the kernel just returned these fds; each is owned by one File from here on.
    let (r, mut w) = unsafe { (fs::File::from_raw_fd(fds[0]), fs::File::from_raw_fd(fds[1])) };
    // SAFETY: F_GETPIPE_SZ takes no argument and returns the capacity.
    let size = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert!(size > 0, "F_GETPIPE_SZ");
    // Exactly the capacity fits into an empty pipe without blocking.
    w.write_all(&vec![b'.'; size as usize]).unwrap();
    (r, w)
}

/// Reads `r` (made non-blocking; its own open file description) until `done()` holds.
fn drain_until(r: &fs::File, deadline: std::time::Instant, mut done: impl FnMut() -> bool) {
    use std::io::Read;
    // SAFETY: fcntl flags on an fd we own.
    unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut buf = vec![0u8; 65536];
    loop {
        while matches!((&*r).read(&mut buf), Ok(n) if n > 0) {}
        if done() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the blocked writers never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies the dynamic loader and libraries `bin` needs into the same paths under `rootfs`, so
/// the binary can run in the container (as in an image built for the attack).
fn copy_shared_libraries(bin: &std::path::Path, rootfs: &std::path::Path) {
    let out = Command::new("ldd").arg(bin).output().unwrap();
    for lib in String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dest = rootfs.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(lib, &dest).unwrap();
    }
}

/// The process sleeps in write(2) to its stdout or stderr (`/proc/PID/syscall`: "1 0x1 ..").
fn blocked_writing_stdio(pid: i32) -> bool {
    let s = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let mut f = s.split_whitespace();
    f.next() == Some("1") && matches!(f.next(), Some("0x1") | Some("0x2"))
}

/// CVE-2019-5736, as the published exploit does it, in every phase where a runtime process is in
/// the container: an attacker container with CAP_SYS_PTRACE shares its pid namespace with
/// container B and, for every runtime-looking process it sees, opens `/proc/PID/exe` read-only
/// (ETXTBSY forbids writing while the binary runs) and keeps it open in a `sleep`; once all of
/// them are gone it reopens each through `/proc/SLEEP/fd/0` for writing. The processes it sees:
/// - create: B's init, waiting for `start` (a fork of the runtime);
/// - start: B's entrypoint is `/proc/self/exe`, so at start the init execs whatever binary it
///   runs from, inside the container (kept alive: its output blocks on a full pipe);
/// - exec: `exec B /proc/self/exe`, the same through exec (the exec'd process before and after
///   its execve).
///
/// Everything of B runs from a copy of the runtime, so a vulnerable runtime only damages the
/// copy, which is compared before and after.
#[test]
fn runtime_binary_cannot_be_overwritten_during_create_start_and_exec() {
    let rt = RuntimeCopy::new("rt-copy3");
    let copy = rt.bin.clone();

    let mut a = Ctr::new("exe-grab");
    for set in ["bounding", "effective", "permitted"] {
        a.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_PTRACE"));
    }
    a.sh("mkdir -p /tmp/seen; : > /tmp/held; \
          while [ ! -e /tmp/done ]; do \
            for p in /proc/[0-9]*; do \
              t=$(readlink $p/exe 2>/dev/null) || continue; \
              case \"$t\" in ''|*/busybox) continue;; esac; \
              k=${p#/proc/}-$(md5sum < $p/cmdline 2>/dev/null | cut -c1-8); \
              [ -e /tmp/seen/$k ] && continue; \
              (exec 3< $p/exe) 2>/dev/null || continue; \
              sleep 1000 < $p/exe 2>/dev/null & \
              echo \"$! $k $t\" >> /tmp/held; touch /tmp/seen/$k; \
            done; \
          done; \
          while read -r s rest; do \
            (echo x >> /proc/$s/fd/0) 2>/dev/null && echo \"WROTE $s $rest\"; kill $s; \
          done < /tmp/held; \
          cat /tmp/held; echo held=$(wc -l < /tmp/held); echo scanned");
    a.create_ok();
    a.start_ok();
    let apid = a.pid();
    let held = a.rootfs.join("tmp/held");
    let held_count = || {
        fs::read_to_string(&held)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let wait_grab = |n: usize, phase: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while held_count() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{phase}: the attacker never saw a runtime process: {:?}",
                fs::read_to_string(&held)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    let (r, w) = full_pipe();
    let mut b = Ctr::new("exe-victim");
    b.set_ns("pid", Some(&format!("/proc/{apid}/ns/pid")));
    b.args(&["/proc/self/exe"]);
    copy_shared_libraries(&copy, &b.rootfs);
    b.save();
    // Not exec_files: the container's stdio must be the full pipe, and create writes nothing.
    let mut create = Command::new(&copy);
    create
        .arg("--root")
        .arg(&b.root)
        .args(["create", "--bundle"])
        .arg(&b.bundle)
        .arg("--pid-file")
        .arg(b.pid_file())
        .arg(&b.id)
        .stdin(std::process::Stdio::null())
        .stdout(w.try_clone().unwrap())
        .stderr(w.try_clone().unwrap());
    let mut create = create.spawn().unwrap();
    let deadline = std::time::Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(st) = create.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = create.kill();
            let _ = create.wait();
            panic!("create of the victim container timed out");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "create of the victim container failed");
    let bpid = b.pid();
    wait_grab(1, "create");
    b.start_ok();
    // At start the init execs /proc/self/exe: either the runtime runs again inside the container,
    // a new process image the attacker must see, or the exec fails (hutch's protected copy is
    // not reachable from inside) and the init blocks writing the error.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let cmdline = fs::read(format!("/proc/{bpid}/cmdline")).unwrap_or_default();
        if held_count() >= 2
            || (!cmdline.starts_with(b"/proc/self/exe\0") && blocked_writing_stdio(bpid))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "start: the init neither ran the runtime nor blocked: {:?}",
            fs::read_to_string(&held)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut exec = Command::new(&copy);
    exec.arg("--root")
        .arg(&b.root)
        .args(["exec", &b.id, "/proc/self/exe"])
        .stdin(std::process::Stdio::null())
        .stdout(w.try_clone().unwrap())
        .stderr(w.try_clone().unwrap());
    let mut exec = exec.spawn().unwrap();
    drop(w);
    wait_grab(held_count() + 1, "exec");

    // Let every runtime process finish, reaping B's init (re-parented to us) on the way.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut exec_done = false;
    let mut init_done = false;
    drain_until(&r, deadline, || {
        exec_done = exec_done || exec.try_wait().unwrap().is_some();
        if !init_done && try_reap(bpid).is_some() {
            b.reaped.insert(bpid);
            init_done = true;
        }
        exec_done && init_done
    });
    fs::write(a.rootfs.join("tmp/done"), "").unwrap();
    a.wait_status("stopped", Duration::from_secs(20));
    rt.finish(
        &a,
        &b,
        "a container reopened a runtime process's exe for writing",
    );
}

/// CVE-2024-21626: `process.cwd` set to `/proc/self/fd/N` of a host directory fd that reaches
/// the init (here one the caller leaks; in the CVE one runc leaked itself) would start the
/// container in a host directory. It must be refused, and nothing written there.
#[test]
fn cwd_through_a_leaked_host_fd_is_refused() {
    let mut c = Ctr::new("cwd-leak");
    let host = c.dir.join("hostdir");
    fs::create_dir_all(&host).unwrap();
    c.config["process"]["cwd"] = json!("/proc/self/fd/9");
    c.sh("echo escaped > ./written; pwd; ls ..");
    let dir = fs::File::open(&host).unwrap();
    let mut cmd = c.run_cmd(&[]);
    with_inherited_fd(&mut cmd, dir.as_raw_fd(), 9);
    let out = exec_timeout(&mut cmd, CMD_TIMEOUT);
    drop(dir);
    let written: Vec<_> = fs::read_dir(&host).unwrap().flatten().collect();
    assert!(
        written.is_empty(),
        "the container wrote into the host directory it got as cwd:\n{out}"
    );
    out.assert_fail();
    if is_hutch() {
        out.assert_fail_with("process.cwd");
    }
}

/// CVE-2023-27561 / CVE-2019-19921: the image's /proc is a symlink (to a host-looking path, or
/// `..`). Mounting procfs through it would put it wherever the link points (runc 1.1.5 refuses
/// too). Refused, nothing mounted or created at the link's target on the host or in the rootfs.
#[test]
fn symlinked_proc_in_the_rootfs_is_refused() {
    for (i, target) in ["abs", ".."].iter().enumerate() {
        let mut c = Ctr::new(&format!("proc-symlink-{i}"));
        let host = c.dir.join("evil-proc");
        fs::create_dir_all(&host).unwrap();
        let target = if *target == "abs" {
            host.to_string_lossy().into_owned()
        } else {
            target.to_string()
        };
        fs::remove_dir(c.rootfs.join("proc")).unwrap();
        std::os::unix::fs::symlink(&target, c.rootfs.join("proc")).unwrap();
        c.sh("grep ' proc ' /proc/self/mountinfo");
        let out = c.run();
        assert!(
            fs::read_dir(&host).unwrap().next().is_none(),
            "{target}: something appeared in the host directory:\n{out}"
        );
        assert!(
            mounts_under(&c.dir).is_empty(),
            "{target}: a mount was left under the test's directory:\n{out}"
        );
        assert!(
            !c.rootfs.join(host.strip_prefix("/").unwrap()).exists(),
            "{target}: the symlink's target was created in the rootfs:\n{out}"
        );
        out.assert_fail_with("proc");
    }
}

/// CVE-2025-31133: masked files are covered with the container's /dev/null; an image without a
/// /dev mount brings its own, here a symlink to a file of secrets. Masking must never bind that:
/// refuse, or mask with the real null device.
#[test]
fn masked_paths_are_never_covered_with_a_fake_dev_null() {
    hutch_only!("runc 1.1.5 predates the CVE-2025-31133 fix (1.2.8)");
    let mut c = Ctr::new("fake-devnull");
    c.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev");
    fs::write(c.rootfs.join("secret"), "s3cret\n").unwrap();
    fs::write(c.rootfs.join("etc/hidden"), "hidden\n").unwrap();
    let null = c.rootfs.join("dev/null");
    let _ = fs::remove_file(&null);
    std::os::unix::fs::symlink("/secret", &null).unwrap();
    c.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/etc/hidden"));
    c.sh(
        "echo keys=$(cat /proc/keys); echo hidden=$(cat /etc/hidden); \
          stat -c '%t:%T' /etc/hidden",
    );
    let out = c.run();
    assert_eq!(
        fs::read_to_string(c.rootfs.join("secret")).unwrap(),
        "s3cret\n"
    );
    if out.ok() {
        assert_eq!(
            out.stdout_lines(),
            ["keys=", "hidden=", "1:3"],
            "a masked path shows the fake /dev/null:\n{out}"
        );
    } else {
        out.assert_fail_with("/dev/null");
    }
}

/// CVE-2025-52881 / CVE-2019-16884: writes into /proc must reach the kernel, whatever the
/// container's /proc holds. Here the config mounts no procfs, and the image's /proc/sys carries a
/// regular file where net.ipv4.ip_forward lives: the sysctl must be set in the container's
/// network namespace (checked from the host), and the image's file left alone.
#[test]
fn sysctl_is_written_to_the_real_procfs_not_the_images_proc() {
    hutch_only!("runc 1.1.5 writes sysctls by path (CVE-2025-52881 is fixed in 1.2.8)");
    let mut c = Ctr::new("fake-proc");
    c.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/proc");
    let fake = c.rootfs.join("proc/sys/net/ipv4/ip_forward");
    fs::create_dir_all(fake.parent().unwrap()).unwrap();
    fs::write(&fake, "fake\n").unwrap();
    c.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    c.args(&["sleep", "60"]);
    c.create_ok();
    let pid = c.pid();
    let out = exec_timeout(
        Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .args(["cat", "/proc/sys/net/ipv4/ip_forward"]),
        CMD_TIMEOUT,
    );
    out.assert_ok();
    let image_file = fs::read_to_string(&fake).unwrap();
    assert_eq!(
        out.stdout.trim(),
        "1",
        "the sysctl did not reach the container's network namespace (image's file: {image_file:?})"
    );
    assert_eq!(
        image_file, "fake\n",
        "the sysctl was written into the image"
    );
}

/// The file case of CVE-2021-30465, checked where the mount lands: /etc/target is an absolute
/// symlink to a host file under /tmp (a directory the rootfs has too). The bind must be made at
/// the link's target inside the rootfs, so the container reads the bound file through the link;
/// bound onto the host file instead, in the container's own mount namespace, it would go unseen
/// from the host (the test above only checks that the host file was not written). A refusal is
/// fine too.
#[test]
fn symlinked_file_bind_destination_is_mounted_inside_the_rootfs() {
    let mut c = Ctr::new("symlink-file-inside");
    let host_file = std::path::PathBuf::from(format!("/tmp/hutch-it-{}", c.id));
    fs::write(&host_file, "host original\n").unwrap();
    std::os::unix::fs::symlink(&host_file, c.rootfs.join("etc/target")).unwrap();
    let src = c.dir.join("srcfile");
    fs::write(&src, "bound\n").unwrap();
    c.add_mount(json!({"destination": "/etc/target", "type": "bind", "source": src, "options": ["bind", "ro"]}));
    c.sh(&format!(
        "cat /etc/target || echo unreadable; grep -c ' {} ' /proc/self/mountinfo; true",
        host_file.display()
    ));
    let out = c.run();
    let host_now = fs::read_to_string(&host_file).unwrap();
    let _ = fs::remove_file(&host_file);
    assert_eq!(host_now, "host original\n", "host file written: {out}");
    if !out.ok() {
        out.assert_fail_with("/etc/target");
        return;
    }
    assert_eq!(
        out.stdout_lines(),
        ["bound", "1"],
        "the bind is not at the symlink's target inside the rootfs: {out}"
    );
    assert!(
        c.rootfs
            .join(host_file.strip_prefix("/").unwrap())
            .is_file(),
        "no mount point was created inside the rootfs"
    );
}
