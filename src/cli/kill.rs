//! `hutch kill ID [SIGNAL] [--all]`.

use anyhow::Result;

use super::{GlobalOpts, KillArgs};
use crate::container::{kill::kill, ContainerDir};
use crate::signal::parse_signal_number;

pub fn run(global: &GlobalOpts, args: KillArgs) -> Result<i32> {
    let signal = parse_signal_number(args.signal.as_deref().unwrap_or("SIGTERM"))?;
    // No lock: kill must stop a container even while another command runs its hooks. The
    // init is signalled through a pidfd checked against its recorded start time.
    let dir = ContainerDir::open_unlocked(&global.root, &args.id)?;
    let state = dir.load()?;
    kill(&dir, &state, signal, args.all)?;
    Ok(0)
}
