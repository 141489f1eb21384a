//! Device access rules (`linux.resources.devices`).
//!
//! The rules are first run through a small emulation of the v1 devices controller
//! ([`emulator`]). The result is then written:
//! - on v1 as `a` to devices.allow or devices.deny (the default) followed by each exception;
//! - on v2 as a `BPF_PROG_TYPE_CGROUP_DEVICE` program ([`program`]) attached to the
//!   container's cgroup ([`loader`]).

use std::path::Path;

use anyhow::{Context, Result};
use oci_spec::runtime::LinuxDeviceCgroup;

use super::{write_file, Layout, Manager};

pub mod emulator;
pub mod loader;
pub mod program;

pub use emulator::{emulate, rules_from_spec};
pub use program::program;

pub fn apply(m: &Manager, list: &[LinuxDeviceCgroup]) -> Result<()> {
    let rules = rules_from_spec(list)?;
    let st = emulate(&rules);
    match m.layout {
        Layout::V1 | Layout::Hybrid => {
            let h = m
                .v1("devices")
                .context("the devices cgroup controller is not mounted")?;
            write_v1(&h.path, &st)
        }
        Layout::V2 => {
            let h = m.unified().context("no cgroup v2 directory")?;
            let prog = program(&st);
            loader::attach(&h.path, &prog)
                .context("linux.resources.devices: installing the eBPF device filter")
        }
    }
}

/// The emulated state into a v1 devices cgroup: the default, then each exception.
fn write_v1(dir: &Path, st: &emulator::Emulated) -> Result<()> {
    let (first, rest) = if st.default_allow {
        ("devices.allow", "devices.deny")
    } else {
        ("devices.deny", "devices.allow")
    };
    write_file(&dir.join(first), "a").with_context(|| {
        format!(
            "linux.resources.devices: writing \"a\" to {}/{first}",
            dir.display()
        )
    })?;
    for e in &st.exceptions {
        let line = e.v1_line();
        write_file(&dir.join(rest), &line).with_context(|| {
            format!(
                "linux.resources.devices: writing {line:?} to {}/{rest}",
                dir.display()
            )
        })?;
    }
    Ok(())
}
