//! `linux.resources` on v1 hierarchies (v1 and hybrid hosts): one controller's directory per
//! field, runc's file names and write orders.

use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxResources,
    LinuxThrottleDevice,
};

use super::{
    check_blkio_weight, check_page_sizes, check_usage, hugetlb_write, nz_i, nz_u, pids_value,
    rdma_write, read_string, set, unified_write, v2, write_file, Layout, Manager, F,
};

fn dir_for<'a>(m: &'a Manager, controller: &str, field: &str) -> Result<&'a Path> {
    m.controller_dir(controller).with_context(|| {
        format!("{F}.{field}: the {controller} cgroup controller is not available on this host")
    })
}

pub fn apply(m: &Manager, r: &LinuxResources, update: bool) -> Result<()> {
    if let Some(mem) = r.memory() {
        memory(m, mem, update)?;
    }
    if let Some(cpu) = r.cpu() {
        self::cpu(m, cpu)?;
        cpuset(m, cpu)?;
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            let dir = dir_for(m, "pids", "pids.limit")?;
            set("pids.limit", dir, "pids.max", &pids_value(p.limit()))?;
        }
    }
    if let Some(b) = r.block_io() {
        blkio(m, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb(m, h)?;
    }
    if let Some(net) = r.network() {
        network(m, net)?;
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

fn network(m: &Manager, net: &LinuxNetwork) -> Result<()> {
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
    Ok(())
}

/// `memory`: the limits (checked, swap defaulted as runc does), written in an order the kernel
/// accepts, then the other knobs.
fn memory(m: &Manager, mem: &LinuxMemory, update: bool) -> Result<()> {
    if !memory_is_set(mem) {
        return Ok(());
    }
    let dir = dir_for(m, "memory", "memory")?;
    let has_memsw = dir.join("memory.memsw.limit_in_bytes").exists();
    let (limit, swap) = memory_limits(mem, has_memsw)?;
    if let Some(l) = limit {
        if update && mem.check_before_update() == Some(true) && l > 0 {
            check_usage(dir, "memory.usage_in_bytes", l)?;
        }
    }
    write_memory_limits(dir, limit, swap, has_memsw)?;
    memory_knobs(dir, mem)
}

fn memory_is_set(mem: &LinuxMemory) -> bool {
    nz_i(mem.limit()).is_some()
        || nz_i(mem.swap()).is_some()
        || nz_i(mem.reservation()).is_some()
        || nz_i(mem.kernel_tcp()).is_some()
        || mem.swappiness().is_some()
        || mem.disable_oom_killer() == Some(true)
        || mem.use_hierarchy() == Some(true)
}

/// The memory and memory+swap limits to write, checked against each other.
fn memory_limits(mem: &LinuxMemory, has_memsw: bool) -> Result<(Option<i64>, Option<i64>)> {
    let limit = nz_i(mem.limit());
    let mut swap = nz_i(mem.swap());
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
    }
    Ok((limit, swap))
}

/// memsw must stay >= memory at every step: when raising, memsw goes first.
fn write_memory_limits(
    dir: &Path,
    limit: Option<i64>,
    swap: Option<i64>,
    has_memsw: bool,
) -> Result<()> {
    let write_swap = |s: i64| write_memsw_limit(dir, s, has_memsw);
    match (limit, swap) {
        (Some(l), Some(s)) => {
            let cur: i64 = read_string(&dir.join("memory.limit_in_bytes"))
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(|v| v.min(i64::MAX as u64) as i64)
                .unwrap_or(i64::MAX);
            if s == -1 || cur < s {
                write_swap(s)?;
                write_memory_limit(dir, l)
            } else {
                write_memory_limit(dir, l)?;
                write_swap(s)
            }
        }
        (Some(l), None) => write_memory_limit(dir, l),
        (None, Some(s)) => write_swap(s),
        (None, None) => Ok(()),
    }
}

fn write_memory_limit(dir: &Path, l: i64) -> Result<()> {
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
}

fn write_memsw_limit(dir: &Path, s: i64, has_memsw: bool) -> Result<()> {
    if !has_memsw {
        bail!("{F}.memory.swap: swap accounting is not enabled in this kernel (no memory.memsw.limit_in_bytes)");
    }
    set(
        "memory.swap",
        dir,
        "memory.memsw.limit_in_bytes",
        &s.to_string(),
    )
}

/// reservation, kernelTCP, swappiness, disableOOMKiller, useHierarchy.
fn memory_knobs(dir: &Path, mem: &LinuxMemory) -> Result<()> {
    if let Some(res) = nz_i(mem.reservation()) {
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

fn cpu(m: &Manager, cpu: &LinuxCpu) -> Result<()> {
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

/// blkio.<name>, or blkio.bfq.<name> on kernels without CFQ.
fn blkio_weight_file(dir: &Path, name: &str, field: &str) -> Result<String> {
    for f in [format!("blkio.{name}"), format!("blkio.bfq.{name}")] {
        if dir.join(&f).exists() {
            return Ok(f);
        }
    }
    bail!("{F}.{field}: blkio.{name} is not supported by this kernel (no CFQ or BFQ I/O scheduler)")
}

fn blkio(m: &Manager, b: &LinuxBlockIo) -> Result<()> {
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

/// The v1 hugetlb hierarchy; on a hybrid host without one, the unified tree's hugetlb.
fn hugetlb(m: &Manager, limits: &[LinuxHugepageLimit]) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    check_page_sizes(limits)?;
    match (m.v1("hugetlb"), m.layout, m.unified()) {
        (Some(h), _, _) => hugetlb_write(&h.path, limits, "limit_in_bytes"),
        (None, Layout::Hybrid, Some(h)) => {
            v2::enable_controller_along(h, "hugetlb")
                .with_context(|| format!("{F}.hugepageLimits"))?;
            hugetlb_write(&h.path, limits, "max")
        }
        _ => {
            bail!("{F}.hugepageLimits: the hugetlb cgroup controller is not available on this host")
        }
    }
}
