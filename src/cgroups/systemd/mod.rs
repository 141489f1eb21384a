//! The systemd cgroup driver (`--systemd-cgroup`): the container runs in a transient unit that
//! systemd makes and owns, as kubelet, Docker and podman expect on systemd hosts.
//!
//! [`unit`] turns `linux.cgroupsPath` (`slice:prefix:name`) into the unit and its cgroup;
//! [`properties`] turns `linux.resources` and annotations into unit properties; [`bus`] asks
//! systemd over D-Bus.
//!
//! The flow, as runc's: the init is cloned in hutch's own cgroup (the unit's does not exist
//! yet), and the unit is started with the init's pid in `PIDs` and `Delegate=yes`; systemd
//! moves it into the unit's cgroup in every hierarchy it manages. hutch then makes the
//! directories systemd left out (v1 controllers it does not manage), moves the init into them,
//! and writes every limit to the cgroup files too, as the cgroupfs driver does. `update` sets
//! the unit's properties and the files; `delete` stops the unit and resets it if it failed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::Manager;

mod bus;
mod devices;
pub mod properties;
pub mod unit;

/// The unit recorded in the container's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemdUnit {
    pub name: String,
    /// The slice the scope was put in (empty for a slice unit).
    pub slice: String,
    /// The user's manager (rootless) rather than the system's.
    #[serde(default)]
    pub user: bool,
}

impl SystemdUnit {
    /// The unit, and its cgroup from the root of the hierarchy: a user's manager (rootless)
    /// keeps its units under its own cgroup, which it is asked for.
    pub fn new(unit: unit::Unit, rootless: bool) -> Result<(SystemdUnit, PathBuf)> {
        let cgroup = unit.cgroup.clone();
        let this = SystemdUnit {
            name: unit.name,
            slice: unit.slice,
            user: rootless,
        };
        let root = bus::manager_cgroup(&this)?;
        Ok((this, Path::new(&root).join(cgroup)))
    }
}

impl Manager {
    /// Starts the container's unit with `pid` in it, then puts `pid` in the hierarchies
    /// systemd leaves alone and writes the limits to the files.
    pub fn start_unit(
        &mut self,
        pid: Pid,
        id: &str,
        resources: Option<&LinuxResources>,
        annotations: Option<&HashMap<String, String>>,
    ) -> Result<()> {
        let Some(unit) = self.systemd.clone() else {
            return Ok(());
        };
        let mut props = properties::scope_properties(
            &format!("hutch container {id}"),
            &unit.slice,
            pid.as_raw() as u32,
        );
        if let Some(r) = resources {
            props.extend(properties::resource_properties(r, self.is_v1())?);
        }
        // Rootless, device rules are not applied (the user namespace guards devices).
        if !self.rootless {
            let list = resources
                .and_then(|r| r.devices().as_deref())
                .unwrap_or_default();
            props.extend(devices::device_properties(list)?);
        }
        if let Some(a) = annotations {
            props.extend(properties::annotation_properties(a)?);
        }
        bus::start_unit(&unit, &props)
            .with_context(|| format!("starting systemd unit {}", unit.name))?;
        self.create_and_apply_after_unit(pid, resources)
    }

    fn is_v1(&self) -> bool {
        self.layout != super::Layout::V2
    }

    /// `update` under systemd: the unit's properties (runtime only, as runc), then the files.
    pub(super) fn update_unit(&self, resources: &LinuxResources) -> Result<()> {
        let Some(unit) = &self.systemd else {
            return Ok(());
        };
        let props = properties::resource_properties(resources, self.is_v1())?;
        if !props.is_empty() {
            bus::set_unit_properties(unit, &props)
                .with_context(|| format!("updating systemd unit {}", unit.name))?;
        }
        Ok(())
    }

    /// `delete` under systemd: the unit is stopped (and a failed one reset), so nothing of it
    /// stays loaded; a unit already gone is no error.
    pub(super) fn stop_unit(&self) -> Result<()> {
        let Some(unit) = &self.systemd else {
            return Ok(());
        };
        bus::stop_unit(unit).with_context(|| format!("stopping systemd unit {}", unit.name))
    }
}
