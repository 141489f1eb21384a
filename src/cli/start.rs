//! `hutch start ID`.

use anyhow::Result;

use super::{GlobalOpts, IdArg};
use crate::container::{start::start, ContainerDir};

pub fn run(global: &GlobalOpts, args: IdArg) -> Result<i32> {
    let dir = ContainerDir::open(&global.root, &args.id)?;
    let state = dir.load()?;
    start(&dir, &state)?;
    Ok(0)
}
