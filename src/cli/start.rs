//! `hutch start ID`.

use anyhow::Result;
use nix::unistd::Pid;

use super::{GlobalOpts, IdArg};
use crate::container::notify::Proxy;
use crate::container::state::Status;
use crate::container::{start::start, ContainerDir};

pub fn run(global: &GlobalOpts, args: IdArg) -> Result<i32> {
    let dir = ContainerDir::open(&global.root, &args.id)?;
    let state = dir.load()?;
    // Listening before the container's process runs, so its READY=1 cannot be missed.
    let notify = if Proxy::requested() && dir.status(&state) == Status::Created {
        Proxy::listen(&dir.path)?
    } else {
        None
    };
    start(&dir, &state)?;
    // The wait for READY=1 must not hold the container's lock.
    drop(dir);
    if let Some(proxy) = notify {
        let init = Pid::from_raw(state.init_pid);
        proxy.forward_ready(init, state.init_start_time, init)?;
    }
    Ok(0)
}
