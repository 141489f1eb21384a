//! Installing the v2 device filter: the program loaded into the kernel and attached to the
//! container's cgroup with `BPF_F_ALLOW_MULTI`, so the programs of the parents still apply too.

use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::syscall::bpf::{self, Insn};

const LICENSE: &std::ffi::CStr = c"Apache";

/// Loads the program and attaches it to the cgroup directory `dir`.
pub fn attach(dir: &Path, prog: &[Insn]) -> Result<()> {
    let prog_fd = match bpf::prog_load(
        bpf::PROG_TYPE_CGROUP_DEVICE,
        prog,
        LICENSE,
        "hutch_dev",
        None,
    ) {
        Ok(fd) => fd,
        Err(e) => {
            // Load again with the verifier log, for the error message.
            let mut log = vec![0u8; 1 << 16];
            let _ = bpf::prog_load(
                bpf::PROG_TYPE_CGROUP_DEVICE,
                prog,
                LICENSE,
                "hutch_dev",
                Some(&mut log),
            );
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&log[..end]);
            bail!(
                "BPF_PROG_LOAD: {e}{}{}",
                if text.is_empty() { "" } else { "\n" },
                text.trim()
            );
        }
    };
    let cg = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    bpf::prog_attach(
        cg.as_fd(),
        prog_fd.as_fd(),
        bpf::CGROUP_DEVICE,
        bpf::F_ALLOW_MULTI,
    )
    .with_context(|| format!("BPF_PROG_ATTACH to {}", dir.display()))
}
