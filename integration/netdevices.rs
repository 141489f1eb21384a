//! `linux.netDevices` and `linux.intelRdt` (issue 10 #11).
//!
//! The host's real interfaces are never touched: each test makes a network namespace of its
//! own (a holder process, `unshare -n sleep`), creates its devices there with `ip link`, and runs
//! the runtime inside it (`Ctr::netns`), so that namespace is "the runtime's" for the test.
//! A `veth` pair always works; a `dummy` device is used when the kernel has the driver, else a
//! persistent `tap` (this host's kernel has no dummy driver; both are plain movable devices).
//!
//! runc 1.1.5 predates `linux.netDevices` (runc 1.3) and ignores the field, so those tests are
//! hutch-only.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

/// A network namespace the test made, held open by a `sleep` it started.
struct TestNetns {
    holder: Proc,
}

impl TestNetns {
    fn new() -> TestNetns {
        let holder = Proc::spawn(Command::new("unshare").args(["-n", "sleep", "600"]));
        let ours = ns_link("self", "net");
        let pid = holder.pid().to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let theirs = ns_link(&pid, "net");
            if !theirs.is_empty() && theirs != ours && !ns_link(&pid, "mnt").is_empty() {
                // Exec'd sleep: the unshare happened.
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "sleep" {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "unshare -n did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        TestNetns { holder }
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.holder.pid()))
    }

    fn nsenter(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()));
        c
    }

    /// `ip ARGS` in this namespace.
    fn ip(&self, args: &[&str]) -> Out {
        exec_timeout(self.nsenter().arg("ip").args(args), CMD_TIMEOUT)
    }

    #[track_caller]
    fn ip_ok(&self, args: &[&str]) {
        self.ip(args).assert_ok();
    }

    /// Names of the links in this namespace.
    fn links(&self) -> Vec<String> {
        let out = self.ip(&["-o", "link", "show"]);
        out.assert_ok();
        link_names(&out.stdout)
    }

    fn has(&self, name: &str) -> bool {
        self.links().iter().any(|l| l == name)
    }

    /// `ip -o addr show dev NAME` (empty when there is no such device).
    fn addrs(&self, name: &str) -> String {
        self.ip(&["-o", "addr", "show", "dev", name]).stdout
    }

    fn is_up(&self, name: &str) -> bool {
        let out = self.ip(&["-o", "link", "show", "dev", name]);
        out.ok()
            && out
                .stdout
                .split(['<', '>'])
                .nth(1)
                .is_some_and(|flags| flags.split(',').any(|f| f == "UP"))
    }

    /// A veth pair `name` / `peer`, `name` with `addr` and both up.
    fn veth(&self, name: &str, peer: &str, addr: &str) {
        self.ip_ok(&["link", "add", name, "type", "veth", "peer", "name", peer]);
        self.ip_ok(&["addr", "add", addr, "dev", name]);
        self.ip_ok(&["link", "set", name, "up"]);
        self.ip_ok(&["link", "set", peer, "up"]);
    }

    /// A standalone device: `dummy` when the kernel has it, else a persistent `tap`.
    fn standalone(&self, name: &str) -> &'static str {
        if self.ip(&["link", "add", name, "type", "dummy"]).ok() {
            return "dummy";
        }
        self.ip_ok(&["tuntap", "add", "dev", name, "mode", "tap"]);
        "tap"
    }

    /// Waits (bounded) until `cond` holds.
    #[track_caller]
    fn wait_for(&self, what: &str, cond: impl Fn(&TestNetns) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: still not so after 15 s; links: {:?}",
                self.links()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The device names in `ip -o link show` output.
fn link_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// The command failed, and its error (unescaped from the log record's quoting) says each of
/// `needles`.
#[track_caller]
fn refused(out: &Out, needles: &[&str]) {
    out.assert_fail();
    let text = out.stderr.replace("\\\"", "\"");
    for needle in needles {
        assert!(
            text.contains(needle),
            "expected {needle:?} in the error:\n{out}"
        );
    }
}

fn ctr_in(ns: &TestNetns, name: &str) -> Ctr {
    let mut c = Ctr::new(name);
    c.netns = Some(ns.path());
    c
}

#[test]
fn devices_are_moved_renamed_with_their_addresses_and_up() {
    hutch_only!("runc 1.1.5 predates linux.netDevices (runc 1.3) and ignores it");
    let ns = TestNetns::new();
    ns.veth("nd0", "nd0peer", "10.77.0.1/24");
    ns.ip_ok(&["-6", "addr", "add", "fd77::1/64", "dev", "nd0", "nodad"]);
    ns.ip_ok(&["addr", "add", "10.77.0.2/24", "dev", "nd0peer"]);
    let kind = ns.standalone("nd1");
    let mut c = ctr_in(&ns, "netdev-move");
    c.config["linux"]["netDevices"] = json!({ "nd0": { "name": "ctr0" }, "nd1": {} });
    c.args(&["sleep", "60"]);
    c.create_ok();

    // Outside: both left the runtime's namespace at create; the veth's peer stayed.
    let links = ns.links();
    assert!(
        !links
            .iter()
            .any(|l| l == "nd0" || l == "ctr0" || l == "nd1"),
        "{kind}: {links:?}"
    );
    assert!(ns.has("nd0peer"), "{links:?}");
    c.start_ok();

    // Inside: renamed, up, with the permanent global addresses (v4 and v6) it had.
    let out = c.rt_piped(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "ls /sys/class/net; echo ---; ip -o link show ctr0; echo ---; ip -o addr show ctr0",
    ]);
    out.assert_ok();
    let mut parts = out.stdout.split("---\n");
    let names: Vec<&str> = parts.next().unwrap_or_default().lines().collect();
    assert!(names.contains(&"ctr0") && names.contains(&"nd1"), "{out}");
    assert!(!names.contains(&"nd0"), "{out}");
    let link = parts.next().unwrap_or_default();
    assert!(
        link.contains("<")
            && link
                .split(['<', '>'])
                .nth(1)
                .unwrap()
                .split(',')
                .any(|f| f == "UP"),
        "{out}"
    );
    let addrs = parts.next().unwrap_or_default();
    assert!(addrs.contains("10.77.0.1/24"), "{out}");
    assert!(addrs.contains("fd77::1/64"), "{out}");
    let standalone = c.rt_piped(&["exec", &c.id, "cat", "/sys/class/net/nd1/flags"]);
    standalone.assert_ok();
    let flags = u32::from_str_radix(standalone.stdout.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(
        flags & 1,
        1,
        "nd1 ({kind}) is not up in the container: {standalone}"
    );

    // And it carries traffic: the peer reaches the address inside the container.
    let ping = exec_timeout(
        ns.nsenter()
            .args(["/bin/busybox", "ping", "-c", "1", "-W", "5", "10.77.0.1"]),
        CMD_TIMEOUT,
    );
    assert!(ping.ok(), "the peer cannot reach the moved device:\n{ping}");

    // delete: the runtime does not move devices out (the spec forbids it, runc does not);
    // the container's namespace goes away and takes these virtual devices with it (the
    // veth's peer dies too). Nothing comes back to the runtime's namespace.
    c.kill("KILL").assert_ok();
    c.wait_status("stopped", Duration::from_secs(10));
    c.delete().assert_ok();
    ns.wait_for(
        "the veth pair is destroyed with the container's namespace",
        |ns| !ns.has("nd0peer"),
    );
    let links = ns.links();
    assert!(
        !links
            .iter()
            .any(|l| l == "nd0" || l == "ctr0" || l == "nd1"),
        "{links:?}"
    );
}

#[test]
fn device_moved_into_a_joined_namespace_stays_there_after_delete() {
    hutch_only!("runc 1.1.5 predates linux.netDevices (runc 1.3) and ignores it");
    let ns = TestNetns::new();
    let pod = TestNetns::new();
    ns.veth("nd0", "nd0peer", "10.78.0.1/24");
    ns.veth("nd2", "nd2peer", "10.78.1.1/24");
    let mut c = ctr_in(&ns, "netdev-join");
    c.set_ns("network", Some(pod.path().to_str().unwrap()));
    // `%d`: the kernel numbers it (pod0 is taken by then).
    c.config["linux"]["netDevices"] =
        json!({ "nd0": { "name": "pod0" }, "nd2": { "name": "pod%d" } });
    c.args(&["sleep", "60"]);
    c.create_ok();
    assert!(!ns.has("nd0") && !ns.has("nd2"), "{:?}", ns.links());
    assert!(pod.has("pod0") && pod.has("pod1"), "{:?}", pod.links());
    assert!(pod.is_up("pod1"));
    assert!(
        pod.addrs("pod1").contains("10.78.1.1/24"),
        "{}",
        pod.addrs("pod1")
    );
    assert!(pod.is_up("pod0"));
    assert!(
        pod.addrs("pod0").contains("10.78.0.1/24"),
        "{}",
        pod.addrs("pod0")
    );
    c.kill("KILL").assert_ok();
    c.wait_status("stopped", Duration::from_secs(10));
    c.delete().assert_ok();
    // The namespace's owner manages what is in it: the devices stay, as they are named there.
    assert!(pod.has("pod0") && pod.has("pod1"), "{:?}", pod.links());
    assert!(!ns.has("nd0") && !ns.has("nd2"), "{:?}", ns.links());
}

#[test]
fn a_failed_create_puts_the_devices_back() {
    hutch_only!("runc 1.1.5 predates linux.netDevices (runc 1.3) and ignores it");
    let ns = TestNetns::new();
    ns.veth("nd0", "nd0peer", "10.79.0.1/24");
    let kind = ns.standalone("nd1");
    // nd1 stays down: its state must come back as it was, not as "up".
    let mut c = ctr_in(&ns, "netdev-undo");
    // The hook runs in the runtime's namespace after the move: it records what it sees there,
    // then fails the create.
    let seen = c.dir.join("seen-by-hook");
    let hook = write_script(
        &c.dir.join("hook.sh"),
        &format!("ip -o link show > {}\nexit 1", seen.display()),
    );
    c.config["hooks"] = json!({ "createRuntime": [{
        "path": hook,
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    }]});
    c.config["linux"]["netDevices"] =
        json!({ "nd0": { "name": "ctr0" }, "nd1": { "name": "ctr1" } });
    c.create().assert_fail_with("createRuntime");
    let during = std::fs::read_to_string(&seen).expect("the hook ran");
    let during = link_names(&during);
    assert!(
        !during.iter().any(|l| l == "nd0" || l == "nd1") && during.iter().any(|l| l == "nd0peer"),
        "the devices had not been moved when the hook ran: {during:?}"
    );
    // Back under their own names, with the address, nd0 up and nd1 down as before; the veth
    // peer is still there (a virtual device left in the dead namespace would have taken it).
    ns.wait_for("nd0 and nd1 are back", |ns| ns.has("nd0") && ns.has("nd1"));
    assert!(ns.has("nd0peer"), "{:?}", ns.links());
    assert!(!ns.has("ctr0") && !ns.has("ctr1"), "{:?}", ns.links());
    assert!(
        ns.addrs("nd0").contains("10.79.0.1/24"),
        "{}",
        ns.addrs("nd0")
    );
    assert!(ns.is_up("nd0"));
    assert!(!ns.is_up("nd1"), "nd1 ({kind}) came back up");
}

#[test]
fn a_missing_device_is_refused_and_nothing_moves() {
    hutch_only!("runc 1.1.5 predates linux.netDevices (runc 1.3) and ignores it");
    let ns = TestNetns::new();
    ns.veth("nd0", "nd0peer", "10.80.0.1/24");
    let mut c = ctr_in(&ns, "netdev-missing");
    c.config["linux"]["netDevices"] = json!({ "nd0": {}, "ndmissing": {} });
    refused(
        &c.create(),
        &["linux.netDevices[\"ndmissing\"]", "no network device"],
    );
    assert!(ns.has("nd0") && ns.is_up("nd0"), "{:?}", ns.links());
    assert!(ns.addrs("nd0").contains("10.80.0.1/24"));
}

#[test]
fn a_name_taken_in_the_container_is_refused_and_the_device_stays() {
    hutch_only!("runc 1.1.5 predates linux.netDevices (runc 1.3) and ignores it");
    let ns = TestNetns::new();
    let pod = TestNetns::new();
    ns.veth("nd0", "nd0peer", "10.81.0.1/24");
    pod.veth("taken0", "taken0peer", "10.82.0.1/24");
    let mut c = ctr_in(&ns, "netdev-taken");
    c.set_ns("network", Some(pod.path().to_str().unwrap()));
    c.config["linux"]["netDevices"] = json!({ "nd0": { "name": "taken0" } });
    refused(
        &c.create(),
        &["linux.netDevices[\"nd0\"]", "already exists"],
    );
    assert!(ns.has("nd0") && ns.is_up("nd0"), "{:?}", ns.links());
    assert!(ns.addrs("nd0").contains("10.81.0.1/24"));
}

#[test]
fn net_devices_need_a_network_namespace_and_valid_names() {
    hutch_only!("runc 1.1.5 predates linux.netDevices (runc 1.3) and ignores it");
    let ns = TestNetns::new();
    ns.veth("nd0", "nd0peer", "10.83.0.1/24");
    let mut c = ctr_in(&ns, "netdev-nonet");
    c.drop_ns("network");
    c.config["linux"]["netDevices"] = json!({ "nd0": {} });
    refused(
        &c.create(),
        &["linux.netDevices[\"nd0\"]", "network namespace"],
    );
    assert!(ns.has("nd0"));

    let mut c = ctr_in(&ns, "netdev-badname");
    c.config["linux"]["netDevices"] = json!({ "nd0": { "name": "far-too-long-name0" } });
    refused(
        &c.create(),
        &[
            "linux.netDevices[\"nd0\"].name",
            "not a valid network device name",
        ],
    );
    let mut c = ctr_in(&ns, "netdev-badkey");
    c.config["linux"]["netDevices"] = json!({ "nd/0": {} });
    refused(&c.create(), &["linux.netDevices[\"nd/0\"]"]);
    assert!(ns.has("nd0") && ns.is_up("nd0"));
}

fn resctrl_available() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|t| t.contains("resctrl"))
        || std::path::Path::new("/sys/fs/resctrl/schemata").exists()
}

#[test]
fn intel_rdt_without_resctrl_is_refused() {
    if resctrl_available() {
        eprintln!("SKIP: this host has resctrl; the test is about a host without it");
        return;
    }
    // A schema both runtimes refuse on a host without RDT.
    let mut c = Ctr::new("rdt-schema");
    c.config["linux"]["intelRdt"] = json!({ "closID": "hutch-test", "l3CacheSchema": "L3:0=f" });
    c.create().assert_fail_with("intelRdt");
}

#[test]
fn intel_rdt_class_alone_is_refused_not_ignored() {
    hutch_only!(
        "runc 1.1.5 accepts an intelRdt with only closID on a host without RDT and ignores it"
    );
    if resctrl_available() {
        eprintln!("SKIP: this host has resctrl; the test is about a host without it");
        return;
    }
    let mut c = Ctr::new("rdt-closid");
    c.config["linux"]["intelRdt"] = json!({ "closID": "hutch-test" });
    refused(
        &c.create(),
        &["config.json: linux.intelRdt", "not supported"],
    );
}
