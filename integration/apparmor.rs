//! `process.apparmorProfile` on a host with AppArmor: the container's processes run confined by
//! the profile, from `run` and from `exec`. This host's kernel has no AppArmor; Debian's has, and
//! hack/test.sh runs these in hack/systemd-vm.sh (whose tree has `apparmor_parser`). Elsewhere
//! each test prints SKIP.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::common::*;

/// A profile loaded for one test and removed when it ends. It allows what a container needs and
/// denies reading one file, so confinement shows from inside.
struct Profile {
    name: String,
    file: PathBuf,
}

const DENIED: &str = "/denied-by-apparmor";

impl Profile {
    /// Loads a profile named for `c`, its file in `c`'s directory.
    fn load(c: &Ctr) -> Option<Profile> {
        let enabled = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        if !enabled || !Path::new("/sbin/apparmor_parser").exists() {
            eprintln!("SKIP: no AppArmor here (run in hack/systemd-vm.sh)");
            return None;
        }
        let name = format!("hutch-it-{}", c.id);
        let file = c.dir.join(format!("{name}.profile"));
        let text = format!(
            "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  \
             capability,\n  network,\n  mount,\n  umount,\n  pivot_root,\n  signal,\n  \
             ptrace,\n  unix,\n  deny {DENIED} r,\n}}\n"
        );
        fs::write(&file, text).expect("write the profile");
        let out = exec_timeout(
            Command::new("/sbin/apparmor_parser")
                .args(["-r", "-K"])
                .arg(&file),
            CMD_TIMEOUT,
        );
        out.assert_ok();
        Some(Profile { name, file })
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = Command::new("/sbin/apparmor_parser")
            .arg("-R")
            .arg(&self.file)
            .status();
        let _ = fs::remove_file(&self.file);
    }
}

/// What a process in the container reports: its label, and whether it could read `DENIED`.
const PROBE: &str = "cat /proc/self/attr/current; echo; cat /denied-by-apparmor >/dev/null 2>&1 \
                     && echo read-ok || echo read-denied";

/// A container named `name` whose process runs under a profile loaded for it, and `DENIED` in
/// its rootfs; `None` (after a SKIP line) where AppArmor cannot be used.
fn confined(name: &str) -> Option<(Ctr, Profile)> {
    let mut c = Ctr::new(name);
    let profile = Profile::load(&c)?;
    fs::write(c.rootfs.join(DENIED.trim_start_matches('/')), "secret").unwrap();
    c.config["process"]["apparmorProfile"] = json!(profile.name);
    Some((c, profile))
}

/// `PROBE`'s output of a process confined by `profile`.
#[track_caller]
fn assert_confined(probe_out: &str, profile: &Profile) {
    assert!(
        probe_out.contains(&format!("{} (enforce)", profile.name)),
        "{probe_out}"
    );
    assert!(probe_out.contains("read-denied"), "{probe_out}");
}

#[test]
fn the_container_runs_confined_by_its_profile() {
    let Some((mut c, profile)) = confined("aa-run") else {
        return;
    };
    c.sh(PROBE);
    assert_confined(&c.run_ok(), &profile);
}

#[test]
fn exec_takes_the_containers_profile_or_its_own() {
    let Some((mut c, profile)) = confined("aa-exec") else {
        return;
    };
    c.args(&["sleep", "60"]);
    c.create_ok();
    c.start_ok();
    let out = c.rt_piped(&["exec", &c.id, "sh", "-c", PROBE]);
    out.assert_ok();
    assert_confined(&out.stdout, &profile);
    // `exec --apparmor unconfined` overrides the config's profile.
    let out = c.rt_piped(&["exec", "--apparmor", "unconfined", &c.id, "sh", "-c", PROBE]);
    out.assert_ok();
    assert!(out.stdout.contains("unconfined"), "{out}");
    assert!(out.stdout.contains("read-ok"), "{out}");
}
