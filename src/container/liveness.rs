//! Whether a recorded process is still the one hutch started: a pid is only trusted together
//! with the start time read from `/proc/<pid>/stat` when it was recorded (pids are reused).

use std::fs;
use std::os::unix::fs::MetadataExt;

use nix::unistd::Pid;

/// The (device, inode) of this process's executable, which a freshly cloned init shares.
pub fn own_exe_identity() -> Option<(u64, u64)> {
    fs::metadata("/proc/self/exe")
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Reads field 22 (starttime) of /proc/<pid>/stat, and whether the process has exited: a
/// zombie, or a task already exiting (PF_EXITING). A pid namespace's init that was killed
/// stays exiting until every process of its namespace is reaped, which may be up to another
/// parent (the caller's subreaper); it will never run the container again.
pub fn process_start_time(pid: Pid) -> Option<(u64, bool)> {
    const PF_EXITING: u64 = 0x4;
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields resume after the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let flags: u64 = fields.nth(5)?.parse().ok()?;
    let start = fields.nth(12)?.parse().ok()?;
    let exited = state == "Z" || state == "X" || flags & PF_EXITING != 0;
    Some((start, exited))
}

pub fn process_is_alive(pid: Pid, start_time: u64) -> bool {
    if pid.as_raw() <= 0 {
        return false;
    }
    matches!(process_start_time(pid), Some((start, zombie)) if start == start_time && !zombie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_read() {
        let me = Pid::this();
        let (start, zombie) = process_start_time(me).expect("own stat");
        assert!(!zombie);
        assert!(process_is_alive(me, start));
        assert!(!process_is_alive(me, start + 1));
    }
}
