//! Entry points for the fuzz targets (`fuzz/`) and their stable replay test: each takes raw
//! bytes and runs the code `create` runs on them, stopping where a side effect would begin.
//!
//! A returned error is a refused input (fine); a panic, an overflow or a hang is a finding.
//! Nothing here may touch the host: no files written, no process, mount or cgroup made.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxSeccomp;

use crate::cgroups::resources::v2 as resources_v2;
use crate::cgroups::{self, devices};
use crate::namespaces::NamespacePlan;
use crate::process::identity;
use crate::{config, lsm, seccomp};

/// Everything `create` checks on a config.json before it makes the state directory (see
/// `container::create::create`): parsing, validation, the namespace and capability plans,
/// the LSM fields, the seccomp compiler, the cgroup path and the pure parts of the resources.
pub fn config(raw: &[u8]) -> Result<()> {
    quiet_logging();
    let spec = config::parse_spec(raw)?;
    config::validate(&spec)?;
    NamespacePlan::from_spec(&spec)?;
    if let Some(process) = spec.process() {
        identity::capability_plan(process)?;
        lsm::check_lsm(process)?;
    }
    let linux = spec.linux().as_ref();
    if let Some(profile) = linux.and_then(|l| l.seccomp().as_ref()) {
        check_program(&seccomp::compile(profile)?);
    }
    let manager = cgroups::Manager::new(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        "fuzz",
        false,
        false,
    )?;
    drop(manager);
    if let Some(r) = linux.and_then(|l| l.resources().as_ref()) {
        if let Some(list) = r.devices() {
            let rules = devices::rules_from_spec(list)?;
            devices::program(&devices::emulate(&rules));
        }
        if let Some(shares) = r.cpu().as_ref().and_then(|c| c.shares()) {
            resources_v2::shares_to_weight(shares);
        }
        if let Some(weight) = r.block_io().as_ref().and_then(|b| b.weight()) {
            resources_v2::blkio_weight_to_io_weight(weight);
        }
        if let Some(mem) = r.memory() {
            if let Some(swap) = mem.swap() {
                resources_v2::swap_v2(swap, mem.limit().unwrap_or(0))?;
            }
        }
    }
    Ok(())
}

/// The seccomp compiler on one OCI `linux.seccomp` object.
pub fn seccomp(raw: &[u8]) -> Result<()> {
    quiet_logging();
    let profile: LinuxSeccomp = serde_json::from_slice(raw).context("linux.seccomp")?;
    let program = seccomp::compile(&profile)?;
    check_program(&program);
    Ok(())
}

/// Panics when the compiled filter is one the kernel would refuse or misread (the checks of
/// the kernel's `bpf_check_classic` and `seccomp_check_filter` that a compiler can get wrong):
/// such a program is a compiler bug the fuzzer must report, not a refused input.
fn check_program(program: &seccomp::Program) {
    if let Err(err) = verify_classic_bpf(program.instructions()) {
        panic!("seccomp compiler emitted an invalid program: {err:#}");
    }
}

/// Size of `struct seccomp_data`, the only memory a seccomp filter may load from.
const SECCOMP_DATA_LEN: u32 = 64;
/// BPF_LD|BPF_W|BPF_ABS, and BPF_LD|BPF_W|BPF_LEN (the constant size of seccomp_data): the
/// only loads seccomp accepts.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_LD_W_LEN: u16 = 0x80;
/// The kernel's BPF_MAXINSNS: longer filters are refused with EINVAL.
const BPF_MAXINSNS: usize = 4096;

fn verify_classic_bpf(insns: &[libc::sock_filter]) -> Result<()> {
    if insns.is_empty() {
        bail!("empty program");
    }
    if insns.len() > BPF_MAXINSNS {
        // Not a compiler bug by itself when the profile is huge; only flag small profiles.
        return Ok(());
    }
    let len = insns.len();
    for (pc, i) in insns.iter().enumerate() {
        let class = i.code & 0x07;
        match class {
            // BPF_LD: seccomp allows only 32-bit absolute loads inside seccomp_data.
            0x00 => {
                if i.code == BPF_LD_W_ABS {
                    if i.k >= SECCOMP_DATA_LEN || i.k % 4 != 0 {
                        bail!("insn {pc}: load from offset {} outside seccomp_data", i.k);
                    }
                } else if i.code != BPF_LD_W_LEN {
                    bail!("insn {pc}: load mode {:#x} not allowed in seccomp", i.code);
                }
            }
            // BPF_JMP
            0x05 => {
                let op = i.code & 0xf0;
                if op == 0x00 {
                    // BPF_JA
                    if pc + 1 + i.k as usize >= len {
                        bail!("insn {pc}: ja +{} past the end ({len})", i.k);
                    }
                } else {
                    let far = pc + 1 + usize::from(i.jt.max(i.jf));
                    if far >= len {
                        bail!(
                            "insn {pc}: jump (jt {} jf {}) past the end ({len})",
                            i.jt,
                            i.jf
                        );
                    }
                }
            }
            // BPF_RET, BPF_ALU, BPF_MISC, BPF_ST, BPF_STX, BPF_LDX: fine.
            _ => {}
        }
    }
    let last = insns[len - 1];
    if last.code & 0x07 != 0x06 {
        bail!("the last instruction is not a return");
    }
    Ok(())
}

/// Warnings (unknown capabilities, skipped syscalls) would go to stderr once per run: send
/// them nowhere.
fn quiet_logging() {
    let _ = crate::logging::init(
        Some(std::path::Path::new("/dev/null")),
        crate::logging::Format::Text,
        false,
    );
}

#[cfg(test)]
mod tests {
    //! The short, stable version of the fuzzing: the committed seed corpus and every input a
    //! fuzz run ever crashed on (`fuzz/regressions/TARGET/`) go through the same entry points.

    use std::path::{Path, PathBuf};

    fn inputs(target: &str) -> Vec<PathBuf> {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut out = Vec::new();
        for dir in [
            fuzz.join("corpus").join(target),
            fuzz.join("regressions").join(target),
        ] {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                // The corpus directory also holds what local runs found (gitignored): CI has
                // only the seeds, so replay exactly those everywhere.
                let seed = name.starts_with("seed-");
                if seed || dir.ends_with(Path::new("regressions").join(target)) {
                    out.push(e.path());
                }
            }
        }
        out.sort();
        out
    }

    /// Seeds named `seed-bad-*` must be refused and the other seeds accepted (so the fuzzer
    /// starts from inputs that reach the end of every check); regressions must just not panic.
    fn replay(target: &str, run: fn(&[u8]) -> anyhow::Result<()>) {
        let files = inputs(target);
        let seeds = files
            .iter()
            .filter(|f| {
                f.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            })
            .count();
        assert!(
            seeds >= 5,
            "fuzz/corpus/{target}/seed-* is missing: {files:?}"
        );
        for f in &files {
            let data = std::fs::read(f).unwrap();
            let result = run(&data);
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("seed-bad-") {
                assert!(result.is_err(), "{} was accepted", f.display());
            } else if name.starts_with("seed-") {
                if let Err(err) = result {
                    panic!("{} was refused: {err:#}", f.display());
                }
            }
        }
    }

    #[test]
    fn config_seeds_and_regressions_replay() {
        replay("config", super::config);
    }

    #[test]
    fn seccomp_seeds_and_regressions_replay() {
        replay("seccomp", super::seccomp);
    }

    #[test]
    fn the_bpf_check_catches_bad_programs() {
        let ret = libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0,
        };
        let jump = |jt, jf| libc::sock_filter {
            code: 0x15,
            jt,
            jf,
            k: 0,
        };
        let load = |k| libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k,
        };
        assert!(super::verify_classic_bpf(&[load(0), jump(0, 1), ret, ret]).is_ok());
        assert!(super::verify_classic_bpf(&[]).is_err());
        assert!(super::verify_classic_bpf(&[load(0), jump(0, 2), ret, ret]).is_err());
        assert!(super::verify_classic_bpf(&[load(64), ret]).is_err());
        assert!(super::verify_classic_bpf(&[load(2), ret]).is_err());
        assert!(super::verify_classic_bpf(&[ret, load(0)]).is_err());
    }
}
