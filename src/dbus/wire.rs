//! The D-Bus wire format: how values are marshalled.
//!
//! hutch writes little-endian and reads both byte orders. Every value is aligned to its natural
//! boundary counted from the start of the message (1 for `y g v`, 2 for `n q`, 4 for `b i u s o`
//! and array lengths, 8 for `x t d`, structs and dict entries); a message body starts on an
//! 8-byte boundary, so a body encoded into its own buffer from offset 0 is aligned the same way.
//! Arrays carry their byte length (without the padding between the length and the first
//! element); strings and object paths a `u32` length and a NUL; signatures a `u8` length and a
//! NUL; a variant its signature and then the value.
//!
//! Decoding takes bytes from the peer: every length is checked against what is left, nesting is
//! bounded (the spec's 32 arrays + 32 structs, 64 containers in all, variants included) and no
//! allocation is sized by a length the peer wrote.

use super::error::{Error, Result};
use super::signature::{parse_signature, valid_object_path, Type};
use super::value::Value;

/// The spec's limit on one array's bytes (64 MiB).
pub const MAX_ARRAY: usize = 1 << 26;
/// The spec's limit on container nesting (arrays, structs and variants together).
const MAX_DEPTH: usize = 64;

/// Marshals values into a buffer whose offset 0 is 8-aligned in the message.
pub(crate) struct Encoder {
    pub buf: Vec<u8>,
    depth: usize,
}

impl Encoder {
    pub fn new() -> Self {
        Encoder {
            buf: Vec::new(),
            depth: 0,
        }
    }

    pub fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, n: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    fn fixed<const N: usize>(&mut self, bytes: [u8; N]) {
        self.pad(N);
        self.buf.extend_from_slice(&bytes);
    }

    fn string(&mut self, s: &str) -> Result<()> {
        if s.contains('\0') {
            return Err(Error::protocol(format!("string {s:?} contains a NUL")));
        }
        let len = u32::try_from(s.len())
            .map_err(|_| Error::protocol(format!("string of {} bytes", s.len())))?;
        self.u32(len);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        Ok(())
    }

    fn signature(&mut self, sig: &str) -> Result<()> {
        parse_signature(sig)?;
        // parse_signature bounds the length at 255.
        self.buf.push(sig.len() as u8);
        self.buf.extend_from_slice(sig.as_bytes());
        self.buf.push(0);
        Ok(())
    }

    /// Appends one value (not a bare dict entry: those only go inside an array).
    pub fn value(&mut self, v: &Value) -> Result<()> {
        match v {
            Value::Byte(n) => self.buf.push(*n),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(n) => self.fixed(n.to_le_bytes()),
            Value::U16(n) => self.fixed(n.to_le_bytes()),
            Value::I32(n) => self.fixed(n.to_le_bytes()),
            Value::U32(n) => self.u32(*n),
            Value::I64(n) => self.fixed(n.to_le_bytes()),
            Value::U64(n) => self.fixed(n.to_le_bytes()),
            Value::F64(n) => self.fixed(n.to_le_bytes()),
            Value::Str(s) => self.string(s)?,
            Value::ObjectPath(p) if !valid_object_path(p) => {
                return Err(Error::protocol(format!("{p:?} is not an object path")));
            }
            Value::ObjectPath(p) => self.string(p)?,
            Value::Signature(s) => self.signature(s)?,
            Value::DictEntry(..) => {
                return Err(Error::protocol("a dict entry outside an array"));
            }
            _ => return self.container(v),
        }
        Ok(())
    }

    fn container(&mut self, v: &Value) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::protocol("values nested deeper than 64"));
        }
        match v {
            Value::Variant(inner) => {
                self.signature(&inner.signature())?;
                self.value(inner)?;
            }
            Value::ArrayU32(items) => self.array(4, |e| {
                items.iter().for_each(|n| e.u32(*n));
                Ok(())
            })?,
            Value::Bytes(bytes) => self.array(1, |e| {
                e.buf.extend_from_slice(bytes);
                Ok(())
            })?,
            Value::ArrayStr(items) => {
                self.array(4, |e| items.iter().try_for_each(|s| e.string(s)))?
            }
            Value::Array(elem, items) => self.generic_array(elem, items)?,
            Value::Struct(fields) if fields.is_empty() => {
                return Err(Error::protocol("an empty struct"));
            }
            Value::Struct(fields) => {
                self.pad(8);
                fields.iter().try_for_each(|f| self.value(f))?;
            }
            _ => {
                return Err(Error::protocol(
                    "internal: a basic value taken for a container",
                ))
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn generic_array(&mut self, elem: &str, items: &[Value]) -> Result<()> {
        let sig = format!("a{elem}");
        let types = parse_signature(&sig)?;
        let Some(Type::Array(elem_type)) = types.first().filter(|_| types.len() == 1) else {
            return Err(Error::protocol(format!(
                "array element signature {elem:?} is not one complete type"
            )));
        };
        if let Some(bad) = items.iter().find(|item| item.signature() != elem) {
            return Err(Error::protocol(format!(
                "an element of signature {} in an array of {elem}",
                bad.signature()
            )));
        }
        self.array(elem_type.align(), |e| {
            items.iter().try_for_each(|item| match item {
                Value::DictEntry(k, v) => {
                    e.pad(8);
                    e.value(k)?;
                    e.value(v)
                }
                other => e.value(other),
            })
        })
    }

    /// Writes an array: its length, padding to the element alignment, the elements.
    fn array(&mut self, align: usize, body: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        self.u32(0);
        let len_at = self.buf.len() - 4;
        self.pad(align);
        let start = self.buf.len();
        body(self)?;
        let len = self.buf.len() - start;
        if len > MAX_ARRAY {
            return Err(Error::protocol(format!(
                "array of {len} bytes (at most {MAX_ARRAY})"
            )));
        }
        // Bounded by MAX_ARRAY just above.
        self.buf[len_at..len_at + 4].copy_from_slice(&(len as u32).to_le_bytes());
        Ok(())
    }
}

/// Unmarshals values from bytes a peer sent.
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
    depth: usize,
}

impl<'a> Decoder<'a> {
    /// `buf` starts 8-aligned in its message; `big_endian` as the message's first byte says.
    pub fn new(buf: &'a [u8], big_endian: bool) -> Self {
        Decoder {
            buf,
            pos: 0,
            big_endian,
            depth: 0,
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn fail(&self, what: impl std::fmt::Display) -> Error {
        Error::protocol(format!("at byte {}: {what}", self.pos))
    }

    fn align(&mut self, align: usize) -> Result<()> {
        let to = self.pos.next_multiple_of(align);
        if to > self.buf.len() {
            return Err(self.fail("truncated (padding)"));
        }
        self.pos = to;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| self.fail(format!("truncated (wants {n} more bytes)")))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.align(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        if self.big_endian {
            out.reverse();
        }
        // Callers read the bytes as little-endian.
        Ok(out)
    }

    pub fn u32(&mut self) -> Result<u32> {
        self.fixed::<4>().map(u32::from_le_bytes)
    }

    fn text(&mut self, len: usize) -> Result<String> {
        let bytes = self.take(len)?;
        if self.take(1)? != [0] {
            return Err(self.fail("a string not ended by NUL"));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| self.fail("a string not in UTF-8"))?;
        if s.contains('\0') {
            return Err(self.fail("a string containing NUL"));
        }
        Ok(s.to_owned())
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u32()? as usize;
        self.text(len)
    }

    pub fn signature(&mut self) -> Result<String> {
        let len = usize::from(self.take(1)?[0]);
        self.text(len)
    }

    /// Reads one value of type `t`.
    pub fn value(&mut self, t: &Type) -> Result<Value> {
        Ok(match t {
            Type::Byte => Value::Byte(self.take(1)?[0]),
            Type::Bool => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                n => return Err(self.fail(format!("boolean {n}"))),
            },
            Type::I16 => Value::I16(i16::from_le_bytes(self.fixed()?)),
            Type::U16 => Value::U16(u16::from_le_bytes(self.fixed()?)),
            Type::I32 => Value::I32(i32::from_le_bytes(self.fixed()?)),
            Type::U32 => Value::U32(self.u32()?),
            Type::I64 => Value::I64(i64::from_le_bytes(self.fixed()?)),
            Type::U64 => Value::U64(u64::from_le_bytes(self.fixed()?)),
            Type::F64 => Value::F64(f64::from_le_bytes(self.fixed()?)),
            Type::Str => Value::Str(self.string()?),
            Type::Path => {
                let p = self.string()?;
                if !valid_object_path(&p) {
                    return Err(self.fail(format!("{p:?} is not an object path")));
                }
                Value::ObjectPath(p)
            }
            Type::Sig => {
                let s = self.signature()?;
                parse_signature(&s)?;
                Value::Signature(s)
            }
            _ => self.container(t)?,
        })
    }

    fn container(&mut self, t: &Type) -> Result<Value> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.fail("values nested deeper than 64"));
        }
        let v = match t {
            Type::Variant => {
                let sig = self.signature()?;
                let mut types = parse_signature(&sig)?;
                if types.len() != 1 {
                    return Err(self.fail(format!("variant of signature {sig:?}")));
                }
                let inner = types.remove(0);
                Value::Variant(Box::new(self.value(&inner)?))
            }
            Type::Array(elem) => self.array(elem)?,
            Type::Struct(fields) => {
                self.align(8)?;
                let mut out = Vec::new();
                for f in fields {
                    out.push(self.value(f)?);
                }
                Value::Struct(out)
            }
            Type::Dict(k, v) => {
                self.align(8)?;
                let key = self.value(k)?;
                Value::DictEntry(Box::new(key), Box::new(self.value(v)?))
            }
            _ => return Err(self.fail("internal: a basic type taken for a container")),
        };
        self.depth -= 1;
        Ok(v)
    }

    fn array(&mut self, elem: &Type) -> Result<Value> {
        let len = self.u32()? as usize;
        if len > MAX_ARRAY {
            return Err(self.fail(format!("array of {len} bytes (at most {MAX_ARRAY})")));
        }
        self.align(elem.align())?;
        let end = self.pos + len;
        if end > self.buf.len() {
            return Err(self.fail(format!("truncated (an array of {len} bytes)")));
        }
        if *elem == Type::Byte {
            return Ok(Value::Bytes(self.take(len)?.to_vec()));
        }
        let mut items = Vec::new();
        while self.pos < end {
            items.push(self.value(elem)?);
        }
        if self.pos != end {
            return Err(self.fail(format!("array elements overrun its {len} bytes")));
        }
        Ok(match elem {
            Type::U32 => Value::ArrayU32(items.iter().filter_map(Value::as_u32).collect()),
            Type::Str => Value::ArrayStr(
                items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::Str(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => {
                let mut sig = String::new();
                elem.write_signature(&mut sig);
                Value::Array(sig, items)
            }
        })
    }
}

/// Decodes a whole body of signature `sig`; every byte must be used.
pub(crate) fn decode_body(body: &[u8], sig: &str, big_endian: bool) -> Result<Vec<Value>> {
    let types = parse_signature(sig)?;
    let mut d = Decoder::new(body, big_endian);
    let mut out = Vec::with_capacity(types.len());
    for t in &types {
        out.push(d.value(t)?);
    }
    if d.pos() != body.len() {
        return Err(Error::protocol(format!(
            "body of signature {sig:?}: {} bytes left over",
            body.len() - d.pos()
        )));
    }
    Ok(out)
}

/// Encodes values as a body, returning the bytes and the signature.
pub(crate) fn encode_body(values: &[Value]) -> Result<(Vec<u8>, String)> {
    let mut e = Encoder::new();
    let mut sig = String::new();
    for v in values {
        v.write_signature(&mut sig);
        e.value(v)?;
    }
    parse_signature(&sig)?;
    Ok((e.buf, sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(values: &[Value]) -> Vec<u8> {
        match encode_body(values) {
            Ok((bytes, _)) => bytes,
            Err(e) => panic!("encoding {values:?}: {e}"),
        }
    }

    // Byte vectors worked out by hand from the spec's alignment rules.
    #[test]
    fn basic_types_are_aligned_from_the_body_start() {
        assert_eq!(
            body(&[Value::Byte(1), Value::U32(2)]),
            [1, 0, 0, 0, 2, 0, 0, 0]
        );
        assert_eq!(
            body(&[Value::Byte(1), Value::U64(2)]),
            [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            body(&[Value::I16(-2), Value::Byte(3), Value::U16(4)]),
            [0xfe, 0xff, 3, 0, 4, 0]
        );
        assert_eq!(body(&[Value::Bool(true)]), [1, 0, 0, 0]);
        assert_eq!(body(&[Value::I32(-1)]), [0xff; 4]);
        assert_eq!(body(&[Value::I64(-1)]), [0xff; 8]);
        assert_eq!(body(&[Value::F64(1.0)]), 1.0f64.to_le_bytes());
        assert_eq!(
            body(&[Value::Str("ab".into())]),
            [2, 0, 0, 0, b'a', b'b', 0]
        );
        assert_eq!(
            body(&[Value::ObjectPath("/".into())]),
            [1, 0, 0, 0, b'/', 0]
        );
        assert_eq!(body(&[Value::Signature("as".into())]), [2, b'a', b's', 0]);
        // A string after a byte: length aligned to 4.
        assert_eq!(
            body(&[Value::Byte(7), Value::Str("".into())]),
            [7, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn containers() {
        // A variant: signature, then the value at its own alignment.
        assert_eq!(
            body(&[Value::Variant(Box::new(Value::U64(7)))]),
            [1, b't', 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]
        );
        // An empty array of 8-aligned elements still pads after its length, which excludes it.
        assert_eq!(body(&[Value::Array("t".into(), vec![])]), [0; 8]);
        assert_eq!(
            body(&[Value::ArrayU32(vec![1, 2])]),
            [8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]
        );
        assert_eq!(
            body(&[Value::Bytes(vec![0x0f, 0xf0])]),
            [2, 0, 0, 0, 0x0f, 0xf0]
        );
        // a(sv) with ("Delegate", <true>), as StartTransientUnit takes it.
        let delegate = Value::Array(
            "(sv)".into(),
            vec![Value::Struct(vec![
                Value::Str("Delegate".into()),
                Value::Variant(Box::new(Value::Bool(true))),
            ])],
        );
        let mut want = vec![20, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0];
        want.extend_from_slice(b"Delegate\0");
        want.extend_from_slice(&[1, b'b', 0, 1, 0, 0, 0]);
        assert_eq!(body(&[delegate]), want);
        // a{sq}: each entry 8-aligned.
        let dict = Value::Array(
            "{sq}".into(),
            vec![
                Value::DictEntry(Box::new(Value::Str("a".into())), Box::new(Value::U16(1))),
                Value::DictEntry(Box::new(Value::Str("b".into())), Box::new(Value::U16(2))),
            ],
        );
        let want = [
            16, 0, 0, 0, 0, 0, 0, 0, // length, padding to 8
            1, 0, 0, 0, b'a', 0, 1, 0, // "a", 1
            1, 0, 0, 0, b'b', 0, 2, 0, // "b", 2
        ];
        assert_eq!(body(&[dict]), want);
    }

    #[test]
    fn signatures_of_values() {
        let v = Value::str_pairs([("/dev/null", "rwm")]);
        assert_eq!(v.signature(), "a(ss)");
        assert_eq!(Value::Array("{sv}".into(), vec![]).signature(), "a{sv}");
        let nested = Value::Struct(vec![Value::Byte(0), Value::ArrayStr(vec![])]);
        assert_eq!(nested.signature(), "(yas)");
    }

    fn every_value() -> Vec<Value> {
        vec![
            Value::Byte(0xfe),
            Value::Bool(false),
            Value::I16(i16::MIN),
            Value::U16(u16::MAX),
            Value::I32(i32::MIN),
            Value::U32(u32::MAX),
            Value::I64(i64::MIN),
            Value::U64(u64::MAX),
            Value::F64(-0.5),
            Value::Str("ünïcode".into()),
            Value::ObjectPath("/org/freedesktop/systemd1/job/42".into()),
            Value::Signature("a{sv}".into()),
            Value::Variant(Box::new(Value::Variant(Box::new(Value::I16(3))))),
            Value::ArrayU32(vec![1, 2, 3]),
            Value::Bytes(vec![0b1010_0101]),
            Value::ArrayStr(vec!["a".into(), "".into()]),
            Value::str_pairs([("/dev/null", "rwm"), ("char-pts", "rw")]),
            Value::Array(
                "{sv}".into(),
                vec![Value::DictEntry(
                    Box::new(Value::Str("k".into())),
                    Box::new(Value::Variant(Box::new(Value::U64(1)))),
                )],
            ),
            Value::Array(
                "ay".into(),
                vec![Value::Bytes(vec![1]), Value::Bytes(vec![])],
            ),
            Value::Array("aay".into(), vec![Value::Array("ay".into(), vec![])]),
            Value::Struct(vec![Value::Byte(1), Value::Struct(vec![Value::U64(2)])]),
        ]
    }

    #[test]
    fn round_trip_in_both_byte_orders() {
        let values = every_value();
        let (bytes, sig) = encode_body(&values).expect("encode");
        let back = decode_body(&bytes, &sig, false).expect("decode");
        assert_eq!(back, values);
        // A generic array of u32 decodes to the typed form.
        let (bytes, sig) = encode_body(&[Value::Array("u".into(), vec![Value::U32(5)])]).unwrap();
        assert_eq!(
            decode_body(&bytes, &sig, false).unwrap(),
            [Value::ArrayU32(vec![5])]
        );
        // Big-endian: the same numbers, bytes reversed.
        assert_eq!(
            decode_body(&[0, 0, 0, 42, 0, 1], "uq", true).expect("big-endian"),
            [Value::U32(42), Value::U16(1)]
        );
    }

    #[test]
    fn bad_values_are_refused_before_sending() {
        let refused = [
            Value::Str("a\0b".into()),
            Value::ObjectPath("org/x".into()),
            Value::ObjectPath("/a//b".into()),
            Value::ObjectPath("/a-b".into()),
            Value::Signature("a".into()),
            Value::Signature("h".into()),
            Value::Struct(vec![]),
            Value::Array("u".into(), vec![Value::Str("x".into())]),
            Value::Array("uu".into(), vec![]),
            Value::Array("{vs}".into(), vec![]),
            Value::DictEntry(Box::new(Value::Byte(0)), Box::new(Value::Byte(0))),
        ];
        for v in refused {
            assert!(
                encode_body(std::slice::from_ref(&v)).is_err(),
                "{v:?} was encoded"
            );
        }
    }

    #[test]
    fn signature_limits() {
        assert!(parse_signature(&"a".repeat(32).add_u()).is_ok());
        assert!(parse_signature(&"a".repeat(33).add_u()).is_err());
        let structs = format!("{}u{}", "(".repeat(32), ")".repeat(32));
        assert!(parse_signature(&structs).is_ok());
        let structs = format!("{}u{}", "(".repeat(33), ")".repeat(33));
        assert!(parse_signature(&structs).is_err());
        for bad in ["(", ")", "a", "{su}", "a{vs}", "a{sus}", "()", "z", "ah"] {
            assert!(parse_signature(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse_signature(&"y".repeat(256)).is_err());
    }

    trait AddU {
        fn add_u(self) -> String;
    }
    impl AddU for String {
        fn add_u(mut self) -> String {
            self.push('u');
            self
        }
    }

    #[test]
    fn hostile_bodies_are_errors() {
        let cases: &[(&[u8], &str)] = &[
            (&[0xff, 0xff, 0xff, 0xff], "au"),   // array longer than the body
            (&[0, 0, 0, 5, 0, 0, 0, 0], "at"),   // array past the 64 MiB limit
            (&[2, 0, 0, 0], "b"),                // boolean 2
            (&[1, 0, 0, 0, b'a', 1], "s"),       // no NUL at the end
            (&[2, 0, 0, 0, 0xc3, 0x28, 0], "s"), // not UTF-8
            (&[1, 0, 0, 0, b'x', 0], "o"),       // not an object path
            (&[1, b'h', 0, 0, 0, 0, 0, 0], "v"), // fd in a variant
            (&[2, b'u', b'u', 0, 0, 0, 0, 0], "v"), // two types in a variant
            (&[4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0], "au"), // element overruns
            (&[1, 0, 0, 0, 0, 0, 0, 0, 0], "y"), // bytes left over
            (&[3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], "au"), // length not a whole element
        ];
        for (bytes, sig) in cases {
            assert!(
                decode_body(bytes, sig, false).is_err(),
                "{bytes:?} as {sig} decoded"
            );
        }
        // Variants nested 100 deep: refused at depth 64, not a stack overflow.
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[1, b'v', 0]);
        }
        deep.extend_from_slice(&[1, b'y', 0, 7]);
        assert!(decode_body(&deep, "v", false).is_err());
    }
}
