//! `hutch run`: create and start in one call. Detached, it returns once the process runs; in
//! the foreground it stays as the container's parent, forwards the signals it receives to the
//! init, reaps it, deletes the container (unless --keep) and exits with its status
//! (128+signal when the process was killed).

use anyhow::Result;
use nix::unistd::Pid;

use super::{GlobalOpts, RunArgs};
use crate::container::create::create;
use crate::container::delete::delete;
use crate::container::notify::Proxy;
use crate::container::start::start;
use crate::container::ContainerDir;
use crate::logging;
use crate::process::foreground::{block_signals, forward_and_wait};

pub fn run(global: &GlobalOpts, args: RunArgs) -> Result<i32> {
    // Signals are blocked (to be read from a signalfd) before the init exists, so none is lost
    // between start and the wait loop; the init resets its mask before exec.
    let forwarded = if args.detach {
        None
    } else {
        Some(block_signals()?)
    };
    let created = create(
        &global.root,
        &super::create::request(global, &args.create, args.detach),
    )?;
    // The notify proxy listens before the container's process runs, so no READY=1 is missed.
    let started = Proxy::listen(&created.dir.path)
        .and_then(|notify| start(&created.dir, &created.state).map(|()| notify));
    let notify = match started {
        Ok(notify) => notify,
        Err(err) => {
            let _ = delete(created.dir, &created.state, true);
            return Err(err);
        }
    };
    let init = Pid::from_raw(created.state.init_pid);
    let init_start_time = created.state.init_start_time;
    let Some(mask) = forwarded else {
        // Detached, hutch returns once the container is ready, without holding its lock.
        drop(created.dir);
        if let Some(proxy) = notify {
            if let Err(err) = proxy.forward_ready(init, init_start_time, init) {
                logging::warn(&format!("{err:#}"));
            }
        }
        return Ok(0);
    };
    if !args.no_subreaper {
        // Orphans of a container sharing our pid namespace come to us to be reaped.
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
    // Other commands (state, kill) must reach the container while it runs.
    drop(created.dir);
    // hutch stays the process to supervise. Waiting in a thread, signals keep being forwarded
    // (it inherits their blocked mask, so the signalfd below still gets them).
    let waiter = notify.and_then(|proxy| {
        let me = Pid::this();
        let spawned = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || {
                if let Err(err) = proxy.forward_ready(init, init_start_time, me) {
                    logging::warn(&format!("{err:#}"));
                }
            });
        spawned
            .map_err(|err| {
                logging::warn(&format!(
                    "NOTIFY_SOCKET: starting the READY=1 waiter: {err}"
                ))
            })
            .ok()
    });
    let code = forward_and_wait(init, &mask, created.console)?;
    // A READY=1 sent just before the container exited is still forwarded: once the init has
    // exited, the waiter reads what is left and returns.
    if let Some(waiter) = waiter {
        let _ = waiter.join();
    }
    if !args.keep {
        let removed = ContainerDir::open(&global.root, &args.create.id)
            .and_then(|dir| delete(dir, &created.state, true));
        if let Err(err) = removed {
            logging::warn(&format!("deleting container {}: {err:#}", args.create.id));
        }
    }
    Ok(code)
}
