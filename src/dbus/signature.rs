//! Signatures: the types of values, parsed and bounded as the spec says.

use super::error::{Error, Result};

/// The spec's limit on a signature's length.
pub const MAX_SIGNATURE: usize = 255;
/// The spec's limit on array nesting, and on struct nesting, within one signature.
const MAX_NEST: u32 = 32;

/// One complete type of a signature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Type {
    Byte,
    Bool,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F64,
    Str,
    Path,
    Sig,
    Variant,
    Array(Box<Type>),
    Struct(Vec<Type>),
    Dict(Box<Type>, Box<Type>),
}

impl Type {
    pub(crate) fn align(&self) -> usize {
        match self {
            Type::Byte | Type::Sig | Type::Variant => 1,
            Type::I16 | Type::U16 => 2,
            Type::Bool | Type::I32 | Type::U32 | Type::Str | Type::Path | Type::Array(_) => 4,
            Type::I64 | Type::U64 | Type::F64 | Type::Struct(_) | Type::Dict(..) => 8,
        }
    }

    fn is_basic(&self) -> bool {
        !matches!(
            self,
            Type::Variant | Type::Array(_) | Type::Struct(_) | Type::Dict(..)
        )
    }

    pub(crate) fn write_signature(&self, out: &mut String) {
        let code = match self {
            Type::Byte => 'y',
            Type::Bool => 'b',
            Type::I16 => 'n',
            Type::U16 => 'q',
            Type::I32 => 'i',
            Type::U32 => 'u',
            Type::I64 => 'x',
            Type::U64 => 't',
            Type::F64 => 'd',
            Type::Str => 's',
            Type::Path => 'o',
            Type::Sig => 'g',
            Type::Variant => 'v',
            Type::Array(elem) => {
                out.push('a');
                return elem.write_signature(out);
            }
            Type::Struct(fields) => {
                out.push('(');
                fields.iter().for_each(|f| f.write_signature(out));
                out.push(')');
                return;
            }
            Type::Dict(k, v) => {
                out.push('{');
                k.write_signature(out);
                v.write_signature(out);
                out.push('}');
                return;
            }
        };
        out.push(code);
    }
}

/// The complete types of a signature, in order. Unix fds (`h`) are refused: hutch does not
/// negotiate them.
pub(crate) fn parse_signature(sig: &str) -> Result<Vec<Type>> {
    if sig.len() > MAX_SIGNATURE {
        return Err(Error::protocol(format!(
            "signature of {} bytes (at most {MAX_SIGNATURE})",
            sig.len()
        )));
    }
    let bytes = sig.as_bytes();
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < bytes.len() {
        out.push(
            parse_type(bytes, &mut pos, 0, 0)
                .map_err(|what| Error::protocol(format!("signature {sig:?} at {pos}: {what}")))?,
        );
    }
    Ok(out)
}

fn parse_type(
    b: &[u8],
    pos: &mut usize,
    arrays: u32,
    structs: u32,
) -> std::result::Result<Type, &'static str> {
    let c = *b.get(*pos).ok_or("ends inside a container")?;
    *pos += 1;
    Ok(match c {
        b'y' => Type::Byte,
        b'b' => Type::Bool,
        b'n' => Type::I16,
        b'q' => Type::U16,
        b'i' => Type::I32,
        b'u' => Type::U32,
        b'x' => Type::I64,
        b't' => Type::U64,
        b'd' => Type::F64,
        b's' => Type::Str,
        b'o' => Type::Path,
        b'g' => Type::Sig,
        b'v' => Type::Variant,
        b'a' if arrays >= MAX_NEST => return Err("arrays nested deeper than 32"),
        b'a' if b.get(*pos) == Some(&b'{') => {
            *pos += 1;
            if structs >= MAX_NEST {
                return Err("structs nested deeper than 32");
            }
            let key = parse_type(b, pos, arrays + 1, structs + 1)?;
            if !key.is_basic() {
                return Err("a dict entry's key is not a basic type");
            }
            let value = parse_type(b, pos, arrays + 1, structs + 1)?;
            if b.get(*pos) != Some(&b'}') {
                return Err("a dict entry has other than two types");
            }
            *pos += 1;
            Type::Array(Box::new(Type::Dict(Box::new(key), Box::new(value))))
        }
        b'a' => Type::Array(Box::new(parse_type(b, pos, arrays + 1, structs)?)),
        b'(' if structs >= MAX_NEST => return Err("structs nested deeper than 32"),
        b'(' => {
            let mut fields = Vec::new();
            while b.get(*pos) != Some(&b')') {
                fields.push(parse_type(b, pos, arrays, structs + 1)?);
            }
            *pos += 1;
            if fields.is_empty() {
                return Err("empty struct");
            }
            Type::Struct(fields)
        }
        b'h' => return Err("unix fds are not supported"),
        _ => return Err("not a type code"),
    })
}

/// Whether `path` is a valid object path: `/`, or `/`-separated non-empty elements of
/// `[A-Za-z0-9_]`.
pub fn valid_object_path(path: &str) -> bool {
    path == "/"
        || (path.starts_with('/')
            && path[1..].split('/').all(|el| {
                !el.is_empty() && el.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            }))
}
