//! The statistics `events` prints, in runc's shape (libcontainer types/events.go): `cpu`,
//! `cpuset`, `memory`, `pids`, `blkio`, `hugetlb`, `intel_rdt`, `network_interfaces`, with Go's
//! `omitempty` rules (zero numbers and empty lists left out where runc leaves them out).
//! [`v1`] and [`v2`] read their own files; the entry shapes both fill are here.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::{read_string, Layout, Manager};

pub mod v1;
pub mod v2;

impl Manager {
    /// runc's `events` stats ("data" of a stats event).
    pub fn stats(&self) -> Result<Value> {
        collect(self)
    }

    /// How many times the OOM killer killed a process in this cgroup (v2 memory.events
    /// `oom_kill`, v1 memory.oom_control `oom_kill`); None when the kernel does not say.
    pub fn oom_kill_count(&self) -> Option<u64> {
        let (dir, file) = match self.layout {
            Layout::V2 => (self.unified()?.path.clone(), "memory.events"),
            _ => (self.v1("memory")?.path.clone(), "memory.oom_control"),
        };
        let text = fs::read_to_string(dir.join(file)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
    }
}

pub fn collect(m: &Manager) -> Result<Value> {
    Ok(match m.layout {
        Layout::V2 => v2::collect(m),
        _ => v1::collect(m),
    })
}

/// The whole stats object, every section present (runc's shape).
fn sections(
    cpu: Value,
    cpuset: Value,
    memory: Value,
    pids: Map<String, Value>,
    blkio: Map<String, Value>,
    hugetlb: Map<String, Value>,
) -> Value {
    json!({
        "cpu": cpu,
        "cpuset": cpuset,
        "memory": memory,
        "pids": pids,
        "blkio": blkio,
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": null,
    })
}

fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    let v = read_string(&dir.join(file)).ok()?;
    if v == "max" {
        return Some(u64::MAX);
    }
    v.parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, memory.events...).
pub fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

fn keyed_file(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    fs::read_to_string(dir.join(file))
        .map(|t| flat_keyed(&t))
        .unwrap_or_default()
}

/// Inserts a number unless it is zero (Go omitempty).
fn put_nz(m: &mut Map<String, Value>, k: &str, v: u64) {
    if v != 0 {
        m.insert(k.into(), json!(v));
    }
}

fn put_list(m: &mut Map<String, Value>, k: &str, v: Vec<u64>) {
    if !v.is_empty() {
        m.insert(k.into(), json!(v));
    }
}

/// `0-3,5` → [0,1,2,3,5].
pub fn parse_cpu_list(s: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                    out.extend(a..=b.min(a + 65_535));
                }
            }
            None => out.extend(part.parse::<u64>().ok()),
        }
    }
    out
}

fn memory_entry(limit: u64, usage: u64, max: u64, failcnt: u64) -> Value {
    let mut m = Map::new();
    m.insert("limit".into(), json!(limit));
    put_nz(&mut m, "usage", usage);
    put_nz(&mut m, "max", max);
    m.insert("failcnt".into(), json!(failcnt));
    Value::Object(m)
}

fn blkio_entry(major: u64, minor: u64, op: &str, value: u64) -> Value {
    let mut m = Map::new();
    put_nz(&mut m, "major", major);
    put_nz(&mut m, "minor", minor);
    if !op.is_empty() {
        m.insert("op".into(), json!(op));
    }
    put_nz(&mut m, "value", value);
    Value::Object(m)
}

fn throttling(periods: u64, throttled: u64, time_ns: u64) -> Value {
    let mut t = Map::new();
    put_nz(&mut t, "periods", periods);
    put_nz(&mut t, "throttledPeriods", throttled);
    put_nz(&mut t, "throttledTime", time_ns);
    Value::Object(t)
}

fn hugetlb_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut sizes: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let size = n
                        .strip_prefix("hugetlb.")?
                        .strip_suffix(suffix)?
                        .to_string();
                    (!size.contains('.')).then_some(size)
                })
                .collect()
        })
        .unwrap_or_default();
    sizes.sort();
    sizes
}

fn hugetlb_entry(usage: u64, max: u64, failcnt: u64) -> Value {
    let mut h = Map::new();
    put_nz(&mut h, "usage", usage);
    put_nz(&mut h, "max", max);
    h.insert("failcnt".into(), json!(failcnt));
    Value::Object(h)
}

/// runc's `pids` stats: current count and limit ("max" reads as 0, as runc reports it).
fn pids_stats(dir: &Path) -> Map<String, Value> {
    let mut pids = Map::new();
    put_nz(
        &mut pids,
        "current",
        read_u64(dir, "pids.current").unwrap_or(0),
    );
    let limit = read_u64(dir, "pids.max").unwrap_or(0);
    put_nz(
        &mut pids,
        "limit",
        if limit == u64::MAX { 0 } else { limit },
    );
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5"), vec![0, 1, 2, 3, 5]);
        assert_eq!(parse_cpu_list("1\n"), vec![1]);
        assert!(parse_cpu_list("").is_empty());
    }

    #[test]
    fn memory_entry_omits_like_go() {
        assert_eq!(memory_entry(5, 0, 0, 0), json!({"limit": 5, "failcnt": 0}));
        assert_eq!(
            memory_entry(5, 1, 2, 3),
            json!({"limit": 5, "usage": 1, "max": 2, "failcnt": 3})
        );
    }

    #[test]
    fn stats_shape_has_runc_keys() {
        // A manager on a directory that does not exist: every section is present anyway.
        let m = Manager {
            layout: Layout::V2,
            hierarchies: vec![crate::cgroups::Hierarchy {
                controllers: String::new(),
                mount: "/nonexistent".into(),
                path: "/nonexistent/x".into(),
            }],
            created: vec![],
            rootless: false,
            systemd: None,
        };
        let v = collect(&m).unwrap();
        for k in [
            "cpu",
            "cpuset",
            "memory",
            "pids",
            "blkio",
            "hugetlb",
            "intel_rdt",
            "network_interfaces",
        ] {
            assert!(v.get(k).is_some(), "missing {k}: {v}");
        }
        assert_eq!(v["cpu"]["usage"], json!({"kernel": 0, "user": 0}));
        assert_eq!(v["pids"], json!({}));
    }
}
