//! Mounts: tmpfs options, bind and rbind (ro, nosuid, noexec…), file binds, propagation,
//! order, relative destinations, devices, readonly root.

use std::fs;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// The /proc/mounts line (fields) for mount point `mp`, from container output.
fn mount_line<'a>(mounts: &'a str, mp: &str) -> Vec<&'a str> {
    mounts
        .lines()
        .rfind(|l| l.split(' ').nth(1) == Some(mp))
        .unwrap_or_else(|| panic!("{mp} not mounted:\n{mounts}"))
        .split(' ')
        .collect()
}

fn opts<'a>(line: &[&'a str]) -> Vec<&'a str> {
    line[3].split(',').collect()
}

#[test]
fn tmpfs_with_options() {
    let mut c = Ctr::new("mnt-tmpfs");
    c.add_mount(json!({
        "destination": "/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=750"]
    }));
    c.sh("cat /proc/mounts; stat -c 'mode=%a' /data");
    let out = c.run();
    out.assert_ok();
    let l = mount_line(&out.stdout, "/data");
    assert_eq!(l[2], "tmpfs");
    let o = opts(&l);
    for want in ["rw", "nosuid", "nodev", "noexec", "size=1024k", "mode=750"] {
        assert!(o.contains(&want), "{want} missing from {o:?}");
    }
    assert!(out.stdout.contains("mode=750\n"));
}

#[test]
fn tmpfs_readonly_and_exec_flags() {
    let mut c = Ctr::new("mnt-tmpfs-ro");
    c.add_mount(json!({"destination": "/ro", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "exec", "suid"]}));
    c.sh("cat /proc/mounts; touch /ro/x 2>&1 || echo write-refused");
    let out = c.run();
    out.assert_ok();
    let o = opts(&mount_line(&out.stdout, "/ro"));
    assert!(o.contains(&"ro"), "{o:?}");
    assert!(!o.contains(&"noexec") && !o.contains(&"nosuid"), "{o:?}");
    assert!(out.stdout.contains("write-refused"));
    assert!(
        out.stdout.to_lowercase().contains("read-only file system"),
        "{out}"
    );
}

fn host_dir(c: &Ctr, name: &str) -> std::path::PathBuf {
    let d = c.dir.join(name);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("hello"), "from the host\n").unwrap();
    d
}

#[test]
fn bind_readonly() {
    let mut c = Ctr::new("mnt-bind-ro");
    let h = host_dir(&c, "hostdata");
    c.add_mount(json!({"destination": "/mnt/data", "type": "bind", "source": h, "options": ["bind", "ro", "nosuid", "noexec", "nodev"]}));
    c.sh("cat /mnt/data/hello; touch /mnt/data/new 2>/dev/null && echo wrote || echo refused; cat /proc/mounts");
    let out = c.run();
    out.assert_ok();
    assert!(out.stdout.starts_with("from the host\nrefused\n"), "{out}");
    let o = opts(&mount_line(&out.stdout, "/mnt/data"));
    for want in ["ro", "nosuid", "noexec", "nodev"] {
        assert!(o.contains(&want), "{want} missing from {o:?}");
    }
    assert!(!h.join("new").exists());
}

#[test]
fn bind_readwrite_writes_reach_the_host() {
    let mut c = Ctr::new("mnt-bind-rw");
    let h = host_dir(&c, "hostrw");
    c.add_mount(
        json!({"destination": "/mnt/rw", "type": "bind", "source": h, "options": ["rbind", "rw"]}),
    );
    c.sh("echo written inside > /mnt/rw/out");
    c.run_ok();
    assert_eq!(
        fs::read_to_string(h.join("out")).unwrap(),
        "written inside\n"
    );
}

#[test]
fn bind_without_type_and_nested_missing_destination() {
    // Docker and podman send binds as type "none" with options bind; destinations that do not
    // exist (several levels deep) are created.
    let mut c = Ctr::new("mnt-bind-none");
    let h = host_dir(&c, "hostnone");
    c.add_mount(
        json!({"destination": "/a/b/c", "type": "none", "source": h, "options": ["rbind", "ro"]}),
    );
    c.args(&["cat", "/a/b/c/hello"]);
    assert_eq!(c.run_ok(), "from the host\n");
}

#[test]
fn file_bind_mount() {
    let mut c = Ctr::new("mnt-file");
    let f = c.dir.join("resolv.conf");
    fs::write(&f, "nameserver 192.0.2.1\n").unwrap();
    c.add_mount(json!({"destination": "/etc/new/resolv.conf", "type": "bind", "source": f, "options": ["rbind", "ro"]}));
    c.sh("cat /etc/new/resolv.conf; [ -f /etc/new/resolv.conf ] && echo is-file");
    assert_eq!(c.run_ok(), "nameserver 192.0.2.1\nis-file\n");
}

#[test]
fn mounts_are_applied_in_order() {
    let mut c = Ctr::new("mnt-order");
    let h = host_dir(&c, "ordered");
    c.add_mount(json!({"destination": "/stack", "type": "tmpfs", "source": "tmpfs"}));
    c.add_mount(
        json!({"destination": "/stack/inner", "type": "bind", "source": h, "options": ["bind"]}),
    );
    c.sh("cat /stack/inner/hello; grep -c ' /stack' /proc/mounts");
    assert_eq!(c.run_ok(), "from the host\n2\n");
}

#[test]
fn relative_mount_destination_is_relative_to_root() {
    // runtime-spec 1.2, config.md: "Linux: This value SHOULD be an absolute path. For
    // compatibility with old tools and configurations, it MAY be a relative path, in which case
    // it MUST be interpreted as relative to "/"." runc does so too.
    let mut c = Ctr::new("mnt-rel");
    c.add_mount(json!({"destination": "reltmp", "type": "tmpfs", "source": "tmpfs"}));
    c.sh("grep ' /reltmp ' /proc/mounts | cut -d' ' -f3");
    assert_eq!(c.run_ok(), "tmpfs\n");
}

/// Runs `script` in a private mount namespace (so mounts the test makes vanish with it).
fn in_private_mountns(script: &str) -> Out {
    exec_timeout(
        Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-ec", script]),
        Duration::from_secs(60),
    )
}

#[test]
fn rbind_is_recursive_and_bind_is_not() {
    let mut c = Ctr::new("mnt-rbind");
    let h = host_dir(&c, "tree");
    fs::create_dir_all(h.join("sub")).unwrap();
    c.add_mount(json!({"destination": "/r", "type": "bind", "source": h, "options": ["rbind"]}));
    c.add_mount(json!({"destination": "/nr", "type": "bind", "source": h, "options": ["bind"]}));
    c.sh("ls /r/sub; echo --; ls /nr/sub");
    c.save();
    let script = format!(
        "mount -t tmpfs tmpfs {h}/sub; echo x > {h}/sub/in-submount; \
         {rt} --root {root} run --bundle {b} {id}",
        h = h.display(),
        rt = runtime().display(),
        root = c.root.display(),
        b = c.bundle.display(),
        id = c.id
    );
    let out = in_private_mountns(&script);
    out.assert_ok();
    assert_eq!(out.stdout, "in-submount\n--\n", "{out}");
}

fn propagation_case(prop: &str) -> String {
    let mut c = Ctr::new("mnt-prop");
    let h = host_dir(&c, "prop");
    fs::create_dir_all(h.join("sub")).unwrap();
    c.add_mount(
        json!({"destination": "/p", "type": "bind", "source": h, "options": ["rbind", prop]}),
    );
    c.sh(
        "touch /tmp/ready; i=0; while [ $i -lt 150 ]; do \
         [ -e /p/sub/late ] && { echo seen; exit 0; }; sleep 0.02; i=$((i+1)); done; echo not-seen",
    );
    c.save();
    // The host side: a shared mount of the source; after the container runs, mount onto it.
    let script = format!(
        "mount --bind {h} {h}; mount --make-shared {h}; \
         {rt} --root {root} run -d --bundle {b} {id} > {d}/ctr.out 2>&1; \
         while [ ! -e {rootfs}/tmp/ready ]; do sleep 0.01; done; \
         mount -t tmpfs tmpfs {h}/sub; touch {h}/sub/late; \
         while [ \"$({rt} --root {root} state {id} | grep -c '\"stopped\"')\" = 0 ]; do sleep 0.02; done",
        h = h.display(),
        rt = runtime().display(),
        root = c.root.display(),
        b = c.bundle.display(),
        id = c.id,
        d = c.dir.display(),
        rootfs = c.rootfs.display(),
    );
    let out = in_private_mountns(&script);
    out.assert_ok();
    fs::read_to_string(c.dir.join("ctr.out")).unwrap()
}

#[test]
fn bind_propagation_rslave_receives_host_mounts() {
    assert_eq!(propagation_case("rslave"), "seen\n");
}

#[test]
fn bind_propagation_rprivate_does_not() {
    assert_eq!(propagation_case("rprivate"), "not-seen\n");
}

#[test]
fn default_devices() {
    let mut c = Ctr::new("devices");
    c.sh(
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
         for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done; \
         echo x > /dev/null && head -c 4 /dev/zero | od -An -tx1",
    );
    let out = c.run();
    out.assert_ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    let want = [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ];
    for (i, (name, mm)) in want.iter().enumerate() {
        let f: Vec<&str> = l[i].split(' ').collect();
        assert_eq!(f[0], format!("/dev/{name}"), "{out}");
        assert!(l[i].contains("character special file"), "{}", l[i]);
        let (maj, min) = mm.split_once(':').unwrap();
        let got = f[f.len() - 2];
        let (gmaj, gmin) = got.split_once(':').unwrap();
        assert_eq!(
            (
                u32::from_str_radix(gmaj, 16).unwrap(),
                u32::from_str_radix(gmin, 16).unwrap()
            ),
            (maj.parse().unwrap(), min.parse().unwrap()),
            "/dev/{name} has the wrong major:minor"
        );
        assert_eq!(f[f.len() - 1], "666", "/dev/{name} mode");
    }
    assert_eq!(
        &l[6..11],
        [
            "pts/ptmx",
            "/proc/self/fd",
            "/proc/self/fd/0",
            "/proc/self/fd/1",
            "/proc/self/fd/2"
        ]
    );
    assert_eq!(l[11].trim(), "00 00 00 00");
}

#[test]
fn linux_devices_entry() {
    let mut c = Ctr::new("devices-extra");
    c.config["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 0, "gid": 5},
        {"path": "/dev/sub/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 1000, "gid": 1000}
    ]);
    c.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]);
    c.sh("stat -c '%n %F %t:%T %a %u:%g' /dev/fuse /dev/sub/mynull; echo hi > /dev/sub/mynull && echo usable");
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "/dev/fuse character special file a:e5 640 0:5\n/dev/sub/mynull character special file 1:3 666 1000:1000\nusable\n"
    );
}

#[test]
fn readonly_root() {
    let mut c = Ctr::new("ro-root");
    c.config["root"]["readonly"] = json!(true);
    c.sh("touch /newfile 2>&1; touch /bin/x 2>/dev/null || echo bin-refused; echo ok > /dev/shm/x && cat /dev/shm/x; grep ' / ' /proc/mounts | cut -d' ' -f4");
    let out = c.run();
    out.assert_ok();
    let l: Vec<&str> = out.stdout.lines().collect();
    assert!(
        l[0].to_lowercase().contains("read-only file system"),
        "{out}"
    );
    assert_eq!(l[1], "bin-refused");
    assert_eq!(l[2], "ok", "tmpfs mounts stay writable");
    assert!(
        l[3].split(',').any(|o| o == "ro"),
        "root mount options {}",
        l[3]
    );
    assert!(!c.rootfs.join("newfile").exists());
}

#[test]
fn proc_and_sys_are_mounted() {
    let mut c = Ctr::new("procsys");
    c.sh("grep -E ' /(proc|sys|dev|dev/pts|dev/shm|dev/mqueue) ' /proc/mounts | cut -d' ' -f2,3 | sort");
    let out = c.run_ok();
    assert_eq!(
        out,
        "/dev tmpfs\n/dev/mqueue mqueue\n/dev/pts devpts\n/dev/shm tmpfs\n/proc proc\n/sys sysfs\n"
    );
}

#[test]
fn container_mounts_do_not_appear_on_the_host() {
    let mut c = Ctr::new("mnt-nohost");
    c.add_mount(json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs"}));
    c.args(&["sleep", "100"]);
    c.create_ok();
    c.start_ok();
    let m = mounts_under(&c.dir);
    assert!(
        m.is_empty(),
        "container mounts visible in the host mount namespace: {m:?}"
    );
}

#[test]
fn relative_bind_source_is_relative_to_the_bundle() {
    // runtime-spec: "Path values for bind mounts are either absolute or relative to the bundle."
    let mut c = Ctr::new("mnt-relsrc");
    fs::create_dir_all(c.bundle.join("vol")).unwrap();
    fs::write(c.bundle.join("vol/hello"), "relative source\n").unwrap();
    c.add_mount(
        json!({"destination": "/vol", "type": "bind", "source": "vol", "options": ["rbind", "ro"]}),
    );
    c.args(&["cat", "/vol/hello"]);
    c.save();
    // The caller's cwd is not the bundle (podman's is not).
    let b = c.bundle.to_string_lossy().into_owned();
    let out = exec_timeout(
        c.cmd()
            .current_dir("/")
            .args(["run", "--bundle", &b, &c.id]),
        CMD_TIMEOUT,
    );
    out.assert_ok();
    assert_eq!(out.stdout, "relative source\n");
}

/// An idmapped bind mount in a user-namespaced container: host files owned by root show as the
/// container's root through the idmapped mount, and as the overflow id through a plain bind.
#[test]
fn idmapped_bind_mount_in_a_user_namespace() {
    hutch_only!("runc 1.1.5 predates idmapped mounts");
    let mut c = Ctr::new("mnt-idmap");
    let h = host_dir(&c, "idsrc");
    c.user_ns(100000, 100000);
    // The container's root (host uid 100000) cannot create mount points in a root-owned rootfs.
    fs::create_dir_all(c.rootfs.join("mnt/mapped")).unwrap();
    fs::create_dir_all(c.rootfs.join("mnt/plain")).unwrap();
    c.add_mount(json!({"destination": "/mnt/mapped", "type": "bind", "source": h, "options": ["bind", "idmap"]}));
    c.add_mount(
        json!({"destination": "/mnt/plain", "type": "bind", "source": h, "options": ["bind"]}),
    );
    c.sh("stat -c '%n %u %g' /mnt/mapped/hello /mnt/plain/hello");
    let out = c.run();
    out.assert_ok();
    assert!(out.stdout.contains("/mnt/mapped/hello 0 0"), "{out}");
    assert!(out.stdout.contains("/mnt/plain/hello 65534 65534"), "{out}");
}

/// A mount with its own uidMappings/gidMappings maps through those (source id containerID
/// appears as hostID), not through the container's.
#[test]
fn idmapped_bind_mount_with_its_own_mappings() {
    hutch_only!("runc 1.1.5 predates idmapped mounts");
    let mut c = Ctr::new("mnt-idmap-own");
    let h = host_dir(&c, "idsrc2");
    c.add_mount(json!({
        "destination": "/mnt/m", "type": "bind", "source": h, "options": ["bind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
    }));
    c.sh("stat -c '%u %g' /mnt/m/hello");
    let out = c.run();
    out.assert_ok();
    // hello is owned by root (0) on the host.
    assert_eq!(out.stdout.trim(), "1000 1000", "{out}");
}

/// --no-pivot: the rootfs is moved onto / and chrooted into; the container still sees only
/// its own files.
#[test]
fn no_pivot_runs_inside_the_rootfs() {
    let mut c = Ctr::new("mnt-nopivot");
    fs::write(c.rootfs.join("marker"), "inside\n").unwrap();
    c.sh("cat /marker; ls /work >/dev/null 2>&1 && echo host-visible || echo host-hidden");
    c.save();
    let out = c.rt_piped(&["run", "--no-pivot", "-b", c.bundle.to_str().unwrap(), &c.id]);
    out.assert_ok();
    assert!(out.stdout.contains("inside"), "{out}");
    assert!(out.stdout.contains("host-hidden"), "{out}");
}

/// rootfsPropagation "private": the container's root mount has no peer group.
#[test]
fn rootfs_propagation_private() {
    let mut c = Ctr::new("mnt-rootprop");
    c.config["linux"]["rootfsPropagation"] = json!("private");
    c.sh("awk '$5 == \"/\"' /proc/self/mountinfo");
    let out = c.run();
    out.assert_ok();
    let line = out.stdout.lines().next().unwrap_or_default().to_string();
    assert!(!line.is_empty(), "{out}");
    assert!(
        !line.contains("shared:") && !line.contains("master:"),
        "root mount not private: {line}"
    );
}

/// Relative `readonlyPaths` and `maskedPaths` are relative to the container's `/` (not to
/// process.cwd), and missing ones are skipped, as runc and crun do.
#[test]
fn relative_readonly_and_masked_paths() {
    let mut c = Ctr::new("mnt-relpaths");
    fs::create_dir_all(c.rootfs.join("tmp/etc")).unwrap();
    fs::create_dir_all(c.rootfs.join("tmp/proc")).unwrap();
    fs::write(c.rootfs.join("tmp/proc/timer_list"), "cwd copy\n").unwrap();
    c.config["process"]["cwd"] = json!("/tmp");
    c.config["linux"]["readonlyPaths"] = json!(["etc", "no/such/dir"]);
    c.config["linux"]["maskedPaths"] = json!(["./proc/../proc/timer_list", "missing"]);
    c.sh(
        "touch /etc/x 2>/dev/null && echo etc-writable || echo etc-ro; \
         touch /tmp/etc/x && echo cwd-etc-writable; \
         wc -c < /proc/timer_list; cat /tmp/proc/timer_list",
    );
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        out.stdout_lines(),
        ["etc-ro", "cwd-etc-writable", "0", "cwd copy"],
        "{out}"
    );
}

/// A /proc or /sys that is a symlink in the image (here to each other) is refused with runc's
/// wording, naming the mount entry.
#[test]
fn proc_or_sys_through_a_symlink_is_refused_with_runcs_wording() {
    for (dir, target, fs_type) in [("sys", "/proc", "sysfs"), ("proc", "sys", "proc")] {
        let mut c = Ctr::new(&format!("mnt-symlink-{dir}"));
        fs::remove_dir(c.rootfs.join(dir)).unwrap();
        std::os::unix::fs::symlink(target, c.rootfs.join(dir)).unwrap();
        let index = c.config["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .position(|m| m["destination"] == format!("/{dir}"))
            .unwrap();
        let out = c.run();
        // The log's text format escapes the quotes around the type.
        out.assert_fail_with("must be mounted on ordinary directory");
        out.assert_fail_with(&format!("filesystem \\\"{fs_type}\\\""));
        if is_hutch() {
            // runc names the destination only.
            out.assert_fail_with(&format!("mounts[{index}]"));
        }
    }
}

/// The attributes of a path under a running container's root, seen from the host.
fn lstat_line(root: &std::path::Path, p: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let path = root.join(p.trim_start_matches('/'));
    let m = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let kind = if m.file_type().is_symlink() {
        format!("-> {}", fs::read_link(&path).unwrap().display())
    } else if m.is_dir() {
        "dir".to_string()
    } else if m.is_file() {
        format!("file {:?}", fs::read_to_string(&path).unwrap())
    } else {
        "special".to_string()
    };
    format!("{p} {:o} {}:{} {kind}", m.mode() & 0o7777, m.uid(), m.gid())
}

/// One extended attribute of a path, through libc (the rootfs may have no getfattr).
fn xattr(path: &std::path::Path, name: &str) -> Option<String> {
    let p = cstr(path.to_str().unwrap());
    let n = cstr(name);
    let mut buf = [0u8; 256];
    // SAFETY: valid C strings and a writable buffer of the size passed.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| String::from_utf8_lossy(&buf[..r as usize]).into_owned())
}

/// `tmpcopyup`: the tmpfs starts with a copy of the image's directory (content, modes, owners,
/// symlinks as links, fifos, user xattrs), the image itself is untouched by writes, and a
/// symlink in the copied directory is never followed out of the rootfs.
#[test]
fn tmpfs_copy_up() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let mut c = Ctr::new("mnt-copyup");
    let host_secret = c.dir.join("host-secret");
    fs::create_dir_all(&host_secret).unwrap();
    fs::write(host_secret.join("secret"), "host only\n").unwrap();
    let d = c.rootfs.join("opt/data");
    fs::create_dir_all(d.join("sub/deeper")).unwrap();
    fs::write(d.join("file"), "image content\n").unwrap();
    fs::write(d.join("sub/deeper/nested"), "nested\n").unwrap();
    let chmod = |p: &std::path::Path, m: u32| {
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap()
    };
    chmod(&d.join("file"), 0o640);
    chmod(&d.join("sub"), 0o1750);
    chmod(&d, 0o771);
    std::os::unix::fs::chown(d.join("file"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::chown(d.join("sub"), Some(1000), Some(5)).unwrap();
    symlink("../../etc/passwd", d.join("rel-link")).unwrap();
    symlink(&host_secret, d.join("host-link")).unwrap();
    // runc 1.1.5's copy fails on a fifo ("lchown …/fifo: no such file or directory"), drops
    // extended attributes and applies its umask to the modes of copied directories: those
    // parts are hutch's.
    let hutch = is_hutch();
    if hutch {
        let st = Command::new("mkfifo").arg(d.join("fifo")).status().unwrap();
        assert!(st.success());
        chmod(&d.join("fifo"), 0o620);
        fs::create_dir(d.join("group-writable")).unwrap();
        chmod(&d.join("group-writable"), 0o2770);
    }
    let file = cstr(d.join("file").to_str().unwrap());
    // SAFETY: valid C strings and a value of the length passed.
    let rc = unsafe {
        libc::lsetxattr(
            file.as_ptr(),
            c"user.origin".as_ptr(),
            b"image".as_ptr().cast(),
            5,
            0,
        )
    };
    assert_eq!(rc, 0, "setting a user xattr in the rootfs");

    c.add_mount(
        json!({"destination": "/opt/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "tmpcopyup"]}),
    );
    c.add_mount(
        json!({"destination": "/opt/ro", "type": "tmpfs", "source": "tmpfs",
        "options": ["ro", "tmpcopyup"]}),
    );
    fs::create_dir_all(c.rootfs.join("opt/ro")).unwrap();
    fs::write(c.rootfs.join("opt/ro/kept"), "read-only copy\n").unwrap();
    c.sh(
        "echo new > /opt/data/new && echo written; cat /opt/ro/kept; \
         touch /opt/ro/x 2>/dev/null && echo ro-writable || echo ro-refused; \
         grep -E ' /opt/(data|ro) ' /proc/self/mountinfo | cut -d' ' -f5,9; sleep 100",
    );
    c.create_ok();
    c.start_ok();
    let pid = c.pid();
    let root = std::path::PathBuf::from(format!("/proc/{pid}/root"));
    let mut want = vec![
        "/opt/data 771 0:0 dir",
        "/opt/data/sub 1750 1000:5 dir",
        "/opt/data/sub/deeper/nested 644 0:0 file \"nested\\n\"",
        "/opt/data/rel-link 777 0:0 -> ../../etc/passwd",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    want.push(format!(
        "/opt/data/host-link 777 0:0 -> {}",
        host_secret.display()
    ));
    let mut paths = vec![
        "/opt/data",
        "/opt/data/sub",
        "/opt/data/sub/deeper/nested",
        "/opt/data/rel-link",
        "/opt/data/host-link",
    ];
    if hutch {
        want.push("/opt/data/fifo 620 0:0 special".to_string());
        want.push("/opt/data/group-writable 2770 0:0 dir".to_string());
        paths.extend(["/opt/data/fifo", "/opt/data/group-writable"]);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !c.ctr_stdout().contains("/opt/ro") {
        assert!(std::time::Instant::now() < deadline, "{}", c.ctr_stdout());
        std::thread::sleep(Duration::from_millis(20));
    }
    let got: Vec<String> = paths.iter().map(|p| lstat_line(&root, p)).collect();
    assert_eq!(got, want);
    assert_eq!(
        lstat_line(&root, "/opt/data/file"),
        "/opt/data/file 640 1000:1000 file \"image content\\n\""
    );
    if hutch {
        assert_eq!(
            xattr(&root.join("opt/data/file"), "user.origin").as_deref(),
            Some("image")
        );
    }
    let out = c.ctr_stdout();
    assert!(
        out.starts_with("written\nread-only copy\nro-refused\n"),
        "{out}"
    );
    assert!(
        out.contains("/opt/data tmpfs") && out.contains("/opt/ro tmpfs"),
        "{out}"
    );
    // The image's directory and the host are untouched.
    assert!(!d.join("new").exists());
    assert_eq!(fs::read_dir(&host_secret).unwrap().count(), 1);
    assert!(!c.rootfs.join("opt/ro/x").exists());
}

/// `linux.mountLabel` on a host without SELinux cannot be applied: refused with a clear error
/// (runc 1.1.5 fails too, with the kernel's EINVAL for `context=` on its /dev tmpfs). With
/// SELinux it becomes the `context=` option of the tmpfs, devpts... mounts (unit-tested in
/// src/rootfs/mount.rs).
#[test]
fn mount_label_without_selinux_is_refused() {
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("SKIP: SELinux is enabled on this host");
        return;
    }
    let mut c = Ctr::new("mnt-label");
    c.config["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2");
    let out = c.run();
    if is_hutch() {
        out.assert_fail_with("linux.mountLabel");
        out.assert_fail_with("SELinux is disabled");
    } else {
        out.assert_fail_with("context=");
    }
}

/// A container whose root maps to a non-root host uid, with its bundle (rootfs and a bind
/// source) under a directory only host root may enter: the host side is opened before the
/// init is in the user namespace, so nothing is looked up through the 0700 directory by the
/// mapped uid. Inside, the files are the image's; the 0700 directory stays closed.
#[test]
fn user_namespace_with_the_bundle_under_a_root_only_directory() {
    hutch_only!("runc 1.1.5 binds the rootfs from inside the user namespace: EACCES");
    use std::os::unix::fs::PermissionsExt;
    let mut c = Ctr::new("mnt-userns-private");
    let h = host_dir(&c, "volume");
    c.user_ns(100000, 100000);
    // The container's root cannot create mount points in a rootfs owned by host root.
    fs::create_dir_all(c.rootfs.join("mnt/vol")).unwrap();
    c.add_mount(
        json!({"destination": "/mnt/vol", "type": "bind", "source": h, "options": ["rbind", "ro"]}),
    );
    c.add_mount(
        json!({"destination": "/mnt/rel", "type": "bind", "source": "relvol", "options": ["bind"]}),
    );
    fs::create_dir_all(c.bundle.join("relvol")).unwrap();
    fs::create_dir_all(c.rootfs.join("mnt/rel")).unwrap();
    fs::write(c.bundle.join("relvol/x"), "relative\n").unwrap();
    c.sh("cat /mnt/vol/hello /mnt/rel/x; id -u; grep -c ' /mnt/' /proc/self/mountinfo");
    fs::set_permissions(&c.dir, fs::Permissions::from_mode(0o700)).unwrap();
    let out = c.run();
    out.assert_ok();
    assert_eq!(
        out.stdout_lines(),
        ["from the host", "relative", "0", "2"],
        "{out}"
    );
}
