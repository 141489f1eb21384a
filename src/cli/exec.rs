//! `hutch exec`: run a new process inside a running container, with runc's flags.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capability, Process};

use super::{ExecArgs, GlobalOpts};
use crate::container::exec::{exec, ExecRequest};

pub fn run(global: &GlobalOpts, args: ExecArgs) -> Result<i32> {
    let request = ExecRequest {
        id: &args.id,
        console_socket: args.console_socket.as_deref(),
        pidfd_socket: args.pidfd_socket.as_deref(),
        pid_file: args.pid_file.as_deref(),
        detach: args.detach,
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
    };
    // runc's code for a failed exec setup is 255, so engines can tell it from the process's
    // own status.
    match exec(&global.root, &request, |base| build_process(&args, base)) {
        Ok(code) => Ok(code),
        Err(err) => {
            let msg = format!("{err:#}");
            crate::logging::error(&msg);
            if crate::logging::logs_to_file() {
                eprintln!("{msg}");
            }
            Ok(255)
        }
    }
}

/// The process to run: `--process FILE` as given, or the container's own process with the
/// command-line overrides applied (as runc builds it).
fn build_process(args: &ExecArgs, base: &Process) -> Result<Process> {
    if let Some(path) = &args.process {
        let data =
            std::fs::read(path).with_context(|| format!("reading --process {}", path.display()))?;
        let process: Process = serde_json::from_slice(&data)
            .with_context(|| format!("parsing --process {}", path.display()))?;
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            bail!(
                "--process {}: args: at least one argument is required",
                path.display()
            );
        }
        return Ok(process);
    }
    if args.command.is_empty() {
        bail!("exec: the command to run is missing (give it after the container id, or use --process)");
    }
    let mut process = base.clone();
    process.set_args(Some(args.command.clone()));
    process.set_command_line(None);
    let mut env = base.env().clone().unwrap_or_default();
    env.extend(args.env.iter().cloned());
    process.set_env(Some(env));
    if let Some(cwd) = &args.cwd {
        process.set_cwd(cwd.clone());
    }
    if args.tty {
        process.set_terminal(Some(true));
    } else {
        process.set_terminal(Some(false));
    }
    if args.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &args.apparmor {
        process.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &args.process_label {
        process.set_selinux_label(Some(label.clone()));
    }
    if let Some(user) = &args.user {
        let (uid, gid) = parse_user(user)?;
        let u = process.user_mut();
        u.set_uid(uid);
        if let Some(gid) = gid {
            u.set_gid(gid);
        }
    }
    if !args.additional_gids.is_empty() {
        process
            .user_mut()
            .set_additional_gids(Some(args.additional_gids.clone()));
    }
    if !args.cap.is_empty() {
        add_capabilities(&mut process, &args.cap)?;
    }
    Ok(process)
}

fn parse_user(user: &str) -> Result<(u32, Option<u32>)> {
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid = uid
        .parse()
        .with_context(|| format!("--user {user:?}: the uid must be a number"))?;
    let gid = gid
        .map(|g| g.parse())
        .transpose()
        .with_context(|| format!("--user {user:?}: the gid must be a number"))?;
    Ok((uid, gid))
}

/// `--cap` adds to the bounding, effective and permitted sets; never inheritable
/// (CVE-2022-29162).
fn add_capabilities(process: &mut Process, names: &[String]) -> Result<()> {
    let mut caps = process.capabilities().clone().unwrap_or_default();
    for name in names {
        let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
            .with_context(|| format!("--cap {name:?}: unknown capability"))?;
        let add = |set: Option<oci_spec::runtime::Capabilities>| {
            let mut set = set.unwrap_or_default();
            set.insert(cap);
            Some(set)
        };
        let (b, e, p) = (
            add(caps.bounding().clone()),
            add(caps.effective().clone()),
            add(caps.permitted().clone()),
        );
        caps.set_bounding(b);
        caps.set_effective(e);
        caps.set_permitted(p);
    }
    process.set_capabilities(Some(caps));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_parse() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:100").unwrap(), (1000, Some(100)));
        assert!(parse_user("bob").is_err());
    }
}
