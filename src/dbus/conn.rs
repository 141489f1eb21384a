//! One synchronous D-Bus connection over a unix socket: SASL `EXTERNAL` authentication, `Hello`
//! on a bus, method calls answered by serial, and signals kept for whoever waits on them.
//!
//! Every blocking step (connect, each read, each write) runs against a deadline, the
//! connection's timeout from the start of the operation: a silent or trickling peer ends in
//! [`Error::Timeout`], never in a hang. Any I/O or protocol error leaves the connection unusable
//! (it may be out of step with the peer's framing): later operations fail at once.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::time::TimeVal;

use super::address::Address;
use super::error::{Error, Result};
use super::message::{self, Kind, Message, FIXED_HEADER};
use super::value::Value;

/// How long an operation may wait on the peer unless [`Connection::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest body hutch decodes. systemd's answers to the calls hutch makes are a few hundred
/// bytes; 16 MiB is far above any of them yet keeps a broken peer from making hutch hold the
/// spec's 128 MiB. Bodies of messages hutch does not want are skipped without being kept.
pub const MAX_BODY: usize = 16 << 20;
/// Signals kept while waiting for a reply; the oldest go first past this.
const MAX_KEPT_SIGNALS: usize = 1024;
/// The longest SASL line hutch accepts (`OK <32 hex digits>` or `REJECTED <mechanisms>`).
const MAX_AUTH_LINE: usize = 512;
/// Bytes asked of one read: enough for most messages at once, small enough that a peer that
/// announces a large body and sends nothing costs little.
const READ_CHUNK: usize = 64 << 10;

/// What is on the other end of the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A message bus (dbus-daemon, dbus-broker): `Hello` first, destinations, match rules.
    Bus,
    /// A peer speaking D-Bus directly, as systemd on its private socket: no `Hello`, no bus.
    Peer,
}

/// Whom SASL `EXTERNAL` authenticates as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// This uid, sent as the identity, as most clients do. The server compares it with the uid
    /// it sees on the socket (SO_PEERCRED), so it must be the uid outside any user namespace.
    Uid(u32),
    /// No identity sent: the server takes the uid it sees on the socket. For a process in a user
    /// namespace (rootless podman runs its runtime as uid 0 of one), whose own uid means nothing
    /// to the server.
    PeerCredentials,
}

/// Which messages a read keeps (decodes) rather than skips.
#[derive(Clone, Copy)]
enum Want {
    /// The reply to this serial, and watched signals.
    Reply(u32),
    /// Watched signals only.
    Signals,
    /// Everything.
    All,
}

/// A synchronous D-Bus connection. No threads, no locks: safe to use in a process that forks
/// (not between fork and exec, where no socket I/O belongs anyway).
pub struct Connection {
    stream: UnixStream,
    label: String,
    transport: Transport,
    timeout: Duration,
    rbuf: Vec<u8>,
    last_serial: u32,
    unique_name: Option<String>,
    /// (interface, member) of the signals kept while waiting for something else.
    watched: Vec<(String, String)>,
    signals: VecDeque<Message>,
    broken: Option<String>,
}

impl Connection {
    /// Connects, authenticates as the effective uid and, on a bus, says `Hello`.
    pub fn connect(address: &Address, transport: Transport, timeout: Duration) -> Result<Self> {
        let uid = nix::unistd::geteuid().as_raw();
        Self::connect_with(address, transport, timeout, Auth::Uid(uid))
    }

    /// [`Connection::connect`] with the identity to authenticate as.
    pub fn connect_with(
        address: &Address,
        transport: Transport,
        timeout: Duration,
        auth: Auth,
    ) -> Result<Self> {
        let deadline = Instant::now() + timeout;
        let label = address.to_string();
        let stream = connect_socket(address, timeout).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout {
                step: format!("{label}: connect"),
                after: timeout,
            },
            _ => io_error(&label, "connect", e),
        })?;
        let mut conn = Connection::fresh(stream, label, transport, timeout);
        conn.authenticate(auth, deadline)?;
        if transport == Transport::Bus {
            let reply = conn.call(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "Hello",
                Vec::new(),
            )?;
            let name = reply.first().and_then(Value::as_str).ok_or_else(|| {
                Error::protocol(format!("{}: Hello answered without a name", conn.label))
            })?;
            conn.unique_name = Some(name.to_owned());
        }
        Ok(conn)
    }

    /// A connection over `stream` that has exchanged nothing yet.
    fn fresh(stream: UnixStream, label: String, transport: Transport, timeout: Duration) -> Self {
        Connection {
            stream,
            label,
            transport,
            timeout,
            rbuf: Vec::new(),
            last_serial: 0,
            unique_name: None,
            watched: Vec::new(),
            signals: VecDeque::new(),
            broken: None,
        }
    }

    /// The bus's name for this connection (`:1.42`); `None` on a peer-to-peer connection.
    pub fn unique_name(&self) -> Option<&str> {
        self.unique_name.as_deref()
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// How long each later operation may wait on the peer.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The whole exchange goes out in one write, `BEGIN` included, as sd-bus's clients send
    /// it; the first message only once the server's `OK` is in. Sent after `OK` instead,
    /// `BEGIN` and the first message could reach systemd's sd-bus server (its private sockets)
    /// in one read, and that message then waited unprocessed for more input: calls on
    /// `/run/systemd/private` went unanswered now and then.
    fn authenticate(&mut self, auth: Auth, deadline: Instant) -> Result<()> {
        let exchange = match auth {
            // EXTERNAL's identity is the uid in decimal ASCII, hex-encoded: uid 0 is "30".
            Auth::Uid(uid) => {
                let hex: String = uid
                    .to_string()
                    .bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n")
            }
            // No identity: the server asks for it (DATA), and the empty one we answer lets it
            // take the uid it sees on the socket.
            Auth::PeerCredentials => "\0AUTH EXTERNAL\r\nDATA\r\nBEGIN\r\n".to_owned(),
        };
        self.write_all(exchange.as_bytes(), deadline, "sending AUTH EXTERNAL")?;
        let step = "waiting for the answer to AUTH EXTERNAL";
        let mut line = self.read_line(deadline, step)?;
        if line == "DATA" || line.starts_with("DATA ") {
            line = self.read_line(deadline, step)?;
        }
        if !line.starts_with("OK ") {
            return Err(self.fail(Error::Auth(format!(
                "{}: AUTH EXTERNAL ({auth:?}) answered {line:?}",
                self.label
            ))));
        }
        Ok(())
    }

    fn read_line(&mut self, deadline: Instant, step: &str) -> Result<String> {
        loop {
            if let Some(end) = self.rbuf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.rbuf.drain(..end + 2).take(end).collect();
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.rbuf.len() > MAX_AUTH_LINE {
                return Err(self.fail(Error::Auth(format!(
                    "{}: {step}: no line within {MAX_AUTH_LINE} bytes",
                    self.label
                ))));
            }
            self.read_more(MAX_AUTH_LINE, deadline, step)?;
        }
    }

    /// Calls a method and returns its reply's body; an ERROR reply becomes [`Error::Remote`].
    /// On a peer-to-peer connection the destination is left out.
    pub fn call(
        &mut self,
        destination: Option<&str>,
        path: &str,
        interface: &str,
        member: &str,
        args: Vec<Value>,
    ) -> Result<Vec<Value>> {
        let destination = destination.filter(|_| self.transport == Transport::Bus);
        let call = Message::method_call(destination, path, interface, member, args);
        let method = call.method();
        let serial = self.send(call)?;
        let step = format!("waiting for the reply to {method}");
        let deadline = Instant::now() + self.timeout;
        loop {
            let Some(m) = self.read_message(Want::Reply(serial), deadline, &step)? else {
                continue;
            };
            match m.kind {
                Kind::Signal => self.keep_signal(m),
                Kind::Error => {
                    return Err(Error::Remote {
                        method,
                        name: m.error_name.unwrap_or_default(),
                        message: m
                            .body
                            .first()
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    })
                }
                _ => return Ok(m.body),
            }
        }
    }

    /// Keeps signals of `interface.member` for [`Connection::wait_signal`]; on a bus also asks
    /// the bus to route them here (`AddMatch`), from `sender` only when given. Call before the
    /// action that makes the signal, so that it cannot come first.
    pub fn watch_signal(
        &mut self,
        sender: Option<&str>,
        interface: &str,
        member: &str,
    ) -> Result<()> {
        if self.transport == Transport::Bus {
            let mut rule = format!("type='signal',interface='{interface}',member='{member}'");
            if let Some(sender) = sender {
                rule.push_str(&format!(",sender='{sender}'"));
            }
            if [sender.unwrap_or(""), interface, member]
                .iter()
                .any(|s| s.contains(['\'', ',', '\\']))
            {
                return Err(Error::protocol(format!(
                    "match rule {rule:?} needs quoting"
                )));
            }
            self.call(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "AddMatch",
                vec![Value::Str(rule)],
            )?;
        }
        self.watched.push((interface.to_owned(), member.to_owned()));
        Ok(())
    }

    fn keep_signal(&mut self, m: Message) {
        if self.signals.len() >= MAX_KEPT_SIGNALS {
            self.signals.pop_front();
        }
        self.signals.push_back(m);
    }

    /// The first watched signal for which `wanted` holds: among those kept while waiting for
    /// replies first, then as they come, within the connection's timeout. Watched signals that
    /// do not match are kept for a later wait. `what` names the wait in a timeout error.
    pub fn wait_signal(
        &mut self,
        what: &str,
        wanted: &mut dyn FnMut(&Message) -> bool,
    ) -> Result<Message> {
        if let Some(at) = self.signals.iter().position(&mut *wanted) {
            if let Some(m) = self.signals.remove(at) {
                return Ok(m);
            }
        }
        let deadline = Instant::now() + self.timeout;
        let step = format!("waiting for {what}");
        loop {
            let Some(m) = self.read_message(Want::Signals, deadline, &step)? else {
                continue;
            };
            if wanted(&m) {
                return Ok(m);
            }
            self.keep_signal(m);
        }
    }

    /// The next message of any kind (kept signals first), within the connection's timeout.
    pub fn receive(&mut self) -> Result<Message> {
        if let Some(m) = self.signals.pop_front() {
            return Ok(m);
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(m) = self.read_message(Want::All, deadline, "waiting for a message")? {
                return Ok(m);
            }
        }
    }

    /// Sends a message (call, reply, error or signal) and returns the serial it was sent with.
    pub fn send(&mut self, mut m: Message) -> Result<u32> {
        self.check_usable()?;
        // Serials are non-zero; wrapping after 2^32 - 1 messages is allowed by the spec.
        self.last_serial = self.last_serial.checked_add(1).unwrap_or(1);
        m.serial = self.last_serial;
        let bytes = m.encode(m.serial)?;
        let deadline = Instant::now() + self.timeout;
        self.write_all(&bytes, deadline, &format!("sending {}", m.method()))?;
        Ok(m.serial)
    }

    fn check_usable(&self) -> Result<()> {
        match &self.broken {
            Some(why) => Err(Error::protocol(format!(
                "{}: connection unusable after an earlier error ({why})",
                self.label
            ))),
            None => Ok(()),
        }
    }

    /// A protocol error in what the peer sent, naming the socket and the step; the connection
    /// is unusable after it.
    fn bad(&mut self, step: &str, e: Error) -> Error {
        let e = match e {
            Error::Protocol(what) => Error::Protocol(format!("{}: {step}: {what}", self.label)),
            other => other,
        };
        self.fail(e)
    }

    /// Marks the connection unusable and returns the error.
    fn fail(&mut self, e: Error) -> Error {
        self.broken = Some(e.to_string());
        e
    }

    fn write_all(&mut self, mut bytes: &[u8], deadline: Instant, step: &str) -> Result<()> {
        self.check_usable()?;
        while !bytes.is_empty() {
            let left = self.left(deadline, step)?;
            let written = self
                .stream
                .set_write_timeout(Some(left))
                .and_then(|()| self.stream.write(bytes));
            match written {
                Ok(0) => return Err(self.closed(step)),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_failure(step, e)),
            }
        }
        Ok(())
    }

    /// Time left before `deadline`, or the timeout error.
    fn left(&mut self, deadline: Instant, step: &str) -> Result<Duration> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let e = Error::Timeout {
                step: format!("{}: {step}", self.label),
                after: self.timeout,
            };
            return Err(self.fail(e));
        }
        Ok(left)
    }

    fn closed(&mut self, step: &str) -> Error {
        let step = format!("{}: {step}", self.label);
        self.fail(Error::Closed { step })
    }

    fn io_failure(&mut self, step: &str, e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                let step = format!("{}: {step}", self.label);
                let after = self.timeout;
                self.fail(Error::Timeout { step, after })
            }
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => self.closed(step),
            _ => {
                let e = io_error(&self.label, step, e);
                self.fail(e)
            }
        }
    }

    /// Reads at least one more byte (up to `hint`, at most [`READ_CHUNK`]) into the buffer.
    fn read_more(&mut self, hint: usize, deadline: Instant, step: &str) -> Result<()> {
        self.check_usable()?;
        loop {
            let left = self.left(deadline, step)?;
            let start = self.rbuf.len();
            self.rbuf.resize(start + hint.clamp(1, READ_CHUNK), 0);
            let read = self
                .stream
                .set_read_timeout(Some(left))
                .and_then(|()| self.stream.read(&mut self.rbuf[start..]));
            self.rbuf.truncate(start + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return Err(self.closed(step)),
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_failure(step, e)),
            }
        }
    }

    fn need(&mut self, n: usize, deadline: Instant, step: &str) -> Result<()> {
        while self.rbuf.len() < n {
            self.read_more(n - self.rbuf.len(), deadline, step)?;
        }
        Ok(())
    }

    /// Drops the next `n` bytes of the stream, read as they come.
    fn discard(&mut self, mut n: usize, deadline: Instant, step: &str) -> Result<()> {
        loop {
            let here = n.min(self.rbuf.len());
            self.rbuf.drain(..here);
            n -= here;
            if n == 0 {
                return Ok(());
            }
            self.read_more(n, deadline, step)?;
        }
    }

    /// Reads one message: `None` when it was not wanted (its body skipped unread).
    fn read_message(
        &mut self,
        want: Want,
        deadline: Instant,
        step: &str,
    ) -> Result<Option<Message>> {
        self.need(FIXED_HEADER, deadline, step)?;
        let mut fixed = [0u8; FIXED_HEADER];
        fixed.copy_from_slice(&self.rbuf[..FIXED_HEADER]);
        let prelude = message::prelude(&fixed).map_err(|e| self.bad(step, e))?;
        self.need(prelude.header_len, deadline, step)?;
        let header = message::decode_header(&self.rbuf[..prelude.header_len], &prelude);
        let mut m = header.map_err(|e| self.bad(step, e))?;
        self.rbuf.drain(..prelude.header_len);
        let keep = match want {
            Want::All => true,
            Want::Reply(serial)
                if matches!(m.kind, Kind::MethodReturn | Kind::Error)
                    && m.reply_serial == Some(serial) =>
            {
                true
            }
            _ => m.kind == Kind::Signal && self.is_watched(&m),
        };
        if !keep {
            self.discard(prelude.body_len, deadline, step)?;
            return Ok(None);
        }
        if prelude.body_len > MAX_BODY {
            let e = Error::protocol(format!(
                "{} with a body of {} bytes (at most {MAX_BODY})",
                m.method(),
                prelude.body_len
            ));
            return Err(self.bad(step, e));
        }
        self.need(prelude.body_len, deadline, step)?;
        let body: Vec<u8> = self.rbuf.drain(..prelude.body_len).collect();
        message::decode_body(&mut m, &body, &prelude).map_err(|e| self.bad(step, e))?;
        Ok(Some(m))
    }

    fn is_watched(&self, m: &Message) -> bool {
        self.watched.iter().any(|(interface, member)| {
            m.interface.as_deref() == Some(interface) && m.member.as_deref() == Some(member)
        })
    }

    /// The server side of a connection whose client has authenticated: for tests that play the
    /// peer (a fake systemd).
    #[cfg(test)]
    pub(crate) fn accepted(stream: UnixStream, timeout: Duration) -> Self {
        Connection::fresh(stream, "test peer".into(), Transport::Peer, timeout)
    }
}

fn io_error(label: &str, step: &str, source: io::Error) -> Error {
    Error::Io {
        step: format!("{label}: {step}"),
        source,
    }
}

/// A connected, close-on-exec unix stream socket. Connecting blocks when the listener's backlog
/// is full (a stuck systemd): SO_SNDTIMEO bounds that wait on Linux.
fn connect_socket(address: &Address, timeout: Duration) -> io::Result<UnixStream> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // A zero SO_SNDTIMEO would mean no limit at all.
    let timeout = timeout.max(Duration::from_millis(1));
    let tv = TimeVal::new(
        timeout.as_secs().try_into().unwrap_or(libc::time_t::MAX),
        timeout.subsec_micros().into(),
    );
    socket::setsockopt(&fd, sockopt::SendTimeout, &tv)?;
    let addr = match address {
        Address::Path(p) => UnixAddr::new(p.as_path())?,
        Address::Abstract(name) => UnixAddr::new_abstract(name)?,
    };
    socket::connect(fd.as_raw_fd(), &addr)?;
    Ok(UnixStream::from(fd))
}
