//! `hutch resume ID`: thaw a paused container.

use anyhow::{bail, Result};

use super::{GlobalOpts, ResumeArgs};
use crate::container::state::Status;

pub fn run(global: &GlobalOpts, args: ResumeArgs) -> Result<i32> {
    let (_dir, _state, status, m) = super::pause::open(global, &args.id)?;
    if status != Status::Paused {
        bail!("container not paused");
    }
    m?.thaw()?;
    Ok(0)
}
