//! The v1 devices controller's semantics, emulated: `linux.resources.devices` (checked, with
//! runc's default allow-list appended after the config's rules, as libcontainer/specconv's
//! AllowedDevices) reduced to a default action plus exceptions, as runc's devices emulator
//! does. v1 writes the result as is; v2 compiles it into an eBPF program.

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// Access bits, as the kernel's bpf_cgroup_dev_ctx encodes them.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
pub const ACC_ALL: u8 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevType {
    All,
    Char,
    Block,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub typ: DevType,
    /// None = any.
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: u8,
}

impl Rule {
    const fn new(
        allow: bool,
        typ: DevType,
        major: Option<i64>,
        minor: Option<i64>,
        access: u8,
    ) -> Rule {
        Rule {
            allow,
            typ,
            major,
            minor,
            access,
        }
    }

    fn is_wildcard(&self) -> bool {
        self.typ == DevType::All && self.major.is_none() && self.minor.is_none()
    }

    /// The v1 devices.allow/deny line, e.g. `c 1:3 rwm`.
    pub fn v1_line(&self) -> String {
        let t = match self.typ {
            DevType::All => "a",
            DevType::Char => "c",
            DevType::Block => "b",
        };
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{t} {}:{} {}",
            n(self.major),
            n(self.minor),
            access_str(self.access)
        )
    }

    /// Whether `self` (a rule) covers the device set of `other`.
    fn covers(&self, other: &Rule) -> bool {
        (self.typ == DevType::All || self.typ == other.typ)
            && (self.major.is_none() || self.major == other.major)
            && (self.minor.is_none() || self.minor == other.minor)
    }
}

pub fn access_str(a: u8) -> String {
    let mut s = String::new();
    if a & ACC_READ != 0 {
        s.push('r');
    }
    if a & ACC_WRITE != 0 {
        s.push('w');
    }
    if a & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

fn parse_access(s: &str, field: &str) -> Result<u8> {
    if s.is_empty() {
        return Ok(ACC_ALL);
    }
    let mut a = 0;
    for c in s.chars() {
        a |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => bail!("{field}.access: invalid access {s:?} (use r, w and m)"),
        };
    }
    Ok(a)
}

/// runc's default rules, appended after the config's (libcontainer/specconv AllowedDevices):
/// mknod of any device, and null, zero, full, random, urandom, tty, ptmx, /dev/pts/* and tun.
pub const DEFAULT_RULES: &[Rule] = &[
    Rule::new(true, DevType::Char, None, None, ACC_MKNOD),
    Rule::new(true, DevType::Block, None, None, ACC_MKNOD),
    Rule::new(true, DevType::Char, Some(1), Some(3), ACC_ALL),
    Rule::new(true, DevType::Char, Some(1), Some(8), ACC_ALL),
    Rule::new(true, DevType::Char, Some(1), Some(7), ACC_ALL),
    Rule::new(true, DevType::Char, Some(5), Some(0), ACC_ALL),
    Rule::new(true, DevType::Char, Some(1), Some(5), ACC_ALL),
    Rule::new(true, DevType::Char, Some(1), Some(9), ACC_ALL),
    Rule::new(true, DevType::Char, Some(136), None, ACC_ALL),
    Rule::new(true, DevType::Char, Some(5), Some(2), ACC_ALL),
    Rule::new(true, DevType::Char, Some(10), Some(200), ACC_ALL),
];

/// The config's rules converted (and checked), followed by the defaults.
pub fn rules_from_spec(list: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut out = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let typ = match d.typ() {
            None | Some(LinuxDeviceType::A) => DevType::All,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DevType::Char,
            Some(LinuxDeviceType::B) => DevType::Block,
            Some(LinuxDeviceType::P) => {
                bail!("{field}.type: \"p\" (fifo) is not a device type the devices cgroup controls")
            }
        };
        let num = |v: Option<i64>, what: &str| -> Result<Option<i64>> {
            match v {
                None | Some(-1) => Ok(None),
                Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n)),
                Some(n) => bail!("{field}.{what}: invalid value {n}"),
            }
        };
        let access = parse_access(d.access().as_deref().unwrap_or(""), &field)?;
        let rule = Rule::new(
            d.allow(),
            typ,
            num(d.major(), "major")?,
            num(d.minor(), "minor")?,
            access,
        );
        // "a" with a specific number applies to both kinds.
        if rule.typ == DevType::All && !rule.is_wildcard() {
            out.push(Rule {
                typ: DevType::Char,
                ..rule.clone()
            });
            out.push(Rule {
                typ: DevType::Block,
                ..rule
            });
        } else {
            out.push(rule);
        }
    }
    out.extend(DEFAULT_RULES.iter().cloned());
    Ok(out)
}

/// The state of a v1 devices cgroup: a default and the exceptions to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emulated {
    pub default_allow: bool,
    pub exceptions: Vec<Rule>,
}

/// Runs the rules through the v1 semantics, starting from deny-all.
pub fn emulate(rules: &[Rule]) -> Emulated {
    let mut st = Emulated {
        default_allow: false,
        exceptions: Vec::new(),
    };
    for r in rules {
        if r.is_wildcard() {
            st.default_allow = r.allow;
            st.exceptions.clear();
        } else if r.allow == st.default_allow {
            // Same as the default: take the access away from exceptions it covers.
            for e in st.exceptions.iter_mut() {
                if r.covers(e) {
                    e.access &= !r.access;
                }
            }
            st.exceptions.retain(|e| e.access != 0);
        } else if let Some(e) = st
            .exceptions
            .iter_mut()
            .find(|e| e.typ == r.typ && e.major == r.major && e.minor == r.minor)
        {
            e.access |= r.access;
        } else {
            st.exceptions.push(Rule {
                allow: !st.default_allow,
                ..r.clone()
            });
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny_all() -> LinuxDeviceCgroup {
        serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap()
    }

    fn dev(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn podman_deny_all_gets_runc_defaults() {
        let st = emulate(&rules_from_spec(&[deny_all()]).unwrap());
        assert!(!st.default_allow);
        let lines: Vec<String> = st.exceptions.iter().map(Rule::v1_line).collect();
        assert_eq!(
            lines,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:8 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:5 rwm",
                "c 1:9 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm"
            ]
        );
    }

    #[test]
    fn deny_after_allow_removes_access() {
        let rules = rules_from_spec(&[
            deny_all(),
            dev(r#"{"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"}"#),
            dev(r#"{"allow":false,"type":"c","major":10,"minor":229,"access":"w"}"#),
        ])
        .unwrap();
        let st = emulate(&rules);
        let e = st
            .exceptions
            .iter()
            .find(|e| e.major == Some(10) && e.minor == Some(229))
            .unwrap();
        assert_eq!(access_str(e.access), "rm");
    }

    #[test]
    fn bad_rules_name_the_field() {
        let e = rules_from_spec(&[dev(r#"{"allow":true,"type":"c","access":"rwx"}"#)]).unwrap_err();
        assert!(
            e.to_string().contains("linux.resources.devices[0].access"),
            "{e}"
        );
        let e = rules_from_spec(&[dev(r#"{"allow":true,"type":"p"}"#)]).unwrap_err();
        assert!(e.to_string().contains("devices[0].type"), "{e}");
    }
}
