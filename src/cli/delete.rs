//! `hutch delete [--force] ID`. A forced delete of a container that does not exist succeeds:
//! containerd calls `delete` and then `delete --force` for the same id.

use anyhow::Result;

use super::{DeleteArgs, GlobalOpts};
use crate::container::{delete::delete, ContainerDir};

pub fn run(global: &GlobalOpts, args: DeleteArgs) -> Result<i32> {
    let dir = match ContainerDir::open(&global.root, &args.id) {
        Ok(dir) => dir,
        Err(err) if args.force && is_not_exist(&err) => return Ok(0),
        Err(err) => return Err(err),
    };
    let state = match dir.load() {
        Ok(state) => state,
        // A directory without state is what a killed create leaves: nothing runs, remove it.
        Err(err) if is_not_exist(&err) => {
            dir.destroy()?;
            return if args.force { Ok(0) } else { Err(err) };
        }
        Err(err) => return Err(err),
    };
    delete(dir, &state, args.force)?;
    Ok(0)
}

fn is_not_exist(err: &anyhow::Error) -> bool {
    err.to_string().contains("container does not exist")
}
