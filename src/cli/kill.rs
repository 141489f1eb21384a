//! `hutch kill ID [SIGNAL] [--all]`.

use anyhow::Result;

use super::{GlobalOpts, KillArgs};
use crate::container::{kill::kill, ContainerDir};
use crate::signal::parse_signal_number;

pub fn run(global: &GlobalOpts, args: KillArgs) -> Result<i32> {
    let signal = parse_signal_number(args.signal.as_deref().unwrap_or("SIGTERM"))?;
    let dir = ContainerDir::open(&global.root, &args.id)?;
    let state = dir.load()?;
    kill(&dir, &state, signal, args.all)?;
    Ok(0)
}
