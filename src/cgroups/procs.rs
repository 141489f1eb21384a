//! The container's processes as its cgroup holds them: moving a process in, listing them
//! (`ps`, `delete`'s wait for an empty cgroup) and signalling every one (`kill --all`).

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;

use super::{rootless, write_file, Layout, Manager};

impl Manager {
    /// Moves `pid` into the cgroup2 directory only (it already moved itself into v1 ones).
    pub fn join_unified(&mut self, pid: Pid) -> Result<()> {
        match self.hierarchies.iter().position(|h| h.is_v2()) {
            Some(index) => self.join_one(index, pid).map(drop),
            None => Ok(()),
        }
    }

    /// Moves `pid` into hierarchy `index`. Rootless, a move the caller may not make leaves the
    /// hierarchy out instead (false).
    fn join_one(&mut self, index: usize, pid: Pid) -> Result<bool> {
        let dir = &self.hierarchies[index].path;
        let result = write_file(&dir.join("cgroup.procs"), &pid.to_string())
            .with_context(|| format!("adding process {pid} to cgroup {}", dir.display()));
        match result {
            Err(err) if self.rootless && rootless::is_permission_error(&err) => {
                self.leave_out(index, &err);
                Ok(false)
            }
            other => other.map(|()| true),
        }
    }

    /// The v1 hierarchies' `tasks` files, opened for writing: a process moves itself with "0"
    /// written to each. Opened here, in the host's mount namespace, because the process that
    /// writes may already be in the container's.
    pub fn open_v1_task_files(&mut self) -> Result<Vec<std::fs::File>> {
        let mut files = Vec::new();
        let mut index = 0;
        while index < self.hierarchies.len() {
            if self.hierarchies[index].is_v2() {
                index += 1;
                continue;
            }
            let file = self.hierarchies[index].path.join("tasks");
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&file)
                .with_context(|| format!("opening {}", file.display()));
            match opened {
                Ok(f) => {
                    files.push(f);
                    index += 1;
                }
                Err(err) if self.rootless && rootless::is_permission_error(&err) => {
                    self.leave_out(index, &err)
                }
                Err(err) => return Err(err),
            }
        }
        Ok(files)
    }

    /// Puts `pid` in every hierarchy. Moving another process takes the kernel's cgroup
    /// threadgroup lock for writing (an RCU grace period: ~10 ms here), so create and exec
    /// prefer clone3(CLONE_INTO_CGROUP) plus the process moving itself through `tasks`, and use
    /// this only when the process cannot (a new user namespace lacks the permission).
    pub fn join(&mut self, pid: Pid) -> Result<()> {
        let mut index = 0;
        while index < self.hierarchies.len() {
            if self.join_one(index, pid)? {
                index += 1;
            }
        }
        Ok(())
    }

    /// Host pids of every process in the cgroup (and cgroups below it).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some(primary) = self.primary() else {
            bail!("the container has no cgroup (rootless, and no cgroup the user may write)");
        };
        let dir = &primary.path;
        if !dir.exists() {
            bail!("cgroup {} does not exist", dir.display());
        }
        let mut out = Vec::new();
        procs_in(dir, true, &mut out);
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// True when the cgroup exists and has no process.
    pub fn is_empty(&self) -> bool {
        self.pids().map(|p| p.is_empty()).unwrap_or(true)
    }

    /// Host pids of every process in any hierarchy's directory (and those below). Every
    /// hierarchy counts when cleaning up: a process born in the cgroup2 directory may not have
    /// moved itself into the v1 ones yet (a `create` killed at that moment), so the primary
    /// hierarchy does not list it.
    pub(super) fn pids_everywhere(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for h in &self.hierarchies {
            procs_in(&h.path, true, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Signals every process in the cgroup. SIGKILL on v2 uses cgroup.kill when the kernel has
    /// it; otherwise the cgroup is frozen while the pids are listed and signalled, so nothing
    /// forks past the signal, and thawed afterwards (a paused container stays paused, except
    /// for SIGKILL, whose targets must run to die).
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        if self.layout == Layout::V2 && signal == libc::SIGKILL {
            if let Some(h) = self.unified() {
                let file = h.path.join("cgroup.kill");
                if file.exists() {
                    return write_file(&file, "1")
                        .with_context(|| format!("writing {}", file.display()));
                }
            }
        }
        let was_frozen = self.is_frozen().unwrap_or(false);
        let froze = !was_frozen && self.freeze().is_ok();
        let pids = self.pids();
        if let Ok(pids) = &pids {
            for &pid in pids {
                let _ = crate::syscall::process::kill_raw(Pid::from_raw(pid), signal);
            }
        }
        if froze || (was_frozen && signal == libc::SIGKILL) {
            let _ = self.thaw();
        }
        pids.map(|_| ())
    }
}

fn procs_in(dir: &Path, recursive: bool, out: &mut Vec<i32>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if recursive {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    procs_in(&e.path(), true, out);
                }
            }
        }
    }
}
