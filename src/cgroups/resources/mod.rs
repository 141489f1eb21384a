//! Writing `linux.resources` into the cgroup files: [`v1`] for v1 and hybrid hosts, [`v2`]
//! for a cgroup2 tree; the checks and the files both share are here.
//!
//! Only what the config sets is written. As in runc, zero means "not set" for the numeric
//! limits (memory limit/reservation/swap, cpu shares/quota/period/realtime, pids, blkio weight),
//! which is also `update`'s "leave unchanged". Errors name the config field.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxHugepageLimit, LinuxRdma, LinuxResources};

use super::{read_string, write_file, Hierarchy, Layout, Manager};

pub mod v1;
pub mod v2;

const F: &str = "linux.resources";

pub fn apply(m: &Manager, r: &LinuxResources, update: bool) -> Result<()> {
    match m.layout {
        Layout::V2 => v2::apply(m, r, update),
        Layout::V1 | Layout::Hybrid => v1::apply(m, r, update),
    }
}

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

/// `memory.checkBeforeUpdate`: refuses a limit below the current usage (`file`).
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

fn check_blkio_weight(field: &str, w: u16) -> Result<()> {
    if !(10..=1000).contains(&w) {
        bail!("{F}.{field}: invalid value {w}, valid range is 10-1000");
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

fn pids_value(limit: i64) -> String {
    if limit < 0 {
        "max".into()
    } else {
        limit.to_string()
    }
}

fn check_page_sizes(limits: &[LinuxHugepageLimit]) -> Result<()> {
    limits
        .iter()
        .try_for_each(|l| check_page_size(l.page_size()))
}

/// Writes each limit to `hugetlb.<size>.<suffix>` and, where the kernel has it, to the
/// reservation limit `hugetlb.<size>.rsvd.<suffix>` (`limit_in_bytes` on v1, `max` on v2).
fn hugetlb_write(dir: &Path, limits: &[LinuxHugepageLimit], suffix: &str) -> Result<()> {
    for l in limits {
        let size = l.page_size();
        let file = format!("hugetlb.{size}.{suffix}");
        let rsvd = format!("hugetlb.{size}.rsvd.{suffix}");
        if !dir.join(&file).exists() {
            bail!("{F}.hugepageLimits: page size {size} is not supported by this host");
        }
        let v = l.limit().to_string();
        set("hugepageLimits", dir, &file, &v)?;
        if dir.join(&rsvd).exists() {
            set("hugepageLimits", dir, &rsvd, &v)?;
        }
    }
    Ok(())
}

/// `rdma.max`, the same file in a v1 rdma hierarchy and a cgroup2 tree.
fn rdma_write(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
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

/// `linux.resources.unified`: cgroup2 files by name (on a hybrid host, in the unified tree).
fn unified_write(dir: &Path, unified: &HashMap<String, String>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
