//! Unix sockets: reaching a socket by a path of any length, and receiving a descriptor
//! (SCM_RIGHTS), whose one `unsafe` step, taking ownership of a descriptor the kernel just
//! installed, happens here.

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// One message received by [`recv_with_fd`].
pub struct Received {
    /// Bytes of data written into the buffer.
    pub bytes: usize,
    /// The first descriptor that came with the message (any others are closed).
    pub fd: Option<OwnedFd>,
    /// The message's flags: MSG_TRUNC and MSG_CTRUNC say what was cut short.
    pub flags: MsgFlags,
}

/// Why [`recv_with_fd`] failed.
#[derive(Debug)]
pub enum RecvError {
    /// recvmsg(2) itself (EINTR included: the caller decides whether to retry).
    Call(Errno),
    /// The descriptors that came with the message could not be read (the kernel cut them
    /// short).
    Fds(Errno),
}

/// recvmsg(2) of one message into `buf`, with room for one descriptor, which arrives
/// close-on-exec (MSG_CMSG_CLOEXEC is always added to `flags`).
pub fn recv_with_fd(
    socket: BorrowedFd,
    buf: &mut [u8],
    flags: MsgFlags,
) -> Result<Received, RecvError> {
    let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg_space),
        flags | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(RecvError::Call)?;
    let mut fd = None;
    for cmsg in msg.cmsgs().map_err(RecvError::Fds)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for raw in fds {
                // SAFETY: SCM_RIGHTS just installed this fd in our table, and this message's
                // control data is read only here: we are its only owner.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    Ok(Received {
        bytes: msg.bytes,
        fd,
        flags: msg.flags,
    })
}

/// The longest path `sockaddr_un.sun_path` holds, without its terminating NUL.
const SUN_PATH_MAX: usize = 107;

/// A socket's path in a form `sockaddr_un` can hold. The caller's socket may live anywhere
/// (a deep bundle, a long `--root` or id): past 107 bytes the socket is named through an
/// `O_PATH` descriptor of its directory, `/proc/self/fd/N/NAME`, which the kernel resolves
/// like the full path. runc dials the path as given and fails with EINVAL there.
struct ShortPath {
    path: PathBuf,
    /// Keeps the `/proc/self/fd/N` of a long path valid until the call is made.
    _dir: Option<File>,
}

fn short_path(path: &Path) -> io::Result<ShortPath> {
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return Ok(ShortPath {
            path: path.to_path_buf(),
            _dir: None,
        });
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a path to a socket",
        ));
    };
    let dir = File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(parent)?;
    let path = path_through_dir(&dir, name);
    if path.as_os_str().len() > SUN_PATH_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the socket's file name alone is longer than a socket address holds",
        ));
    }
    Ok(ShortPath {
        path,
        _dir: Some(dir),
    })
}

/// `/proc/self/fd/N/NAME`: the file `name` in the directory open as `dir`, by a path short
/// enough for a socket address whatever the directory's own path (valid while `dir` is open).
pub fn path_through_dir(dir: &impl AsRawFd, name: impl AsRef<Path>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

/// Connects a stream socket to the socket at `path`, however long the path.
pub fn connect_stream(path: &Path) -> io::Result<UnixStream> {
    UnixStream::connect(short_path(path)?.path)
}

/// Sends one datagram to the socket at `path`, however long the path; returns the bytes sent.
pub fn send_datagram_to(socket: &UnixDatagram, message: &[u8], path: &Path) -> io::Result<usize> {
    socket.send_to(message, short_path(path)?.path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A directory whose path is longer than a socket address holds, with a listener in it
    /// (bound through the directory's descriptor, as the helper itself reaches it).
    fn deep_dir() -> (PathBuf, PathBuf) {
        let top = std::env::temp_dir().join(format!("hutch-sock-{}", std::process::id()));
        let deep = top.join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        (top, deep)
    }

    #[test]
    fn connects_and_sends_past_the_address_limit() {
        let (top, deep) = deep_dir();
        let stream_path = deep.join("stream.sock");
        let dgram_path = deep.join("dgram.sock");
        assert!(stream_path.as_os_str().len() > SUN_PATH_MAX);
        let listener = UnixListener::bind(short_path(&stream_path).unwrap().path).unwrap();
        let receiver = UnixDatagram::bind(short_path(&dgram_path).unwrap().path).unwrap();
        assert!(
            UnixStream::connect(&stream_path).is_err(),
            "the plain path fits after all"
        );
        let _client = connect_stream(&stream_path).unwrap();
        assert!(listener.accept().is_ok());
        let sender = UnixDatagram::unbound().unwrap();
        assert_eq!(send_datagram_to(&sender, b"hi", &dgram_path).unwrap(), 2);
        let mut buf = [0u8; 8];
        assert_eq!(receiver.recv(&mut buf).unwrap(), 2);
        std::fs::remove_dir_all(top).unwrap();
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_panic() {
        let long = Path::new("/nonexistent")
            .join("x".repeat(200))
            .join("s.sock");
        assert!(connect_stream(&long).is_err());
    }
}
