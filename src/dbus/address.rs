//! Where the buses and systemd's private sockets are: D-Bus address strings
//! (`unix:path=/run/dbus/system_bus_socket;unix:abstract=...`) and the well-known paths.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// The system bus when `$DBUS_SYSTEM_BUS_ADDRESS` does not say otherwise.
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// systemd's own socket: peer-to-peer D-Bus with PID 1, root only, there before dbus-daemon is.
pub const SYSTEMD_PRIVATE: &str = "/run/systemd/private";

/// A unix socket to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Path(PathBuf),
    /// A Linux abstract socket name (without the leading NUL).
    Abstract(Vec<u8>),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Path(p) => write!(f, "{}", p.display()),
            Address::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}

/// The first unix socket of a D-Bus address list; `None` when it names none that hutch can use
/// (tcp, `unix:runtime=yes`, `unix:tmpdir=` which only servers listen on, bad escapes).
pub fn parse_address(list: &str) -> Option<Address> {
    list.split(';').find_map(|entry| {
        let params = entry.strip_prefix("unix:")?;
        params.split(',').find_map(|kv| {
            let (key, value) = kv.split_once('=')?;
            let value = unescape(value)?;
            match key {
                "path" => Some(Address::Path(OsString::from_vec(value).into())),
                "abstract" => Some(Address::Abstract(value)),
                _ => None,
            }
        })
    })
}

/// Undoes the address escaping: `%xx` is a byte, everything else stands for itself.
fn unescape(value: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hi = (bytes.next()? as char).to_digit(16)?;
        let lo = (bytes.next()? as char).to_digit(16)?;
        // Two hex digits: at most 255.
        out.push((hi * 16 + lo) as u8);
    }
    Some(out)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The system bus: `$DBUS_SYSTEM_BUS_ADDRESS`, else [`SYSTEM_BUS`].
pub fn system_bus() -> Address {
    env("DBUS_SYSTEM_BUS_ADDRESS")
        .and_then(|a| parse_address(&a))
        .unwrap_or_else(|| Address::Path(SYSTEM_BUS.into()))
}

/// The user's session bus: `$DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`.
pub fn session_bus() -> Option<Address> {
    env("DBUS_SESSION_BUS_ADDRESS")
        .and_then(|a| parse_address(&a))
        .or_else(|| env("XDG_RUNTIME_DIR").map(|d| Address::Path(PathBuf::from(d).join("bus"))))
}

/// The user's systemd manager's private socket: `$XDG_RUNTIME_DIR/systemd/private`.
pub fn user_manager_private() -> Option<Address> {
    env("XDG_RUNTIME_DIR").map(|d| Address::Path(PathBuf::from(d).join("systemd/private")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let path = |p: &str| Some(Address::Path(p.into()));
        assert_eq!(
            parse_address("unix:path=/run/dbus/system_bus_socket"),
            path("/run/dbus/system_bus_socket")
        );
        assert_eq!(
            parse_address("unix:path=/tmp/a%20b%2c,guid=0123"),
            path("/tmp/a b,")
        );
        assert_eq!(
            parse_address("tcp:host=x,port=1;unix:guid=1,abstract=/tmp/dbus-X"),
            Some(Address::Abstract(b"/tmp/dbus-X".to_vec()))
        );
        assert_eq!(parse_address("unix:runtime=yes"), None);
        assert_eq!(parse_address("unix:path=/x%4"), None);
        assert_eq!(parse_address("unix:path=/x%zz"), None);
        assert_eq!(parse_address(""), None);
    }
}
