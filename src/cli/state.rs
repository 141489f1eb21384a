//! `hutch state ID`: the OCI state JSON, indented as runc prints it.

use anyhow::{Context, Result};

use super::{GlobalOpts, IdArg};
use crate::container::ContainerDir;

pub fn run(global: &GlobalOpts, args: IdArg) -> Result<i32> {
    let dir = ContainerDir::open(&global.root, &args.id)?;
    let state = dir.load()?;
    let status = dir.status(&state);
    let text = serde_json::to_string_pretty(&state.oci_state(status)).context("encoding state")?;
    println!("{text}");
    Ok(0)
}
