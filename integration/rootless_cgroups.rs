//! Rootless with a cgroup delegated to the user, as systemd's `Delegate=yes` or an admin gives
//! one: limits apply, pause works, and the container's directories go with it. Runs on the
//! host's layout (hybrid here: a delegated directory in every v1 hierarchy and the unified
//! tree) and, through `hack/vm-run.sh`, on a pure cgroup v2 kernel (one delegated subtree).

use std::fs;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::cgroups::{cgroup_dir, is_v2, read};
use crate::common::rootless::{test_user, TestUser};
use crate::common::*;

/// A cgroup `/NAME` made by root in every hierarchy and handed to the test user: the
/// directory and the files a delegate writes (creating children, moving processes, enabling
/// v2 controllers for its children). On cgroup2, moving a process needs write access to the
/// common ancestor's cgroup.procs, so the runtime is started from `NAME/launcher`, put there
/// by root; on v1 only the destination counts.
struct Delegation {
    name: String,
    /// Every directory made, parents first.
    dirs: Vec<PathBuf>,
    /// cgroup.procs of the cgroup2 launcher directory.
    launcher: Option<PathBuf>,
}

impl Delegation {
    fn new(tag: &str, user: &TestUser) -> Delegation {
        let name = format!("hutch-deleg-{tag}");
        let mut d = Delegation {
            name: name.clone(),
            dirs: Vec::new(),
            launcher: None,
        };
        for mount in cgroup_mounts() {
            let dir = mount.join(&name);
            fs::create_dir(&dir).unwrap();
            d.dirs.push(dir.clone());
            // A v1 cpuset starts empty, and nothing may join it until it is filled in.
            let v1 = !dir.join("cgroup.subtree_control").exists();
            if v1 && dir.join("cpuset.cpus").exists() {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    fs::write(dir.join(f), fs::read(mount.join(f)).unwrap()).unwrap();
                }
            }
            chown(&dir, Some(user.uid), Some(user.gid)).unwrap();
            for f in [
                "cgroup.procs",
                "tasks",
                "cgroup.subtree_control",
                "cgroup.threads",
            ] {
                if dir.join(f).exists() {
                    chown(dir.join(f), Some(user.uid), Some(user.gid)).unwrap();
                }
            }
            if dir.join("cgroup.subtree_control").exists() {
                let launcher = dir.join("launcher");
                fs::create_dir(&launcher).unwrap();
                d.dirs.push(launcher.clone());
                d.launcher = Some(launcher.join("cgroup.procs"));
            }
        }
        d
    }

    /// `cmd` (the test user's runtime command), started from the launcher cgroup.
    fn launch(&self, cmd: &Command) -> Command {
        let mut wrapped = Command::new("sh");
        let script = match &self.launcher {
            Some(procs) => format!("echo $$ > {} && exec \"$@\"", procs.display()),
            None => "exec \"$@\"".to_string(),
        };
        wrapped
            .args(["-c", &script, "sh"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                wrapped.env(k, v);
            }
        }
        wrapped.stdin(std::process::Stdio::null());
        wrapped
    }
}

impl Drop for Delegation {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Every cgroup hierarchy's mount point (v1 controllers and cgroup2).
fn cgroup_mounts() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fs_type = post.split_whitespace().next()?;
            let mount_point = pre.split_whitespace().nth(4)?;
            let root = pre.split_whitespace().nth(3)?;
            (matches!(fs_type, "cgroup" | "cgroup2")
                && root == "/"
                && mount_point.starts_with("/sys/fs/cgroup"))
            .then(|| PathBuf::from(mount_point))
        })
        .collect()
}

#[test]
fn delegated_cgroups_get_the_limits_and_pause() {
    let user = test_user();
    // Made first, so it is dropped after the container.
    let deleg = Delegation::new(&std::process::id().to_string(), user);
    let mut c = Ctr::rootless("rl-deleg");
    c.config["linux"]["cgroupsPath"] = json!(format!("/{}/{}", deleg.name, c.id));
    c.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 32}
    });
    c.args(&["sleep", "1000"]);
    let create = c.create_cmd(&[]);
    let out = c.create_by(deleg.launch(&create));
    assert!(out.ok(), "create failed:\n{out}");
    assert!(
        !out.stderr.contains("ignored"),
        "a limit was skipped although the cgroup is delegated:\n{out}"
    );
    let init = c.pid();
    let memory = cgroup_dir(init, "memory");
    let pids = cgroup_dir(init, "pids");
    let expected = Path::new(&deleg.name).join(&c.id);
    assert!(
        memory.ends_with(&expected),
        "init is in {}",
        memory.display()
    );
    if is_v2() {
        assert_eq!(read(&memory, "memory.max"), "67108864");
    } else {
        assert_eq!(read(&memory, "memory.limit_in_bytes"), "67108864");
    }
    assert_eq!(read(&pids, "pids.max"), "32");
    c.start_ok();
    c.rt(&["pause", &c.id]).assert_ok();
    assert_eq!(c.status(), "paused");
    c.rt(&["resume", &c.id]).assert_ok();
    assert_eq!(c.status(), "running");
    c.kill("KILL").assert_ok();
    c.wait_status("stopped", Duration::from_secs(10));
    c.delete().assert_ok();
    assert!(!memory.exists(), "delete left {}", memory.display());
}
