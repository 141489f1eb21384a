//! Stats from a cgroup2 directory: cpu.stat, cpuset, memory (with runc's v1-style
//! memory+swap numbers), pids, io.stat, hugetlb.

use std::fs;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{
    blkio_entry, hugetlb_entry, hugetlb_sizes, keyed_file, memory_entry, parse_cpu_list,
    pids_stats, put_list, put_nz, read_string, read_u64, sections, throttling, Manager,
};

pub fn collect(m: &Manager) -> Value {
    let Some(h) = m.unified() else {
        return json!({});
    };
    let d = &h.path;
    sections(
        cpu(d),
        cpuset(d),
        memory(d),
        pids_stats(d),
        io(d),
        hugetlb(d),
    )
}

fn cpu(d: &Path) -> Value {
    let st = keyed_file(d, "cpu.stat");
    let g = |k: &str| st.get(k).copied().unwrap_or(0);
    let mut usage = Map::new();
    put_nz(&mut usage, "total", g("usage_usec") * 1000);
    usage.insert("kernel".into(), json!(g("system_usec") * 1000));
    usage.insert("user".into(), json!(g("user_usec") * 1000));
    json!({
        "usage": usage,
        "throttling": throttling(g("nr_periods"), g("nr_throttled"), g("throttled_usec") * 1000),
    })
}

/// The effective sets; v2 has none of v1's flags, which runc reports as zero.
fn cpuset(dir: &Path) -> Value {
    let mut c = Map::new();
    let list = |f: &str| parse_cpu_list(&read_string(&dir.join(f)).unwrap_or_default());
    put_list(&mut c, "cpus", list("cpuset.cpus.effective"));
    put_list(&mut c, "mems", list("cpuset.mems.effective"));
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
    Value::Object(c)
}

fn memory(d: &Path) -> Value {
    let raw = keyed_file(d, "memory.stat");
    let mut memory = Map::new();
    if !d.join("memory.current").exists() {
        return Value::Object(memory);
    }
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
    Value::Object(memory)
}

/// io.stat as runc's blkio bytes and ios (`8:0 rbytes=.. wbytes=.. rios=.. wios=..`).
fn io(d: &Path) -> Map<String, Value> {
    let mut blkio = Map::new();
    let Ok(text) = fs::read_to_string(d.join("io.stat")) else {
        return blkio;
    };
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
    blkio
}

pub(super) fn hugetlb(dir: &Path) -> Map<String, Value> {
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
