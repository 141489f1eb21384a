//! `linux.intelRdt`: hutch does not implement Intel RDT (resctrl). A config asking for it is
//! refused, naming the field, rather than run without the cache or memory-bandwidth allocation
//! it asked for. The message says whether the host could do it at all (a resctrl filesystem is
//! mounted), using runc's wording for a host that cannot.

use anyhow::{bail, Result};
use oci_spec::runtime::Spec;

pub fn check(spec: &Spec) -> Result<()> {
    if spec
        .linux()
        .as_ref()
        .and_then(|l| l.intel_rdt().as_ref())
        .is_none()
    {
        return Ok(());
    }
    if resctrl_mounted() {
        bail!("config.json: linux.intelRdt: Intel RDT (resctrl) is not implemented by hutch");
    }
    bail!(
        "config.json: linux.intelRdt: intelRdt is specified in config, but Intel RDT is not supported or enabled (no resctrl filesystem is mounted)"
    );
}

fn resctrl_mounted() -> bool {
    crate::host_proc::own_mountinfo()
        .is_ok_and(|text| crate::host_proc::mounts(&text).any(|m| m.fs_type == "resctrl"))
}
