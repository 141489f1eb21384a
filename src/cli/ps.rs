//! `hutch ps [--format table|json] ID [ps options]`: the processes in the container's cgroup.
//! json is a bare array of host pids (what containerd reads); table runs the host's `ps`
//! (default `-ef`) and keeps its header and the rows of the container's pids, as runc does.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{GlobalOpts, PsArgs};

/// The column of `PID` in a ps header.
pub fn pid_index(header: &str) -> Option<usize> {
    header.split_whitespace().position(|f| f == "PID")
}

/// Header plus the rows whose PID column is one of `pids`.
pub fn filter_table(output: &str, pids: &[i32]) -> Result<String> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    let idx = pid_index(header).context("couldn't find PID field in ps output")?;
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let pid = line
            .split_whitespace()
            .nth(idx)
            .and_then(|f| f.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `ps` from PATH, or the usual places when PATH is unset (podman passes none).
fn ps_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path).chain(["/usr/bin".into(), "/bin".into()]) {
        let p = d.join("ps");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("ps")
}

pub fn run(global: &GlobalOpts, args: PsArgs) -> Result<i32> {
    let (dir, state, _status, _) = super::pause::open_unlocked(global, &args.id)?;
    drop(dir);
    let pids = crate::container::kill::processes(&state)?;
    if args.format == "json" {
        if !args.ps_args.is_empty() {
            bail!("ps options cannot be used with --format json");
        }
        super::print_stdout(&format!("{}\n", serde_json::to_string(&pids)?))?;
        return Ok(0);
    }
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args
    };
    let out = Command::new(ps_binary())
        .args(&ps_args)
        .output()
        .context("running ps")?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("ps {}: {}", ps_args.join(" "), text.trim());
    }
    super::print_stdout(&filter_table(&text, &pids)?)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_filtered_by_pid_column() {
        let out = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 43 42 sh\n";
        assert_eq!(
            filter_table(out, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\n"
        );
        assert!(filter_table("USER CMD\n", &[1]).is_err());
    }
}
