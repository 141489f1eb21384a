//! Pausing and resuming a container: v1's freezer controller (`freezer.state`), v2's
//! `cgroup.freeze` with `cgroup.events` telling when it took.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{read_string, write_file, Layout, Manager};

impl Manager {
    /// The directory whose freezer freezes the whole container, for tools that freeze it
    /// themselves (CRIU's `freeze_cgroup`).
    pub fn freezer_path(&self) -> Option<&Path> {
        let v2 = matches!(self.layout, Layout::V2);
        self.freezer_dir(v2).ok().map(|h| h.path.as_path())
    }

    /// The hierarchy holding the freezer (the cgroup2 tree, or v1's freezer).
    fn freezer_dir(&self, v2: bool) -> Result<&super::Hierarchy> {
        let found = if v2 {
            self.unified()
        } else {
            self.v1("freezer")
        };
        match found {
            Some(h) => Ok(h),
            None if self.rootless => bail!(
                "the container has no freezer cgroup: rootless, and the user may write none (delegate a cgroup v2 subtree to the user to pause)"
            ),
            None if v2 => bail!("no cgroup v2 directory"),
            None => bail!("the freezer controller is not mounted"),
        }
    }

    /// Freezes every process (v1 freezer.state, v2 cgroup.freeze) and waits until frozen.
    pub fn freeze(&self) -> Result<()> {
        match self.layout {
            Layout::V2 => {
                let h = self.freezer_dir(true)?;
                write_file(&h.path.join("cgroup.freeze"), "1")
                    .with_context(|| format!("freezing {}", h.path.display()))?;
                wait_v2_frozen(&h.path, true)
            }
            _ => {
                let h = self.freezer_dir(false)?;
                freeze_v1(&h.path)
            }
        }
    }

    pub fn thaw(&self) -> Result<()> {
        match self.layout {
            Layout::V2 => {
                let h = self.freezer_dir(true)?;
                write_file(&h.path.join("cgroup.freeze"), "0")
                    .with_context(|| format!("thawing {}", h.path.display()))?;
                wait_v2_frozen(&h.path, false)
            }
            _ => {
                let h = self.freezer_dir(false)?;
                write_file(&h.path.join("freezer.state"), "THAWED")
                    .with_context(|| format!("thawing {}", h.path.display()))
            }
        }
    }

    /// Whether the container is paused.
    pub fn is_frozen(&self) -> Result<bool> {
        match self.layout {
            Layout::V2 => {
                let h = self.freezer_dir(true)?;
                match read_string(&h.path.join("cgroup.freeze")) {
                    Ok(v) => Ok(v == "1"),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(e).context("reading cgroup.freeze"),
                }
            }
            _ => {
                let Some(h) = self.v1("freezer") else {
                    return Ok(false);
                };
                match read_string(&h.path.join("freezer.state")) {
                    Ok(v) => Ok(v == "FROZEN"),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(e).context("reading freezer.state"),
                }
            }
        }
    }
}

/// runc's v1 freeze loop: write FROZEN until the state reads FROZEN, thawing now and then so
/// processes that keep forking let it settle.
fn freeze_v1(dir: &Path) -> Result<()> {
    let file = dir.join("freezer.state");
    for i in 0..1000 {
        if i % 50 == 49 {
            let _ = write_file(&file, "THAWED");
            std::thread::sleep(Duration::from_millis(10));
        }
        write_file(&file, "FROZEN").with_context(|| format!("freezing {}", dir.display()))?;
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_micros(10));
        }
        let state = read_string(&file).with_context(|| format!("reading {}", file.display()))?;
        match state.as_str() {
            "FROZEN" => return Ok(()),
            "FREEZING" => continue,
            other => bail!("unexpected freezer state {other:?} after freezing"),
        }
    }
    let _ = write_file(&file, "THAWED");
    bail!("unable to freeze {}", dir.display())
}

fn wait_v2_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let events = fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
        if events.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "cgroup {} did not become {} within 5s",
                dir.display(),
                if frozen { "frozen" } else { "thawed" }
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
