//! What a service manager passes through the runtime: socket activation (`LISTEN_FDS`) and
//! the readiness socket (`NOTIFY_SOCKET`).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// `run` from a shell that opens `fd3` as fd 3 and sets `LISTEN_FDS=1 LISTEN_PID=listen_pid`
/// (`$$` is the runtime: the shell execs it); asserted to succeed.
fn run_with_listen_fds(c: &mut Ctr, fd3: &Path, listen_pid: &str) -> Out {
    c.save();
    let script = format!(
        "exec 3<{}; LISTEN_FDS=1 LISTEN_PID={listen_pid} exec {} --root {} run --bundle {} {}",
        fd3.display(),
        runtime().display(),
        c.root.display(),
        c.bundle.display(),
        c.id
    );
    let out = exec_timeout(Command::new("sh").arg("-c").arg(script), CMD_TIMEOUT);
    out.assert_ok();
    out
}

/// `LISTEN_FDS=1` with `LISTEN_PID` naming the runtime: fd 3 reaches the container, which sees
/// `LISTEN_FDS=1 LISTEN_PID=1`.
#[test]
fn listen_fds_are_passed_to_the_container() {
    let mut c = Ctr::new("listen-fds");
    c.sh("echo fds=$LISTEN_FDS pid=$LISTEN_PID; readlink /proc/self/fd/3");
    let config = c.bundle.join("config.json");
    let out = run_with_listen_fds(&mut c, &config, "$$");
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
    let out = run_with_listen_fds(&mut c, Path::new("/dev/null"), "1");
    assert!(out.stdout.contains("fds=none"), "{out}");
    // ls's own directory fd is 3: nothing else may be open.
    assert_eq!(out.stdout_lines()[1..], ["0", "1", "2", "3"], "{out}");
}

// ---------------------------------------------------------------------------------------------
// NOTIFY_SOCKET: the runtime proxies the container's sd_notify messages; only READY=1 (and the
// MAINPID the runtime adds) reaches the host, and only after `start`.
//
// The containers have short names: runc binds its socket by the state directory's path, which
// must fit in a socket address (108 bytes); hutch has no such limit (see the long-id test).
// ---------------------------------------------------------------------------------------------

/// What the host's "service manager" socket got: one entry per datagram, with the number of fds
/// it carried.
type Received = Vec<(String, usize)>;

/// The test's stand-in for the service manager: a datagram socket, at a path or abstract.
struct HostNotify {
    socket: UnixDatagram,
    /// The value NOTIFY_SOCKET gets.
    env: String,
    /// Kept so the drop can remove the socket file.
    path: Option<PathBuf>,
}

impl HostNotify {
    fn at_path(path: &Path) -> HostNotify {
        let socket = UnixDatagram::bind(path).unwrap();
        socket.set_nonblocking(true).unwrap();
        HostNotify {
            socket,
            env: path.to_str().unwrap().to_string(),
            path: Some(path.to_path_buf()),
        }
    }

    fn abstract_named(name: &str) -> HostNotify {
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket.set_nonblocking(true).unwrap();
        HostNotify {
            socket,
            env: format!("@{name}"),
            path: None,
        }
    }

    /// Every datagram queued now, with the fds it carried (which are closed).
    fn take(&self) -> Received {
        let mut got = Vec::new();
        loop {
            match scm::try_recv_with_fds(&self.socket) {
                Ok(Some(m)) => {
                    got.push((String::from_utf8_lossy(&m.data).into_owned(), m.fds.len()))
                }
                Ok(None) => return got,
                Err(e) => panic!("on the host notify socket: {e}"),
            }
        }
    }

    /// Every line received, in order, after checking that no datagram carried an fd.
    #[track_caller]
    fn lines(got: &Received) -> Vec<String> {
        assert!(
            got.iter().all(|(_, fds)| *fds == 0),
            "fds reached the host's notify socket: {got:?}"
        );
        got.iter()
            .flat_map(|(m, _)| m.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

impl Drop for HostNotify {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Installs `fixtures/sd_notify.c` as /bin/sd_notify in the container: it sends each argument
/// as a datagram to $NOTIFY_SOCKET, each with an fd attached.
fn install_sd_notify(c: &Ctr) {
    std::fs::copy(fixture("sd_notify"), c.rootfs.join("bin/sd_notify")).unwrap();
}

/// A container with /bin/sd_notify, and a host notify socket in its socket directory.
fn notify_ctr(name: &str) -> (Ctr, HostNotify) {
    let mut c = Ctr::new(name);
    install_sd_notify(&c);
    let host = HostNotify::at_path(&c.socket_path("notify.sock"));
    (c, host)
}

/// `create --pid-file` with NOTIFY_SOCKET set; the container's stdout and stderr go to
/// `c.stdout_file()` / `c.stderr_file()`. Returns the init's pid.
fn create_with_notify(c: &mut Ctr, host: &HostNotify) -> i32 {
    let mut cmd = c.create_cmd(&[]);
    cmd.env("NOTIFY_SOCKET", &host.env);
    let out = c.create_by(cmd);
    assert!(out.ok(), "create failed: {out}");
    read_pid(&c.pid_file())
}

/// `start` with NOTIFY_SOCKET set.
fn start_with_notify(c: &Ctr, host: &HostNotify) -> Out {
    exec_files(
        c.cmd()
            .env("NOTIFY_SOCKET", &host.env)
            .args(["start", &c.id]),
        CMD_TIMEOUT,
    )
}

/// `run -d --pid-file` with NOTIFY_SOCKET set, asserted to succeed. Returns the init's pid.
fn run_detached_with_notify(c: &mut Ctr, host: &HostNotify) -> i32 {
    let pid_file = c.pid_file();
    let mut cmd = c.run_cmd(&["-d", "--pid-file", pid_file.to_str().unwrap()]);
    exec_files(cmd.env("NOTIFY_SOCKET", &host.env), CMD_TIMEOUT).assert_ok();
    let pid = read_pid(&pid_file);
    c.track(pid);
    pid
}

/// A foreground `run` with NOTIFY_SOCKET set, asserted to succeed. Returns the runtime's own
/// pid (the one a foreground run reports as MAINPID) and the container's stdout.
fn run_foreground_with_notify(c: &mut Ctr, host: &HostNotify) -> (i32, String) {
    let mut cmd = c.run_cmd(&[]);
    cmd.env("NOTIFY_SOCKET", &host.env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let runtime_pid = child.id() as i32;
    let (status, stdout, stderr) = wait_child(&mut child, CMD_TIMEOUT, "run");
    assert!(status.success(), "{stdout}\n{stderr}");
    (runtime_pid, stdout)
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The container's hostile messages, then READY=1, then more after it.
const HOSTILE_THEN_READY: &str = "sd_notify 'MAINPID=1\nFDSTORE=1\nSTATUS=evil' \
     'EXTEND_TIMEOUT_USEC=1000000000' 'STOPPING=1' 'BARRIER=1'; \
     sd_notify READY=1; echo ready-sent; \
     sd_notify 'STATUS=after' 'MAINPID=1\nREADY=1'; sleep 1";

/// What the runtime sends the host once the container is ready: `READY=1` and the pid the
/// service manager should watch (runc 1.1 sends both, as two datagrams).
fn ready_lines(main_pid: i32) -> Vec<String> {
    vec!["READY=1".to_string(), format!("MAINPID={main_pid}")]
}

/// The container's NOTIFY_SOCKET is the runtime's own socket (not the caller's), in a read-only
/// mount at /run/notify.
#[test]
fn notify_socket_is_the_runtimes_own() {
    let (mut c, host) = notify_ctr("nsock");
    let inode = std::fs::metadata(c.socket_path("notify.sock"))
        .unwrap()
        .ino();
    c.sh("echo notify=$NOTIFY_SOCKET; \
          stat -c 'inode=%i' $(dirname $NOTIFY_SOCKET)/*; \
          grep ' /run/notify ' /proc/self/mountinfo | cut -d' ' -f6; \
          sd_notify READY=1");
    let out = exec_timeout(c.run_cmd(&[]).env("NOTIFY_SOCKET", &host.env), CMD_TIMEOUT);
    out.assert_ok();
    let lines = out.stdout_lines();
    assert_eq!(lines[0], "notify=/run/notify/notify.sock", "{out}");
    assert!(
        !out.stdout.contains(&format!("inode={inode}\n")),
        "the caller's socket is in the container:\n{out}"
    );
    assert!(
        lines[2].split(',').any(|o| o == "ro"),
        "/run/notify is not read-only:\n{out}"
    );
    let got = HostNotify::lines(&host.take());
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], "READY=1", "{got:?}");
}

/// create + start: nothing reaches the host before start (the container's own process does not
/// run yet, and a process exec'd into the created container has no one to talk to); start returns
/// once the container sent READY=1, and the host gets READY=1 and MAINPID=<init>, none of the
/// other messages, no fd, and nothing the container sends after READY.
#[test]
fn notify_forwards_only_ready_after_start() {
    let (mut c, host) = notify_ctr("nstart");
    c.sh(HOSTILE_THEN_READY);
    let pid = create_with_notify(&mut c, &host);
    let early = c.rt(&[
        "exec",
        "--env",
        "NOTIFY_SOCKET=/run/notify/notify.sock",
        &c.id,
        "sd_notify",
        "READY=1",
        "MAINPID=1",
    ]);
    assert!(
        !early.ok(),
        "a notify message before start found a listener:\n{early}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(HostNotify::take(&host), Vec::new(), "before start");

    start_with_notify(&c, &host).assert_ok();
    // start waited for READY=1: it is already there.
    let mut got = host.take();
    assert!(
        HostNotify::lines(&got).iter().any(|l| l == "READY=1"),
        "start returned before READY=1 reached the host: {got:?}"
    );
    c.wait_status("stopped", Duration::from_secs(20));
    got.extend(host.take());
    assert_eq!(HostNotify::lines(&got), ready_lines(pid), "{got:?}");
    assert!(c.ctr_stdout().contains("ready-sent"), "{}", c.ctr_stdout());
}

/// `run -d` returns once the container is ready (READY=1 comes a second after it starts) and
/// the host gets MAINPID=<init>; a foreground `run` stays the process to watch: MAINPID=<itself>.
#[test]
fn notify_run_detached_and_foreground() {
    let (mut c, host) = notify_ctr("nrund");
    c.sh("sd_notify 'STATUS=evil'; sleep 1; sd_notify READY=1; sleep 1");
    let pid = run_detached_with_notify(&mut c, &host);
    let got = host.take();
    assert_eq!(HostNotify::lines(&got), ready_lines(pid), "{got:?}");
    c.wait_status("stopped", Duration::from_secs(20));

    let (mut c, host) = notify_ctr("nrun");
    c.sh(HOSTILE_THEN_READY);
    let (runtime_pid, stdout) = run_foreground_with_notify(&mut c, &host);
    assert!(stdout.contains("ready-sent"), "{stdout}");
    let got = host.take();
    assert_eq!(HostNotify::lines(&got), ready_lines(runtime_pid), "{got:?}");
}

/// An abstract host socket (`@name`) works: the runtime sends from the host.
#[test]
fn notify_abstract_host_socket() {
    let mut c = Ctr::new("nabs");
    install_sd_notify(&c);
    let host = HostNotify::abstract_named(&format!("hutch-test-notify-{}", c.id));
    c.sh("sd_notify 'STATUS=evil'; sd_notify READY=1; sleep 1");
    let pid = run_detached_with_notify(&mut c, &host);
    assert_eq!(HostNotify::lines(&host.take()), ready_lines(pid));
    c.wait_status("stopped", Duration::from_secs(20));
}

/// A container that never sends READY=1: `start` waits until its init exits, then succeeds,
/// having sent the host nothing (a Type=notify unit then fails, as it must).
#[test]
fn notify_start_waits_for_ready_until_the_init_exits() {
    let (mut c, host) = notify_ctr("nnever");
    c.sh("sd_notify 'STATUS=not yet'; sleep 2");
    let pid = create_with_notify(&mut c, &host);
    let (_, start_time) = proc_stat(pid).unwrap();
    // The init comes back to this test (a subreaper) when it exits: reap it as a service
    // manager would, since runc waits until /proc/<pid> is gone, zombie included.
    let reaper = std::thread::spawn(move || wait_dead(pid, start_time, CMD_TIMEOUT));
    let began = Instant::now();
    start_with_notify(&c, &host).assert_ok();
    assert!(
        !alive(pid, start_time),
        "start returned after {:?} while the container runs without READY=1",
        began.elapsed()
    );
    reaper.join().unwrap().unwrap();
    assert_eq!(HostNotify::lines(&host.take()), Vec::<String>::new());
}

/// A foreground `run` whose container never sends READY=1 still returns (with the container's
/// status) when the container exits; runc 1.1 waits for READY forever there.
#[test]
fn notify_foreground_run_without_ready_returns() {
    hutch_only!(
        "runc 1.1.5 `run` with NOTIFY_SOCKET hangs until READY=1, even after the container exited"
    );
    let mut c = Ctr::new("nnevfg");
    let host = HostNotify::at_path(&c.socket_path("notify.sock"));
    c.sh("exit 3");
    let out = exec_timeout(
        c.run_cmd(&[]).env("NOTIFY_SOCKET", &host.env),
        Duration::from_secs(20),
    );
    assert_eq!(out.code(), 3, "{out}");
    assert_eq!(HostNotify::lines(&host.take()), Vec::<String>::new());
}

/// While `start` waits for READY=1, the container's lock is free: `state` answers at once.
#[test]
fn notify_wait_does_not_block_other_commands() {
    let (mut c, host) = notify_ctr("nlock");
    c.sh("touch /waiting; while [ ! -e /go ]; do sleep 0.05; done; sd_notify READY=1; sleep 1");
    let pid = create_with_notify(&mut c, &host);
    let mut start = Proc::spawn(
        c.cmd()
            .env("NOTIFY_SOCKET", &host.env)
            .args(["start", &c.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for_file(&c.rootfs.join("waiting"), Duration::from_secs(20));
    let state = exec_timeout(c.cmd().args(["state", &c.id]), Duration::from_secs(5));
    state.assert_ok();
    assert_eq!(parse_json(&state.stdout)["status"], "running", "{state}");
    assert!(
        start.child.try_wait().unwrap().is_none(),
        "start returned before READY=1"
    );
    std::fs::write(c.rootfs.join("go"), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = start.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "start did not return after READY=1"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success());
    assert_eq!(HostNotify::lines(&host.take()), ready_lines(pid));
}

/// A state directory path longer than a socket address can hold (a long id) still gets its
/// notify socket: hutch binds it through the directory's fd.
#[test]
fn notify_with_a_long_state_dir_path() {
    hutch_only!("runc 1.1.5 binds by path: bind fails with EINVAL past 108 bytes");
    let mut c = Ctr::new(&"n".repeat(200));
    install_sd_notify(&c);
    let host = HostNotify::at_path(&c.socket_path("nlong.sock"));
    c.sh("sd_notify READY=1");
    let pid = run_detached_with_notify(&mut c, &host);
    assert_eq!(HostNotify::lines(&host.take()), ready_lines(pid));
}

/// A container with its own user namespace (whose root cannot traverse the runtime's state
/// root) still gets the notify socket, read-only, and its READY=1 is forwarded.
#[test]
fn notify_in_a_user_namespace() {
    let (mut c, host) = notify_ctr("nuser");
    c.user_ns(100000, 200000);
    // The rootfs belongs to the container's root, as a user-namespaced rootfs does (so /run/notify
    // can be made in it).
    let chown = Command::new("chown")
        .args(["-R", "100000:200000"])
        .arg(&c.rootfs)
        .status()
        .unwrap();
    assert!(chown.success());
    c.sh(
        "grep ' /run/notify ' /proc/self/mountinfo | cut -d' ' -f6; \
          sd_notify 'STATUS=evil' READY=1",
    );
    let (runtime_pid, stdout) = run_foreground_with_notify(&mut c, &host);
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.split(',').any(|o| o == "ro")),
        "/run/notify is not read-only:\n{stdout}"
    );
    let got = host.take();
    assert_eq!(HostNotify::lines(&got), ready_lines(runtime_pid), "{got:?}");
}

/// A foreground `run` whose container sends READY=1 as its very last act still forwards it
/// before returning (the runtime does not exit with the message unread). Several rounds, since
/// the container's exit races the forwarding.
#[test]
fn notify_ready_right_before_exit_is_forwarded() {
    for round in 0..5 {
        let (mut c, host) = notify_ctr("nlast");
        c.args(&["sd_notify", "READY=1"]);
        let (runtime_pid, _) = run_foreground_with_notify(&mut c, &host);
        let got = host.take();
        assert_eq!(
            HostNotify::lines(&got),
            ready_lines(runtime_pid),
            "round {round}: {got:?}"
        );
    }
}
