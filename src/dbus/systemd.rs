//! systemd's manager (`org.freedesktop.systemd1.Manager` at `/org/freedesktop/systemd1`): the
//! calls a systemd cgroup driver makes.
//!
//! Starting and stopping units are jobs: the call returns the job's object path at once and
//! systemd announces the end with the `JobRemoved(u id, o job, s unit, s result)` signal. hutch
//! subscribes (and, on a bus, adds the match rule) before the first such call, so the signal
//! cannot pass before the wait starts; signals that come while the call's reply is awaited are
//! kept for [`Systemd::wait_for_job`].

use std::io;
use std::time::Duration;

use super::address::{self, Address};
use super::conn::{Auth, Connection, Transport};
use super::error::{Error, Result};
use super::message::Message;
use super::value::Value;

/// systemd's bus name.
pub const SERVICE: &str = "org.freedesktop.systemd1";
/// The manager object.
pub const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
/// The manager interface.
pub const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// The error of `GetUnit`, `StopUnit`... for a unit that is not loaded.
pub const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
/// The error of `StartTransientUnit` for a name already taken.
pub const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
const ALREADY_SUBSCRIBED: &str = "org.freedesktop.systemd1.AlreadySubscribed";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// A connection to a systemd manager (the system's or a user's).
pub struct Systemd {
    conn: Connection,
    subscribed: bool,
    /// On a bus: the unique name owning [`SERVICE`], the only sender whose `JobRemoved` counts.
    owner: Option<String>,
}

impl Systemd {
    pub fn new(conn: Connection) -> Self {
        Systemd {
            conn,
            subscribed: false,
            owner: None,
        }
    }

    /// The system manager: the system bus, as runc reaches it, else its private socket (root
    /// only; works before dbus-daemon runs).
    pub fn system(timeout: Duration) -> Result<Self> {
        let private = Address::Path(address::SYSTEMD_PRIVATE.into());
        let uid = nix::unistd::geteuid().as_raw();
        Self::first_of(
            &[
                (address::system_bus(), Transport::Bus),
                (private, Transport::Peer),
            ],
            timeout,
            Auth::Uid(uid),
        )
    }

    /// The calling user's manager: `$XDG_RUNTIME_DIR/systemd/private`, else the session bus.
    /// In a user namespace, `auth` must be the uid outside it or [`Auth::PeerCredentials`].
    pub fn user(timeout: Duration, auth: Auth) -> Result<Self> {
        let candidates: Vec<_> = [
            address::user_manager_private().map(|a| (a, Transport::Peer)),
            address::session_bus().map(|a| (a, Transport::Bus)),
        ]
        .into_iter()
        .flatten()
        .collect();
        Self::first_of(&candidates, timeout, auth)
    }

    fn first_of(
        candidates: &[(Address, Transport)],
        timeout: Duration,
        auth: Auth,
    ) -> Result<Self> {
        let mut failures = Vec::new();
        for (address, transport) in candidates {
            match Connection::connect_with(address, *transport, timeout, auth) {
                Ok(conn) => return Ok(Self::new(conn)),
                Err(e) => failures.push(e.to_string()),
            }
        }
        let why = match failures.is_empty() {
            true => "neither $XDG_RUNTIME_DIR nor $DBUS_SESSION_BUS_ADDRESS is set".to_owned(),
            false => failures.join("; "),
        };
        Err(Error::Io {
            step: "connecting to systemd".into(),
            source: io::Error::new(io::ErrorKind::NotFound, why),
        })
    }

    /// The connection, e.g. to change its timeout.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    fn manager_call(&mut self, member: &str, args: Vec<Value>) -> Result<Vec<Value>> {
        self.conn
            .call(Some(SERVICE), MANAGER_PATH, MANAGER, member, args)
    }

    /// Asks for `JobRemoved` before any job is made. On the bus systemd emits its signals only
    /// while someone is subscribed, and the bus routes them only along match rules.
    fn subscribe(&mut self) -> Result<()> {
        if self.subscribed {
            return Ok(());
        }
        self.conn
            .watch_signal(Some(SERVICE), MANAGER, "JobRemoved")?;
        if self.conn.transport() == Transport::Bus {
            let owner = self.conn.call(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "GetNameOwner",
                vec![Value::Str(SERVICE.into())],
            )?;
            self.owner = owner.first().and_then(Value::as_str).map(str::to_owned);
        }
        match self.manager_call("Subscribe", Vec::new()) {
            Err(e) if e.remote_name() != Some(ALREADY_SUBSCRIBED) => return Err(e),
            _ => {}
        }
        self.subscribed = true;
        Ok(())
    }

    /// `StartTransientUnit(name, mode, properties, no aux units)`: the job's object path. Wait
    /// for its end with [`Systemd::wait_for_job`].
    pub fn start_transient_unit<S: AsRef<str>>(
        &mut self,
        name: &str,
        mode: &str,
        properties: &[(S, Value)],
    ) -> Result<String> {
        self.subscribe()?;
        let args = vec![
            Value::Str(name.into()),
            Value::Str(mode.into()),
            property_array(properties),
            Value::Array("(sa(sv))".into(), Vec::new()),
        ];
        let reply = self.manager_call("StartTransientUnit", args)?;
        object_path(&reply, "StartTransientUnit")
    }

    /// `StopUnit(name, mode)`: the job's object path.
    pub fn stop_unit(&mut self, name: &str, mode: &str) -> Result<String> {
        self.subscribe()?;
        let args = vec![Value::Str(name.into()), Value::Str(mode.into())];
        let reply = self.manager_call("StopUnit", args)?;
        object_path(&reply, "StopUnit")
    }

    /// Waits for the end of a job started through this connection: its result, `done` on
    /// success (else `canceled`, `timeout`, `failed`, `dependency`, `skipped`). Waits as long
    /// as the connection's timeout: raise it first for a stop that may take systemd longer.
    pub fn wait_for_job(&mut self, job: &str) -> Result<String> {
        let owner = self.owner.clone();
        let mut is_ours = |m: &Message| {
            m.member.as_deref() == Some("JobRemoved")
                && m.interface.as_deref() == Some(MANAGER)
                && (owner.is_none() || m.sender == owner)
                && m.body.get(1).and_then(Value::as_str) == Some(job)
        };
        let signal = self
            .conn
            .wait_signal(&format!("the end of systemd job {job}"), &mut is_ours)?;
        match signal.body.get(3) {
            Some(Value::Str(result)) => Ok(result.clone()),
            _ => Err(Error::protocol(format!(
                "JobRemoved for {job} has signature {:?}, not uoss",
                signal.signature
            ))),
        }
    }

    /// `SetUnitProperties(name, runtime, properties)`; `runtime` keeps the change until reboot
    /// only (what a container wants).
    pub fn set_unit_properties<S: AsRef<str>>(
        &mut self,
        name: &str,
        runtime: bool,
        properties: &[(S, Value)],
    ) -> Result<()> {
        let args = vec![
            Value::Str(name.into()),
            Value::Bool(runtime),
            property_array(properties),
        ];
        self.manager_call("SetUnitProperties", args).map(drop)
    }

    /// `GetUnit(name)`: the unit's object path, `None` when no such unit is loaded.
    pub fn get_unit(&mut self, name: &str) -> Result<Option<String>> {
        match self.manager_call("GetUnit", vec![Value::Str(name.into())]) {
            Ok(reply) => object_path(&reply, "GetUnit").map(Some),
            Err(e) if e.remote_name() == Some(NO_SUCH_UNIT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `ResetFailedUnit(name)`: forgets a failed unit's state so its name can be used again.
    pub fn reset_failed_unit(&mut self, name: &str) -> Result<()> {
        self.manager_call("ResetFailedUnit", vec![Value::Str(name.into())])
            .map(drop)
    }

    /// A property of an object (`org.freedesktop.DBus.Properties.Get`), without its variant.
    pub fn get_property(&mut self, path: &str, interface: &str, name: &str) -> Result<Value> {
        let args = vec![Value::Str(interface.into()), Value::Str(name.into())];
        let reply = self
            .conn
            .call(Some(SERVICE), path, PROPERTIES, "Get", args)?;
        match reply.into_iter().next() {
            Some(Value::Variant(v)) => Ok(*v),
            _ => Err(Error::protocol(format!(
                "Get of {interface}.{name} on {path} answered without a variant"
            ))),
        }
    }
}

/// Properties as systemd takes them: `a(sv)`.
fn property_array<S: AsRef<str>>(properties: &[(S, Value)]) -> Value {
    let items = properties
        .iter()
        .map(|(name, value)| {
            Value::Struct(vec![
                Value::Str(name.as_ref().to_owned()),
                Value::Variant(Box::new(value.clone())),
            ])
        })
        .collect();
    Value::Array("(sv)".into(), items)
}

fn object_path(reply: &[Value], method: &str) -> Result<String> {
    match reply.first() {
        Some(Value::ObjectPath(p)) => Ok(p.clone()),
        _ => Err(Error::protocol(format!(
            "{method} answered without an object path"
        ))),
    }
}
