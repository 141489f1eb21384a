//! `hutch state ID`: the OCI state JSON, indented as runc prints it.

use anyhow::{Context, Result};

use super::{GlobalOpts, IdArg};
use crate::container::ContainerDir;

pub fn run(global: &GlobalOpts, args: IdArg) -> Result<i32> {
    // No lock: a reader never waits behind a command running hooks.
    let dir = ContainerDir::open_unlocked(&global.root, &args.id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    let text = serde_json::to_string_pretty(&state.oci_state(status)).context("encoding state")?;
    super::print_stdout(&format!("{text}\n"))?;
    Ok(0)
}
