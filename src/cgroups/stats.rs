//! The statistics `events` prints, in runc's shape (libcontainer types/events.go): `cpu`,
//! `cpuset`, `memory`, `pids`, `blkio`, `hugetlb`, `intel_rdt`, `network_interfaces`, with Go's
//! `omitempty` rules (zero numbers and empty lists left out where runc leaves them out).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::{read_string, Layout, Manager};

/// Nanoseconds per USER_HZ tick (cpuacct.stat), as runc assumes (100 Hz).
const NS_PER_TICK: u64 = 10_000_000;

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

fn blkio_entries(text: &str) -> Vec<Value> {
    // v1: "8:0 Read 4096" lines ("Total N" lines have two fields and are skipped, as runc).
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (maj, min) = f[0].split_once(':')?;
            Some(blkio_entry(
                maj.parse().ok()?,
                min.parse().ok()?,
                f[1],
                f[2].parse().ok()?,
            ))
        })
        .collect()
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

pub fn collect(m: &Manager) -> Result<Value> {
    Ok(match m.layout {
        Layout::V2 => collect_v2(m),
        _ => collect_v1(m),
    })
}

fn cpuset_stats(dir: Option<&Path>, v2: bool) -> Value {
    let mut c = Map::new();
    let Some(dir) = dir else {
        return Value::Object(c);
    };
    let (cpus, mems) = if v2 {
        ("cpuset.cpus.effective", "cpuset.mems.effective")
    } else {
        ("cpuset.cpus", "cpuset.mems")
    };
    put_list(
        &mut c,
        "cpus",
        parse_cpu_list(&read_string(&dir.join(cpus)).unwrap_or_default()),
    );
    if !v2 {
        c.insert(
            "cpu_exclusive".into(),
            json!(read_u64(dir, "cpuset.cpu_exclusive").unwrap_or(0)),
        );
    }
    put_list(
        &mut c,
        "mems",
        parse_cpu_list(&read_string(&dir.join(mems)).unwrap_or_default()),
    );
    if !v2 {
        for (k, f) in [
            ("mem_hardwall", "cpuset.mem_hardwall"),
            ("mem_exclusive", "cpuset.mem_exclusive"),
            ("memory_migrate", "cpuset.memory_migrate"),
            ("memory_spread_page", "cpuset.memory_spread_page"),
            ("memory_spread_slab", "cpuset.memory_spread_slab"),
            ("memory_pressure", "cpuset.memory_pressure"),
            ("sched_load_balance", "cpuset.sched_load_balance"),
        ] {
            c.insert(k.into(), json!(read_u64(dir, f).unwrap_or(0)));
        }
        let lvl: i64 = read_string(&dir.join("cpuset.sched_relax_domain_level"))
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        c.insert("sched_relax_domain_level".into(), json!(lvl));
    } else {
        for k in [
            "cpu_exclusive",
            "mem_hardwall",
            "mem_exclusive",
            "memory_migrate",
            "memory_spread_page",
            "memory_spread_slab",
            "memory_pressure",
            "sched_load_balance",
            "sched_relax_domain_level",
        ] {
            c.insert(k.into(), json!(0));
        }
    }
    Value::Object(c)
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

fn hugetlb_v2(dir: &Path) -> Map<String, Value> {
    let mut out = Map::new();
    for size in hugetlb_sizes(dir, ".current") {
        let usage = read_u64(dir, &format!("hugetlb.{size}.current")).unwrap_or(0);
        let failcnt = keyed_file(dir, &format!("hugetlb.{size}.events"))
            .get("max")
            .copied()
            .unwrap_or(0);
        out.insert(size, hugetlb_entry(usage, 0, failcnt));
    }
    out
}

fn collect_v1(m: &Manager) -> Value {
    // cpu (cpuacct for usage, cpu for throttling)
    let mut usage = Map::new();
    if let Some(d) = m.controller_dir("cpuacct") {
        put_nz(
            &mut usage,
            "total",
            read_u64(d, "cpuacct.usage").unwrap_or(0),
        );
        let list = |f: &str| -> Vec<u64> {
            read_string(&d.join(f))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        };
        put_list(&mut usage, "percpu", list("cpuacct.usage_percpu"));
        put_list(
            &mut usage,
            "percpu_kernel",
            list("cpuacct.usage_percpu_sys"),
        );
        put_list(&mut usage, "percpu_user", list("cpuacct.usage_percpu_user"));
        let st = keyed_file(d, "cpuacct.stat");
        usage.insert(
            "kernel".into(),
            json!(st.get("system").copied().unwrap_or(0) * NS_PER_TICK),
        );
        usage.insert(
            "user".into(),
            json!(st.get("user").copied().unwrap_or(0) * NS_PER_TICK),
        );
    } else {
        usage.insert("kernel".into(), json!(0));
        usage.insert("user".into(), json!(0));
    }
    let thr = m
        .controller_dir("cpu")
        .map(|d| {
            let st = keyed_file(d, "cpu.stat");
            let g = |k: &str| st.get(k).copied().unwrap_or(0);
            throttling(g("nr_periods"), g("nr_throttled"), g("throttled_time"))
        })
        .unwrap_or_else(|| json!({}));
    let cpu = json!({ "usage": usage, "throttling": thr });

    // memory
    let memory = match m.controller_dir("memory") {
        Some(d) => {
            let raw = keyed_file(d, "memory.stat");
            let entry = |prefix: &str| {
                let g = |f: &str| read_u64(d, &format!("{prefix}.{f}")).unwrap_or(0);
                memory_entry(
                    g("limit_in_bytes"),
                    g("usage_in_bytes"),
                    g("max_usage_in_bytes"),
                    g("failcnt"),
                )
            };
            let mut mm = Map::new();
            put_nz(&mut mm, "cache", raw.get("cache").copied().unwrap_or(0));
            mm.insert("usage".into(), entry("memory"));
            mm.insert("swap".into(), entry("memory.memsw"));
            mm.insert("kernel".into(), entry("memory.kmem"));
            mm.insert("kernelTCP".into(), entry("memory.kmem.tcp"));
            if !raw.is_empty() {
                mm.insert("raw".into(), json!(raw));
            }
            Value::Object(mm)
        }
        None => json!({}),
    };

    // pids
    let pids = m.controller_dir("pids").map(pids_stats).unwrap_or_default();

    // blkio
    let mut blkio = Map::new();
    if let Some(d) = m.controller_dir("blkio") {
        let pick = |names: &[&str]| -> Vec<Value> {
            for n in names {
                if let Ok(t) = fs::read_to_string(d.join(n)) {
                    let e = blkio_entries(&t);
                    if !e.is_empty() {
                        return e;
                    }
                }
            }
            Vec::new()
        };
        let fields: [(&str, &[&str]); 8] = [
            (
                "ioServiceBytesRecursive",
                &[
                    "blkio.io_service_bytes_recursive",
                    "blkio.throttle.io_service_bytes_recursive",
                    "blkio.throttle.io_service_bytes",
                ],
            ),
            (
                "ioServicedRecursive",
                &[
                    "blkio.io_serviced_recursive",
                    "blkio.throttle.io_serviced_recursive",
                    "blkio.throttle.io_serviced",
                ],
            ),
            ("ioQueueRecursive", &["blkio.io_queued_recursive"]),
            (
                "ioServiceTimeRecursive",
                &["blkio.io_service_time_recursive"],
            ),
            ("ioWaitTimeRecursive", &["blkio.io_wait_time_recursive"]),
            ("ioMergedRecursive", &["blkio.io_merged_recursive"]),
            ("ioTimeRecursive", &["blkio.time_recursive"]),
            ("sectorsRecursive", &["blkio.sectors_recursive"]),
        ];
        for (k, files) in fields {
            let e = pick(files);
            if !e.is_empty() {
                blkio.insert(k.into(), Value::Array(e));
            }
        }
    }

    // hugetlb: the v1 hierarchy, or on a hybrid host the unified tree
    let mut hugetlb = Map::new();
    if let Some(h) = m.v1("hugetlb") {
        let d = &h.path;
        for size in hugetlb_sizes(d, ".limit_in_bytes") {
            let g = |f: &str| read_u64(d, &format!("hugetlb.{size}.{f}")).unwrap_or(0);
            hugetlb.insert(
                size.clone(),
                hugetlb_entry(g("usage_in_bytes"), g("max_usage_in_bytes"), g("failcnt")),
            );
        }
    } else if let Some(h) = m.unified() {
        hugetlb = hugetlb_v2(&h.path);
    }

    json!({
        "cpu": cpu,
        "cpuset": cpuset_stats(m.controller_dir("cpuset"), false),
        "memory": memory,
        "pids": pids,
        "blkio": blkio,
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": null,
    })
}

fn collect_v2(m: &Manager) -> Value {
    let Some(h) = m.unified() else {
        return json!({});
    };
    let d = &h.path;
    let st = keyed_file(d, "cpu.stat");
    let g = |k: &str| st.get(k).copied().unwrap_or(0);
    let mut usage = Map::new();
    put_nz(&mut usage, "total", g("usage_usec") * 1000);
    usage.insert("kernel".into(), json!(g("system_usec") * 1000));
    usage.insert("user".into(), json!(g("user_usec") * 1000));
    let cpu = json!({
        "usage": usage,
        "throttling": throttling(g("nr_periods"), g("nr_throttled"), g("throttled_usec") * 1000),
    });

    let raw = keyed_file(d, "memory.stat");
    let mut memory = Map::new();
    if d.join("memory.current").exists() {
        let current = read_u64(d, "memory.current").unwrap_or(0);
        let limit = read_u64(d, "memory.max").unwrap_or(u64::MAX);
        let peak = read_u64(d, "memory.peak").unwrap_or(0);
        let events = keyed_file(d, "memory.events");
        let swap_cur = read_u64(d, "memory.swap.current").unwrap_or(0);
        let swap_max = read_u64(d, "memory.swap.max").unwrap_or(u64::MAX);
        put_nz(&mut memory, "cache", raw.get("file").copied().unwrap_or(0));
        memory.insert(
            "usage".into(),
            memory_entry(
                limit,
                current,
                peak,
                events.get("max").copied().unwrap_or(0),
            ),
        );
        // As runc: v1-style memory+swap numbers.
        memory.insert(
            "swap".into(),
            memory_entry(
                swap_max.saturating_add(limit),
                swap_cur + current,
                read_u64(d, "memory.swap.peak").unwrap_or(0),
                0,
            ),
        );
        memory.insert("kernel".into(), memory_entry(0, 0, 0, 0));
        memory.insert("kernelTCP".into(), memory_entry(0, 0, 0, 0));
        if !raw.is_empty() {
            memory.insert("raw".into(), json!(raw));
        }
    }

    let pids = pids_stats(d);

    let mut blkio = Map::new();
    if let Ok(text) = fs::read_to_string(d.join("io.stat")) {
        let mut bytes = Vec::new();
        let mut ios = Vec::new();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let Some((maj, min)) = it.next().and_then(|dev| dev.split_once(':')) else {
                continue;
            };
            let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
                continue;
            };
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(v) = v.parse::<u64>() else { continue };
                match k {
                    "rbytes" => bytes.push(blkio_entry(maj, min, "Read", v)),
                    "wbytes" => bytes.push(blkio_entry(maj, min, "Write", v)),
                    "rios" => ios.push(blkio_entry(maj, min, "Read", v)),
                    "wios" => ios.push(blkio_entry(maj, min, "Write", v)),
                    _ => {}
                }
            }
        }
        if !bytes.is_empty() {
            blkio.insert("ioServiceBytesRecursive".into(), Value::Array(bytes));
        }
        if !ios.is_empty() {
            blkio.insert("ioServicedRecursive".into(), Value::Array(ios));
        }
    }

    json!({
        "cpu": cpu,
        "cpuset": cpuset_stats(Some(d), true),
        "memory": memory,
        "pids": pids,
        "blkio": blkio,
        "hugetlb": hugetlb_v2(d),
        "intel_rdt": {},
        "network_interfaces": null,
    })
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
    fn blkio_lines_like_runc() {
        let e = blkio_entries("8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0], json!({"major": 8, "op": "Read", "value": 4096}));
        assert_eq!(e[1], json!({"major": 8, "op": "Write"}));
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
            hierarchies: vec![super::super::Hierarchy {
                controllers: String::new(),
                mount: "/nonexistent".into(),
                path: "/nonexistent/x".into(),
            }],
            created: vec![],
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
