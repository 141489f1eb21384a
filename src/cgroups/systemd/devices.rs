//! `DevicePolicy=` and `DeviceAllow=` for the unit, as runc sets them: systemd then enforces
//! the same allow list with its own eBPF program, next to hutch's (both must allow a device).
//!
//! systemd's list can only allow. Rules that end as "allow all, except …" (deny exceptions)
//! are left to hutch's program alone: the unit gets `DevicePolicy=auto` and no list, where runc
//! tells systemd to deny everything and warns.

use anyhow::Result;
use oci_spec::runtime::LinuxDeviceCgroup;

use super::properties::{Prop, Properties};
use crate::cgroups::devices::emulator::{access_str, DevType, Rule};
use crate::cgroups::devices::{emulate, rules_from_spec};

pub fn device_properties(list: &[LinuxDeviceCgroup]) -> Result<Properties> {
    let emulated = emulate(&rules_from_spec(list)?);
    if emulated.default_allow {
        return Ok(vec![
            ("DevicePolicy".into(), Prop::Str("auto".into())),
            ("DeviceAllow".into(), Prop::Pairs(Vec::new())),
        ]);
    }
    let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    let allowed = emulated
        .exceptions
        .iter()
        .filter(|r| r.allow)
        .filter_map(|r| entry(r, &proc_devices))
        .collect();
    Ok(vec![
        ("DevicePolicy".into(), Prop::Str("strict".into())),
        ("DeviceAllow".into(), Prop::Pairs(allowed)),
    ])
}

/// One `DeviceAllow=` entry: `/dev/char/1:3` for one device, `char-pts` for every minor of a
/// major (by its name in /proc/devices), `char-*` for every major. A rule systemd cannot name
/// (any type with a major, a major without a name) is left to hutch's program.
fn entry(rule: &Rule, proc_devices: &str) -> Option<(String, String)> {
    let kind = match rule.typ {
        DevType::Char => "char",
        DevType::Block => "block",
        DevType::All => return None,
    };
    let path = match (rule.major, rule.minor) {
        (None, _) => format!("{kind}-*"),
        (Some(major), None) => format!("{kind}-{}", major_name(proc_devices, kind, major)?),
        (Some(major), Some(minor)) => format!("/dev/{kind}/{major}:{minor}"),
    };
    Some((path, access_str(rule.access)))
}

/// The driver name of `major` in /proc/devices' "Character devices:" or "Block devices:" part.
fn major_name(proc_devices: &str, kind: &str, major: i64) -> Option<String> {
    let header = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    proc_devices
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (num, name) = l.trim().split_once(' ')?;
            (num.parse::<i64>().ok()? == major).then(|| name.trim().to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_DEVICES: &str =
        "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\nBlock devices:\n  8 sd\n";

    #[test]
    fn entries_name_devices_as_systemd_does() {
        let rule = |typ, major, minor| Rule {
            allow: true,
            typ,
            major,
            minor,
            access: 7,
        };
        let e = |r: Rule| entry(&r, PROC_DEVICES);
        assert_eq!(
            e(rule(DevType::Char, Some(1), Some(3))),
            Some(("/dev/char/1:3".into(), "rwm".into()))
        );
        assert_eq!(
            e(rule(DevType::Char, Some(136), None)),
            Some(("char-pts".into(), "rwm".into()))
        );
        assert_eq!(
            e(rule(DevType::Block, None, None)),
            Some(("block-*".into(), "rwm".into()))
        );
        assert_eq!(
            e(rule(DevType::Block, Some(8), None)).unwrap().0,
            "block-sd"
        );
        assert_eq!(e(rule(DevType::Char, Some(250), None)), None);
        assert_eq!(e(rule(DevType::All, Some(1), None)), None);
    }

    #[test]
    fn the_default_list_is_strict_and_an_allow_all_is_auto() {
        let p = device_properties(&[]).unwrap();
        assert_eq!(p[0], ("DevicePolicy".into(), Prop::Str("strict".into())));
        let Prop::Pairs(allowed) = &p[1].1 else {
            panic!("{p:?}")
        };
        assert!(
            allowed.contains(&("/dev/char/1:3".into(), "rwm".into())),
            "{allowed:?}"
        );
        let all: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow": true, "access": "rwm"}"#).unwrap();
        let p = device_properties(&[all]).unwrap();
        assert_eq!(p[0].1, Prop::Str("auto".into()));
    }
}
