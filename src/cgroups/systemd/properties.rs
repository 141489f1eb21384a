//! The unit properties hutch asks systemd for: those of every container scope (runc's set),
//! the limits systemd manages itself (so a `daemon-reload` or another client's change to the
//! unit keeps them), and `org.systemd.property.*` annotations.
//!
//! Limits are also written to the cgroup files, as with cgroupfs: systemd knows only some of
//! them, and older versions fewer. Device rules go to systemd too (systemd/devices.rs), and
//! hutch's own eBPF program is attached next to systemd's.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

use crate::cgroups::resources::v2::{blkio_weight_to_io_weight, shares_to_weight, swap_v2};

/// A property value, as the D-Bus signature systemd expects for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prop {
    /// `t`
    U64(u64),
    /// `b`
    Bool(bool),
    /// `s`
    Str(String),
    /// `ay` (CPU and NUMA node bitmasks)
    Bytes(Vec<u8>),
    /// `au` (`PIDs`)
    U32s(Vec<u32>),
    /// `a(ss)` (`DeviceAllow`)
    Pairs(Vec<(String, String)>),
}

/// systemd's "infinity" for limits.
const INFINITY: u64 = u64::MAX;

pub type Properties = Vec<(String, Prop)>;

/// What every container scope gets, whatever its limits.
pub fn scope_properties(description: &str, slice: &str, pid: u32) -> Properties {
    let mut p: Properties = vec![
        ("Description".into(), Prop::Str(description.into())),
        ("PIDs".into(), Prop::U32s(vec![pid])),
        ("Delegate".into(), Prop::Bool(true)),
        ("DefaultDependencies".into(), Prop::Bool(false)),
    ];
    if !slice.is_empty() {
        p.push(("Slice".into(), Prop::Str(slice.into())));
    }
    for accounting in [
        "MemoryAccounting",
        "CPUAccounting",
        "IOAccounting",
        "TasksAccounting",
    ] {
        p.push((accounting.into(), Prop::Bool(true)));
    }
    p
}

/// The limits of `r` that systemd manages, as unit properties. `update` leaves out what is
/// unset (zero), as the files do. On cgroup v1 these are the v1 names with the v1 values
/// (`CPUShares`, `MemoryLimit`, `BlockIOWeight`), as runc sets them: systemd writes a v2
/// property back onto v1 scaled (CPUWeight 10 becomes cpu.shares 102), overwriting the file
/// each time it touches the unit. What v1 has no property for stays in the files alone.
pub fn resource_properties(r: &LinuxResources, v1: bool) -> Result<Properties> {
    let mut p = Properties::new();
    let weight = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|&w| w != 0);
    if v1 {
        v1_properties(r, &mut p);
        if let Some(w) = weight {
            p.push(("BlockIOWeight".into(), Prop::U64(u64::from(w))));
        }
    } else {
        if let Some(mem) = r.memory() {
            memory(mem, &mut p)?;
        }
        if let Some(cpu) = r.cpu() {
            cpu_properties(cpu, &mut p)?;
        }
        if let Some(w) = weight {
            p.push(("IOWeight".into(), Prop::U64(blkio_weight_to_io_weight(w))));
        }
    }
    if let Some(limit) = r.pids().as_ref().map(|p| p.limit()).filter(|&l| l != 0) {
        p.push(("TasksMax".into(), Prop::U64(limit_value(limit))));
    }
    Ok(p)
}

/// Whether `name` is one of the limits [`resource_properties`] makes, which hutch also writes to
/// the cgroup files: systemd holding it too is a convenience, not the enforcement.
pub fn also_in_files(name: &str) -> bool {
    matches!(
        name,
        "MemoryMax"
            | "MemoryLow"
            | "MemorySwapMax"
            | "MemoryLimit"
            | "CPUWeight"
            | "CPUShares"
            | "CPUQuotaPerSecUSec"
            | "CPUQuotaPeriodUSec"
            | "AllowedCPUs"
            | "AllowedMemoryNodes"
            | "IOWeight"
            | "BlockIOWeight"
            | "TasksMax"
    )
}

fn v1_properties(r: &LinuxResources, p: &mut Properties) {
    if let Some(limit) = r
        .memory()
        .as_ref()
        .and_then(|m| m.limit())
        .filter(|&l| l != 0)
    {
        p.push(("MemoryLimit".into(), Prop::U64(limit_value(limit))));
    }
    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
            p.push(("CPUShares".into(), Prop::U64(shares)));
        }
        quota_properties(cpu, p);
    }
}

/// -1 (or any negative) is "no limit".
fn limit_value(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(INFINITY)
}

fn memory(mem: &LinuxMemory, p: &mut Properties) -> Result<()> {
    let limit = mem.limit().filter(|&l| l != 0);
    if let Some(limit) = limit {
        p.push(("MemoryMax".into(), Prop::U64(limit_value(limit))));
    }
    if let Some(low) = mem.reservation().filter(|&l| l != 0) {
        p.push(("MemoryLow".into(), Prop::U64(limit_value(low))));
    }
    if let Some(swap) = mem.swap().filter(|&s| s != 0) {
        if let Some(v) = swap_v2(swap, limit.unwrap_or(0))? {
            p.push(("MemorySwapMax".into(), Prop::U64(limit_value(v))));
        }
    }
    Ok(())
}

fn cpu_properties(cpu: &LinuxCpu, p: &mut Properties) -> Result<()> {
    if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
        p.push(("CPUWeight".into(), Prop::U64(shares_to_weight(shares))));
    }
    quota_properties(cpu, p);
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        let mask = list_to_bitmask(cpus).context("linux.resources.cpu.cpus")?;
        p.push(("AllowedCPUs".into(), Prop::Bytes(mask)));
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        let mask = list_to_bitmask(mems).context("linux.resources.cpu.mems")?;
        p.push(("AllowedMemoryNodes".into(), Prop::Bytes(mask)));
    }
    Ok(())
}

fn quota_properties(cpu: &LinuxCpu, p: &mut Properties) {
    let period = cpu.period().filter(|&v| v != 0);
    let quota = cpu.quota().filter(|&v| v != 0);
    if let Some(period) = period {
        p.push(("CPUQuotaPeriodUSec".into(), Prop::U64(period)));
    }
    if quota.is_some() || period.is_some() {
        let per_sec = quota_per_sec(quota.unwrap_or(-1), period.unwrap_or(100_000));
        p.push(("CPUQuotaPerSecUSec".into(), Prop::U64(per_sec)));
    }
}

/// CPU time per second of wall time, as systemd takes the quota. systemd rounds it to whole
/// 10 ms steps when it writes cpu.max; rounding up here, as runc does, keeps the quota from
/// shrinking.
fn quota_per_sec(quota: i64, period: u64) -> u64 {
    let Ok(quota) = u64::try_from(quota) else {
        return INFINITY;
    };
    let per_sec = quota.saturating_mul(1_000_000) / period.max(1);
    per_sec.div_ceil(10_000) * 10_000
}

/// `0-3,8` as systemd's bitmask: byte `i`, bit `j` is CPU (or node) `8i + j`.
pub fn list_to_bitmask(list: &str) -> Result<Vec<u8>> {
    const MAX: u32 = 8192;
    let mut mask = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (u32, u32) = match (lo.trim().parse(), hi.trim().parse()) {
            (Ok(lo), Ok(hi)) if lo <= hi && hi < MAX => (lo, hi),
            _ => bail!("invalid list {list:?} (expected e.g. 0-3,8)"),
        };
        for n in lo..=hi {
            let byte = (n / 8) as usize;
            if mask.len() <= byte {
                mask.resize(byte + 1, 0);
            }
            mask[byte] |= 1 << (n % 8);
        }
    }
    Ok(mask)
}

/// `org.systemd.property.NAME` annotations, as runc passes them: the value is a number, a
/// boolean or a string (quotes optional). A name ending in a lowercase letter and `Sec` is a
/// time in seconds, which systemd's D-Bus API takes as `…USec` in microseconds (runc renames
/// and converts the same way); a unit (`100ms`, `2min`) may be given too.
pub fn annotation_properties(annotations: &HashMap<String, String>) -> Result<Properties> {
    const PREFIX: &str = "org.systemd.property.";
    let mut names: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(PREFIX))
        .collect();
    names.sort();
    let mut p = Properties::new();
    for key in names {
        let name = &key[PREFIX.len()..];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            bail!("annotations.{key}: not a systemd property name");
        }
        let value = annotations[key].trim();
        let seconds = name
            .strip_suffix("Sec")
            .filter(|stem| stem.ends_with(|c: char| c.is_ascii_lowercase()));
        if let Some(stem) = seconds {
            let usec = time_span_usec(value).with_context(|| format!("annotations.{key}"))?;
            p.push((format!("{stem}USec"), Prop::U64(usec)));
            continue;
        }
        let prop = if let Ok(n) = value.parse::<u64>() {
            Prop::U64(n)
        } else if value == "true" || value == "false" {
            Prop::Bool(value == "true")
        } else {
            Prop::Str(value.trim_matches(|c| c == '\'' || c == '"').to_string())
        };
        p.push((name.to_string(), prop));
    }
    Ok(p)
}

/// `17` (seconds, as runc reads it), `1.5`, `100ms`, `5min`, `20us`, `infinity`.
fn time_span_usec(s: &str) -> Result<u64> {
    if s == "infinity" {
        return Ok(INFINITY);
    }
    if let Ok(seconds) = s.parse::<f64>() {
        if !(0.0..=1.8e13).contains(&seconds) {
            bail!("invalid time {s:?}");
        }
        return Ok((seconds * 1e6).round() as u64);
    }
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid time span {s:?}"))?;
    let unit = match &s[digits.len()..] {
        "us" | "usec" => 1,
        "ms" | "msec" => 1_000,
        "s" | "sec" => 1_000_000,
        "m" | "min" => 60_000_000,
        "h" | "hr" => 3_600_000_000,
        other => bail!("invalid time unit {other:?} in {s:?}"),
    };
    n.checked_mul(unit)
        .ok_or_else(|| anyhow::anyhow!("time span {s:?} too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmasks() {
        assert_eq!(list_to_bitmask("0").unwrap(), vec![1]);
        assert_eq!(list_to_bitmask("0-3,8").unwrap(), vec![0x0f, 0x01]);
        assert_eq!(list_to_bitmask("1,3").unwrap(), vec![0x0a]);
        assert!(list_to_bitmask("3-1").is_err());
        assert!(list_to_bitmask("x").is_err());
    }

    #[test]
    fn v1_hosts_get_v1_names_and_values() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 1048576}, "cpu": {"shares": 256}, "blockIO": {"weight": 300}}"#,
        )
        .unwrap();
        let names = |p: &Properties| p.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let v1 = resource_properties(&r, true).unwrap();
        assert_eq!(names(&v1), ["MemoryLimit", "CPUShares", "BlockIOWeight"]);
        assert!(v1.contains(&("CPUShares".into(), Prop::U64(256))));
        let v2 = resource_properties(&r, false).unwrap();
        assert_eq!(names(&v2), ["MemoryMax", "CPUWeight", "IOWeight"]);
    }

    #[test]
    fn every_limit_property_is_also_written_to_the_files() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 1048576, "reservation": 4096, "swap": 2097152},
                "cpu": {"shares": 256, "quota": 5000, "period": 10000, "cpus": "0", "mems": "0"},
                "blockIO": {"weight": 300}, "pids": {"limit": 9}}"#,
        )
        .unwrap();
        for v1 in [true, false] {
            for (name, _) in resource_properties(&r, v1).unwrap() {
                assert!(also_in_files(&name), "{name} (v1: {v1})");
            }
        }
    }

    #[test]
    fn quota_rounds_up_to_10ms() {
        assert_eq!(quota_per_sec(50_000, 100_000), 500_000);
        assert_eq!(quota_per_sec(12_345, 100_000), 130_000);
        assert_eq!(quota_per_sec(-1, 100_000), INFINITY);
    }

    #[test]
    fn annotations_are_typed() {
        let a: HashMap<String, String> = [
            ("org.systemd.property.TimeoutStopSec", "5"),
            ("org.systemd.property.RuntimeMaxSec", "100ms"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.TasksMax", "99"),
            ("other", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = annotation_properties(&a).unwrap();
        assert_eq!(
            p,
            vec![
                ("CollectMode".into(), Prop::Str("inactive-or-failed".into())),
                ("RuntimeMaxUSec".into(), Prop::U64(100_000)),
                ("TasksMax".into(), Prop::U64(99)),
                ("TimeoutStopUSec".into(), Prop::U64(5_000_000)),
            ]
        );
        let bad: HashMap<String, String> =
            [("org.systemd.property.A/B".to_string(), "1".to_string())].into();
        assert!(annotation_properties(&bad).is_err());
    }
}
