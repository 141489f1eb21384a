//! D-Bus values as hutch builds and reads them.

/// A D-Bus value. The typed arrays (`ArrayU32`, `Bytes`, `ArrayStr`) are the forms that values
/// of signature `au`, `ay` and `as` decode to; `Array` holds any other array, with its element
/// signature so that an empty array still has a type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    Variant(Box<Value>),
    /// `au`, e.g. systemd's `PIDs`.
    ArrayU32(Vec<u32>),
    /// `ay`, e.g. systemd's `AllowedCPUs` bitmask.
    Bytes(Vec<u8>),
    /// `as`.
    ArrayStr(Vec<String>),
    /// Any other array: the element signature (e.g. `(ss)`, `{sv}`) and the elements.
    Array(String, Vec<Value>),
    /// A struct: at least one field.
    Struct(Vec<Value>),
    /// A dict entry `{kv}`: only as the element of an `Array`, the key a basic type.
    DictEntry(Box<Value>, Box<Value>),
}

impl Value {
    /// An `a(ss)` array, as systemd's `DeviceAllow` takes (device node or class, access).
    pub fn str_pairs<A: Into<String>, B: Into<String>>(
        pairs: impl IntoIterator<Item = (A, B)>,
    ) -> Value {
        let items = pairs
            .into_iter()
            .map(|(a, b)| Value::Struct(vec![Value::Str(a.into()), Value::Str(b.into())]))
            .collect();
        Value::Array("(ss)".into(), items)
    }

    /// The text of a string, object path or signature.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    /// The number in a `u32`.
    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(n) => Some(*n),
            _ => None,
        }
    }

    /// The value's D-Bus signature, e.g. `a(ss)`.
    pub fn signature(&self) -> String {
        let mut out = String::new();
        self.write_signature(&mut out);
        out
    }

    pub(crate) fn write_signature(&self, out: &mut String) {
        let code = match self {
            Value::Byte(_) => "y",
            Value::Bool(_) => "b",
            Value::I16(_) => "n",
            Value::U16(_) => "q",
            Value::I32(_) => "i",
            Value::U32(_) => "u",
            Value::I64(_) => "x",
            Value::U64(_) => "t",
            Value::F64(_) => "d",
            Value::Str(_) => "s",
            Value::ObjectPath(_) => "o",
            Value::Signature(_) => "g",
            Value::Variant(_) => "v",
            Value::ArrayU32(_) => "au",
            Value::Bytes(_) => "ay",
            Value::ArrayStr(_) => "as",
            Value::Array(elem, _) => {
                out.push('a');
                out.push_str(elem);
                return;
            }
            Value::Struct(fields) => {
                out.push('(');
                fields.iter().for_each(|f| f.write_signature(out));
                out.push(')');
                return;
            }
            Value::DictEntry(k, v) => {
                out.push('{');
                k.write_signature(out);
                v.write_signature(out);
                out.push('}');
                return;
            }
        };
        out.push_str(code);
    }
}
