//! The readiness protocol (`sd_notify`) between a container and the caller's service manager,
//! proxied as runc does: the container never reaches the host's notify socket itself.
//!
//! - `create`, with `NOTIFY_SOCKET` set, makes `<state dir>/notify/` and bind-mounts it read-only
//!   at `/run/notify` in the container, whose `NOTIFY_SOCKET` becomes `/run/notify/notify.sock`.
//!   Nothing is bound there yet: a message sent before `start` fails (ENOENT) and goes nowhere.
//!   (An init in a new user namespace cannot reach the state directory: hutch clones the mount
//!   for it, as for idmapped mounts.)
//! - `start` and `run` bind `notify.sock` in that directory before the container's process is
//!   released, then wait for a datagram with a line `READY=1`. The host's socket (the
//!   `NOTIFY_SOCKET` of *that* command, a path or an abstract `@name`: hutch sends from the
//!   host, so both work) then gets `READY=1\n` and `MAINPID=<pid>\n`, two datagrams as runc 1.1
//!   sends them: the container's init for `start` and `run -d`; hutch itself for a foreground
//!   `run`, which stays the process to supervise. Nothing else the container sends (MAINPID=,
//!   FDSTORE=, STATUS=, EXTEND_TIMEOUT_USEC=, BARRIER=, …) is forwarded; the datagrams are read
//!   without a control buffer, so fds they carry are closed by the kernel, never installed here.
//!   Once READY is forwarded hutch stops listening.
//! - Without READY, `start` and `run -d` wait until it comes or the init exits (then they return
//!   success, having sent nothing), as runc does: a `Type=notify` unit relies on the runtime's
//!   command not returning before the service is ready, and its `TimeoutStartSec` bounds the
//!   wait. A foreground `run` waits in a thread, so it keeps forwarding signals and returns when
//!   the container exits (runc 1.1 waits there forever), after forwarding a READY=1 the
//!   container sent just before it exited.
//! - The wait runs with the container's state lock released, so `state`, `kill` and `delete`
//!   are not held up by a container that is slow to get ready.
//! - The socket lives in the state directory, which `delete` removes.

use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;
use oci_spec::runtime::{MountBuilder, Spec};

use super::liveness;
use crate::logging;
use crate::syscall::fs as sysfs;
use crate::syscall::process::pidfd_open;

/// The directory in the container's state directory that the container sees at
/// [`CONTAINER_DIR`]; it holds hutch's socket from `start` on.
pub const NOTIFY_DIR: &str = "notify";
const SOCKET_NAME: &str = "notify.sock";
const CONTAINER_DIR: &str = "/run/notify";
const CONTAINER_SOCKET: &str = "/run/notify/notify.sock";

/// Longest datagram read whole; sd_notify messages are a few lines. A longer one is truncated,
/// and only READY=1 within what was read counts.
const MAX_MESSAGE: usize = 16 * 1024;

/// How long a send to the host's socket may block (its receive queue full).
const HOST_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The caller's service manager socket, from `NOTIFY_SOCKET`.
#[derive(Clone, Debug)]
pub enum HostSocket {
    Path(PathBuf),
    /// An abstract socket, `@name` in the variable.
    Abstract(Vec<u8>),
}

impl HostSocket {
    /// `NOTIFY_SOCKET` of this process: an absolute path or `@name`; anything else is ignored
    /// with a warning.
    pub fn from_env() -> Option<HostSocket> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        let bytes = value.as_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            if !name.is_empty() {
                return Some(HostSocket::Abstract(name.to_vec()));
            }
        } else if bytes.starts_with(b"/") {
            return Some(HostSocket::Path(PathBuf::from(value)));
        }
        if !bytes.is_empty() {
            logging::warn(&format!(
                "NOTIFY_SOCKET {:?}: neither an absolute path nor an abstract @name; ignored",
                value
            ));
        }
        None
    }

    fn send(&self, socket: &UnixDatagram, message: &[u8]) -> io::Result<()> {
        let sent = match self {
            HostSocket::Path(path) => {
                crate::syscall::socket::send_datagram_to(socket, message, path)?
            }
            HostSocket::Abstract(name) => {
                socket.send_to_addr(message, &SocketAddr::from_abstract_name(name)?)?
            }
        };
        if sent != message.len() {
            return Err(io::Error::new(ErrorKind::WriteZero, "datagram truncated"));
        }
        Ok(())
    }
}

impl std::fmt::Display for HostSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostSocket::Path(path) => write!(f, "{}", path.display()),
            HostSocket::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}

/// `create`: points the container's `NOTIFY_SOCKET` at the proxy's socket, inside the
/// read-only bind mount of `<state_dir>/notify` (`state_dir` absolute). The directory itself is
/// made by [`make_dir`] once the state directory exists.
pub fn setup_spec(spec: &mut Spec, state_dir: &Path) -> Result<()> {
    let mount = MountBuilder::default()
        .destination(CONTAINER_DIR)
        .typ("bind")
        .source(state_dir.join(NOTIFY_DIR))
        .options(
            ["bind", "nosuid", "noexec", "nodev", "ro"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .context("NOTIFY_SOCKET: building the notify socket's mount")?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
    if let Some(process) = spec.process_mut() {
        let mut env = process.env().clone().unwrap_or_default();
        env.retain(|kv| !kv.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={CONTAINER_SOCKET}"));
        process.set_env(Some(env));
    }
    Ok(())
}

/// `create`: the directory the container's notify mount shows; its existence tells `start` that
/// the container was set up for a notify socket.
pub fn make_dir(state_dir: &Path) -> Result<()> {
    let dir = state_dir.join(NOTIFY_DIR);
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)))
        .with_context(|| format!("NOTIFY_SOCKET: creating {}", dir.display()))
}

/// `create` of a container with a new user namespace: its init cannot reach the state directory
/// (only host root may traverse `--root`), so hutch clones the notify directory's mount for it,
/// as it does for idmapped mounts; the init attaches the tree at the mount's place, applying
/// the mount's options. Returns the mount's index with the tree.
pub fn premade_tree(spec: &Spec, state_dir: &Path) -> Result<Option<(usize, OwnedFd)>> {
    let source = state_dir.join(NOTIFY_DIR);
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let Some(index) = mounts.iter().rposition(|m| {
        m.destination() == Path::new(CONTAINER_DIR) && m.source().as_deref() == Some(&source)
    }) else {
        return Ok(None);
    };
    let tree = sysfs::open_tree(sysfs::cwd_fd(), &source, libc::OPEN_TREE_CLONE)
        .with_context(|| format!("NOTIFY_SOCKET: open_tree {}", source.display()))?;
    Ok(Some((index, tree)))
}

/// hutch's end of the container's notify socket, bound and not yet waited on.
pub struct Proxy {
    socket: UnixDatagram,
    host: HostSocket,
}

impl Proxy {
    /// `start` / `run`, before the container's process is released: binds the socket the
    /// container's `NOTIFY_SOCKET` names. None when this command has no `NOTIFY_SOCKET`, or the
    /// container was created without one.
    /// Whether the caller set NOTIFY_SOCKET at all (`listen` then checks its value).
    pub fn requested() -> bool {
        std::env::var_os("NOTIFY_SOCKET").is_some()
    }

    pub fn listen(state_dir: &Path) -> Result<Option<Proxy>> {
        let Some(host) = HostSocket::from_env() else {
            return Ok(None);
        };
        let dir_path = state_dir.join(NOTIFY_DIR);
        let dir = match File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&dir_path)
        {
            Ok(dir) => dir,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("NOTIFY_SOCKET: opening {}", dir_path.display()))
            }
        };
        // Bound through the directory's fd: the state directory's path may be longer than a
        // socket address can hold (ids are up to 1024 bytes).
        let path = crate::syscall::socket::path_through_dir(&dir, SOCKET_NAME);
        let shown = dir_path.join(SOCKET_NAME);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("NOTIFY_SOCKET: removing {}", shown.display()))
            }
        }
        let socket = UnixDatagram::bind(&path)
            .with_context(|| format!("NOTIFY_SOCKET: binding {}", shown.display()))?;
        // Any user of the container may notify, as with the service manager's own socket.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o777))
            .and_then(|()| socket.set_nonblocking(true))
            .with_context(|| format!("NOTIFY_SOCKET: setting up {}", shown.display()))?;
        Ok(Some(Proxy { socket, host }))
    }

    /// Waits for `READY=1` from the container and forwards it with `MAINPID=main_pid`; returns
    /// without sending anything once the init (identified by its start time) has exited.
    /// Returns whether READY was forwarded.
    pub fn forward_ready(self, init: Pid, init_start_time: u64, main_pid: Pid) -> Result<bool> {
        let pidfd = match pidfd_open(init) {
            Ok(fd) => Some(fd),
            Err(err) if err.raw_os_error() == Some(libc::ESRCH) => None,
            Err(err) => {
                return Err(err).context("NOTIFY_SOCKET: opening a pidfd of the container's init")
            }
        };
        // The pidfd pins the pid: if it still names the init now, it is the init. An init
        // already gone may still have sent READY=1 first: the socket is read once more.
        let mut init_exited = pidfd.is_none() || !liveness::process_is_alive(init, init_start_time);
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            loop {
                match self.socket.recv(&mut buf) {
                    Ok(n) => {
                        if is_ready(&buf[..n]) {
                            self.notify_host(main_pid)?;
                            return Ok(true);
                        }
                    }
                    Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == ErrorKind::Interrupted => {}
                    Err(err) => {
                        return Err(err).context("NOTIFY_SOCKET: reading the container's messages")
                    }
                }
            }
            let Some(pidfd) = pidfd.as_ref().filter(|_| !init_exited) else {
                return Ok(false);
            };
            let mut fds = [
                PollFd::new(self.socket.as_fd(), PollFlags::POLLIN),
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(err) => {
                    return Err(err).context("NOTIFY_SOCKET: waiting for the container's READY=1")
                }
            }
            init_exited = fds[1].revents().is_some_and(|r| !r.is_empty());
        }
    }

    fn notify_host(&self, main_pid: Pid) -> Result<()> {
        let socket = UnixDatagram::unbound().context("NOTIFY_SOCKET: creating a socket")?;
        // A service manager whose queue stays full must not hold the runtime forever.
        socket
            .set_write_timeout(Some(HOST_SEND_TIMEOUT))
            .context("NOTIFY_SOCKET: setting a send timeout")?;
        for message in ["READY=1\n".to_string(), format!("MAINPID={main_pid}\n")] {
            self.host
                .send(&socket, message.as_bytes())
                .with_context(|| format!("NOTIFY_SOCKET: sending {message:?} to {}", self.host))?;
        }
        Ok(())
    }
}

/// A datagram with a line that is exactly `READY=1`.
fn is_ready(message: &[u8]) -> bool {
    message
        .split(|&b| b == b'\n')
        .any(|line| line == b"READY=1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_ready_line_counts() {
        assert!(is_ready(b"READY=1"));
        assert!(is_ready(b"READY=1\n"));
        assert!(is_ready(b"STATUS=up\nREADY=1\n"));
        for not in [
            &b""[..],
            b"READY=0",
            b"READY=1x",
            b"XREADY=1",
            b"STATUS=READY=1",
            b"MAINPID=1\nFDSTORE=1",
        ] {
            assert!(!is_ready(not), "{:?}", String::from_utf8_lossy(not));
        }
    }
}
