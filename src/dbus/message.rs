//! D-Bus messages: the fixed header (byte order, type, flags, version 1, body length, serial),
//! the header fields `a(yv)` (path, interface, member, error name, reply serial, destination,
//! sender, body signature), padding to 8, then the body.

use super::error::{Error, Result};
use super::signature::Type;
use super::value::Value;
use super::wire::{self, Decoder, Encoder};

/// The spec's limit on a whole message (128 MiB): a peer announcing more is broken.
pub const MAX_MESSAGE: usize = 1 << 27;
/// The most header-field bytes hutch accepts. The fields are names (at most 255 bytes each by
/// the spec), a signature and an object path: 64 KiB leaves room for any path systemd makes.
pub const MAX_HEADER_FIELDS: usize = 1 << 16;
/// The fixed part of the header, up to and including the header fields' array length.
pub const FIXED_HEADER: usize = 16;

/// The header flag asking the peer not to reply.
pub const FLAG_NO_REPLY_EXPECTED: u8 = 0x1;

/// The four message types of the spec; `Other` is a type from a later spec, to be ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MethodCall,
    MethodReturn,
    Error,
    Signal,
    Other(u8),
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::MethodCall => 1,
            Kind::MethodReturn => 2,
            Kind::Error => 3,
            Kind::Signal => 4,
            Kind::Other(n) => n,
        }
    }
}

/// One message, sent or received.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: Kind,
    pub flags: u8,
    /// Set when the message is sent or read.
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    /// The body's signature (empty for no body).
    pub signature: String,
    pub body: Vec<Value>,
}

impl Message {
    fn new(kind: Kind) -> Self {
        Message {
            kind,
            flags: 0,
            serial: 0,
            path: None,
            interface: None,
            member: None,
            error_name: None,
            reply_serial: None,
            destination: None,
            sender: None,
            signature: String::new(),
            body: Vec::new(),
        }
    }

    /// A method call; `destination` is `None` on a peer-to-peer connection.
    pub fn method_call(
        destination: Option<&str>,
        path: &str,
        interface: &str,
        member: &str,
        body: Vec<Value>,
    ) -> Self {
        let mut m = Message::new(Kind::MethodCall);
        m.destination = destination.map(str::to_owned);
        m.path = Some(path.to_owned());
        m.interface = Some(interface.to_owned());
        m.member = Some(member.to_owned());
        m.body = body;
        m
    }

    /// A signal, broadcast (no destination).
    pub fn signal(path: &str, interface: &str, member: &str, body: Vec<Value>) -> Self {
        let mut m = Message::method_call(None, path, interface, member, body);
        m.kind = Kind::Signal;
        m
    }

    /// The successful reply to `call`.
    pub fn method_return(call: &Message, body: Vec<Value>) -> Self {
        let mut m = Message::new(Kind::MethodReturn);
        m.reply_serial = Some(call.serial);
        m.destination = call.sender.clone();
        m.body = body;
        m
    }

    /// The error reply to `call`, e.g. `org.freedesktop.systemd1.NoSuchUnit`.
    pub fn error(call: &Message, name: &str, text: &str) -> Self {
        let mut m = Message::method_return(call, vec![Value::Str(text.to_owned())]);
        m.kind = Kind::Error;
        m.error_name = Some(name.to_owned());
        m
    }

    /// `interface.Member`, for errors and logs.
    pub fn method(&self) -> String {
        format!(
            "{}.{}",
            self.interface.as_deref().unwrap_or("(no interface)"),
            self.member.as_deref().unwrap_or("(no member)")
        )
    }

    /// The bytes of this message with serial `serial` (little-endian).
    pub fn encode(&self, serial: u32) -> Result<Vec<u8>> {
        check_fields(self)?;
        let (body, signature) = wire::encode_body(&self.body)?;
        let mut fields = Vec::new();
        let mut field = |code: u8, v: Value| {
            fields.push(Value::Struct(vec![
                Value::Byte(code),
                Value::Variant(Box::new(v)),
            ]))
        };
        let s = |o: &Option<String>| o.clone().map(Value::Str);
        let texts = [
            (1, self.path.clone().map(Value::ObjectPath)),
            (2, s(&self.interface)),
            (3, s(&self.member)),
            (4, s(&self.error_name)),
            (5, self.reply_serial.map(Value::U32)),
            (6, s(&self.destination)),
            (7, s(&self.sender)),
            (
                8,
                Some(Value::Signature(signature)).filter(|_| !body.is_empty()),
            ),
        ];
        for (code, v) in texts {
            if let Some(v) = v {
                field(code, v);
            }
        }
        let body_len = u32::try_from(body.len())
            .map_err(|_| Error::protocol(format!("body of {} bytes", body.len())))?;
        let mut e = Encoder::new();
        for v in [
            Value::Byte(b'l'),
            Value::Byte(self.kind.code()),
            Value::Byte(self.flags),
            Value::Byte(1),
            Value::U32(body_len),
            Value::U32(serial),
            Value::Array("(yv)".into(), fields),
        ] {
            e.value(&v)?;
        }
        e.pad(8);
        let mut out = e.buf;
        if out.len() - FIXED_HEADER > MAX_HEADER_FIELDS || out.len() + body.len() > MAX_MESSAGE {
            return Err(Error::protocol(format!(
                "{} of {} header and {} body bytes is too large",
                self.method(),
                out.len(),
                body.len()
            )));
        }
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// The spec's required header fields, per message type.
fn check_fields(m: &Message) -> Result<()> {
    let missing = match m.kind {
        Kind::MethodCall if m.path.is_none() || m.member.is_none() => "a path and a member",
        Kind::Signal if m.path.is_none() || m.interface.is_none() || m.member.is_none() => {
            "a path, an interface and a member"
        }
        Kind::MethodReturn if m.reply_serial.is_none() => "a reply serial",
        Kind::Error if m.reply_serial.is_none() || m.error_name.is_none() => {
            "a reply serial and an error name"
        }
        Kind::Other(n) => return Err(Error::protocol(format!("message type {n}"))),
        _ => return Ok(()),
    };
    Err(Error::protocol(format!(
        "a {:?} message without {missing}",
        m.kind
    )))
}

/// What the fixed 16 bytes of a message say about the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prelude {
    pub big_endian: bool,
    /// Bytes from the message start to the body (fields and padding included).
    pub header_len: usize,
    pub body_len: usize,
}

/// Reads the fixed part; refuses what no valid message has, before anything more is read.
pub fn prelude(fixed: &[u8; FIXED_HEADER]) -> Result<Prelude> {
    let big_endian = match fixed[0] {
        b'l' => false,
        b'B' => true,
        other => {
            return Err(Error::protocol(format!(
                "byte order {other:#04x} (not 'l' or 'B')"
            )))
        }
    };
    if fixed[3] != 1 {
        return Err(Error::protocol(format!(
            "protocol version {} (not 1)",
            fixed[3]
        )));
    }
    let word = |at: usize| {
        let mut b = [fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]];
        if big_endian {
            b.reverse();
        }
        u32::from_le_bytes(b) as usize
    };
    let (body_len, fields_len) = (word(4), word(12));
    if fields_len > MAX_HEADER_FIELDS {
        return Err(Error::protocol(format!(
            "{fields_len} bytes of header fields (at most {MAX_HEADER_FIELDS})"
        )));
    }
    let header_len = (FIXED_HEADER + fields_len).next_multiple_of(8);
    if header_len + body_len > MAX_MESSAGE {
        return Err(Error::protocol(format!(
            "a message of {} bytes (at most {MAX_MESSAGE})",
            header_len + body_len
        )));
    }
    Ok(Prelude {
        big_endian,
        header_len,
        body_len,
    })
}

/// Decodes a whole header (`prelude.header_len` bytes); the body is left empty.
pub fn decode_header(header: &[u8], prelude: &Prelude) -> Result<Message> {
    let mut d = Decoder::new(header, prelude.big_endian);
    let fixed = (0..4)
        .map(|_| d.value(&Type::Byte))
        .collect::<Result<Vec<_>>>()?;
    let kind = match fixed.get(1) {
        Some(Value::Byte(1)) => Kind::MethodCall,
        Some(Value::Byte(2)) => Kind::MethodReturn,
        Some(Value::Byte(3)) => Kind::Error,
        Some(Value::Byte(4)) => Kind::Signal,
        Some(Value::Byte(0)) => return Err(Error::protocol("message type 0")),
        Some(Value::Byte(n)) => Kind::Other(*n),
        _ => return Err(Error::protocol("no message type")),
    };
    let mut m = Message::new(kind);
    if let Some(Value::Byte(flags)) = fixed.get(2) {
        m.flags = *flags;
    }
    d.u32()?; // the body length, already in the prelude
    m.serial = d.u32()?;
    if m.serial == 0 {
        return Err(Error::protocol("serial 0"));
    }
    let field_type = Type::Array(Box::new(Type::Struct(vec![Type::Byte, Type::Variant])));
    let Value::Array(_, fields) = d.value(&field_type)? else {
        return Err(Error::protocol("header fields are not an array"));
    };
    for f in fields {
        set_field(&mut m, f)?;
    }
    if d.pos().next_multiple_of(8) != header.len() {
        return Err(Error::protocol("header fields do not fill the header"));
    }
    // A type from a later spec has its own rules: the caller skips it.
    if !matches!(m.kind, Kind::Other(_)) {
        check_fields(&m)?;
    }
    Ok(m)
}

fn set_field(m: &mut Message, field: Value) -> Result<()> {
    let Value::Struct(mut parts) = field else {
        return Err(Error::protocol("a header field is not a struct"));
    };
    let (Some(Value::Variant(v)), Some(Value::Byte(code))) = (parts.pop(), parts.pop()) else {
        return Err(Error::protocol("a header field is not (yv)"));
    };
    let wrong = |what: &str| Error::protocol(format!("header field {code} is not {what}"));
    match (code, *v) {
        (1, Value::ObjectPath(p)) => m.path = Some(p),
        (2, Value::Str(s)) => m.interface = Some(s),
        (3, Value::Str(s)) => m.member = Some(s),
        (4, Value::Str(s)) => m.error_name = Some(s),
        (5, Value::U32(n)) => m.reply_serial = Some(n),
        (6, Value::Str(s)) => m.destination = Some(s),
        (7, Value::Str(s)) => m.sender = Some(s),
        (8, Value::Signature(s)) => m.signature = s,
        (1, _) => return Err(wrong("an object path")),
        (2..=4 | 6 | 7, _) => return Err(wrong("a string")),
        (5, _) => return Err(wrong("a u32")),
        (8, _) => return Err(wrong("a signature")),
        // UNIX_FDS (9) and fields from later specs: ignored, as the spec says.
        _ => {}
    }
    Ok(())
}

/// Decodes the body of a message read with `decode_header`.
pub fn decode_body(m: &mut Message, body: &[u8], prelude: &Prelude) -> Result<()> {
    m.body = wire::decode_body(body, &m.signature, prelude.big_endian)
        .map_err(|e| Error::protocol(format!("body of {}: {e}", m.method())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole message from a slice, as the connection reads one from the socket.
    fn decode(bytes: &[u8]) -> Result<Message> {
        let fixed: &[u8; FIXED_HEADER] = bytes
            .get(..FIXED_HEADER)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::protocol("short"))?;
        let p = prelude(fixed)?;
        let header = bytes
            .get(..p.header_len)
            .ok_or_else(|| Error::protocol("short"))?;
        let mut m = decode_header(header, &p)?;
        let body = bytes
            .get(p.header_len..p.header_len + p.body_len)
            .ok_or_else(|| Error::protocol("short"))?;
        decode_body(&mut m, body, &p)?;
        Ok(m)
    }

    fn hello() -> Message {
        Message::method_call(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            vec![],
        )
    }

    #[test]
    fn hello_bytes() {
        // The Hello every client sends first, laid out by hand: 109 bytes of fields (path,
        // interface, member, destination, each 8-aligned), padded to 128.
        let mut want = b"l\x01\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00\x6d\x00\x00\x00".to_vec();
        want.extend_from_slice(b"\x01\x01o\x00\x15\x00\x00\x00/org/freedesktop/DBus\x00\x00\x00");
        want.extend_from_slice(
            b"\x02\x01s\x00\x14\x00\x00\x00org.freedesktop.DBus\x00\x00\x00\x00",
        );
        want.extend_from_slice(b"\x03\x01s\x00\x05\x00\x00\x00Hello\x00\x00\x00");
        want.extend_from_slice(
            b"\x06\x01s\x00\x14\x00\x00\x00org.freedesktop.DBus\x00\x00\x00\x00",
        );
        assert_eq!(want.len(), 128);
        assert_eq!(hello().encode(1).unwrap(), want);
        let mut back = decode(&want).unwrap();
        assert_eq!(back.serial, 1);
        back.serial = 0;
        assert_eq!(back, hello());
    }

    #[test]
    fn big_endian_reply() {
        // A METHOD_RETURN from a big-endian peer: serial 7, reply to 3, body u 42.
        let mut bytes = b"B\x02\x00\x01\x00\x00\x00\x04\x00\x00\x00\x07\x00\x00\x00\x0f".to_vec();
        bytes.extend_from_slice(b"\x05\x01u\x00\x00\x00\x00\x03"); // REPLY_SERIAL 3
        bytes.extend_from_slice(b"\x08\x01g\x00\x01u\x00\x00"); // SIGNATURE "u", padding
        bytes.extend_from_slice(b"\x00\x00\x00\x2a");
        let m = decode(&bytes).unwrap();
        assert_eq!(m.kind, Kind::MethodReturn);
        assert_eq!((m.serial, m.reply_serial), (7, Some(3)));
        assert_eq!(m.body, [Value::U32(42)]);
    }

    #[test]
    fn replies_and_errors() {
        let mut call = hello();
        call.serial = 9;
        call.sender = Some(":1.4".into());
        let err = Message::error(&call, "org.example.Nope", "no");
        let bytes = err.encode(10).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.kind, Kind::Error);
        assert_eq!(back.reply_serial, Some(9));
        assert_eq!(back.destination.as_deref(), Some(":1.4"));
        assert_eq!(back.error_name.as_deref(), Some("org.example.Nope"));
        assert_eq!(back.signature, "s");
        assert_eq!(back.body, [Value::Str("no".into())]);
        // Required fields: a signal needs an interface.
        let mut sig = Message::signal("/a", "org.example.I", "M", vec![]);
        sig.interface = None;
        assert!(sig.encode(1).is_err());
    }

    #[test]
    fn fixed_header_limits() {
        let mut fixed = *b"l\x01\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00";
        assert!(prelude(&fixed).is_ok());
        fixed[4..8].copy_from_slice(&(MAX_MESSAGE as u32).to_le_bytes()); // body too large
        assert!(prelude(&fixed).is_err());
        fixed[4..8].copy_from_slice(&0u32.to_le_bytes());
        fixed[12..16].copy_from_slice(&(MAX_HEADER_FIELDS as u32 + 1).to_le_bytes());
        assert!(prelude(&fixed).is_err());
        fixed[12..16].copy_from_slice(&0u32.to_le_bytes());
        fixed[3] = 2; // protocol version
        assert!(prelude(&fixed).is_err());
        fixed[3] = 1;
        fixed[0] = b'x'; // byte order
        assert!(prelude(&fixed).is_err());
    }

    #[test]
    fn damaged_messages_are_errors_not_panics() {
        let mut signal = Message::signal(
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "JobRemoved",
            vec![
                Value::U32(42),
                Value::ObjectPath("/org/freedesktop/systemd1/job/42".into()),
                Value::Str("hutch-x.scope".into()),
                Value::Str("done".into()),
            ],
        );
        signal.sender = Some(":1.0".into());
        let bytes = signal.encode(3).unwrap();
        assert!(decode(&bytes).is_ok());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len} decoded");
        }
        // Flip bytes at pseudo-random places: any outcome but a panic is fine.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut damaged = bytes.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % damaged.len() as u64) as usize;
                damaged[at] = (seed >> 32) as u8;
            }
            let _ = decode(&damaged);
        }
    }
}
