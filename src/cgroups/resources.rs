//! Writing `linux.resources` into the cgroup files, for v1 hierarchies and for a v2 tree.
//!
//! Only what the config sets is written. As in runc, zero means "not set" for the numeric
//! limits (memory limit/reservation/swap, cpu shares/quota/period/realtime, pids, blkio weight),
//! which is also `update`'s "leave unchanged". Errors name the config field.

use std::io::ErrorKind;
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources, LinuxThrottleDevice,
};

use super::{read_string, write_file, Layout, Manager};

const F: &str = "linux.resources";

/// Zero means unset.
fn nz_i(v: Option<i64>) -> Option<i64> {
    v.filter(|&x| x != 0)
}
fn nz_u(v: Option<u64>) -> Option<u64> {
    v.filter(|&x| x != 0)
}

/// Writes `value` to `dir/file`, naming the config field on failure.
fn set(field: &str, dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    write_file(&path, value).map_err(|e| {
        let hint = if e.kind() == ErrorKind::NotFound {
            " (not supported by this kernel or controller not enabled)"
        } else {
            ""
        };
        anyhow::anyhow!(
            "{F}.{field}: writing {value:?} to {}: {e}{hint}",
            path.display()
        )
    })
}

fn dir_for<'a>(m: &'a Manager, controller: &str, field: &str) -> Result<&'a Path> {
    m.controller_dir(controller).with_context(|| {
        format!("{F}.{field}: the {controller} cgroup controller is not available on this host")
    })
}

pub fn apply(m: &Manager, r: &LinuxResources, update: bool) -> Result<()> {
    match m.layout {
        Layout::V2 => apply_v2(m, r, update),
        Layout::V1 | Layout::Hybrid => apply_v1(m, r, update),
    }
}

// ------------------------------------------------------------------------------------ v1 ----

fn apply_v1(m: &Manager, r: &LinuxResources, update: bool) -> Result<()> {
    if let Some(mem) = r.memory() {
        memory_v1(m, mem, update)?;
    }
    if let Some(cpu) = r.cpu() {
        cpu_v1(m, cpu)?;
        cpuset(m, cpu)?;
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            let dir = dir_for(m, "pids", "pids.limit")?;
            set("pids.limit", dir, "pids.max", &pids_value(p.limit()))?;
        }
    }
    if let Some(b) = r.block_io() {
        blkio_v1(m, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb(m, h)?;
    }
    if let Some(net) = r.network() {
        if let Some(id) = net.class_id() {
            let dir = dir_for(m, "net_cls", "network.classID")?;
            set("network.classID", dir, "net_cls.classid", &id.to_string())?;
        }
        for p in net.priorities().as_deref().unwrap_or_default() {
            let dir = dir_for(m, "net_prio", "network.priorities")?;
            set(
                "network.priorities",
                dir,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    if let Some(rdma) = r.rdma() {
        if !rdma.is_empty() {
            let dir = dir_for(m, "rdma", "rdma")?;
            rdma_write(dir, rdma)?;
        }
    }
    if let Some(unified) = r.unified() {
        if !unified.is_empty() {
            // Hybrid: the unified tree has (almost) no controllers, but cgroup.* keys work.
            let h = m.unified().with_context(|| {
                format!("{F}.unified: cgroup v2 keys cannot be set on a cgroup v1 host")
            })?;
            unified_write(&h.path, unified)?;
        }
    }
    Ok(())
}

fn memory_v1(m: &Manager, mem: &LinuxMemory, update: bool) -> Result<()> {
    let limit = nz_i(mem.limit());
    let mut swap = nz_i(mem.swap());
    let reservation = nz_i(mem.reservation());
    let needed = limit.is_some()
        || swap.is_some()
        || reservation.is_some()
        || nz_i(mem.kernel_tcp()).is_some()
        || mem.swappiness().is_some()
        || mem.disable_oom_killer() == Some(true)
        || mem.use_hierarchy() == Some(true);
    if !needed {
        return Ok(());
    }
    let dir = dir_for(m, "memory", "memory")?;
    let has_memsw = dir.join("memory.memsw.limit_in_bytes").exists();
    // Unlimited memory with swap unset means unlimited memory+swap too (runc).
    if limit == Some(-1) && swap.is_none() && has_memsw {
        swap = Some(-1);
    }
    if let (Some(l), Some(s)) = (limit, swap) {
        if l > 0 && s > 0 && s < l {
            bail!("{F}.memory.swap: memory+swap limit ({s}) should be >= memory limit ({l})");
        }
    }
    if let Some(l) = limit {
        if l < -1 {
            bail!("{F}.memory.limit: invalid value {l}");
        }
        if update && mem.check_before_update() == Some(true) && l > 0 {
            check_usage(dir, "memory.usage_in_bytes", l)?;
        }
    }
    let write_limit = |l: i64| -> Result<()> {
        let path = dir.join("memory.limit_in_bytes");
        match write_file(&path, &l.to_string()) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let usage = read_string(&dir.join("memory.usage_in_bytes")).unwrap_or_default();
                let peak = read_string(&dir.join("memory.max_usage_in_bytes")).unwrap_or_default();
                bail!(
                    "{F}.memory.limit: unable to set memory limit to {l} (current usage: {usage}, peak usage: {peak})"
                )
            }
            Err(_) => set("memory.limit", dir, "memory.limit_in_bytes", &l.to_string()),
            Ok(()) => Ok(()),
        }
    };
    let write_swap = |s: i64| -> Result<()> {
        if !has_memsw {
            bail!("{F}.memory.swap: swap accounting is not enabled in this kernel (no memory.memsw.limit_in_bytes)");
        }
        set(
            "memory.swap",
            dir,
            "memory.memsw.limit_in_bytes",
            &s.to_string(),
        )
    };
    match (limit, swap) {
        (Some(l), Some(s)) => {
            // memsw must stay >= memory at every step: when raising, memsw goes first.
            let cur: i64 = read_string(&dir.join("memory.limit_in_bytes"))
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(|v| v.min(i64::MAX as u64) as i64)
                .unwrap_or(i64::MAX);
            if s == -1 || cur < s {
                write_swap(s)?;
                write_limit(l)?;
            } else {
                write_limit(l)?;
                write_swap(s)?;
            }
        }
        (Some(l), None) => write_limit(l)?,
        (None, Some(s)) => write_swap(s)?,
        (None, None) => {}
    }
    if let Some(res) = reservation {
        set(
            "memory.reservation",
            dir,
            "memory.soft_limit_in_bytes",
            &res.to_string(),
        )?;
    }
    if let Some(k) = nz_i(mem.kernel_tcp()) {
        set(
            "memory.kernelTCP",
            dir,
            "memory.kmem.tcp.limit_in_bytes",
            &k.to_string(),
        )?;
    }
    if let Some(sw) = mem.swappiness() {
        if sw > 100 {
            bail!("{F}.memory.swappiness: invalid value {sw}, valid range is 0-100");
        }
        set(
            "memory.swappiness",
            dir,
            "memory.swappiness",
            &sw.to_string(),
        )?;
    }
    if mem.disable_oom_killer() == Some(true) {
        set("memory.disableOOMKiller", dir, "memory.oom_control", "1")?;
    }
    if mem.use_hierarchy() == Some(true) {
        set("memory.useHierarchy", dir, "memory.use_hierarchy", "1")?;
    }
    Ok(())
}

fn check_usage(dir: &Path, file: &str, limit: i64) -> Result<()> {
    if let Ok(usage) = read_string(&dir.join(file)).map(|v| v.parse::<i64>().unwrap_or(0)) {
        if usage > limit {
            bail!(
                "{F}.memory.limit: the new limit {limit} is below the current usage {usage} (memory.checkBeforeUpdate)"
            );
        }
    }
    Ok(())
}

fn cpu_v1(m: &Manager, cpu: &LinuxCpu) -> Result<()> {
    if let Some(shares) = nz_u(cpu.shares()) {
        let dir = dir_for(m, "cpu", "cpu.shares")?;
        set("cpu.shares", dir, "cpu.shares", &shares.to_string())?;
        let got: u64 = read_string(&dir.join("cpu.shares"))
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(shares);
        if got < shares {
            bail!("{F}.cpu.shares: the maximum allowed cpu-shares is {got}");
        } else if got > shares {
            bail!("{F}.cpu.shares: the minimum allowed cpu-shares is {got}");
        }
    }
    let period = nz_u(cpu.period());
    let quota = nz_i(cpu.quota());
    if period.is_some() || quota.is_some() {
        let dir = dir_for(m, "cpu", "cpu.quota")?;
        write_pair(
            dir,
            period.map(|p| ("cpu.period", "cpu.cfs_period_us", p.to_string())),
            quota.map(|q| ("cpu.quota", "cpu.cfs_quota_us", q.to_string())),
        )?;
    }
    if let Some(b) = cpu.burst() {
        let dir = dir_for(m, "cpu", "cpu.burst")?;
        set("cpu.burst", dir, "cpu.cfs_burst_us", &b.to_string())?;
    }
    let rt_period = nz_u(cpu.realtime_period());
    let rt_runtime = nz_i(cpu.realtime_runtime());
    if rt_period.is_some() || rt_runtime.is_some() {
        let dir = dir_for(m, "cpu", "cpu.realtimeRuntime")?;
        write_pair(
            dir,
            rt_period.map(|p| ("cpu.realtimePeriod", "cpu.rt_period_us", p.to_string())),
            rt_runtime.map(|r| ("cpu.realtimeRuntime", "cpu.rt_runtime_us", r.to_string())),
        )?;
    }
    if let Some(idle) = cpu.idle() {
        let dir = dir_for(m, "cpu", "cpu.idle")?;
        set("cpu.idle", dir, "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

/// A period and a value bounded by it: the kernel may refuse one before the other is written
/// (EINVAL), so on failure the other order is tried.
fn write_pair(
    dir: &Path,
    period: Option<(&str, &str, String)>,
    value: Option<(&str, &str, String)>,
) -> Result<()> {
    match (period, value) {
        (Some((pf, pfile, p)), Some((vf, vfile, v))) => {
            if write_file(&dir.join(pfile), &p).is_ok() {
                set(vf, dir, vfile, &v)
            } else {
                set(vf, dir, vfile, &v)?;
                set(pf, dir, pfile, &p)
            }
        }
        (Some((pf, pfile, p)), None) => set(pf, dir, pfile, &p),
        (None, Some((vf, vfile, v))) => set(vf, dir, vfile, &v),
        (None, None) => Ok(()),
    }
}

fn cpuset(m: &Manager, cpu: &LinuxCpu) -> Result<()> {
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        let dir = dir_for(m, "cpuset", "cpu.cpus")?;
        set("cpu.cpus", dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        let dir = dir_for(m, "cpuset", "cpu.mems")?;
        set("cpu.mems", dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

fn check_blkio_weight(field: &str, w: u16) -> Result<()> {
    if !(10..=1000).contains(&w) {
        bail!("{F}.{field}: invalid value {w}, valid range is 10-1000");
    }
    Ok(())
}

/// blkio.<name>, or blkio.bfq.<name> on kernels without CFQ.
fn blkio_weight_file(dir: &Path, name: &str, field: &str) -> Result<String> {
    for f in [format!("blkio.{name}"), format!("blkio.bfq.{name}")] {
        if dir.join(&f).exists() {
            return Ok(f);
        }
    }
    bail!("{F}.{field}: blkio.{name} is not supported by this kernel (no CFQ or BFQ I/O scheduler)")
}

fn blkio_v1(m: &Manager, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        check_blkio_weight("blockIO.weight", w)?;
        let dir = dir_for(m, "blkio", "blockIO.weight")?;
        let f = blkio_weight_file(dir, "weight", "blockIO.weight")?;
        set("blockIO.weight", dir, &f, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        check_blkio_weight("blockIO.leafWeight", w)?;
        let dir = dir_for(m, "blkio", "blockIO.leafWeight")?;
        set(
            "blockIO.leafWeight",
            dir,
            "blkio.leaf_weight",
            &w.to_string(),
        )?;
    }
    for wd in b.weight_device().as_deref().unwrap_or_default() {
        let dir = dir_for(m, "blkio", "blockIO.weightDevice")?;
        if let Some(w) = wd.weight() {
            let f = blkio_weight_file(dir, "weight_device", "blockIO.weightDevice")?;
            let v = format!("{}:{} {}", wd.major(), wd.minor(), w);
            set("blockIO.weightDevice", dir, &f, &v)?;
        }
        if let Some(w) = wd.leaf_weight() {
            let v = format!("{}:{} {}", wd.major(), wd.minor(), w);
            set("blockIO.weightDevice", dir, "blkio.leaf_weight_device", &v)?;
        }
    }
    let throttles: [(&str, &str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "blockIO.throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blockIO.throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blockIO.throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blockIO.throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (field, file, list) in throttles {
        for t in list.as_deref().unwrap_or_default() {
            let dir = dir_for(m, "blkio", field)?;
            set(
                field,
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// `2MB`, `1GB`, `64KB` (as the kernel names the hugetlb files).
fn check_page_size(s: &str) -> Result<()> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(unit, "KB" | "MB" | "GB")
    {
        bail!("{F}.hugepageLimits: invalid page size {s:?} (expected e.g. 2MB or 1GB)");
    }
    Ok(())
}

fn hugetlb(m: &Manager, limits: &[LinuxHugepageLimit]) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    for l in limits {
        check_page_size(l.page_size())?;
    }
    // v1 hugetlb hierarchy; on a hybrid host without one, the unified tree's hugetlb.
    let (dir, v2) = match (m.layout, m.v1("hugetlb"), m.unified()) {
        (Layout::V2, _, Some(h)) => (h.path.clone(), true),
        (_, Some(h), _) => (h.path.clone(), false),
        (Layout::Hybrid, None, Some(h)) => {
            super::enable_controller_along(h, "hugetlb")
                .with_context(|| format!("{F}.hugepageLimits"))?;
            (h.path.clone(), true)
        }
        _ => {
            bail!("{F}.hugepageLimits: the hugetlb cgroup controller is not available on this host")
        }
    };
    for l in limits {
        let size = l.page_size();
        let (file, rsvd) = if v2 {
            (
                format!("hugetlb.{size}.max"),
                format!("hugetlb.{size}.rsvd.max"),
            )
        } else {
            (
                format!("hugetlb.{size}.limit_in_bytes"),
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
            )
        };
        if !dir.join(&file).exists() {
            bail!("{F}.hugepageLimits: page size {size} is not supported by this host");
        }
        let v = l.limit().to_string();
        set("hugepageLimits", &dir, &file, &v)?;
        if dir.join(&rsvd).exists() {
            set("hugepageLimits", &dir, &rsvd, &v)?;
        }
    }
    Ok(())
}

fn rdma_write(
    dir: &Path,
    rdma: &std::collections::HashMap<String, oci_spec::runtime::LinuxRdma>,
) -> Result<()> {
    for (dev, lim) in rdma {
        let mut parts = vec![dev.clone()];
        if let Some(h) = lim.hca_handles() {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(o) = lim.hca_objects() {
            parts.push(format!("hca_object={o}"));
        }
        if parts.len() > 1 {
            set(&format!("rdma.{dev}"), dir, "rdma.max", &parts.join(" "))?;
        }
    }
    Ok(())
}

fn unified_write(dir: &Path, unified: &std::collections::HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for k in keys {
        if k.is_empty() || k.contains('/') || k.starts_with('.') {
            bail!("{F}.unified: invalid key {k:?}");
        }
        let path = dir.join(k);
        if !path.exists() {
            bail!("{F}.unified.{k}: no such cgroup file (controller not enabled or not supported)");
        }
        set(&format!("unified.{k}"), dir, k, &unified[k])?;
    }
    Ok(())
}

fn pids_value(limit: i64) -> String {
    if limit < 0 {
        "max".into()
    } else {
        limit.to_string()
    }
}

// ------------------------------------------------------------------------------------ v2 ----

/// runc's cpu.shares (2..262144) → cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// runc's blkio weight (10..1000) → io.weight (1..10000).
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w.clamp(10, 1000)) - 10) * 9999 / 990
}

/// runc's memory.swap.max from the v1-style memory+swap value: None = leave alone,
/// Some(-1) = "max".
pub fn swap_v2(swap: i64, memory: i64) -> Result<Option<i64>> {
    if memory == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    if swap == -1 {
        return Ok(Some(-1));
    }
    if swap == 0 {
        return Ok(None);
    }
    if memory == 0 || memory == -1 {
        bail!("{F}.memory.swap: unable to set swap limit without memory limit");
    }
    if memory < 0 {
        bail!("{F}.memory.limit: invalid value {memory}");
    }
    if swap < memory {
        bail!("{F}.memory.swap: memory+swap limit ({swap}) should be >= memory limit ({memory})");
    }
    Ok(Some(swap - memory))
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

fn apply_v2(m: &Manager, r: &LinuxResources, update: bool) -> Result<()> {
    let dir = &m.unified().context("no cgroup v2 directory")?.path;
    if let Some(mem) = r.memory() {
        memory_v2(dir, mem, update)?;
    }
    if let Some(cpu) = r.cpu() {
        cpu_v2(dir, cpu, r)?;
        if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            set("cpu.cpus", dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            set("cpu.mems", dir, "cpuset.mems", mems)?;
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            set("pids.limit", dir, "pids.max", &pids_value(p.limit()))?;
        }
    }
    if let Some(b) = r.block_io() {
        io_v2(dir, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb(m, h)?;
    }
    // network (net_cls/net_prio) has no v2 equivalent; runc ignores it there too.
    if let Some(rdma) = r.rdma() {
        if !rdma.is_empty() {
            rdma_write(dir, rdma)?;
        }
    }
    if let Some(unified) = r.unified() {
        unified_write(dir, unified)?;
    }
    Ok(())
}

fn memory_v2(dir: &Path, mem: &LinuxMemory, update: bool) -> Result<()> {
    let limit = nz_i(mem.limit());
    let swap = nz_i(mem.swap());
    if let Some(l) = limit {
        if l < -1 {
            bail!("{F}.memory.limit: invalid value {l}");
        }
        if update && mem.check_before_update() == Some(true) && l > 0 {
            check_usage(dir, "memory.current", l)?;
        }
    }
    if let Some(s) = swap {
        // Without a new limit (update), the conversion needs the current one.
        let memory = match limit {
            Some(l) => l,
            None => match read_string(&dir.join("memory.max")) {
                Ok(v) if v == "max" => -1,
                Ok(v) => v.parse().unwrap_or(0),
                Err(_) => 0,
            },
        };
        let converted = swap_v2(s, memory)?;
        if let Some(v) = converted {
            let value = if v == 0 && s > 0 {
                "0".to_string()
            } else {
                max_or(v)
            };
            match write_file(&dir.join("memory.swap.max"), &value) {
                Ok(()) => {}
                // No swap accounting: setting "max" or "0" is a no-op then.
                Err(e) if e.kind() == ErrorKind::NotFound && (value == "max" || value == "0") => {}
                Err(_) => set("memory.swap", dir, "memory.swap.max", &value)?,
            }
        }
    } else if limit == Some(-1) {
        let _ = write_file(&dir.join("memory.swap.max"), "max");
    }
    if let Some(l) = limit {
        set("memory.limit", dir, "memory.max", &max_or(l))?;
    }
    if let Some(res) = nz_i(mem.reservation()) {
        set("memory.reservation", dir, "memory.low", &max_or(res))?;
    }
    // swappiness, disableOOMKiller, kernel and kernelTCP have no v2 files (runc ignores them).
    Ok(())
}

fn cpu_v2(dir: &Path, cpu: &LinuxCpu, r: &LinuxResources) -> Result<()> {
    let unified_has = |k: &str| r.unified().as_ref().is_some_and(|u| u.contains_key(k));
    if let Some(shares) = nz_u(cpu.shares()) {
        if !unified_has("cpu.weight") {
            set(
                "cpu.shares",
                dir,
                "cpu.weight",
                &shares_to_weight(shares).to_string(),
            )?;
        }
    }
    let quota = nz_i(cpu.quota());
    let period = nz_u(cpu.period());
    if (quota.is_some() || period.is_some()) && !unified_has("cpu.max") {
        // Keep the half that is not given (update of only one of them).
        let cur = read_string(&dir.join("cpu.max")).unwrap_or_default();
        let mut it = cur.split_whitespace();
        let cur_quota = it.next().unwrap_or("max").to_string();
        let cur_period = it.next().unwrap_or("100000").to_string();
        let q = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_string(),
            None => cur_quota,
        };
        let p = period.map(|p| p.to_string()).unwrap_or(cur_period);
        set("cpu.quota", dir, "cpu.max", &format!("{q} {p}"))?;
    }
    if let Some(b) = cpu.burst() {
        set("cpu.burst", dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(idle) = cpu.idle() {
        set("cpu.idle", dir, "cpu.idle", &idle.to_string())?;
    }
    if nz_i(cpu.realtime_runtime()).is_some() || nz_u(cpu.realtime_period()).is_some() {
        bail!("{F}.cpu.realtimeRuntime: realtime scheduling limits are not supported on cgroup v2");
    }
    Ok(())
}

fn io_v2(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        check_blkio_weight("blockIO.weight", w)?;
        if bfq {
            set("blockIO.weight", dir, "io.bfq.weight", &w.to_string())?;
        } else {
            let v = blkio_weight_to_io_weight(w).to_string();
            set("blockIO.weight", dir, "io.weight", &format!("default {v}"))?;
        }
    }
    for wd in b.weight_device().as_deref().unwrap_or_default() {
        if let Some(w) = wd.weight() {
            let (file, v) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_weight_to_io_weight(w))
            };
            set(
                "blockIO.weightDevice",
                dir,
                file,
                &format!("{}:{} {v}", wd.major(), wd.minor()),
            )?;
        }
    }
    let throttles: [(&str, &str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "blockIO.throttleReadBpsDevice",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "blockIO.throttleWriteBpsDevice",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "blockIO.throttleReadIOPSDevice",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "blockIO.throttleWriteIOPSDevice",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    for (field, key, list) in throttles {
        for t in list.as_deref().unwrap_or_default() {
            let v = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            set(
                field,
                dir,
                "io.max",
                &format!("{}:{} {key}={v}", t.major(), t.minor()),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
    }

    #[test]
    fn blkio_weight_converts_like_runc() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_semantics_like_runc() {
        assert_eq!(swap_v2(0, -1).unwrap(), Some(-1));
        assert_eq!(swap_v2(-1, 100).unwrap(), Some(-1));
        assert_eq!(swap_v2(0, 100).unwrap(), None);
        assert_eq!(swap_v2(300, 100).unwrap(), Some(200));
        assert_eq!(swap_v2(100, 100).unwrap(), Some(0));
        assert!(swap_v2(50, 100).is_err());
        assert!(swap_v2(100, 0).is_err());
        let e = swap_v2(50, 100).unwrap_err().to_string();
        assert!(e.starts_with("linux.resources.memory.swap"), "{e}");
    }

    #[test]
    fn page_sizes_are_checked() {
        assert!(check_page_size("2MB").is_ok());
        assert!(check_page_size("1GB").is_ok());
        assert!(check_page_size("2M").is_err());
        assert!(check_page_size("MB").is_err());
        assert!(check_page_size("../x").is_err());
    }

    #[test]
    fn pids_values() {
        assert_eq!(pids_value(-1), "max");
        assert_eq!(pids_value(64), "64");
    }
}
