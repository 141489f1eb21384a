//! Stats from v1 hierarchies: cpuacct and cpu, cpuset, memory, pids, blkio, hugetlb (on a
//! hybrid host without a hugetlb hierarchy, the unified tree's).

use std::fs;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{
    blkio_entry, hugetlb_entry, hugetlb_sizes, keyed_file, memory_entry, parse_cpu_list,
    pids_stats, put_list, put_nz, read_string, read_u64, sections, throttling, v2, Manager,
};

/// Nanoseconds per USER_HZ tick (cpuacct.stat), as runc assumes (100 Hz).
const NS_PER_TICK: u64 = 10_000_000;

pub fn collect(m: &Manager) -> Value {
    let pids = m.controller_dir("pids").map(pids_stats).unwrap_or_default();
    sections(
        cpu(m),
        cpuset(m.controller_dir("cpuset")),
        memory(m),
        pids,
        blkio(m),
        hugetlb(m),
    )
}

/// cpuacct for usage, cpu for throttling.
fn cpu(m: &Manager) -> Value {
    let mut usage = Map::new();
    if let Some(d) = m.controller_dir("cpuacct") {
        cpu_usage(d, &mut usage);
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
    json!({ "usage": usage, "throttling": thr })
}

fn cpu_usage(d: &Path, usage: &mut Map<String, Value>) {
    put_nz(usage, "total", read_u64(d, "cpuacct.usage").unwrap_or(0));
    let list = |f: &str| -> Vec<u64> {
        read_string(&d.join(f))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect()
    };
    put_list(usage, "percpu", list("cpuacct.usage_percpu"));
    put_list(usage, "percpu_kernel", list("cpuacct.usage_percpu_sys"));
    put_list(usage, "percpu_user", list("cpuacct.usage_percpu_user"));
    let st = keyed_file(d, "cpuacct.stat");
    usage.insert(
        "kernel".into(),
        json!(st.get("system").copied().unwrap_or(0) * NS_PER_TICK),
    );
    usage.insert(
        "user".into(),
        json!(st.get("user").copied().unwrap_or(0) * NS_PER_TICK),
    );
}

fn cpuset(dir: Option<&Path>) -> Value {
    let mut c = Map::new();
    let Some(dir) = dir else {
        return Value::Object(c);
    };
    put_list(
        &mut c,
        "cpus",
        parse_cpu_list(&read_string(&dir.join("cpuset.cpus")).unwrap_or_default()),
    );
    c.insert(
        "cpu_exclusive".into(),
        json!(read_u64(dir, "cpuset.cpu_exclusive").unwrap_or(0)),
    );
    put_list(
        &mut c,
        "mems",
        parse_cpu_list(&read_string(&dir.join("cpuset.mems")).unwrap_or_default()),
    );
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
    Value::Object(c)
}

fn memory(m: &Manager) -> Value {
    let Some(d) = m.controller_dir("memory") else {
        return json!({});
    };
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

/// Each runc blkio field and the files it is read from, first non-empty one wins (the
/// throttle files when CFQ/BFQ accounting is absent).
const BLKIO_FIELDS: [(&str, &[&str]); 8] = [
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

fn blkio(m: &Manager) -> Map<String, Value> {
    let mut blkio = Map::new();
    let Some(d) = m.controller_dir("blkio") else {
        return blkio;
    };
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
    for (k, files) in BLKIO_FIELDS {
        let e = pick(files);
        if !e.is_empty() {
            blkio.insert(k.into(), Value::Array(e));
        }
    }
    blkio
}

fn blkio_entries(text: &str) -> Vec<Value> {
    // "8:0 Read 4096" lines ("Total N" lines have two fields and are skipped, as runc).
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

/// The v1 hierarchy, or on a hybrid host the unified tree.
fn hugetlb(m: &Manager) -> Map<String, Value> {
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
        hugetlb = v2::hugetlb(&h.path);
    }
    hugetlb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines_like_runc() {
        let e = blkio_entries("8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0], json!({"major": 8, "op": "Read", "value": 4096}));
        assert_eq!(e[1], json!({"major": 8, "op": "Write"}));
    }
}
