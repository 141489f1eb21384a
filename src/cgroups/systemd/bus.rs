//! The calls the driver makes to systemd's manager, through hutch's own D-Bus client
//! ([`crate::dbus`]): one connection per command, closed when it returns.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::properties::{also_in_files, Prop, Properties};
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

/// systemd's answer to a property it does not know: "Cannot set property NAME, or unknown
/// property."
const PROPERTY_READ_ONLY: &str = "org.freedesktop.DBus.Error.PropertyReadOnly";

/// The property an older systemd refused for not knowing it, when it is one of the limits hutch
/// also writes to the cgroup files (`AllowedCPUs` before systemd 244, `CPUQuotaPeriodUSec`
/// before 242, ...). Asking systemd for the version and keeping a table of when each property
/// came, as runc does, costs a round trip on every `create` and goes stale; systemd's own
/// answer costs one retry on old hosts only. A property only an annotation asks for is never
/// dropped: the user asked systemd for it by name.
fn unknown_limit(err: &crate::dbus::Error, sent: &[(String, Value)]) -> Option<String> {
    if err.remote_name() != Some(PROPERTY_READ_ONLY) {
        return None;
    }
    let name = err
        .remote_message()?
        .strip_prefix("Cannot set property ")?
        .split(',')
        .next()?;
    let was_sent = sent.iter().any(|(n, _)| n == name);
    (was_sent && also_in_files(name)).then(|| name.to_string())
}

/// Takes `props` through `call`, leaving out, with a warning, each limit the manager does not
/// know (at most once per property, so the retries end).
fn with_known_properties<T>(
    props: &Properties,
    mut call: impl FnMut(&[(String, Value)]) -> crate::dbus::Result<T>,
) -> crate::dbus::Result<T> {
    let mut values = to_values(props);
    loop {
        let result = call(&values);
        let Some(name) = result
            .as_ref()
            .err()
            .and_then(|e| unknown_limit(e, &values))
        else {
            return result;
        };
        crate::logging::warn(&format!(
            "systemd does not know the unit property {name} (too old): the limit is kept in the \
             cgroup file only"
        ));
        values.retain(|(n, _)| *n != name);
    }
}

/// Starts the transient unit and waits for its job. A unit of that name left failed by an
/// earlier container is reset and the start tried once more (runc does the same).
pub fn start_unit(unit: &SystemdUnit, props: &Properties) -> Result<()> {
    let mut systemd = connect(unit)?;
    let mut start = |values: &[(String, Value)]| {
        let job = systemd.start_transient_unit(&unit.name, "replace", values);
        if job.as_ref().err().and_then(|e| e.remote_name()) != Some(UNIT_EXISTS) {
            return job;
        }
        let _ = systemd.reset_failed_unit(&unit.name);
        systemd.start_transient_unit(&unit.name, "replace", values)
    };
    let job = with_known_properties(props, &mut start).context("StartTransientUnit")?;
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
    with_known_properties(props, |values| {
        systemd.set_unit_properties(&unit.name, true, values)
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbus::Error;

    fn props(names: &[&str]) -> Properties {
        names
            .iter()
            .map(|n| (n.to_string(), Prop::U64(1)))
            .collect()
    }

    /// A manager that knows none of `unknown`, as systemd answers it.
    fn manager<'a>(
        unknown: &'a [&str],
        calls: &'a mut Vec<Vec<String>>,
    ) -> impl FnMut(&[(String, Value)]) -> crate::dbus::Result<()> + 'a {
        move |values| {
            let names: Vec<String> = values.iter().map(|(n, _)| n.clone()).collect();
            calls.push(names.clone());
            match names.iter().find(|n| unknown.contains(&n.as_str())) {
                Some(name) => Err(refusal(PROPERTY_READ_ONLY, name)),
                None => Ok(()),
            }
        }
    }

    #[test]
    fn limits_an_old_systemd_does_not_know_are_left_to_the_files() {
        let mut calls = Vec::new();
        let sent = props(&["Delegate", "AllowedCPUs", "MemoryMax", "CPUQuotaPeriodUSec"]);
        let unknown = ["AllowedCPUs", "CPUQuotaPeriodUSec"];
        with_known_properties(&sent, manager(&unknown, &mut calls)).unwrap();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[2], ["Delegate", "MemoryMax"]);
    }

    #[test]
    fn an_annotations_unknown_property_fails_the_call() {
        let mut calls = Vec::new();
        let sent = props(&["Delegate", "MemoryMax", "CollectModeX"]);
        let err = with_known_properties(&sent, manager(&["CollectModeX"], &mut calls)).unwrap_err();
        assert!(err.to_string().contains("CollectModeX"), "{err}");
        assert_eq!(calls.len(), 1);
    }

    fn refusal(name: &str, property: &str) -> Error {
        Error::Remote {
            method: format!("{MANAGER}.StartTransientUnit"),
            name: name.into(),
            message: format!("Cannot set property {property}, or unknown property."),
        }
    }

    #[test]
    fn other_refusals_are_not_retried() {
        let sent = props(&["MemoryMax"]);
        for (name, property) in [
            ("org.freedesktop.DBus.Error.InvalidArgs", "MemoryMax"),
            // Refusing a property that was not sent.
            (PROPERTY_READ_ONLY, "TasksMax"),
        ] {
            let mut calls = 0;
            let err = with_known_properties(&sent, |_| {
                calls += 1;
                Err::<(), _>(refusal(name, property))
            })
            .unwrap_err();
            assert_eq!(calls, 1, "{err}");
        }
    }
}
