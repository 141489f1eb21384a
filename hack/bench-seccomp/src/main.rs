//! Measures `seccomp::compile` on a real engine profile, as hutch's release build runs it.

#[allow(dead_code, unused_imports)]
#[path = "../../../src/seccomp/mod.rs"]
mod seccomp;

/// `seccomp::load`'s syscall, so that the module builds here as it does in hutch.
#[allow(dead_code)]
#[path = "../../../src/syscall"]
mod syscall {
    pub mod seccomp;
}

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "/work/shared/reference/configs/docker-config.json".into());
    let runs: u32 = args.next().map(|r| r.parse()).transpose()?.unwrap_or(2000);
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let profile: oci_spec::runtime::LinuxSeccomp =
        serde_json::from_value(config["linux"]["seccomp"].clone())?;

    let first = Instant::now();
    let program = seccomp::compile(&profile)?;
    let cold = first.elapsed();
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(seccomp::compile(std::hint::black_box(&profile))?);
    }
    let per = start.elapsed() / runs;
    println!(
        "{path}: {} rules, {} BPF instructions ({} bytes); compile: first {cold:?}, mean {per:?} over {runs} runs",
        profile.syscalls().as_ref().map_or(0, |s| s.len()),
        program.instructions().len(),
        program.instructions().len() * 8,
    );
    Ok(())
}
