//! `hutch update [flags] ID`: change the resource limits of a running container, with runc's
//! flags and semantics. `-r/--resources FILE|-` reads a LinuxResources JSON (containerd and
//! docker send it on stdin, podman in a file); the flags override it. Zero means "unchanged".

use std::io::Read;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use super::{GlobalOpts, UpdateArgs};
use crate::container::state::Status;

/// Docker's RAMInBytes: `1024`, `128m`, `1.5g`, `64KiB`, `2GB` (binary multiples); `-1` for
/// unlimited.
pub fn parse_bytes(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_len);
    let value: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid value for {flag}: {s:?}"))?;
    let u = unit.trim().to_ascii_lowercase();
    let u = u
        .strip_suffix("ib")
        .or_else(|| u.strip_suffix('b'))
        .unwrap_or(&u);
    let mult: f64 = match u {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => bail!("invalid value for {flag}: {s:?} (unknown unit {unit:?})"),
    };
    let bytes = value * mult;
    if bytes > i64::MAX as f64 {
        bail!("invalid value for {flag}: {s:?} is too large");
    }
    Ok(bytes as i64)
}

/// The resources to apply: the JSON (if any) with the flags laid over it.
pub fn build_resources(args: &UpdateArgs, json_text: Option<&str>) -> Result<LinuxResources> {
    if args.l3_cache_schema.is_some() || args.mem_bw_schema.is_some() {
        bail!("Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported by hutch");
    }
    let mut v: Value = match json_text {
        Some(t) => serde_json::from_str(t).context("decoding the --resources JSON")?,
        None => json!({}),
    };
    if !v.is_object() {
        bail!("--resources: expected a JSON object (LinuxResources)");
    }
    let mut put = |section: &str, key: &str, val: Value| {
        if !v[section].is_object() {
            v[section] = json!({});
        }
        v[section][key] = val;
    };
    if let Some(w) = args.blkio_weight {
        put("blockIO", "weight", json!(w));
    }
    if let Some(p) = args.cpu_period {
        put("cpu", "period", json!(p));
    }
    if let Some(q) = args.cpu_quota {
        put("cpu", "quota", json!(q));
    }
    if let Some(s) = args.cpu_share {
        put("cpu", "shares", json!(s));
    }
    if let Some(p) = args.cpu_rt_period {
        put("cpu", "realtimePeriod", json!(p));
    }
    if let Some(r) = args.cpu_rt_runtime {
        put("cpu", "realtimeRuntime", json!(r));
    }
    if let Some(c) = &args.cpuset_cpus {
        put("cpu", "cpus", json!(c));
    }
    if let Some(m) = &args.cpuset_mems {
        put("cpu", "mems", json!(m));
    }
    if let Some(k) = &args.kernel_memory_tcp {
        put(
            "memory",
            "kernelTCP",
            json!(parse_bytes("--kernel-memory-tcp", k)?),
        );
    }
    if let Some(k) = &args.kernel_memory {
        // Validated, then ignored (kernel memory limits are deprecated; runc ignores them).
        parse_bytes("--kernel-memory", k)?;
    }
    if let Some(m) = &args.memory {
        put("memory", "limit", json!(parse_bytes("--memory", m)?));
    }
    if let Some(m) = &args.memory_reservation {
        put(
            "memory",
            "reservation",
            json!(parse_bytes("--memory-reservation", m)?),
        );
    }
    if let Some(m) = &args.memory_swap {
        put("memory", "swap", json!(parse_bytes("--memory-swap", m)?));
    }
    if let Some(p) = args.pids_limit {
        put("pids", "limit", json!(p));
    }
    if let Some(mem) = v.get_mut("memory").and_then(Value::as_object_mut) {
        mem.remove("kernel");
    }
    // Device rules are not updated (as runc's update); drop them rather than misapply.
    if let Some(o) = v.as_object_mut() {
        o.remove("devices");
    }
    serde_json::from_value(v).context("--resources: invalid LinuxResources")
}

pub fn run(global: &GlobalOpts, args: UpdateArgs) -> Result<i32> {
    let text = match args.resources.as_deref() {
        None => None,
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading resources from stdin")?;
            Some(s)
        }
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading --resources {path}"))?,
        ),
    };
    let resources = build_resources(&args, text.as_deref())?;
    let (_dir, _state, status, m) = super::pause::open(global, &args.id)?;
    if status == Status::Stopped {
        bail!("container not running");
    }
    m?.update(&resources)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_like_docker() {
        assert_eq!(parse_bytes("--memory", "1024").unwrap(), 1024);
        assert_eq!(parse_bytes("--memory", "128m").unwrap(), 128 << 20);
        assert_eq!(parse_bytes("--memory", "128MB").unwrap(), 128 << 20);
        assert_eq!(parse_bytes("--memory", "1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("--memory", "64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_bytes("--memory-swap", "-1").unwrap(), -1);
        assert!(parse_bytes("--memory", "12x").is_err());
        assert!(parse_bytes("--memory", "").is_err());
    }

    #[test]
    fn flags_override_json() {
        let args = UpdateArgs {
            memory: Some("64m".into()),
            pids_limit: Some(10),
            id: "x".into(),
            ..Default::default()
        };
        let docker = r#"{"memory":{"limit":134217728,"reservation":0,"swap":268435456,"kernel":0},"cpu":{"shares":512,"quota":0,"period":0},"pids":{"limit":80},"blockIO":{"weight":0}}"#;
        let r = build_resources(&args, Some(docker)).unwrap();
        let mem = r.memory().as_ref().unwrap();
        assert_eq!(mem.limit(), Some(64 << 20));
        assert_eq!(mem.swap(), Some(268_435_456));
        assert_eq!(mem.kernel(), None);
        assert_eq!(r.pids().as_ref().unwrap().limit(), 10);
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
    }

    #[test]
    fn rdt_is_rejected() {
        let args = UpdateArgs {
            l3_cache_schema: Some("L3:0=f".into()),
            id: "x".into(),
            ..Default::default()
        };
        assert!(build_resources(&args, None)
            .unwrap_err()
            .to_string()
            .contains("Intel RDT"));
    }
}
