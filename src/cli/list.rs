//! `hutch list [--format table|json] [--quiet]`.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use anyhow::{Context, Result};

use super::{GlobalOpts, ListArgs, ListFormat};
use crate::container::state::{State, Status};
use crate::container::state_dir::{derive_status, STATE_FILE};

struct Entry {
    state: State,
    status: Status,
    owner: String,
}

pub fn run(global: &GlobalOpts, args: ListArgs) -> Result<i32> {
    let entries = read_entries(global)?;
    // One write for the whole list (stdout alone would write each line): 1,000 containers.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.quiet {
        for e in &entries {
            writeln!(out, "{}", e.state.id)?;
        }
        return Ok(0);
    }
    match args.format {
        ListFormat::Json => {
            // runc encodes a nil slice: `null` when there are no containers.
            let states: Vec<_> = entries
                .iter()
                .map(|e| {
                    let mut v = serde_json::to_value(e.state.oci_state(e.status))?;
                    v["owner"] = serde_json::Value::String(e.owner.clone());
                    Ok(v)
                })
                .collect::<Result<_, serde_json::Error>>()
                .context("encoding the container list")?;
            if states.is_empty() {
                writeln!(out, "null")?;
            } else {
                writeln!(out, "{}", serde_json::Value::Array(states))?;
            }
        }
        ListFormat::Table => {
            let mut rows = vec![[
                "ID".to_string(),
                "PID".to_string(),
                "STATUS".to_string(),
                "BUNDLE".to_string(),
                "CREATED".to_string(),
                "OWNER".to_string(),
            ]];
            for e in &entries {
                let pid = if e.status == Status::Stopped {
                    0
                } else {
                    e.state.init_pid
                };
                rows.push([
                    e.state.id.clone(),
                    pid.to_string(),
                    e.status.as_str().to_string(),
                    e.state.bundle.display().to_string(),
                    e.state.created.clone(),
                    e.owner.clone(),
                ]);
            }
            write_table(&mut out, &rows)?;
        }
    }
    out.flush()?;
    Ok(0)
}

fn read_entries(global: &GlobalOpts) -> Result<Vec<Entry>> {
    let dir = match std::fs::read_dir(&global.root) {
        Ok(d) => d,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(crate::container::state_dir::denied(&global.root));
        }
        Err(err) => {
            return Err(err).with_context(|| format!("reading {}", global.root.display()));
        }
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let mut entries = Vec::new();
    for name in names {
        // No lock: list must not wait behind a slow create. A container mid-create or
        // mid-delete may be missing or show its last saved state.
        let path = global.root.join(&name);
        let Ok(data) = std::fs::read(path.join(STATE_FILE)) else {
            continue;
        };
        let state = match serde_json::from_slice::<State>(&data) {
            Ok(state) => state,
            Err(err) => {
                crate::logging::warn(&format!(
                    "container {name}: its state file is corrupt ({err}); `delete --force {name}` removes it"
                ));
                continue;
            }
        };
        let status = derive_status(&path, &state);
        let owner = std::fs::metadata(&path)
            .map(|m| owner_name(&passwd, m.uid()))
            .unwrap_or_default();
        entries.push(Entry {
            state,
            status,
            owner,
        });
    }
    Ok(entries)
}

/// The user name of `uid` as runc prints it: looked up in /etc/passwd, read once per `list` (as
/// runc's own user package does; hutch is static, so glibc's NSS is not used), `#<uid>` when it
/// has none.
fn owner_name(passwd: &str, uid: u32) -> String {
    passwd_name(passwd, uid).map_or_else(|| format!("#{uid}"), str::to_string)
}

fn passwd_name(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let entry_uid = fields.nth(1)?;
        (entry_uid.parse::<u32>().ok()? == uid).then_some(name)
    })
}

/// Columns as Go's tabwriter lays them out for runc (min width 12, padding 3).
fn write_table(out: &mut impl Write, rows: &[[String; 6]]) -> Result<()> {
    let mut widths = [0usize; 6];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len() + 3).max(12);
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}", width = widths[i]));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::passwd_name;

    #[test]
    fn passwd_name_matches_the_uid_field_only() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # a comment\n\
                      broken\n\
                      daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                      alice:x:1000:1:Alice:/home/alice:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 0), Some("root"));
        assert_eq!(passwd_name(passwd, 1000), Some("alice"));
        // gid 1 of daemon and alice must not match uid 1 twice; uid 1 is daemon's.
        assert_eq!(passwd_name(passwd, 1), Some("daemon"));
        assert_eq!(passwd_name(passwd, 4242), None);
    }
}
