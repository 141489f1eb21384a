//! Whether a recorded process is still the one hutch started: a pid is only trusted together
//! with the start time read from `/proc/<pid>/stat` when it was recorded (pids are reused).

use std::fs;
use std::os::unix::fs::MetadataExt;

use nix::unistd::Pid;

use crate::host_proc;

/// The (device, inode) of this process's executable, which a freshly cloned init shares.
pub fn own_exe_identity() -> Option<(u64, u64)> {
    fs::metadata("/proc/self/exe")
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Whether `pid` is still the process that started at `start_time` (not a reused pid) and
/// has not exited.
pub fn process_is_alive(pid: Pid, start_time: u64) -> bool {
    if pid.as_raw() <= 0 {
        return false;
    }
    matches!(host_proc::process_start_time(pid), Some((start, zombie)) if start == start_time && !zombie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_read() {
        let me = Pid::this();
        let (start, zombie) = host_proc::process_start_time(me).expect("own stat");
        assert!(!zombie);
        assert!(process_is_alive(me, start));
        assert!(!process_is_alive(me, start + 1));
    }
}
