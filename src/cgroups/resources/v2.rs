//! `linux.resources` on a cgroup2 tree: everything in the container's one directory, with
//! runc's conversions from the v1-style values the spec carries (shares, blkio weights,
//! memory+swap).

use std::io::ErrorKind;
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources, LinuxThrottleDevice,
};

use super::{
    check_blkio_weight, check_page_sizes, check_usage, hugetlb_write, nz_i, nz_u, pids_value,
    rdma_write, read_string, set, unified_write, write_file, Hierarchy, Manager, F,
};

pub fn apply(m: &Manager, r: &LinuxResources, update: bool) -> Result<()> {
    let dir = &m.unified().context("no cgroup v2 directory")?.path;
    if let Some(mem) = r.memory() {
        memory(dir, mem, update)?;
    }
    if let Some(cpu) = r.cpu() {
        self::cpu(dir, cpu, r)?;
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
        io(dir, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb(dir, h)?;
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

fn memory(dir: &Path, mem: &LinuxMemory, update: bool) -> Result<()> {
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

fn cpu(dir: &Path, cpu: &LinuxCpu, r: &LinuxResources) -> Result<()> {
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

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
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

fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    check_page_sizes(limits)?;
    hugetlb_write(dir, limits, "max")
}

/// Enables one v2 controller from the tree's root down to the container's parent (hybrid hosts,
/// where hutch only needs hugetlb from the unified tree).
pub(super) fn enable_controller_along(h: &Hierarchy, controller: &str) -> Result<()> {
    let rel = h.path.strip_prefix(&h.mount).unwrap_or(Path::new(""));
    let mut current = h.mount.clone();
    for comp in rel.components() {
        let enabled = read_string(&current.join("cgroup.subtree_control")).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == controller) {
            write_file(
                &current.join("cgroup.subtree_control"),
                &format!("+{controller}"),
            )
            .with_context(|| {
                format!(
                    "enabling the {controller} controller in {}",
                    current.display()
                )
            })?;
        }
        current.push(comp);
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
}
