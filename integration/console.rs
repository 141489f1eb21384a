//! `terminal: true` with `--console-socket`: a test receiver gets the pty master (one
//! SCM_RIGHTS fd, the pty name as data) and drives a shell through it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

/// Receives one message with exactly one SCM_RIGHTS fd; returns (data, fd).
pub(crate) fn recv_fd(listener: UnixListener) -> Result<(String, OwnedFd), String> {
    let (conn, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut msg = scm::recv_with_fds(&conn)?;
    if msg.cmsgs != 1 || msg.fds.len() != 1 {
        return Err(format!(
            "expected one SCM_RIGHTS message with one fd, got {} cmsgs and {} fds",
            msg.cmsgs,
            msg.fds.len()
        ));
    }
    let data = String::from_utf8_lossy(&msg.data).into_owned();
    Ok((data, msg.fds.pop().unwrap()))
}

/// Reads from the pty master until `needle` shows up (or the deadline passes).
pub(crate) fn read_until(master: &mut File, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut acc = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&acc).into_owned();
        if text.contains(needle) {
            return text;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!("{needle:?} not seen on the pty within {timeout:?}; got {text:?}");
        }
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid fd.
        let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(500) as i32) };
        if r > 0 {
            match master.read(&mut buf) {
                Ok(0) => panic!("pty closed before {needle:?}; got {text:?}"),
                Ok(n) => acc.extend_from_slice(&buf[..n]),
                Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                    panic!("pty hung up before {needle:?}; got {text:?}")
                }
                Err(e) => panic!("read pty: {e}"),
            }
        }
    }
}

/// The receiving end of a console socket: the pty name and master, or why none came.
type ConsoleReceiver = std::thread::JoinHandle<Result<(String, OwnedFd), String>>;

fn console_ctr(name: &str) -> (Ctr, PathBuf, ConsoleReceiver) {
    let mut c = Ctr::new(name);
    c.config["process"]["terminal"] = json!(true);
    c.args(&["sh"]);
    let sock = c.socket_path("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let h = std::thread::spawn(move || recv_fd(listener));
    (c, sock, h)
}

#[test]
fn console_socket_receives_a_working_pty() {
    let (mut c, sock, h) = console_ctr("console");
    c.config["process"]["consoleSize"] = json!({"height": 31, "width": 101});
    let out = c.create_with(&["--console-socket", sock.to_str().unwrap()]);
    out.assert_ok();
    // The fd is sent before create returns (and before the pid file is written).
    assert!(
        h.is_finished() || {
            std::thread::sleep(Duration::from_millis(200));
            h.is_finished()
        }
    );
    let (name, fd) = h.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    assert!(!name.is_empty(), "the message data should be the pty name");
    let mut master = File::from(fd);
    c.start_ok();
    master
        .write_all(b"echo $((6*7))x; tty; stty size; [ -c /dev/console ] && echo con$((1+1))sole; exit 5\n")
        .unwrap();
    let text = read_until(&mut master, "42x", Duration::from_secs(20));
    let text = read_until_more(&mut master, text, "con2sole");
    assert!(
        text.contains("/dev/pts/") || text.contains("/dev/console"),
        "tty: {text:?}"
    );
    assert!(text.contains("31 101"), "consoleSize not applied: {text:?}");
    assert!(
        text.contains("con2sole"),
        "/dev/console should be a character device: {text:?}"
    );
    c.wait_status("stopped", Duration::from_secs(20));
}

/// A console socket whose path is longer than a socket address holds (a deep bundle or state
/// directory) is still reached: hutch connects through its directory's descriptor.
#[test]
fn console_socket_past_the_socket_address_limit() {
    hutch_only!("runc 1.1.5 dials the path as given: EINVAL past 107 bytes");
    let mut c = Ctr::new("console-long");
    c.config["process"]["terminal"] = json!(true);
    c.args(&["sh", "-c", "echo long-$((40+2))"]);
    let deep = c.dir.join("s".repeat(120));
    std::fs::create_dir(&deep).unwrap();
    let sock = deep.join("console.sock");
    let listener = bind_at_long_path(&sock);
    let h = std::thread::spawn(move || recv_fd(listener));
    c.create_with(&["--console-socket", sock.to_str().unwrap()])
        .assert_ok();
    let (_, fd) = h.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    let mut master = File::from(fd);
    c.start_ok();
    read_until(&mut master, "long-42", Duration::from_secs(20));
    c.wait_status("stopped", Duration::from_secs(20));
}

fn read_until_more(master: &mut File, mut acc: String, needle: &str) -> String {
    if !acc.contains(needle) {
        acc.push_str(&read_until(master, needle, Duration::from_secs(20)));
    }
    acc
}

#[test]
fn container_has_a_controlling_terminal() {
    let (mut c, sock, h) = console_ctr("console-ctty");
    c.args(&[
        "sh",
        "-c",
        "echo pgrp=$(cut -d' ' -f8 /proc/$$/stat)x; echo tty-ok < /dev/tty; sleep 0.5",
    ]);
    c.create_with(&["--console-socket", sock.to_str().unwrap()])
        .assert_ok();
    let (_, fd) = h.join().unwrap().unwrap();
    let mut master = File::from(fd);
    c.start_ok();
    let text = read_until(&mut master, "tty-ok", Duration::from_secs(20));
    assert!(
        !text.contains("pgrp=0x"),
        "no controlling terminal: {text:?}"
    );
    c.wait_status("stopped", Duration::from_secs(20));
}

#[test]
fn terminal_without_console_socket_is_refused_for_create() {
    let mut c = Ctr::new("console-nosock");
    c.config["process"]["terminal"] = json!(true);
    c.args(&["sh"]);
    c.create().assert_fail();
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
}

#[test]
fn console_socket_without_terminal_is_refused() {
    let mut c = Ctr::new("console-noterm");
    let sock = c.socket_path("console.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    c.create_with(&["--console-socket", sock.to_str().unwrap()])
        .assert_fail();
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
}

/// The pid a pidfd refers to, from /proc/self/fdinfo (the kernel's "Pid:" line).
fn pidfd_target(fd: &OwnedFd) -> i32 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .unwrap_or_else(|| panic!("not a pidfd: {info}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn pidfd_socket_receives_a_pidfd_of_the_init_and_of_an_exec() {
    hutch_only!("runc 1.1.5 has no --pidfd-socket");
    let mut c = Ctr::new("pidfd-sock");
    c.args(&["sleep", "100"]);
    let sock = c.socket_path("pidfd.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let h = std::thread::spawn(move || recv_fd(listener));
    c.create_with(&["--pidfd-socket", sock.to_str().unwrap()])
        .assert_ok();
    let (name, fd) = h.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(name, "pidfd", "the message data names the fd");
    assert_eq!(pidfd_target(&fd), c.pid(), "the pidfd is not the init's");

    let sock = c.socket_path("pidfd-exec.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let h = std::thread::spawn(move || recv_fd(listener));
    let pid_file = c.dir.join("exec.pid");
    let (sock_arg, pid_arg) = (sock.to_str().unwrap(), pid_file.to_str().unwrap());
    c.rt(&[
        "exec",
        "-d",
        "--pidfd-socket",
        sock_arg,
        "--pid-file",
        pid_arg,
        &c.id.clone(),
        "sleep",
        "100",
    ])
    .assert_ok();
    let (_, fd) = h.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    let exec_pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    c.track(exec_pid);
    assert_eq!(
        pidfd_target(&fd),
        exec_pid,
        "the pidfd is not the exec'd process's"
    );
}
