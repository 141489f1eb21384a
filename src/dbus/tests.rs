//! The client against real peers: a private dbus-daemon (skipped, saying so, when it is not
//! installed), libdbus's own encoder (`dbus-send`), a fake systemd that answers the manager
//! calls over that bus and peer-to-peer as on `/run/systemd/private`, and hostile or silent
//! peers.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use super::message::{Kind, Message};
use super::systemd::{self, Systemd, MANAGER, MANAGER_PATH, NO_SUCH_UNIT, UNIT_EXISTS};
use super::{Address, Auth, Connection, Error, Transport, Value};

const T: Duration = Duration::from_secs(10);
const DBUS: &str = "org.freedesktop.DBus";
const DBUS_PATH: &str = "/org/freedesktop/DBus";
const VERSION: &str = "252.30-1~deb12u2";
const KNOWN_PATH: &str = "/org/freedesktop/systemd1/unit/known_2escope";

/// A scratch directory, removed on drop (a failing test included).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir() -> Scratch {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hutch-dbus-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    Scratch(dir)
}

/// A private session dbus-daemon on a socket in a scratch directory; killed on drop.
struct Daemon {
    child: Child,
    _dir: Scratch,
    address: Address,
}

impl Daemon {
    fn start() -> Option<Daemon> {
        let dir = scratch_dir();
        let socket = dir.0.join("bus");
        let child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .stdout(Stdio::piped())
            // It complains, harmlessly, that it cannot raise its fd limit.
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIP: dbus-daemon cannot run ({e}): apt-get install dbus-daemon");
                return None;
            }
        };
        // The address is printed once the daemon listens.
        let mut printed = Vec::new();
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut byte = [0u8];
        while !printed.ends_with(b"\n") && stdout.read(&mut byte).unwrap_or(0) == 1 {
            printed.push(byte[0]);
        }
        assert!(
            String::from_utf8_lossy(&printed).contains("unix:path="),
            "dbus-daemon printed {printed:?}"
        );
        Some(Daemon {
            child,
            _dir: dir,
            address: Address::Path(socket),
        })
    }

    fn connect(&self) -> Connection {
        Connection::connect(&self.address, Transport::Bus, T).expect("connect to the bus")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dbus_call(c: &mut Connection, member: &str, args: Vec<Value>) -> Result<Vec<Value>, Error> {
    c.call(Some(DBUS), DBUS_PATH, DBUS, member, args)
}

fn one_string(reply: Vec<Value>) -> String {
    match reply.as_slice() {
        [Value::Str(s)] => s.clone(),
        other => panic!("expected one string, got {other:?}"),
    }
}

#[test]
fn bus_hello_names_and_errors() {
    let Some(bus) = Daemon::start() else { return };
    let mut c = bus.connect();
    let me = c
        .unique_name()
        .expect("a unique name after Hello")
        .to_owned();
    assert!(me.starts_with(':'), "unique name {me:?}");

    let names = dbus_call(&mut c, "ListNames", vec![]).unwrap();
    let [Value::ArrayStr(names)] = names.as_slice() else {
        panic!("ListNames answered {names:?}");
    };
    assert!(names.iter().any(|n| n == DBUS), "{names:?}");
    assert!(names.contains(&me), "{names:?} lacks {me}");
    let owner = dbus_call(&mut c, "GetNameOwner", vec![Value::Str(me.clone())]);
    assert_eq!(one_string(owner.unwrap()), me);

    // An ERROR reply names the method and carries the bus's message.
    let err = dbus_call(&mut c, "NoSuchMethod", vec![]).unwrap_err();
    assert_eq!(
        err.remote_name(),
        Some("org.freedesktop.DBus.Error.UnknownMethod")
    );
    let text = err.to_string();
    assert!(text.contains("org.freedesktop.DBus.NoSuchMethod"), "{text}");
    let err = dbus_call(
        &mut c,
        "GetNameOwner",
        vec![Value::Str("org.nobody".into())],
    );
    assert_eq!(
        err.unwrap_err().remote_name(),
        Some("org.freedesktop.DBus.Error.NameHasNoOwner")
    );
    // A remote error leaves the connection usable.
    assert!(dbus_call(&mut c, "GetId", vec![]).is_ok());
}

#[test]
fn bus_authentication_modes() {
    let Some(bus) = Daemon::start() else { return };
    // No identity: the daemon asks (DATA) and takes the socket's uid.
    let c = Connection::connect_with(&bus.address, Transport::Bus, T, Auth::PeerCredentials);
    assert!(c.expect("peer credentials").unique_name().is_some());
    // Another uid than the socket's is refused, and said so.
    let uid = nix::unistd::geteuid().as_raw();
    let wrong = Auth::Uid(uid.wrapping_add(4242));
    let err = Connection::connect_with(&bus.address, Transport::Bus, T, wrong);
    assert!(
        matches!(err, Err(Error::Auth(ref m)) if m.contains("REJECTED")),
        "{:?}",
        err.err()
    );
}

const TEST_IFACE: &str = "org.hutch.Test";

#[test]
fn bus_signals_carry_every_type() {
    let Some(bus) = Daemon::start() else { return };
    let mut listener = bus.connect();
    let mut emitter = bus.connect();
    listener.watch_signal(None, TEST_IFACE, "Sig").unwrap();
    // dbus-daemon checks every message it routes against its signature: a marshalling mistake
    // would get the emitter disconnected instead of the signal delivered.
    let values = vec![
        Value::Byte(0xfe),
        Value::Bool(true),
        Value::I16(-2),
        Value::U16(3),
        Value::I32(-4),
        Value::U32(5),
        Value::I64(-6),
        Value::U64(u64::MAX),
        Value::F64(0.25),
        Value::Str("ünïcode".into()),
        Value::ObjectPath("/org/freedesktop/systemd1/job/7".into()),
        Value::Signature("a(sv)".into()),
        Value::Variant(Box::new(Value::Variant(Box::new(Value::Byte(1))))),
        Value::ArrayU32(vec![1, 2]),
        Value::Bytes(vec![0b101]),
        Value::ArrayStr(vec!["a".into(), "".into()]),
        Value::str_pairs([("/dev/null", "rwm"), ("char-pts", "rw")]),
        Value::Array("(sv)".into(), vec![]),
        Value::Array(
            "{sv}".into(),
            vec![Value::DictEntry(
                Box::new(Value::Str("k".into())),
                Box::new(Value::Variant(Box::new(Value::U64(1)))),
            )],
        ),
        Value::Struct(vec![Value::Byte(1), Value::Struct(vec![Value::U64(2)])]),
    ];
    for n in [1u32, 2] {
        let mut body = values.clone();
        body.insert(0, Value::U32(n));
        let signal = Message::signal("/org/hutch/test", TEST_IFACE, "Sig", body);
        emitter.send(signal).expect("emit");
    }
    // The second first: the first is kept meanwhile, and comes next.
    let is = |n: u32| move |m: &Message| m.body.first() == Some(&Value::U32(n));
    let second = listener.wait_signal("signal 2", &mut is(2)).unwrap();
    let first = listener.wait_signal("signal 1", &mut is(1)).unwrap();
    for (m, n) in [(first, 1), (second, 2)] {
        assert_eq!(m.kind, Kind::Signal);
        assert_eq!(m.sender.as_deref(), emitter.unique_name());
        assert_eq!(m.body[0], Value::U32(n));
        assert_eq!(m.body[1..], values[..]);
    }
}

#[test]
fn bus_decodes_what_libdbus_encodes() {
    let Some(bus) = Daemon::start() else { return };
    let mut listener = bus.connect();
    listener
        .watch_signal(None, TEST_IFACE, "FromLibdbus")
        .unwrap();
    let Address::Path(socket) = &bus.address else {
        unreachable!()
    };
    let sent = Command::new("dbus-send")
        .arg(format!("--bus=unix:path={}", socket.display()))
        .args([
            "--type=signal",
            "/org/hutch/test",
            "org.hutch.Test.FromLibdbus",
        ])
        .args([
            "byte:254",
            "boolean:true",
            "int16:-2",
            "uint16:3",
            "int32:-4",
            "uint32:5",
            "int64:-6",
            "uint64:18446744073709551615",
            "double:0.25",
            "string:ünïcode",
            "objpath:/a/b_c",
            "array:uint32:1,2",
            "array:string:x,y",
            "array:byte:5,6",
            "dict:string:int32:k,1",
            "variant:uint64:9",
        ])
        .status();
    match sent {
        Err(e) => return eprintln!("SKIP: dbus-send cannot run ({e})"),
        Ok(st) => assert!(st.success(), "dbus-send: {st}"),
    }
    let m = listener
        .wait_signal("dbus-send's signal", &mut |_| true)
        .unwrap();
    assert_eq!(m.signature, "ybnqiuxtdsoauasaya{si}v");
    let dict_entry = Value::DictEntry(Box::new(Value::Str("k".into())), Box::new(Value::I32(1)));
    let want = vec![
        Value::Byte(254),
        Value::Bool(true),
        Value::I16(-2),
        Value::U16(3),
        Value::I32(-4),
        Value::U32(5),
        Value::I64(-6),
        Value::U64(u64::MAX),
        Value::F64(0.25),
        Value::Str("ünïcode".into()),
        Value::ObjectPath("/a/b_c".into()),
        Value::ArrayU32(vec![1, 2]),
        Value::ArrayStr(vec!["x".into(), "y".into()]),
        Value::Bytes(vec![5, 6]),
        Value::Array("{si}".into(), vec![dict_entry]),
        Value::Variant(Box::new(Value::U64(9))),
    ];
    assert_eq!(m.body, want);
}

/// A systemd stand-in: answers the manager calls the driver makes, and reports each call.
struct FakeSystemd {
    conn: Connection,
    /// On a bus: another connection, to send a forged `JobRemoved` from.
    forger: Option<Connection>,
    jobs: u32,
    log: Sender<(String, Vec<Value>)>,
}

impl FakeSystemd {
    fn job_removed(&mut self, job: &str, unit: &str, result: &str) -> Message {
        let body = vec![
            Value::U32(self.jobs),
            Value::ObjectPath(job.into()),
            Value::Str(unit.into()),
            Value::Str(result.into()),
        ];
        Message::signal(MANAGER_PATH, MANAGER, "JobRemoved", body)
    }

    fn new_job(&mut self) -> String {
        self.jobs += 1;
        format!("/org/freedesktop/systemd1/job/{}", self.jobs)
    }

    /// Serves until told to quit or the client goes away.
    fn serve(mut self) {
        while let Ok(call) = self.conn.receive() {
            if call.kind != Kind::MethodCall {
                continue;
            }
            let _ = self.log.send((call.method(), call.body.clone()));
            if call.member.as_deref() == Some("Quit") {
                let _ = self.conn.send(Message::method_return(&call, vec![]));
                return;
            }
            if let Err(e) = self.answer(&call) {
                panic!("fake systemd answering {}: {e}", call.method());
            }
        }
    }

    fn answer(&mut self, call: &Message) -> Result<(), Error> {
        let unit = call.body.first().and_then(Value::as_str).unwrap_or("");
        let unit = unit.to_owned();
        let reply = |body| Message::method_return(call, body);
        let fail = |name: &str, text: &str| Message::error(call, name, text);
        let answer = match (
            call.interface.as_deref().unwrap_or(""),
            call.member.as_deref(),
        ) {
            (MANAGER, Some("Subscribe" | "SetUnitProperties" | "ResetFailedUnit")) => reply(vec![]),
            (MANAGER, Some("GetUnit")) if unit == "known.scope" => {
                reply(vec![Value::ObjectPath(KNOWN_PATH.into())])
            }
            (MANAGER, Some("GetUnit")) => fail(NO_SUCH_UNIT, &format!("Unit {unit} not loaded.")),
            (MANAGER, Some("StartTransientUnit")) if call.signature != "ssa(sv)a(sa(sv))" => fail(
                "org.freedesktop.DBus.Error.InvalidArgs",
                &format!("signature {}", call.signature),
            ),
            (MANAGER, Some("StartTransientUnit")) if unit == "exists.scope" => {
                fail(UNIT_EXISTS, &format!("Unit {unit} already exists."))
            }
            (MANAGER, Some("StartTransientUnit")) => {
                // The usual order: the reply, then the job's end.
                let job = self.new_job();
                self.conn
                    .send(reply(vec![Value::ObjectPath(job.clone())]))?;
                self.job_removed(&job, &unit, "done")
            }
            (MANAGER, Some("StopUnit")) => {
                // The adverse order: the job ends before its reply is sent.
                let job = self.new_job();
                if let Some(forger) = self.forger.as_mut() {
                    let mut forged = Message::signal(MANAGER_PATH, MANAGER, "JobRemoved", vec![]);
                    forged.body = vec![
                        Value::U32(0),
                        Value::ObjectPath(job.clone()),
                        Value::Str(unit.clone()),
                        Value::Str("failed".into()),
                    ];
                    // Sent to the client directly: no match rule stops it.
                    forged.destination = call.sender.clone();
                    forger.send(forged)?;
                    // A round trip: the bus has queued the forgery before it answers.
                    dbus_call(forger, "GetId", vec![])?;
                }
                let end = self.job_removed(&job, &unit, "done");
                self.conn.send(end)?;
                reply(vec![Value::ObjectPath(job)])
            }
            ("org.freedesktop.DBus.Properties", Some("Get"))
                if call.body == [Value::Str(MANAGER.into()), Value::Str("Version".into())] =>
            {
                reply(vec![Value::Variant(Box::new(Value::Str(VERSION.into())))])
            }
            _ => fail(
                "org.freedesktop.DBus.Error.UnknownMethod",
                &format!("the fake systemd has no {}", call.method()),
            ),
        };
        self.conn.send(answer).map(drop)
    }
}

fn driver_properties() -> Vec<(&'static str, Value)> {
    vec![
        ("Description", Value::Str("hutch container x".into())),
        ("Slice", Value::Str("system.slice".into())),
        ("Delegate", Value::Bool(true)),
        ("PIDs", Value::ArrayU32(vec![4242])),
        ("DefaultDependencies", Value::Bool(false)),
        ("MemoryMax", Value::U64(1 << 30)),
        ("TasksMax", Value::U64(u64::MAX)),
        ("CPUQuotaPerSecUSec", Value::U64(500_000)),
        ("CPUQuotaPeriodUSec", Value::U64(100_000)),
        ("AllowedCPUs", Value::Bytes(vec![0b101])),
        ("DevicePolicy", Value::Str("strict".into())),
        ("DeviceAllow", Value::str_pairs([("/dev/null", "rwm")])),
    ]
}

/// The calls the driver makes, against the fake.
fn exercise(sd: &mut Systemd, log: &Receiver<(String, Vec<Value>)>) {
    let next_call = |method: &str| -> Vec<Value> {
        loop {
            let (m, body) = log.recv_timeout(T).expect("the fake saw the call");
            if m.ends_with(method) {
                return body;
            }
        }
    };
    let version = sd.get_property(MANAGER_PATH, MANAGER, "Version").unwrap();
    assert_eq!(version.as_str(), Some(VERSION));
    assert_eq!(sd.get_unit("nope.scope").unwrap(), None);
    assert_eq!(
        sd.get_unit("known.scope").unwrap().as_deref(),
        Some(KNOWN_PATH)
    );

    let props = driver_properties();
    let job = sd
        .start_transient_unit("hutch-x.scope", "replace", &props)
        .unwrap();
    assert_eq!(sd.wait_for_job(&job).unwrap(), "done");
    let body = next_call("StartTransientUnit");
    let sent: Vec<Value> = props
        .iter()
        .map(|(k, v)| {
            Value::Struct(vec![
                Value::Str((*k).into()),
                Value::Variant(Box::new(v.clone())),
            ])
        })
        .collect();
    let want = vec![
        Value::Str("hutch-x.scope".into()),
        Value::Str("replace".into()),
        Value::Array("(sv)".into(), sent),
        Value::Array("(sa(sv))".into(), vec![]),
    ];
    assert_eq!(body, want);

    // JobRemoved before the reply: kept while the reply was awaited. On a bus, a forged
    // JobRemoved from another sender came first, and is not taken for systemd's.
    let job = sd.stop_unit("hutch-x.scope", "replace").unwrap();
    assert_eq!(sd.wait_for_job(&job).unwrap(), "done");

    let limits = [("MemoryMax", Value::U64(1 << 20))];
    sd.set_unit_properties("hutch-x.scope", true, &limits)
        .unwrap();
    let body = next_call("SetUnitProperties");
    assert_eq!(
        body[..2],
        [Value::Str("hutch-x.scope".into()), Value::Bool(true)]
    );
    sd.reset_failed_unit("hutch-x.scope").unwrap();

    let err = sd
        .start_transient_unit("exists.scope", "replace", &props)
        .unwrap_err();
    assert_eq!(err.remote_name(), Some(UNIT_EXISTS));
    let text = err.to_string();
    assert!(
        text.contains("Manager.StartTransientUnit") && text.contains("already exists"),
        "{text}"
    );

    // A job that never ends: a timeout naming it, in about the time asked.
    sd.connection().set_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let err = sd
        .wait_for_job("/org/freedesktop/systemd1/job/999")
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("job/999"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn fake_systemd_on_a_bus() {
    let Some(bus) = Daemon::start() else { return };
    let mut owner = bus.connect();
    let args = vec![Value::Str(systemd::SERVICE.into()), Value::U32(4)];
    // 1: DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER.
    assert_eq!(
        dbus_call(&mut owner, "RequestName", args).unwrap(),
        [Value::U32(1)]
    );
    owner.set_timeout(Duration::from_secs(30));
    let (tx, rx) = channel();
    let fake = FakeSystemd {
        conn: owner,
        forger: Some(bus.connect()),
        jobs: 0,
        log: tx,
    };
    let server = thread::spawn(move || fake.serve());
    let mut sd = Systemd::new(bus.connect());
    exercise(&mut sd, &rx);
    let mut quit = bus.connect();
    quit.call(
        Some(systemd::SERVICE),
        MANAGER_PATH,
        TEST_IFACE,
        "Quit",
        vec![],
    )
    .unwrap();
    server.join().expect("the fake systemd");
}

/// The server side of SASL EXTERNAL, as systemd's private socket speaks it; returns the AUTH
/// line. Reads a byte at a time so as to leave the first message in the socket.
fn accept_sasl(stream: &mut UnixStream) -> String {
    let read_line = |s: &mut UnixStream| {
        let mut line = Vec::new();
        let mut byte = [0u8];
        while !line.ends_with(b"\r\n") {
            s.read_exact(&mut byte).expect("SASL line");
            line.push(byte[0]);
        }
        String::from_utf8_lossy(&line).into_owned()
    };
    let auth = read_line(stream);
    stream
        .write_all(b"OK 0123456789abcdef0123456789abcdef\r\n")
        .unwrap();
    assert_eq!(read_line(stream), "BEGIN\r\n");
    auth
}

fn listen() -> (UnixListener, PathBuf, Scratch) {
    let dir = scratch_dir();
    let path = dir.0.join("private");
    (UnixListener::bind(&path).expect("bind"), path, dir)
}

#[test]
fn fake_systemd_peer_to_peer() {
    let (listener, path, _dir) = listen();
    let (tx, rx) = channel();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let auth = accept_sasl(&mut stream);
        let conn = Connection::accepted(stream, Duration::from_secs(30));
        // No Hello, AddMatch or GetNameOwner: the fake answers those with errors.
        FakeSystemd {
            conn,
            forger: None,
            jobs: 0,
            log: tx,
        }
        .serve();
        auth
    });
    let conn = Connection::connect(&Address::Path(path), Transport::Peer, T).unwrap();
    assert_eq!(conn.unique_name(), None);
    let mut sd = Systemd::new(conn);
    exercise(&mut sd, &rx);
    drop(sd);
    let auth = server.join().expect("the fake systemd");
    let uid = nix::unistd::geteuid().as_raw().to_string();
    let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
    assert_eq!(auth, format!("\0AUTH EXTERNAL {hex}\r\n"));
}

/// A peer that authenticates the client, then runs `then` on the socket.
fn peer(then: impl FnOnce(UnixStream) + Send + 'static) -> (Connection, Scratch) {
    let (listener, path, dir) = listen();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        accept_sasl(&mut stream);
        then(stream);
    });
    let conn = Connection::connect(&Address::Path(path), Transport::Peer, T).unwrap();
    (conn, dir)
}

fn ping(c: &mut Connection) -> Result<Vec<Value>, Error> {
    c.call(None, "/", "org.freedesktop.DBus.Peer", "Ping", vec![])
}

#[test]
fn silent_peers_time_out() {
    // Never accepted: the connection sits in the backlog; AUTH gets no answer.
    let (_listener, path, _dir) = listen();
    let start = Instant::now();
    let short = Duration::from_millis(300);
    let err = Connection::connect(&Address::Path(path), Transport::Peer, short);
    assert!(matches!(err, Err(Error::Timeout { .. })), "{:?}", err.err());
    assert!(start.elapsed() < Duration::from_secs(5));

    // Authenticated, then silent: the call times out, naming the method.
    let (mut c, _dir2) = peer(|mut s| {
        let _ = s.read_to_end(&mut Vec::new());
    });
    c.set_timeout(short);
    let err = ping(&mut c).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("Peer.Ping"), "{err}");
    // And the connection is not used again (a late reply would be out of step).
    assert!(matches!(ping(&mut c), Err(Error::Protocol(_))));
}

/// The reply to the client's first call (serial 1) with `body_len` patched in.
fn reply_claiming(body_len: u32) -> Vec<u8> {
    let mut call = Message::method_call(None, "/", "org.freedesktop.DBus.Peer", "Ping", vec![]);
    call.serial = 1;
    let mut bytes = Message::method_return(&call, vec![Value::U32(1)])
        .encode(1)
        .unwrap();
    bytes[4..8].copy_from_slice(&body_len.to_le_bytes());
    bytes
}

#[test]
fn hostile_peers_get_errors_not_allocations() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not D-Bus", b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
        ("a message over 128 MiB", reply_claiming(1 << 30)),
        ("a kept body over 16 MiB", reply_claiming(20 << 20)),
    ];
    for (what, bytes) in cases {
        let (mut c, _dir) = peer(move |mut s| {
            let _ = s.write_all(&bytes);
            let _ = s.read_to_end(&mut Vec::new());
        });
        let start = Instant::now();
        let err = ping(&mut c).unwrap_err();
        assert!(matches!(err, Error::Protocol(_)), "{what}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("private: waiting for the reply to"),
            "{what}: {text}"
        );
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
    }
    // A peer that hangs up.
    let (mut c, _dir) = peer(drop);
    assert!(matches!(ping(&mut c), Err(Error::Closed { .. })));
}

#[test]
fn large_unwanted_messages_are_skipped() {
    // 20 MiB of an unwatched signal, then the reply: the signal is read past, not kept.
    let (mut c, _dir) = peer(|mut s| {
        let big = Message::signal(
            "/x",
            TEST_IFACE,
            "Big",
            vec![Value::Bytes(vec![7; 20 << 20])],
        );
        let _ = s.write_all(&big.encode(1).unwrap());
        let mut call = Message::method_call(None, "/", "org.freedesktop.DBus.Peer", "Ping", vec![]);
        call.serial = 1;
        let reply = Message::method_return(&call, vec![Value::Str("pong".into())]);
        let _ = s.write_all(&reply.encode(2).unwrap());
        let _ = s.read_to_end(&mut Vec::new());
    });
    assert_eq!(ping(&mut c).unwrap(), [Value::Str("pong".into())]);
}

#[test]
fn abstract_and_missing_sockets() {
    let err = Connection::connect(
        &Address::Path(Path::new("/nonexistent/hutch/bus").into()),
        Transport::Bus,
        T,
    );
    let Err(err) = err else {
        panic!("connected to nothing")
    };
    assert!(err.to_string().contains("/nonexistent/hutch/bus"), "{err}");
    // An abstract socket, as `unix:abstract=` addresses name.
    use std::os::linux::net::SocketAddrExt;
    let name = format!("hutch-dbus-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        accept_sasl(&mut s);
    });
    let c = Connection::connect(&Address::Abstract(name.into_bytes()), Transport::Peer, T);
    assert!(c.is_ok(), "{:?}", c.err());
    server.join().unwrap();
}
