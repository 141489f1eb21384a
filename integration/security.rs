//! Safety: inherited fds, masked and read-only paths, symlinks in mount destinations, and the
//! runtime binary out of the container's reach.

use std::fs;
use std::os::fd::AsRawFd;
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
    c.save();
    let f3 = fs::File::create(c.dir.join("inherited3")).unwrap();
    let f7 = fs::File::create(c.dir.join("inherited7")).unwrap();
    let mut cmd = c.cmd();
    cmd.arg("run")
        .args(extra)
        .arg("--bundle")
        .arg(&c.bundle)
        .arg(&c.id);
    with_inherited_fd(&mut cmd, f3.as_raw_fd(), 3);
    with_inherited_fd(&mut cmd, f7.as_raw_fd(), 7);
    let out = exec_timeout(&mut cmd, CMD_TIMEOUT);
    drop((f3, f7));
    out
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
    c.save();
    let f3 = fs::File::create(c.dir.join("inherited3")).unwrap();
    let so = fs::File::create(c.stdout_file()).unwrap();
    let mut cmd = c.cmd();
    cmd.args(["create", "--bundle"])
        .arg(&c.bundle)
        .arg("--pid-file")
        .arg(c.pid_file())
        .arg(&c.id);
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

#[test]
fn runtime_binary_is_not_writable_from_a_container() {
    // CVE-2019-5736: a process in one container writes to /proc/PID/exe of a runtime process that
    // is visible in its pid namespace (here: the init of a second container joining the first
    // one's pid namespace, waiting in `created`). A copy of the runtime is used, so a vulnerable
    // runtime only damages the copy.
    let copy_dir = run_dir().join(format!("rt-copy-{}", std::process::id()));
    fs::create_dir_all(&copy_dir).unwrap();
    let copy = copy_dir.join(runtime_name());
    fs::copy(runtime(), &copy).unwrap();
    let before = fs::read(&copy).unwrap();

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
    let got = a.ctr_stdout();
    let after = fs::read(&copy).unwrap();
    let _ = exec_files(
        Command::new(&copy)
            .arg("--root")
            .arg(&b.root)
            .args(["delete", "--force", &b.id]),
        CMD_TIMEOUT,
    );
    assert!(got.ends_with("scanned\n"), "{got}");
    assert!(
        !got.contains("WROTE"),
        "container wrote to a process image: {got}"
    );
    assert!(
        before == after,
        "the runtime binary was modified from inside a container"
    );
    let _ = fs::remove_dir_all(&copy_dir);
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
