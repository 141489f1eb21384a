//! Mount propagation across the container boundary, both ways: mounts the host makes under a
//! shared source after the container started, and mounts the container makes inside its binds
//! (Kubernetes' `HostToContainer` and `Bidirectional`), plus `linux.rootfsPropagation`.
//!
//! The host side is always a private mount namespace of the test's own (`unshare -m`), with
//! the bind source made a shared mount point there: the host's real mounts are never touched.

use std::fs;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// What crossed the boundary.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// A tmpfs the host mounted on the source's `sub/` after the container started.
    host_to_container: bool,
    /// A tmpfs the container mounted on the bind's `up/`.
    container_to_host: bool,
}

/// Runs a container with the source bound at `/p` with `bind_opts`, and `rootfsPropagation`
/// when given; the container mounts under `/p/up`, the host under `sub/`.
fn propagation(bind_opts: &[&str], rootfs_propagation: Option<&str>) -> Seen {
    propagation_in(bind_opts, rootfs_propagation, false)
}

/// `propagation`, in a user namespace mapping root to host uid 100000 when `userns`.
fn propagation_in(bind_opts: &[&str], rootfs_propagation: Option<&str>, userns: bool) -> Seen {
    let mut c = Ctr::new("prop");
    if userns {
        c.user_ns(100000, 100000);
        // Its root cannot create the mount point in a rootfs owned by host root.
        fs::create_dir_all(c.rootfs.join("p")).unwrap();
    }
    let h = c.dir.join("shared-src");
    fs::create_dir_all(h.join("sub")).unwrap();
    fs::create_dir_all(h.join("up")).unwrap();
    let mut opts = vec!["rbind"];
    opts.extend_from_slice(bind_opts);
    c.add_mount(json!({"destination": "/p", "type": "bind", "source": h, "options": opts}));
    if let Some(p) = rootfs_propagation {
        c.config["linux"]["rootfsPropagation"] = json!(p);
    }
    let caps = json!(["CAP_SYS_ADMIN"]);
    for set in ["bounding", "effective", "permitted"] {
        c.config["process"]["capabilities"][set] = caps.clone();
    }
    c.sh(
        "mount -t tmpfs tmpfs /p/up && touch /p/up/from-container; touch /tmp/ready; \
         i=0; while [ $i -lt 150 ]; do \
         [ -e /p/sub/from-host ] && { echo seen; exit 0; }; sleep 0.02; i=$((i+1)); done; \
         echo not-seen",
    );
    c.save();
    let script = format!(
        "mount --bind {h} {h}; mount --make-shared {h}; \
         {rt} --root {root} run -d --bundle {b} {id} > {d}/ctr.out 2>&1; \
         i=0; while [ ! -e {rootfs}/tmp/ready ]; do \
           i=$((i+1)); [ $i -lt 3000 ] || {{ echo container never ready; exit 1; }}; sleep 0.01; done; \
         if [ -e {h}/up/from-container ]; then echo host-seen; else echo host-not-seen; fi; \
         mount -t tmpfs tmpfs {h}/sub; touch {h}/sub/from-host; \
         while [ \"$({rt} --root {root} state {id} | grep -c '\"stopped\"')\" = 0 ]; do sleep 0.02; done",
        h = h.display(),
        rt = runtime().display(),
        root = c.root.display(),
        b = c.bundle.display(),
        id = c.id,
        d = c.dir.display(),
        rootfs = c.rootfs.display(),
    );
    let out = exec_timeout(
        Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-ec", &script]),
        Duration::from_secs(60),
    );
    out.assert_ok();
    let ctr = fs::read_to_string(c.dir.join("ctr.out")).unwrap();
    let host_to_container = match ctr.as_str() {
        "seen\n" => true,
        "not-seen\n" => false,
        other => panic!("container output {other:?}\n{out}"),
    };
    let container_to_host = match out.stdout.as_str() {
        "host-seen\n" => true,
        "host-not-seen\n" => false,
        _ => panic!("host side:\n{out}\ncontainer: {ctr}"),
    };
    Seen {
        host_to_container,
        container_to_host,
    }
}

/// Kubernetes' Bidirectional: containerd binds with `rshared` and sets the root `rshared`.
/// Before the fix the container's new root was made rslave after pivot_root, so the bind
/// became a plain slave and the container's mount never reached the host.
#[test]
fn rshared_bind_propagates_both_ways() {
    assert_eq!(
        propagation(&["rshared"], Some("rshared")),
        Seen {
            host_to_container: true,
            container_to_host: true
        }
    );
}

/// The same bind under the default (rslave) root: the host's peer group is its master, so
/// only host mounts come in.
#[test]
fn rshared_bind_under_a_slave_root_only_receives() {
    assert_eq!(
        propagation(&["rshared"], None),
        Seen {
            host_to_container: true,
            container_to_host: false
        }
    );
}

/// Kubernetes' HostToContainer.
#[test]
fn rslave_bind_only_receives() {
    assert_eq!(
        propagation(&["rslave"], Some("rshared")),
        Seen {
            host_to_container: true,
            container_to_host: false
        }
    );
}

#[test]
fn rprivate_bind_propagates_neither_way() {
    assert_eq!(
        propagation(&["rprivate"], Some("rshared")),
        Seen {
            host_to_container: false,
            container_to_host: false
        }
    );
}

/// `rootfsPropagation: unbindable` applies to the container's root after pivot_root; applied
/// to the runtime's `/` before the rootfs bind it made the bind fail with EINVAL.
#[test]
fn rootfs_propagation_unbindable() {
    hutch_only!("runc 1.1.5 applies it before binding the rootfs and fails with EINVAL");
    let mut c = Ctr::new("prop-unbindable");
    c.config["linux"]["rootfsPropagation"] = json!("unbindable");
    c.sh("awk '$5 == \"/\"' /proc/self/mountinfo");
    let out = c.run();
    out.assert_ok();
    let line = out.stdout.lines().next().unwrap_or_default();
    assert!(line.contains(" unbindable "), "root mount: {out}");
}

/// In a user namespace the parent clones the bind sources (the init may not reach them); the
/// clone must relate to the host's mounts as one made in the container's rslave namespace
/// would: host mounts come in, the container's never go out, even from a shared source.
#[test]
fn user_namespace_bind_receives_but_never_leaks_to_the_host() {
    for opts in [&[][..], &["rslave"][..]] {
        assert_eq!(
            propagation_in(opts, None, true),
            Seen {
                host_to_container: true,
                container_to_host: false
            },
            "{opts:?}"
        );
    }
}
