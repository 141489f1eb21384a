//! The calls the driver makes to systemd's manager, through hutch's own D-Bus client
//! ([`crate::dbus`]): one connection per command, closed when it returns.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::properties::{Prop, Properties};
use super::SystemdUnit;
use crate::dbus::systemd::{MANAGER, MANAGER_PATH, NO_SUCH_UNIT, UNIT_EXISTS};
use crate::dbus::{Auth, Systemd, Value};

/// A reply or a job's end: systemd answers in milliseconds when idle, but a manager busy with
/// many jobs (a boot; a loaded machine) can take seconds, and failing a create costs more than
/// waiting (runc's D-Bus calls wait 25 s); a stop may also have to wait for processes to die.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn connect(unit: &SystemdUnit) -> Result<Systemd> {
    if unit.user {
        // In a user namespace hutch's uid means nothing to the user's manager: the socket's
        // credentials say who it is.
        let auth = if crate::host_proc::in_user_namespace() {
            Auth::PeerCredentials
        } else {
            Auth::Uid(nix::unistd::geteuid().as_raw())
        };
        Systemd::user(CALL_TIMEOUT, auth).context("connecting to the user's systemd manager")
    } else {
        Systemd::system(CALL_TIMEOUT).context(
            "connecting to systemd (the system bus, then /run/systemd/private): is systemd running?",
        )
    }
}

fn to_values(props: &Properties) -> Vec<(String, Value)> {
    props
        .iter()
        .map(|(name, prop)| {
            let value = match prop {
                Prop::U64(v) => Value::U64(*v),
                Prop::Bool(v) => Value::Bool(*v),
                Prop::Str(v) => Value::Str(v.clone()),
                Prop::Bytes(v) => Value::Bytes(v.clone()),
                Prop::U32s(v) => Value::ArrayU32(v.clone()),
                Prop::Pairs(v) => Value::str_pairs(v.iter().cloned()),
            };
            (name.clone(), value)
        })
        .collect()
}

/// The manager's own cgroup, under which its units' cgroups are: `/` for the system's, the
/// `user@UID.service` cgroup for a user's.
pub fn manager_cgroup(unit: &SystemdUnit) -> Result<String> {
    if !unit.user {
        return Ok("/".into());
    }
    let mut systemd = connect(unit)?;
    let value = systemd
        .get_property(MANAGER_PATH, MANAGER, "ControlGroup")
        .context("the user manager's ControlGroup")?;
    match value.as_str() {
        Some(path) if path.starts_with('/') => Ok(path.to_string()),
        _ => bail!("the user manager's ControlGroup is {value:?}, not a cgroup path"),
    }
}

/// Starts the transient unit and waits for its job. A unit of that name left failed by an
/// earlier container is reset and the start tried once more (runc does the same).
pub fn start_unit(unit: &SystemdUnit, props: &Properties) -> Result<()> {
    let mut systemd = connect(unit)?;
    let values = to_values(props);
    let mut job = systemd.start_transient_unit(&unit.name, "replace", &values);
    if job.as_ref().err().and_then(|e| e.remote_name()) == Some(UNIT_EXISTS) {
        let _ = systemd.reset_failed_unit(&unit.name);
        job = systemd.start_transient_unit(&unit.name, "replace", &values);
    }
    let job = job.context("StartTransientUnit")?;
    let result = systemd.wait_for_job(&job)?;
    if result != "done" {
        bail!(
            "the job starting it ended {result:?} (journalctl -u {} may say why)",
            unit.name
        );
    }
    Ok(())
}

/// `SetUnitProperties`, for this boot only (`runtime`), as runc's `update`.
pub fn set_unit_properties(unit: &SystemdUnit, props: &Properties) -> Result<()> {
    let mut systemd = connect(unit)?;
    systemd
        .set_unit_properties(&unit.name, true, &to_values(props))
        .context("SetUnitProperties")
}

/// Stops the unit and waits for its job; then resets it in case it failed, so nothing of it
/// stays loaded. A unit that is gone already is no error.
pub fn stop_unit(unit: &SystemdUnit) -> Result<()> {
    let mut systemd = connect(unit)?;
    match systemd.stop_unit(&unit.name, "replace") {
        Ok(job) => {
            systemd.connection().set_timeout(STOP_TIMEOUT);
            let result = systemd.wait_for_job(&job)?;
            if result != "done" {
                bail!("the job stopping it ended {result:?}");
            }
        }
        Err(err) if err.remote_name() == Some(NO_SUCH_UNIT) => {}
        Err(err) => return Err(err).context("StopUnit"),
    }
    let _ = systemd.reset_failed_unit(&unit.name);
    Ok(())
}
