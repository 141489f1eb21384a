//! What a service manager passes through the runtime: socket activation (`LISTEN_FDS`) and
//! the readiness socket (`NOTIFY_SOCKET`).

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::process::Command;

use crate::common::*;

/// `LISTEN_FDS=1` with `LISTEN_PID` naming the runtime: fd 3 reaches the container, which sees
/// `LISTEN_FDS=1 LISTEN_PID=1`.
#[test]
fn listen_fds_are_passed_to_the_container() {
    let mut c = Ctr::new("listen-fds");
    c.sh("echo fds=$LISTEN_FDS pid=$LISTEN_PID; readlink /proc/self/fd/3");
    c.save();
    let script = format!(
        "exec 3<{}; LISTEN_FDS=1 LISTEN_PID=$$ exec {} --root {} run --bundle {} {}",
        c.bundle.join("config.json").display(),
        runtime().display(),
        c.root.display(),
        c.bundle.display(),
        c.id
    );
    let out = exec_timeout(Command::new("sh").arg("-c").arg(script), CMD_TIMEOUT);
    out.assert_ok();
    assert!(out.stdout.contains("fds=1 pid=1"), "{out}");
    assert!(
        out.stdout.contains("config.json"),
        "fd 3 is not the passed file:\n{out}"
    );
}

/// LISTEN_FDS meant for another process (LISTEN_PID is not the runtime) passes nothing.
#[test]
fn listen_fds_for_another_pid_are_ignored() {
    let mut c = Ctr::new("listen-fds-other");
    c.sh("echo fds=${LISTEN_FDS:-none}; ls /proc/self/fd");
    c.save();
    let script = format!(
        "exec 3</dev/null; LISTEN_FDS=1 LISTEN_PID=1 exec {} --root {} run --bundle {} {}",
        runtime().display(),
        c.root.display(),
        c.bundle.display(),
        c.id
    );
    let out = exec_timeout(Command::new("sh").arg("-c").arg(script), CMD_TIMEOUT);
    out.assert_ok();
    assert!(out.stdout.contains("fds=none"), "{out}");
    // ls's own directory fd is 3: nothing else may be open.
    assert_eq!(out.stdout_lines()[1..], ["0", "1", "2", "3"], "{out}");
}

/// With NOTIFY_SOCKET set, the container gets the caller's socket (the same inode, bind-mounted)
/// and NOTIFY_SOCKET pointing at it.
#[test]
fn notify_socket_is_passed_through() {
    hutch_only!("runc proxies NOTIFY_SOCKET through its own socket instead of the caller's");
    let mut c = Ctr::new("notify-socket");
    let host_socket = c.dir.join("notify.sock");
    let _listener = UnixDatagram::bind(&host_socket).unwrap();
    let inode = std::fs::metadata(&host_socket).unwrap().ino();
    c.sh("echo notify=$NOTIFY_SOCKET; stat -c 'inode=%i type=%F' $NOTIFY_SOCKET");
    c.save();
    let out = exec_timeout(
        c.cmd().env("NOTIFY_SOCKET", &host_socket).args([
            "run",
            "--bundle",
            c.bundle.to_str().unwrap(),
            &c.id,
        ]),
        CMD_TIMEOUT,
    );
    out.assert_ok();
    assert!(
        out.stdout.contains("notify=/run/notify/notify.sock"),
        "{out}"
    );
    assert!(
        out.stdout.contains(&format!("inode={inode} type=socket")),
        "{out}"
    );
}
