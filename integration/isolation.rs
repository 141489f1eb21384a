//! Host safety of the container's processes (issue 9): what a hostile or merely misconfigured
//! container must not be able to do to the host or to the caller.

use std::fs;
use std::os::fd::AsRawFd;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// Puts the host's domainname back if a runtime changed it, so a failing run does not leave
/// the machine renamed.
struct RestoreDomainname(String);

impl Drop for RestoreDomainname {
    fn drop(&mut self) {
        let now = fs::read_to_string("/proc/sys/kernel/domainname").unwrap_or_default();
        if now != self.0 {
            let _ = fs::write("/proc/sys/kernel/domainname", self.0.trim_end());
        }
    }
}

#[test]
fn domainname_without_uts_namespace_is_refused() {
    let before = fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let _restore = RestoreDomainname(before.clone());
    let mut c = Ctr::new("uts-domain-none");
    c.drop_ns("uts");
    c.config.as_object_mut().unwrap().remove("hostname");
    c.config["domainname"] = json!(format!("hutch-test-{}", std::process::id()));
    let out = c.create();
    let after = fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    assert_eq!(after, before, "the host's domainname was changed:\n{out}");
    // runc 1.1.5 ignores the field (1.2 refuses it like this).
    hutch_only!("runc 1.1.5 ignores domainname");
    out.assert_fail_with("domainname");
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
}

/// (uid_t)-1 to the set*id calls means "unchanged": the container would keep the runtime's root.
#[test]
fn user_id_minus_one_is_refused() {
    for (field, key) in [
        ("process.user.uid", "uid"),
        ("process.user.gid", "gid"),
        ("process.user.additionalGids[1]", "additionalGids"),
    ] {
        let mut c = Ctr::new("uid-minus-one");
        c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c.config["process"]["user"][key] = if key == "additionalGids" {
            json!([10, u32::MAX])
        } else {
            json!(u32::MAX)
        };
        c.sh("id");
        let out = c.run();
        assert!(
            !out.ok(),
            "{key} = 4294967295 ran the container (as: {}):\n{out}",
            out.stdout.trim()
        );
        hutch_only!("hutch's wording");
        out.assert_fail_with(field);
    }
}

#[test]
fn exec_user_id_minus_one_is_refused() {
    let mut c = Ctr::new("exec-uid-minus-one");
    c.args(&["sleep", "60"]);
    c.create_ok();
    c.start_ok();
    for user in ["4294967295", "1000:4294967295"] {
        let out = c.rt_piped(&["exec", "-u", user, &c.id, "id"]);
        assert!(!out.ok(), "exec -u {user} ran:\n{out}");
        hutch_only!("hutch's wording");
        out.assert_fail_with("process.user");
    }
    let out = c.rt_piped(&["exec", "-u", "1000", "-g", "4294967295", &c.id, "id"]);
    out.assert_fail_with("process.user.additionalGids[0]");
}

#[test]
fn user_id_unmapped_in_the_user_namespace_is_refused() {
    hutch_only!("hutch's wording");
    for (key, value, field) in [
        ("uid", json!(70000), "process.user.uid"),
        ("gid", json!(70000), "process.user.gid"),
        (
            "additionalGids",
            json!([70000]),
            "process.user.additionalGids[0]",
        ),
    ] {
        let mut c = Ctr::new("uid-unmapped");
        c.user_ns(100000, 100000);
        c.config["process"]["user"][key] = value;
        let out = c.create();
        out.assert_fail_with(field);
        assert!(out.stderr.contains("not mapped"), "{out}");
        c.rt(&["state", &c.id]).assert_fail_with("does not exist");
    }
}

/// An empty PATH, or an empty or relative element, must not make the working directory a
/// place commands are found (runc: Go's exec.LookPath refuses results relative to ".").
#[test]
fn empty_path_does_not_search_the_working_directory() {
    for path in [
        "PATH=",
        "PATH=/nonexistent:",
        "PATH=.",
        "PATH=/nonexistent::/none",
    ] {
        let mut c = Ctr::new("path-empty");
        fs::write(c.rootfs.join("planted"), "#!/bin/sh\necho planted-ran\n").unwrap();
        fs::set_permissions(
            c.rootfs.join("planted"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        c.config["process"]["env"] = json!([path]);
        c.config["process"]["cwd"] = json!("/");
        c.args(&["planted"]);
        let out = c.run();
        assert!(
            !out.stdout.contains("planted-ran"),
            "{path}: the working directory was searched:\n{out}"
        );
        out.assert_fail();
        if is_hutch() {
            out.assert_fail_with("executable file not found");
        }
    }
}

/// Runs `cmd` with the caller's umask set to `mask`.
fn with_umask(cmd: &mut std::process::Command, mask: libc::mode_t) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: umask is async-signal-safe and cannot fail.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask);
            Ok(())
        })
    }
}

#[test]
fn callers_umask_does_not_leak_in() {
    let mut c = Ctr::new("umask-caller");
    c.args(&["sleep", "60"]);
    let mut cmd = c.create_cmd(&[]);
    exec_files(with_umask(&mut cmd, 0o077), CMD_TIMEOUT).assert_ok();
    c.pid();
    c.start_ok();
    let mut exec = c.cmd();
    exec.args([
        "exec",
        &c.id,
        "sh",
        "-c",
        "umask; touch /tmp/f; stat -c %a /tmp/f",
    ]);
    let out = exec_timeout(with_umask(&mut exec, 0o077), CMD_TIMEOUT);
    assert_eq!(out.stdout, "0022\n644\n", "exec:\n{out}");
    let init = c.pid();
    let status = fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert_eq!(status_field(&status, "Umask"), Some("0022"), "init");
}

/// A pty pair: the master stays with the test, the peer becomes the caller's terminal.
struct Pty {
    master: std::os::fd::OwnedFd,
    peer: fs::File,
}

fn open_pty() -> Pty {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc pty calls on an fd we own; ptsname_r writes into a live buffer.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt");
        let master = std::os::fd::OwnedFd::from_raw_fd(m);
        assert_eq!(libc::grantpt(m), 0, "grantpt");
        assert_eq!(libc::unlockpt(m), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let name = std::ffi::CStr::from_ptr(name.as_ptr()).to_str().unwrap();
        let peer = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(name)
            .unwrap();
        Pty { master, peer }
    }
}

use std::os::unix::fs::OpenOptionsExt;

/// The caller runs in a session whose controlling terminal is a pty (an interactive shell).
/// The container (uid 1000, no capabilities) must be in a session of its own: no controlling
/// terminal, /dev/tty refused, and TIOCSTI cannot push a command into the caller's terminal.
#[test]
fn container_gets_its_own_session_not_the_callers_terminal() {
    let tiocsti = fixture("tiocsti");
    let pty = open_pty();
    for sub in ["run", "exec"] {
        let mut c = Ctr::new("session");
        fs::copy(&tiocsti, c.rootfs.join("bin/tiocsti")).unwrap();
        c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        let probe = "read -r _ _ _ _ _ sid tty _ < /proc/$$/stat; \
                     echo \"pid=$$ sid=$sid tty=$tty\"; \
                     (echo hi > /dev/tty) 2>/dev/null && echo devtty=open || echo devtty=refused; \
                     tiocsti 'echo INJECTED'";
        let mut cmd = c.cmd();
        if sub == "run" {
            c.sh(probe);
            c.save();
            cmd.args(["run", "--bundle"]).arg(&c.bundle).arg(&c.id);
        } else {
            c.args(&["sleep", "60"]);
            c.create_ok();
            c.start_ok();
            c.pid();
            cmd.args(["exec", &c.id, "sh", "-c", probe]);
        }
        cmd.stdin(pty.peer.try_clone().unwrap());
        // SAFETY: setsid and ioctl are async-signal-safe; fd 0 is the pty peer by now.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = exec_files(&mut cmd, CMD_TIMEOUT);
        out.assert_ok();
        let lines = out.stdout_lines();
        let ids = lines.first().copied().unwrap_or_default();
        let pid = ids
            .split(' ')
            .next()
            .unwrap_or_default()
            .trim_start_matches("pid=");
        assert!(
            ids == format!("pid={pid} sid={pid} tty=0"),
            "{sub}: the container is not the leader of a session without a terminal:\n{out}"
        );
        assert_eq!(lines.get(1), Some(&"devtty=refused"), "{sub}:\n{out}");
        assert_ne!(
            lines.get(2),
            Some(&"tiocsti=ok"),
            "{sub}: TIOCSTI worked:\n{out}"
        );
        // Nothing waits in the caller's terminal's input queue.
        let mut pending: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        let rc = unsafe { libc::ioctl(pty.peer.as_raw_fd(), libc::FIONREAD, &mut pending) };
        assert_eq!(rc, 0);
        assert_eq!(
            pending, 0,
            "{sub}: input was injected into the caller's terminal"
        );
    }
    drop(pty.master);
}

/// The ids of the fds in `ls -l /proc/PID/fd` output.
fn listed_fds(out: &str) -> Vec<u32> {
    let mut v: Vec<u32> = out
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .filter_map(|(left, _)| left.split_whitespace().last()?.parse().ok())
        .collect();
    v.sort();
    v
}

/// CVE-2024-21626 class: when close_range is unavailable (here: denied by the container's own
/// seccomp profile, loaded early since noNewPrivileges is false), the sweep of inherited fds must
/// not stop at the container's RLIMIT_NOFILE: a host fd at 2000 must not reach the container.
#[test]
fn high_inherited_fd_does_not_reach_the_container_without_close_range() {
    let mut c = Ctr::new("fd-high");
    c.config["process"]["noNewPrivileges"] = json!(false);
    c.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]);
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    c.sh("ls -l /proc/$$/fd");
    let host = fs::File::create(c.dir.join("host-secret")).unwrap();
    let mut cmd = c.run_cmd(&[]);
    with_inherited_fd(&mut cmd, host.as_raw_fd(), 2000);
    let out = exec_timeout(&mut cmd, CMD_TIMEOUT);
    out.assert_ok();
    assert_eq!(
        listed_fds(&out.stdout),
        [0, 1, 2],
        "run: leaked fds:\n{out}"
    );

    c.args(&["sleep", "60"]);
    c.create_ok();
    c.start_ok();
    c.pid();
    let mut cmd = c.cmd();
    cmd.args(["exec", &c.id, "sh", "-c", "ls -l /proc/$$/fd"]);
    with_inherited_fd(&mut cmd, host.as_raw_fd(), 2000);
    let out = exec_timeout(&mut cmd, CMD_TIMEOUT);
    out.assert_ok();
    assert_eq!(
        listed_fds(&out.stdout),
        [0, 1, 2],
        "exec: leaked fds:\n{out}"
    );
}

/// Kubernetes sets oomScoreAdj on every container; in a user namespace mapped to non-root host
/// ids it failed (the init's /proc files belong to host root once it is non-dumpable).
/// Checked from outside, for the init and an exec'd process.
#[test]
fn oom_score_adj_in_a_user_namespace() {
    let adj = 678;
    let mut c = Ctr::new("oom-userns");
    c.user_ns(100000, 100000);
    c.config["process"]["oomScoreAdj"] = json!(adj);
    c.args(&["sleep", "60"]);
    c.create().assert_ok();
    let pid = c.pid();
    let read = |pid: i32| {
        fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read(pid), adj.to_string(), "init");
    c.start_ok();
    let pid_file = c.dir.join("exec.pid");
    let pid_arg = pid_file.to_str().unwrap().to_string();
    let out = c.rt(&["exec", "-d", "--pid-file", &pid_arg, &c.id, "sleep", "30"]);
    out.assert_ok();
    let exec_pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .parse()
        .expect("exec pid");
    c.track(exec_pid);
    assert_eq!(read(exec_pid), adj.to_string(), "exec'd process");
    // Re-parented to this test (a subreaper): reap it so the killed init can finish.
    c.rt(&["delete", "--force", &c.id.clone()]).assert_ok();
    wait_dead(exec_pid, 0, CMD_TIMEOUT).unwrap();
}

/// While `exec` sets its process up inside the container (and the intermediate that joins the
/// namespaces), a container process racing over /proc/<pid>/fd of every process it sees (as
/// container root without CAP_SYS_PTRACE, the default) must never reach a host file: no cgroup
/// directory or tasks file, nothing of the state directory.
#[test]
fn exec_exposes_no_host_fd_to_the_container() {
    let mut c = Ctr::new("exec-race");
    c.sh("while [ ! -e /tmp/stop ]; do ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -F ' -> ' >> /tmp/seen; done; touch /tmp/finished");
    c.create_ok();
    c.start_ok();
    c.pid();
    for _ in 0..40 {
        // The exec'd program holds a file of its own: proof the scanner reaches new processes.
        c.rt(&["exec", &c.id, "sh", "-c", "exec 7</etc/hostname; sleep 0.1"])
            .assert_ok();
    }
    fs::write(c.rootfs.join("tmp/stop"), "").unwrap();
    wait_for_file(&c.rootfs.join("tmp/finished"), Duration::from_secs(20));
    let seen = fs::read_to_string(c.rootfs.join("tmp/seen")).unwrap_or_default();
    assert!(
        seen.contains("/etc/hostname"),
        "the scanner never saw an exec'd process's fds"
    );
    let root = c.root.to_string_lossy().into_owned();
    // Stdio are the caller's files by design; anything above is hutch's or the container's.
    let above_stdio = |l: &&str| {
        l.split_once(" -> ")
            .and_then(|(left, _)| left.split_whitespace().last()?.parse::<u32>().ok())
            .is_some_and(|fd| fd > 2)
    };
    // The container's own stdio files, which its shell duplicates above 9 for redirections.
    let own_stdio = [c.stdout_file(), c.stderr_file()].map(|p| p.to_string_lossy().into_owned());
    let host = |l: &&str| {
        let target = l.split_once(" -> ").map(|(_, t)| t).unwrap_or_default();
        !own_stdio.iter().any(|p| p == target)
            && (target.starts_with("/sys/fs/cgroup")
                || target.contains(&root)
                || target.starts_with(env!("CARGO_MANIFEST_DIR")))
    };
    let bad: Vec<&str> = seen.lines().filter(above_stdio).filter(host).collect();
    assert!(
        bad.is_empty(),
        "host files reached from the container: {bad:#?}"
    );
}

/// `--no-pivot` chroots instead of pivot_root: the host's full /proc and /sys mounts must not
/// stay in the container's mount namespace (hidden by the chroot, but still "visible" to the
/// kernel's procfs/sysfs mount checks). Counted from outside with listmount(2), which sees the
/// whole namespace.
#[test]
fn no_pivot_leaves_no_host_proc_or_sys_in_the_namespace() {
    let probe = fixture("mntns_probe");
    let mut c = Ctr::new("no-pivot-proc");
    c.args(&["sleep", "60"]);
    c.create_with(&["--no-pivot"]).assert_ok();
    let pid = c.pid();
    let out = exec_timeout(
        std::process::Command::new(probe).arg(pid.to_string()),
        CMD_TIMEOUT,
    );
    if out.code() == 3 {
        eprintln!("SKIP: the kernel has no listmount/statmount");
        return;
    }
    out.assert_ok();
    let whole = |fstype: &str| {
        out.stdout
            .lines()
            .filter(|l| *l == format!("{fstype} /"))
            .count()
    };
    // The container's own /proc and /sys, nothing else.
    assert_eq!(
        whole("proc"),
        1,
        "full procfs mounts in the namespace:\n{out}"
    );
    assert_eq!(
        whole("sysfs"),
        1,
        "full sysfs mounts in the namespace:\n{out}"
    );
    // And the container itself still has both.
    c.start_ok();
    let inside = c.rt_piped(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "cat /proc/self/stat >/dev/null && ls /sys/kernel >/dev/null && echo ok",
    ]);
    assert_eq!(inside.stdout, "ok\n", "{inside}");
}
