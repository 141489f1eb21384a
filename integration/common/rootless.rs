//! An unprivileged test user for the rootless tests, made once per run if the host lacks it: a
//! user and group `hutch-rootless` with /etc/subuid and /etc/subgid ranges (what
//! newuidmap/newgidmap check), no home and no login shell.

use std::fs;
use std::process::Command;
use std::sync::OnceLock;

pub const USER: &str = "hutch-rootless";

#[derive(Debug)]
pub struct TestUser {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
    /// The first id and the size of the user's /etc/subuid range.
    pub subuid: (u32, u32),
    /// The same from /etc/subgid.
    pub subgid: (u32, u32),
}

static TEST_USER: OnceLock<TestUser> = OnceLock::new();

/// The test user, made (with subordinate id ranges) on first use.
pub fn test_user() -> &'static TestUser {
    TEST_USER.get_or_init(|| {
        if id_of("-u").is_none() {
            let out = Command::new("useradd")
                .args([
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--user-group",
                    USER,
                ])
                .output()
                .expect("running useradd (package passwd)");
            // 9: made meanwhile by another test binary.
            assert!(
                out.status.success() || out.status.code() == Some(9),
                "useradd {USER}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let uid = id_of("-u").expect("the test user's uid");
        let gid = id_of("-g").expect("the test user's gid");
        TestUser {
            name: USER,
            uid,
            gid,
            subuid: subordinate_range("/etc/subuid", "--add-subuids"),
            subgid: subordinate_range("/etc/subgid", "--add-subgids"),
        }
    })
}

fn id_of(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, USER]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The user's range in `file`, added (65536 ids after every range already given out) if it has
/// none: Debian's useradd adds one, other setups may not.
fn subordinate_range(file: &str, usermod_flag: &str) -> (u32, u32) {
    let parse = |text: &str| -> Vec<(String, u32, u32)> {
        text.lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                Some((
                    f.next()?.to_string(),
                    f.next()?.parse().ok()?,
                    f.next()?.parse().ok()?,
                ))
            })
            .collect()
    };
    let ranges = parse(&fs::read_to_string(file).unwrap_or_default());
    if let Some((_, start, count)) = ranges.iter().find(|(u, _, c)| u == USER && *c >= 65536) {
        return (*start, *count);
    }
    let start = ranges
        .iter()
        .map(|(_, s, c)| s + c)
        .max()
        .unwrap_or(100_000)
        .max(100_000);
    let range = format!("{start}-{}", start + 65535);
    let out = Command::new("usermod")
        .args([usermod_flag, &range, USER])
        .output()
        .expect("running usermod");
    assert!(
        out.status.success(),
        "usermod {usermod_flag} {range} {USER}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (start, 65536)
}

/// newuidmap and newgidmap (Debian package `uidmap`) are installed.
pub fn have_id_map_helpers() -> bool {
    ["newuidmap", "newgidmap"].iter().all(|h| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(h).exists()))
    })
}
