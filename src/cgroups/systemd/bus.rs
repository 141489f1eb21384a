//! The calls the driver makes to systemd's manager.

use anyhow::{bail, Result};

use super::properties::Properties;
use super::SystemdUnit;

pub fn start_unit(unit: &SystemdUnit, _props: &Properties) -> Result<()> {
    bail!("{}: the D-Bus client is not built yet", unit.name)
}

pub fn set_unit_properties(unit: &SystemdUnit, _props: &Properties) -> Result<()> {
    bail!("{}: the D-Bus client is not built yet", unit.name)
}

pub fn stop_unit(_unit: &SystemdUnit) -> Result<()> {
    Ok(())
}
