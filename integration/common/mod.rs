//! The harness every integration test uses.
//!
//! * The runtime under test is the `hutch` binary cargo just built, or `$HUTCH_RUNTIME` (e.g.
//!   `/usr/sbin/runc`) so the suite itself can be proven against runc. Tests of behaviour that
//!   runc does not share (hutch's own wording, places where the issue and runc disagree) call
//!   `hutch_only!("reason")` and print a SKIP line when another runtime is under test.
//! * A base bundle (busybox rootfs + `RUNTIME spec` config) is made once per test binary run by
//!   `hack/mkbundle.sh`; every test gets its own copy of the rootfs, its own `--root` and a unique
//!   container id (`Ctr::new`).
//! * `Ctr`'s drop runs `delete --force` and then checks that nothing leaked: no state left under
//!   the root, every container pid the test saw is dead, no mount under the test's directory in
//!   our `/proc/self/mountinfo`, no cgroup directory of the container left.
//! * The test process makes itself a child subreaper (as containerd's shim and conmon are), so a
//!   detached container's init is re-parented to it and its exit status can be collected.
//! * Everything that can hang runs with a deadline, and is killed by pid when it passes.
#![allow(dead_code)]

pub mod rootless;
pub mod scm;

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Deadline for one runtime invocation.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// The six hook kinds of the runtime spec, in the order a container's life runs them.
pub const HOOK_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Skip the rest of the test (with a printed reason) unless hutch itself is under test.
#[macro_export]
macro_rules! hutch_only {
    ($reason:expr) => {
        if !$crate::common::is_hutch() {
            eprintln!(
                "SKIP (hutch-only, runtime under test is {}): {}",
                $crate::common::runtime().display(),
                $reason
            );
            return;
        }
    };
}

/// The runtime binary under test.
pub fn runtime() -> PathBuf {
    match std::env::var_os("HUTCH_RUNTIME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_hutch")),
    }
}

/// `HUTCH_IT_CGROUP_DRIVER=systemd`: every runtime command gets `--systemd-cgroup` (the
/// systemd VM runs the cgroup tests so), and tests that name a cgroup use `slice:prefix:name`.
pub fn systemd_driver() -> bool {
    std::env::var("HUTCH_IT_CGROUP_DRIVER").is_ok_and(|d| d == "systemd")
}

/// True when the runtime under test is hutch (no `HUTCH_RUNTIME` override).
pub fn is_hutch() -> bool {
    std::env::var_os("HUTCH_RUNTIME").is_none_or(|p| p.is_empty())
}

/// The runtime's name as it prints it in `--version` (`hutch`, `runc`).
pub fn runtime_name() -> String {
    runtime()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Base {
    dir: PathBuf,
    config: Value,
}

static BASE: OnceLock<Base> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// This run's scratch directory (under cargo's target tmpdir, so a path without spaces).
pub fn run_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hutch-it-{}", std::process::id()))
}

fn base() -> &'static Base {
    BASE.get_or_init(|| {
        // Become a subreaper before any container exists, so detached inits come back to us.
        // SAFETY: prctl with integer arguments.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the integration tests must run as root"
        );
        clean_old_runs();
        let dir = run_dir().join("base");
        let _ = fs::create_dir_all(run_dir());
        let out = exec_timeout(
            Command::new("bash")
                .arg(repo_dir().join("hack/mkbundle.sh"))
                .arg(&dir)
                .arg(runtime()),
            Duration::from_secs(120),
        );
        assert!(out.ok(), "hack/mkbundle.sh failed:\n{out}");
        let text = fs::read_to_string(dir.join("config.json")).expect("base config.json");
        let config: Value = serde_json::from_str(&text).expect("`spec` wrote invalid JSON");
        Base { dir, config }
    })
}

/// A listener at `path`, which may be longer than a socket address holds: bound through an
/// `O_PATH` descriptor of its directory (`/proc/self/fd/N/NAME`).
pub fn bind_at_long_path(path: &Path) -> std::os::unix::net::UnixListener {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(path.parent().unwrap())
        .unwrap();
    let short = format!(
        "/proc/self/fd/{}/{}",
        dir.as_raw_fd(),
        path.file_name().unwrap().to_str().unwrap()
    );
    std::os::unix::net::UnixListener::bind(short).unwrap()
}

/// Where [`Ctr::socket_path`] makes its directories, named `hutch-it-sock-PID-N`.
const SOCKET_TMP: &str = "/tmp";
const SOCKET_DIR_PREFIX: &str = "hutch-it-sock-";

/// Remove scratch directories of earlier runs whose process is gone, unless something is still
/// mounted under them (removing through a leaked bind mount could delete host files).
fn clean_old_runs() {
    for (top, prefix) in [
        (env!("CARGO_TARGET_TMPDIR"), "hutch-it-"),
        (SOCKET_TMP, SOCKET_DIR_PREFIX),
    ] {
        let Ok(entries) = fs::read_dir(top) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(prefix) else {
                continue;
            };
            let pid = rest.split('-').next().unwrap_or_default();
            if pid.is_empty() || Path::new("/proc").join(pid).exists() {
                continue;
            }
            safe_remove(&e.path());
        }
    }
}

/// `remove_dir_all`, but only when nothing is mounted at or under `path`.
pub fn safe_remove(path: &Path) -> bool {
    if !mounts_under(path).is_empty() {
        eprintln!(
            "not removing {}: something is still mounted under it",
            path.display()
        );
        return false;
    }
    let _ = fs::remove_dir_all(path);
    true
}

/// Mount points in our mount namespace at or below `path`.
pub fn mounts_under(path: &Path) -> Vec<String> {
    let p = path.to_string_lossy().into_owned();
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mount))
        .filter(|mp| mp == &p || mp.starts_with(&format!("{p}/")))
        .collect()
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The captured result of one command.
pub struct Out {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
    /// Exit code; 128+signal if the command was killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.ok(), "command failed:\n{self}");
        self
    }
    #[track_caller]
    pub fn assert_fail(&self) -> &Self {
        assert!(!self.ok(), "command unexpectedly succeeded:\n{self}");
        assert!(
            self.status.code().is_some(),
            "command died of a signal:\n{self}"
        );
        self
    }
    /// Asserts failure and that stderr contains `needle` (case-insensitive).
    #[track_caller]
    pub fn assert_fail_with(&self, needle: &str) -> &Self {
        self.assert_fail();
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "expected stderr to contain {needle:?}:\n{self}"
        );
        self
    }
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
            self.cmdline, self.status, self.stdout, self.stderr
        )
    }
}

fn cmdline(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` with stdin from /dev/null (unless set) and stdout/stderr piped, and waits at most
/// `timeout`. On timeout the command is killed (by its pid) and the test fails.
pub fn exec_timeout(cmd: &mut Command, timeout: Duration) -> Out {
    let line = cmdline(cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {line}: {e}"));
    let (status, stdout, stderr) = wait_child(&mut child, timeout, &line);
    Out {
        cmdline: line,
        status,
        stdout,
        stderr,
    }
}

/// Like `exec_timeout`, but stdout and stderr go to (then are read from) temporary files.
/// Waits for `child` at most `timeout`; a hung command is killed and fails the test.
fn wait_bounded(
    child: &mut std::process::Child,
    timeout: Duration,
    line: &str,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {timeout:?}: {line}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn exec_files(cmd: &mut Command, timeout: Duration) -> Out {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let _ = fs::create_dir_all(run_dir());
    let po = run_dir().join(format!("out-{n}"));
    let pe = run_dir().join(format!("err-{n}"));
    cmd.stdout(fs::File::create(&po).unwrap())
        .stderr(fs::File::create(&pe).unwrap());
    let line = cmdline(cmd);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {line}: {e}"));
    let status = wait_bounded(&mut child, timeout, &line);
    let out = Out {
        cmdline: line,
        status,
        stdout: fs::read_to_string(&po).unwrap_or_default(),
        stderr: fs::read_to_string(&pe).unwrap_or_default(),
    };
    let _ = fs::remove_file(&po);
    let _ = fs::remove_file(&pe);
    out
}

/// Waits for a spawned child with piped stdout/stderr, collecting both.
pub fn wait_child(
    child: &mut Child,
    timeout: Duration,
    what: &str,
) -> (ExitStatus, String, String) {
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = so.as_mut() {
            let _ = s.read_to_end(&mut v);
        }
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = se.as_mut() {
            let _ = s.read_to_end(&mut v);
        }
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => panic!("wait {what}: {e}"),
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {timeout:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // The pipes may still be held open by a process the command left behind (a detached
    // container inheriting them); give the readers a bounded time, then report what we have.
    let join = |t: std::thread::JoinHandle<Vec<u8>>| -> String {
        let end = Instant::now() + Duration::from_secs(3);
        while !t.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        if t.is_finished() {
            String::from_utf8_lossy(&t.join().unwrap()).into_owned()
        } else {
            String::from("<output pipe still held open by another process after 3s>")
        }
    };
    (status, join(t1), join(t2))
}

/// Parses JSON or fails the test showing the text.
#[track_caller]
pub fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON ({e}):\n{text}"))
}

/// Start time (field 22 of /proc/PID/stat) and state letter, if the process exists.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some((f[0].chars().next()?, f[19].parse().ok()?))
}

/// True when `pid` (started at `start`; 0 = any start time) is a live (non-zombie) process.
pub fn alive(pid: i32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((st, t)) if (start == 0 || t == start) && st != 'Z' && st != 'X')
}

/// Reaps `pid` if it is our (zombie) child. Returns its wait status if reaped.
pub fn try_reap(pid: i32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: plain waitpid on a specific pid.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    (r == pid).then_some(status)
}

/// Waits (bounded) until `pid` is dead, reaping it if it is our child. Returns the wait status
/// when we reaped it.
pub fn wait_dead(pid: i32, start: u64, timeout: Duration) -> Result<Option<i32>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = try_reap(pid) {
            return Ok(Some(st));
        }
        if !alive(pid, start) {
            // A zombie that is our child: reap it so the pid does not linger.
            return Ok(try_reap(pid));
        }
        if Instant::now() > deadline {
            return Err(format!("pid {pid} still alive after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Decodes a wait status to the shell convention (code, or 128+signal).
pub fn wait_status_code(st: i32) -> i32 {
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        -1
    }
}

/// Our own cgroup path in each hierarchy (key = controller list, "" for the v2 unified tree).
fn cgroups_of(pid: &str) -> Vec<(String, String)> {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

/// Host directory of a hierarchy's cgroup path.
fn cgroup_dir(controllers: &str, path: &str) -> Option<PathBuf> {
    let mnt = if controllers.is_empty() {
        if Path::new("/sys/fs/cgroup/unified").exists() {
            "/sys/fs/cgroup/unified".to_string()
        } else {
            "/sys/fs/cgroup".to_string()
        }
    } else {
        let c = controllers.strip_prefix("name=").unwrap_or(controllers);
        let d = format!("/sys/fs/cgroup/{c}");
        if !Path::new(&d).exists() {
            // Co-mounted controllers (cpu,cpuacct) may only exist as the joined name.
            return None;
        }
        d
    };
    Some(PathBuf::from(mnt).join(path.trim_start_matches('/')))
}

/// True when `name` contains `id` as a whole word (`c-1` is not in `c-10`).
fn names_id(name: &str, id: &str) -> bool {
    name.match_indices(id).any(|(i, _)| {
        let before = name[..i].chars().last();
        let after = name[i + id.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Every directory named like `id` in the cgroup trees (bounded depth).
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: usize, out: &mut Vec<PathBuf>) {
        if depth == 0 {
            return;
        }
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let p = e.path();
            if names_id(&e.file_name().to_string_lossy(), id) {
                out.push(p.clone());
            }
            walk(&p, id, depth - 1, out);
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), id, 6, &mut out);
    out
}

/// One container under test: its own directory, `--root`, bundle and id.
pub struct Ctr {
    pub id: String,
    /// The test's scratch directory (holds root/, bundle/, and files the test makes).
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The config written to bundle/config.json before create/run (patch it freely).
    pub config: Value,
    /// Pids (with start times) the test saw for this container; all must be dead at drop.
    pids: Vec<(i32, u64)>,
    /// Cgroup directories the container's init was in (other than ours).
    cgroups: Vec<PathBuf>,
    /// Set by tests that reap the init themselves.
    pub reaped: HashSet<i32>,
    /// Run every runtime command in this network namespace (an nsfs path), so the runtime's
    /// own network namespace is one the test made.
    pub netns: Option<PathBuf>,
    /// Run every runtime command as this unprivileged user, with no `--root` (the runtime's
    /// rootless default under `$XDG_RUNTIME_DIR`, which `root` then names).
    pub user: Option<&'static rootless::TestUser>,
    /// The short directory of [`Ctr::socket_path`], made on first use.
    socket_dir: Option<PathBuf>,
}

impl Ctr {
    /// A container whose config is the runtime's `spec` default with: `terminal: false`,
    /// `root.readonly: false`, args `["true"]`.
    pub fn new(name: &str) -> Ctr {
        let base = base();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{}-{}", name.replace('_', "-"), std::process::id(), n);
        let dir = run_dir().join(&id);
        let root = dir.join("root");
        let bundle = dir.join("bundle");
        fs::create_dir_all(&bundle).unwrap();
        let st = Command::new("cp")
            .arg("-a")
            .arg(base.dir.join("rootfs"))
            .arg(bundle.join("rootfs"))
            .status()
            .expect("cp");
        assert!(st.success(), "copying the base rootfs failed");
        let mut config = base.config.clone();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["true"]);
        config["root"]["readonly"] = json!(false);
        Ctr {
            id,
            rootfs: bundle.join("rootfs"),
            dir,
            root,
            bundle,
            config,
            pids: Vec::new(),
            cgroups: Vec::new(),
            reaped: HashSet::new(),
            netns: None,
            user: None,
            socket_dir: None,
        }
    }

    /// A container the test user runs: the config is what the runtime's `spec --rootless`
    /// writes for that user (a user namespace mapping it to root, no network namespace, /sys
    /// bound), with `Ctr::new`'s changes. The test's directory and `$XDG_RUNTIME_DIR` (0700)
    /// belong to the user; the rootfs stays root's, readable.
    pub fn rootless(name: &str) -> Ctr {
        let user = rootless::test_user();
        let mut c = Ctr::new(name);
        let xdg = c.dir.join("xdg");
        let spec_dir = c.dir.join("spec");
        for d in [&xdg, &spec_dir] {
            fs::create_dir(d).unwrap();
        }
        fs::set_permissions(&xdg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        for d in [&c.dir, &xdg, &spec_dir] {
            std::os::unix::fs::chown(d, Some(user.uid), Some(user.gid)).unwrap();
        }
        c.root = xdg.join(runtime_name());
        c.user = Some(user);
        let mut spec = c.cmd();
        spec.args(["spec", "--rootless", "--bundle"]).arg(&spec_dir);
        exec_timeout(&mut spec, CMD_TIMEOUT).assert_ok();
        let text = fs::read_to_string(spec_dir.join("config.json")).unwrap();
        c.config = serde_json::from_str(&text).unwrap();
        c.config["process"]["terminal"] = json!(false);
        c.config["process"]["args"] = json!(["true"]);
        c.config["root"]["readonly"] = json!(false);
        c.config["root"]["path"] = json!("rootfs");
        c
    }

    /// A path for a Unix socket the test binds (console, agent, notify): in a short directory
    /// of its own under /tmp, because `dir` sits under the clone's path and a socket address
    /// holds only 107 bytes. Removed with the container.
    pub fn socket_path(&mut self, name: &str) -> PathBuf {
        let dir = self.socket_dir.get_or_insert_with(|| {
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let dir = Path::new(SOCKET_TMP)
                .join(format!("{SOCKET_DIR_PREFIX}{}-{n}", std::process::id()));
            fs::create_dir_all(&dir).expect("making the test's socket directory");
            dir
        });
        let path = dir.join(name);
        assert!(
            path.as_os_str().len() <= 107,
            "socket path too long: {}",
            path.display()
        );
        path
    }

    /// `$XDG_RUNTIME_DIR` of a rootless container's commands.
    pub fn xdg_runtime_dir(&self) -> PathBuf {
        self.dir.join("xdg")
    }

    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Sets `process.args` to `sh -c SCRIPT`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Mutable access to `linux.namespaces`.
    pub fn namespaces(&mut self) -> &mut Vec<Value> {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("linux.namespaces")
    }

    /// Removes a namespace type from the config (share the host's).
    pub fn drop_ns(&mut self, kind: &str) -> &mut Self {
        self.namespaces().retain(|n| n["type"] != kind);
        self
    }

    /// Adds (or replaces) a namespace entry.
    pub fn set_ns(&mut self, kind: &str, path: Option<&str>) -> &mut Self {
        self.drop_ns(kind);
        let mut v = json!({ "type": kind });
        if let Some(p) = path {
            v["path"] = json!(p);
        }
        self.namespaces().push(v);
        self
    }

    /// A new user namespace whose ids 0-65535 are host uids and gids from `host_uid` and
    /// `host_gid` on.
    pub fn user_ns(&mut self, host_uid: u32, host_gid: u32) -> &mut Self {
        self.set_ns("user", None);
        self.config["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": host_uid, "size": 65536}]);
        self.config["linux"]["gidMappings"] =
            json!([{"containerID": 0, "hostID": host_gid, "size": 65536}]);
        self
    }

    pub fn add_mount(&mut self, m: Value) -> &mut Self {
        if self.config["mounts"].is_null() {
            self.config["mounts"] = json!([]);
        }
        self.config["mounts"].as_array_mut().unwrap().push(m);
        self
    }

    pub fn save(&self) {
        fs::write(
            self.bundle.join("config.json"),
            serde_json::to_string_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// The runtime command with `--root`, ready for a subcommand.
    pub fn cmd(&self) -> Command {
        if let Some(user) = self.user {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .args(["--clear-groups", "--"])
                .arg(runtime())
                .env("XDG_RUNTIME_DIR", self.xdg_runtime_dir())
                .env("HOME", &self.dir)
                .env("USER", user.name)
                .env("LOGNAME", user.name)
                .stdin(Stdio::null());
            return c;
        }
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display())).arg(runtime());
                c
            }
            None => Command::new(runtime()),
        };
        c.arg("--root").arg(&self.root);
        if systemd_driver() {
            c.arg("--systemd-cgroup");
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs the runtime with `--root ROOT` + `args`; stdout/stderr go to files, so a detached
    /// container that inherits them does not hold the test up.
    pub fn rt(&self, args: &[&str]) -> Out {
        exec_files(self.cmd().args(args), CMD_TIMEOUT)
    }

    /// Runs the runtime with `--root ROOT` + `args` with stdout/stderr piped.
    pub fn rt_piped(&self, args: &[&str]) -> Out {
        exec_timeout(self.cmd().args(args), CMD_TIMEOUT)
    }

    /// The command `run [EXTRA…] --bundle B ID` (config saved first), for a test that sets
    /// the runtime's environment, cwd or stdio itself.
    pub fn run_cmd(&mut self, extra: &[&str]) -> Command {
        self.save();
        let mut c = self.cmd();
        c.arg("run")
            .args(extra)
            .arg("--bundle")
            .arg(&self.bundle)
            .arg(&self.id);
        c
    }

    /// `run --bundle B ID` in the foreground (config saved first), stdio piped.
    pub fn run(&mut self) -> Out {
        exec_timeout(&mut self.run_cmd(&[]), CMD_TIMEOUT)
    }

    /// `run` and assert it succeeded; returns stdout.
    #[track_caller]
    pub fn run_ok(&mut self) -> String {
        let out = self.run();
        out.assert_ok();
        out.stdout
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("init.pid")
    }

    /// `create --bundle B --pid-file P ID` with stdout/stderr going to files
    /// (`stdout_file()`, `stderr_file()`), so the container may keep them open.
    pub fn create(&mut self) -> Out {
        self.create_with(&[])
    }

    /// The command `create --bundle B --pid-file P [EXTRA…] ID` (config saved first).
    pub fn create_cmd(&mut self, extra: &[&str]) -> Command {
        self.save();
        let mut c = self.cmd();
        c.arg("create")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--pid-file")
            .arg(self.pid_file())
            .args(extra)
            .arg(&self.id);
        c
    }

    /// `create` with extra options before the id.
    pub fn create_with(&mut self, extra: &[&str]) -> Out {
        let cmd = self.create_cmd(extra);
        self.create_by(cmd)
    }

    /// Runs a `create_cmd` (its environment or cwd set by the test) with stdout/stderr going
    /// to `stdout_file()`/`stderr_file()`, and tracks the init the pid file names on success.
    pub fn create_by(&mut self, mut c: Command) -> Out {
        let so = fs::File::create(self.stdout_file()).unwrap();
        let se = fs::File::create(self.stderr_file()).unwrap();
        c.stdout(so).stderr(se);
        let line = cmdline(&c);
        let mut child = c.spawn().expect("spawn create");
        let status = wait_bounded(&mut child, CMD_TIMEOUT, &line);
        let out = Out {
            cmdline: line,
            status,
            stdout: fs::read_to_string(self.stdout_file()).unwrap_or_default(),
            stderr: fs::read_to_string(self.stderr_file()).unwrap_or_default(),
        };
        if out.ok() {
            if let Ok(text) = fs::read_to_string(self.pid_file()) {
                if let Ok(pid) = text.trim().parse::<i32>() {
                    self.track(pid);
                }
            }
        }
        out
    }

    /// `create` and assert success.
    #[track_caller]
    pub fn create_ok(&mut self) {
        let out = self.create();
        assert!(out.ok(), "create failed:\n{out}");
    }

    pub fn stdout_file(&self) -> PathBuf {
        self.dir.join("ctr.stdout")
    }
    pub fn stderr_file(&self) -> PathBuf {
        self.dir.join("ctr.stderr")
    }
    /// What the container wrote to its stdout (for create/start containers).
    pub fn ctr_stdout(&self) -> String {
        fs::read_to_string(self.stdout_file()).unwrap_or_default()
    }

    /// Records a pid that must be dead when the test ends, and the cgroups it is in.
    pub fn track(&mut self, pid: i32) {
        if let Some((_, start)) = proc_stat(pid) {
            if !self.pids.iter().any(|(p, _)| *p == pid) {
                self.pids.push((pid, start));
                let ours = cgroups_of("self");
                for (ctl, path) in cgroups_of(&pid.to_string()) {
                    let same = ours.iter().any(|(c, p)| *c == ctl && *p == path);
                    if !same && path != "/" {
                        if let Some(d) = cgroup_dir(&ctl, &path) {
                            self.cgroups.push(d);
                        }
                    }
                }
            }
        }
    }

    pub fn start(&self) -> Out {
        self.rt(&["start", &self.id])
    }

    #[track_caller]
    pub fn start_ok(&self) {
        self.start().assert_ok();
    }

    /// `state ID`, parsed; fails the test if the command fails.
    #[track_caller]
    pub fn state(&mut self) -> Value {
        let out = self.rt(&["state", &self.id.clone()]);
        assert!(out.ok(), "state failed:\n{out}");
        let v = parse_json(&out.stdout);
        if let Some(pid) = v["pid"].as_i64() {
            if pid > 0 {
                self.track(pid as i32);
            }
        }
        v
    }

    #[track_caller]
    pub fn status(&mut self) -> String {
        self.state()["status"]
            .as_str()
            .expect("state.status is a string")
            .to_string()
    }

    #[track_caller]
    pub fn pid(&mut self) -> i32 {
        self.state()["pid"].as_i64().expect("state.pid is a number") as i32
    }

    /// Polls `state` until the status is `want`.
    #[track_caller]
    pub fn wait_status(&mut self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.status();
            if st == want {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "container {} still {st:?} after {timeout:?}, wanted {want:?}",
                    self.id
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&self, sig: &str) -> Out {
        self.rt(&["kill", &self.id, sig])
    }

    pub fn delete(&self) -> Out {
        self.rt(&["delete", &self.id])
    }

    /// Checks that nothing of this container is left; returns the problems found.
    pub fn leaks(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Ok(rd) = fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                // A killed create's unpublished directory is named `.creating-<id>-<pid>`.
                let temp = n
                    .strip_prefix(".creating-")
                    .and_then(|rest| rest.rsplit_once('-'))
                    .is_some_and(|(owner, _)| owner == self.id);
                if names_id(&n, &self.id) || temp {
                    problems.push(format!("state left under --root: {}", e.path().display()));
                }
            }
        }
        // Newest first: a detached exec's process is this test's child (a subreaper), and the
        // container's init, killed, cannot finish exiting until that child of its pid
        // namespace is reaped.
        for &(pid, start) in self.pids.iter().rev() {
            if self.reaped.contains(&pid) {
                continue;
            }
            if let Err(e) = wait_dead(pid, start, Duration::from_secs(5)) {
                problems.push(format!("container process leaked: {e}"));
                // Ours (the test started it): kill it by pid so it does not outlive the test.
                if alive(pid, start) {
                    // SAFETY: plain kill of a pid whose start time we just checked.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    let _ = wait_dead(pid, start, Duration::from_secs(2));
                }
            }
        }
        for m in mounts_under(&self.dir) {
            problems.push(format!("mount leaked into the host mount namespace: {m}"));
        }
        for d in &self.cgroups {
            if d.exists() {
                problems.push(format!("cgroup directory left: {}", d.display()));
            }
        }
        for d in cgroup_dirs_named(&self.id) {
            if !self.cgroups.contains(&d) {
                problems.push(format!("cgroup directory left: {}", d.display()));
            }
        }
        problems
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let id = self.id.clone();
        let out = exec_files(self.cmd().args(["delete", "--force", &id]), CMD_TIMEOUT);
        let mut problems = self.leaks();
        if !out.ok() && !problems.is_empty() {
            problems.push(format!("delete --force failed:\n{out}"));
        }
        let clean = mounts_under(&self.dir).is_empty();
        if problems.is_empty() {
            if clean && std::env::var_os("HUTCH_IT_KEEP").is_none() {
                safe_remove(&self.dir);
                if let Some(dir) = &self.socket_dir {
                    safe_remove(dir);
                }
            }
        } else if std::thread::panicking() {
            eprintln!("also, after the failure: {problems:#?}");
        } else {
            panic!(
                "container {} leaked after delete --force: {problems:#?}",
                self.id
            );
        }
    }
}

/// A process the test started (e.g. a namespace holder); killed by pid and reaped on drop.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc {
            child: cmd.spawn().expect("spawn helper"),
        }
    }
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `path` to exist (bounded).
#[track_caller]
pub fn wait_for_file(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() > deadline {
            panic!("{} did not appear within {timeout:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The inode of a namespace link (`/proc/PID/ns/KIND`) as readlink shows it, e.g. `net:[4026…]`.
pub fn ns_link(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes an executable shell script (a hook) and returns its path.
pub fn write_script(path: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

/// Spawns `cmd` with `fd` duplicated onto fd `target` in the child (inherited, not CLOEXEC).
pub fn with_inherited_fd(cmd: &mut Command, fd: i32, target: i32) -> &mut Command {
    // SAFETY: dup2 is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if fd == target {
                // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, target) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Parses a hex capability mask line value from /proc/PID/status text.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")).map(|v| v.trim()))
}

/// Capability name → bit number, for the masks in /proc/self/status.
pub fn cap_bit(name: &str) -> u32 {
    const CAPS: &[&str] = &[
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    let n = name.strip_prefix("CAP_").unwrap_or(name);
    CAPS.iter()
        .position(|c| *c == n)
        .unwrap_or_else(|| panic!("unknown cap {name}")) as u32
}

pub fn cap_mask(names: &[&str]) -> u64 {
    names.iter().fold(0u64, |m, n| m | (1u64 << cap_bit(n)))
}

/// A C string helper for libc calls.
pub fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// `integration/fixtures/NAME.c`, built once per run with `gcc -static -no-pie` (static so it
/// also runs inside the busybox rootfs; non-PIE so its data sits below 4 GiB, where seccomp_sys's
/// i386 calls can point). A fixture that cannot be built fails the test: CI installs gcc.
#[track_caller]
pub fn fixture(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, Result<PathBuf, String>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|(n, _)| n == name) {
        let src = repo_dir().join(format!("integration/fixtures/{name}.c"));
        let _ = fs::create_dir_all(run_dir());
        let bin = run_dir().join(format!("fixture-{name}"));
        let result = Command::new("gcc")
            .args(["-static", "-no-pie", "-O2", "-o"])
            .arg(&bin)
            .arg(&src)
            .output()
            .map_err(|e| format!("gcc not available: {e}"))
            .and_then(|out| {
                if out.status.success() {
                    Ok(bin)
                } else {
                    Err(String::from_utf8_lossy(&out.stderr).into_owned())
                }
            });
        built.push((name.to_string(), result));
    }
    match built.iter().find(|(n, _)| n == name) {
        Some((_, Ok(bin))) => bin.clone(),
        Some((_, Err(e))) => panic!("building integration/fixtures/{name}.c (gcc -static): {e}"),
        None => unreachable!("just built"),
    }
}
