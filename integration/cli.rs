//! The command line as engines call it: flag spellings, options after the id, `list`, `spec`,
//! `features`, `--version`, `--log FILE --log-format json`.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::*;
use crate::lifecycle::is_rfc3339;

fn bare(args: &[&str]) -> Out {
    exec_files(Command::new(runtime()).args(args), CMD_TIMEOUT)
}

/// `spec` run in `dir` (it writes ./config.json).
fn spec_in(dir: &Path) -> Out {
    exec_files(
        Command::new(runtime()).current_dir(dir).arg("spec"),
        CMD_TIMEOUT,
    )
}

/// The strings of a JSON array (a test fails when it is not one).
#[track_caller]
fn strings(v: &Value) -> Vec<&str> {
    let a = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
    a.iter().filter_map(Value::as_str).collect()
}

/// The namespace types a config lists.
#[track_caller]
fn namespace_types(config: &Value) -> Vec<&str> {
    let a = config["linux"]["namespaces"].as_array();
    let a = a.unwrap_or_else(|| panic!("no linux.namespaces: {config}"));
    a.iter().filter_map(|n| n["type"].as_str()).collect()
}

/// A version string 1.x.
fn is_1x(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.starts_with("1."))
}

#[test]
fn version() {
    let out = bare(&["--version"]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{} version ", runtime_name())),
        "{out}"
    );
    assert!(lines.iter().any(|l| l.starts_with("commit: ")), "{out}");
    let spec = lines
        .iter()
        .find(|l| l.starts_with("spec: "))
        .unwrap_or_else(|| panic!("no spec line: {out}"));
    assert!(spec["spec: ".len()..].starts_with("1."), "{out}");
    let short = bare(&["-v"]);
    short.assert_ok();
    assert_eq!(short.stdout, out.stdout);
}

#[test]
fn version_reports_spec_1_2() {
    hutch_only!("hutch implements runtime-spec 1.2.x (runc 1.1.5 says 1.0.2-dev)");
    let out = bare(&["--version"]);
    assert!(
        out.stdout.lines().any(|l| l.starts_with("spec: 1.2.")),
        "{out}"
    );
    assert!(out.stdout.starts_with("hutch version "), "{out}");
}

#[test]
fn spec_writes_a_default_config() {
    let c = Ctr::new("spec");
    let d = c.dir.join("specdir");
    fs::create_dir_all(&d).unwrap();
    let out = spec_in(&d);
    out.assert_ok();
    assert_eq!(out.stdout, "", "spec prints nothing");
    let v = parse_json(&fs::read_to_string(d.join("config.json")).unwrap());
    assert!(is_1x(&v["ociVersion"]), "{v}");
    assert_eq!(v["root"]["path"], "rootfs");
    assert_eq!(v["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(v["process"]["terminal"], true);
    assert_eq!(v["process"]["cwd"], "/");
    let ns = namespace_types(&v);
    for k in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&k), "default namespaces lack {k}: {ns:?}");
    }
    assert!(v["linux"]["maskedPaths"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p == "/proc/kcore")));
    assert!(v["linux"]["readonlyPaths"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p == "/proc/sys")));
    // A second spec refuses to overwrite it.
    let again = spec_in(&d);
    again.assert_fail();
    assert!(again.stderr.contains("config.json"), "{again}");
}

#[test]
fn spec_bundle_flag_and_rootless() {
    let c = Ctr::new("spec-b");
    let d = c.dir.join("b1");
    let r = c.dir.join("b2");
    fs::create_dir_all(&d).unwrap();
    fs::create_dir_all(&r).unwrap();
    bare(&["spec", "--bundle", d.to_str().unwrap()]).assert_ok();
    assert!(d.join("config.json").exists());
    bare(&["spec", &format!("--bundle={}", r.display()), "--rootless"]).assert_ok();
    let v = parse_json(&fs::read_to_string(r.join("config.json")).unwrap());
    let ns = namespace_types(&v);
    assert!(
        ns.contains(&"user"),
        "a rootless spec uses a user namespace: {ns:?}"
    );
    assert!(
        v["linux"]["uidMappings"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    assert!(
        v["linux"]["gidMappings"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{v}"
    );
}

#[test]
fn features_json() {
    let out = bare(&["features"]);
    out.assert_ok();
    let v = parse_json(&out.stdout);
    assert!(is_1x(&v["ociVersionMin"]), "{v}");
    assert!(is_1x(&v["ociVersionMax"]), "{v}");
    let hooks = strings(&v["hooks"]);
    for h in HOOK_KINDS {
        assert!(hooks.contains(&h), "features.hooks lacks {h}");
    }
    let mo = strings(&v["mountOptions"]);
    for o in [
        "ro", "rw", "nosuid", "nodev", "noexec", "bind", "rbind", "rslave", "rprivate",
    ] {
        assert!(mo.contains(&o), "features.mountOptions lacks {o}");
    }
    let ns = strings(&v["linux"]["namespaces"]);
    for n in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(ns.contains(&n), "features.linux.namespaces lacks {n}");
    }
    assert!(v["linux"]["capabilities"]
        .as_array()
        .is_some_and(|a| a.iter().any(|c| c == "CAP_SYS_ADMIN")));
}

#[test]
fn features_are_honest() {
    hutch_only!("hutch's features must match what it does");
    let v = parse_json(&bare(&["features"]).assert_ok().stdout);
    // ociVersionMax is at least the spec version `--version` reports.
    let version = bare(&["--version"]).stdout;
    let spec = version
        .lines()
        .find_map(|l| l.strip_prefix("spec: "))
        .unwrap()
        .trim()
        .to_string();
    let max = v["ociVersionMax"].as_str().unwrap();
    let num = |s: &str| -> Vec<u32> {
        s.split(['.', '-'])
            .take(3)
            .map(|x| x.parse().unwrap_or(0))
            .collect()
    };
    assert!(
        num(max) >= num(&spec),
        "ociVersionMax {max} is below the implemented spec {spec}"
    );
    let ns = strings(&v["linux"]["namespaces"]);
    assert!(
        ns.contains(&"time"),
        "time namespaces are implemented (namespaces::time_namespace_offsets)"
    );
    // Every listed namespace kind can really be created.
    for kind in ns {
        let mut c = Ctr::new("feat-ns");
        c.set_ns(kind, None);
        if kind == "user" {
            c.user_ns(100000, 100000);
        }
        let out = c.run();
        assert!(
            out.ok(),
            "features lists {kind} but a container with it fails:\n{out}"
        );
    }
}

#[test]
fn flag_spellings_and_options_after_the_id() {
    let mut c = Ctr::new("flags");
    c.args(&["sleep", "100"]);
    c.save();
    let b = c.bundle.to_string_lossy().into_owned();
    let root = c.root.to_string_lossy().into_owned();
    let pf = c.pid_file().to_string_lossy().into_owned();
    // --root=DIR, create ID --bundle=B --pid-file P (options after the id).
    let out = exec_files(
        Command::new(runtime()).args([
            &format!("--root={root}"),
            "create",
            &c.id,
            &format!("--bundle={b}"),
            "--pid-file",
            &pf,
        ]),
        CMD_TIMEOUT,
    );
    out.assert_ok();
    let pid = fs::read_to_string(c.pid_file()).unwrap();
    assert_eq!(c.pid().to_string(), pid);
    // kill ID SIGNAL with options after: kill ID KILL --all is not runc's order; kill --all ID SIG is.
    c.rt(&["start", &c.id]).assert_ok();
    c.rt(&["kill", &c.id, "KILL"]).assert_ok();
    c.wait_status("stopped", std::time::Duration::from_secs(20));
    c.rt(&["delete", &c.id, "--force"]).assert_ok();
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");

    // -b B short flag.
    let mut d = Ctr::new("flags-b");
    d.args(&["true"]);
    d.save();
    let db = d.bundle.to_string_lossy().into_owned();
    d.rt(&["run", "-b", &db, &d.id]).assert_ok();
}

#[test]
fn bundle_defaults_to_cwd_and_root_path_is_relative_to_the_bundle() {
    let mut c = Ctr::new("cwd-bundle");
    c.sh("echo from-cwd-bundle");
    c.save();
    let out = exec_timeout(
        c.cmd().current_dir(&c.bundle).args(["run", &c.id]),
        CMD_TIMEOUT,
    );
    out.assert_ok();
    assert_eq!(out.stdout, "from-cwd-bundle\n");
    // root.path is relative to --bundle, not to the caller's cwd (containerd/podman).
    let mut d = Ctr::new("rel-root");
    d.sh("echo rel-ok");
    d.save();
    let b = d.bundle.to_string_lossy().into_owned();
    let out = exec_timeout(
        d.cmd()
            .current_dir("/")
            .args(["run", "--bundle", &b, &d.id]),
        CMD_TIMEOUT,
    );
    out.assert_ok();
    assert_eq!(out.stdout, "rel-ok\n");
    let st_out = d.rt(&["state", &d.id]);
    st_out.assert_fail_with("does not exist");
}

#[test]
fn single_dash_long_flags() {
    // go-runc passes `-no-subreaper` to restore; runc's parser takes any long flag with one dash.
    let mut c = Ctr::new("single-dash");
    c.args(&["true"]);
    c.save();
    let b = c.bundle.to_string_lossy().into_owned();
    c.rt(&["run", "-bundle", &b, "-no-subreaper", &c.id])
        .assert_ok();
}

#[test]
fn global_flags_engines_pass_are_accepted() {
    let c = Ctr::new("globals");
    let root = c.root.to_string_lossy().into_owned();
    for flags in [
        vec!["--debug"],
        vec!["--systemd-cgroup"],
        vec!["--rootless", "false"],
        vec!["--rootless=auto"],
        vec!["--log-format", "text"],
    ] {
        let mut args = vec!["--root", root.as_str()];
        args.extend(flags.iter().copied());
        args.extend(["state", c.id.as_str()]);
        let out = bare(&args);
        out.assert_fail_with("does not exist");
    }
}

#[test]
fn list_formats() {
    let mut c = Ctr::new("list");
    c.args(&["sleep", "100"]);
    c.config["annotations"] = serde_json::json!({"a": "b"});
    c.create_ok();
    let pid = c.pid();

    let table = c.rt(&["list"]);
    table.assert_ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    let row: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with(&c.id))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[0], c.id);
    assert_eq!(row[1], pid.to_string());
    assert_eq!(row[2], "created");
    assert_eq!(row[3], c.bundle.to_str().unwrap());
    assert!(is_rfc3339(row[4]), "{}", row[4]);

    for args in [
        vec!["list", "--format", "json"],
        vec!["list", "--format=json"],
        vec!["list", "-f", "json"],
    ] {
        let out = c.rt(&args);
        out.assert_ok();
        let v = parse_json(&out.stdout);
        let arr = v
            .as_array()
            .unwrap_or_else(|| panic!("{args:?}: not an array: {v}"));
        assert_eq!(arr.len(), 1);
        let e = &arr[0];
        assert_eq!(e["id"], c.id.as_str());
        assert_eq!(e["pid"], pid);
        assert_eq!(e["status"], "created");
        assert_eq!(e["bundle"], c.bundle.to_str().unwrap());
        assert_eq!(e["rootfs"], c.rootfs.to_str().unwrap());
        assert!(e["created"].as_str().is_some_and(is_rfc3339));
        assert!(e.get("owner").is_some());
        assert_eq!(e["annotations"]["a"], "b");
    }
    let q = c.rt(&["list", "-q"]);
    q.assert_ok();
    assert_eq!(q.stdout, format!("{}\n", c.id));
    let q2 = c.rt(&["list", "--quiet"]);
    assert_eq!(q2.stdout, q.stdout);
}

#[test]
fn list_of_an_empty_or_missing_root() {
    let c = Ctr::new("list-empty");
    let out = c.rt(&["list", "--format", "json"]);
    out.assert_ok();
    let v = parse_json(&out.stdout);
    assert!(
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
        "{v}"
    );
    let t = c.rt(&["list"]);
    t.assert_ok();
    assert_eq!(t.stdout.lines().count(), 1, "only the header: {t}");
    let q = c.rt(&["list", "-q"]);
    q.assert_ok();
    assert_eq!(q.stdout, "");
}

#[test]
fn log_file_json_on_failure() {
    let c = Ctr::new("logjson");
    let log = c.dir.join("log.json");
    fs::create_dir_all(&c.dir).unwrap();
    let out = exec_files(
        c.cmd().args([
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            &c.id,
        ]),
        CMD_TIMEOUT,
    );
    out.assert_fail();
    assert!(
        out.stderr.contains("container does not exist"),
        "errors also go to stderr: {out}"
    );
    let text = fs::read_to_string(&log).expect("log file written");
    let last_error = text
        .lines()
        .map(|l| parse_json(l))
        .rfind(|v| v["level"] == "error")
        .unwrap_or_else(|| panic!("no level=error line in {text:?}"));
    assert!(
        last_error["msg"]
            .as_str()
            .unwrap()
            .contains("container does not exist"),
        "{last_error}"
    );
    assert!(
        last_error["time"].as_str().is_some_and(is_rfc3339),
        "{last_error}"
    );
    for line in text.lines() {
        let v = parse_json(line);
        assert!(
            v["level"].is_string() && v["msg"].is_string() && v["time"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn log_file_appends_and_create_failure_is_logged() {
    let mut c = Ctr::new("logjson-create");
    c.config["process"]["cwd"] = serde_json::json!("relative");
    c.save();
    let log = c.dir.join("log.json");
    fs::write(
        &log,
        "{\"level\":\"info\",\"msg\":\"earlier\",\"time\":\"2020-01-01T00:00:00Z\"}\n",
    )
    .unwrap();
    let b = c.bundle.to_string_lossy().into_owned();
    let out = exec_files(
        c.cmd().args([
            &format!("--log={}", log.display()),
            "--log-format=json",
            "create",
            "--bundle",
            &b,
            &c.id,
        ]),
        CMD_TIMEOUT,
    );
    out.assert_fail();
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("{\"level\":\"info\",\"msg\":\"earlier\""),
        "the log must be appended to: {text}"
    );
    let errs: Vec<Value> = text
        .lines()
        .map(parse_json)
        .filter(|v| v["level"] == "error")
        .collect();
    assert!(!errs.is_empty(), "{text}");
    assert!(
        errs.last().unwrap()["msg"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("cwd"),
        "{text}"
    );
}

#[test]
fn unknown_subcommand_and_flag_fail() {
    bare(&["no-such-command"]).assert_fail();
    let c = Ctr::new("badflag");
    c.rt(&["state", "--no-such-flag", &c.id]).assert_fail();
}

/// Without `--root`, an unprivileged caller's state lives under `$XDG_RUNTIME_DIR/<runtime>`
/// (runc's rule); root on the host keeps the system directory even with the variable set.
#[test]
fn unprivileged_callers_default_root_is_under_xdg_runtime_dir() {
    let mut c = Ctr::new("xdg-root");
    let xdg = c.dir.join("xdg");
    c.root = xdg.join(runtime_name());
    c.args(&["sleep", "100"]);
    c.create_ok();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&xdg)
        .status()
        .unwrap();
    assert!(chown.success());
    let list = |as_nobody: bool, xdg_dir: Option<&Path>| -> String {
        let mut cmd = if as_nobody {
            let mut s = Command::new("setpriv");
            s.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"]);
            s.arg(runtime());
            s
        } else {
            Command::new(runtime())
        };
        cmd.args(["list", "-q"]).env_remove("XDG_RUNTIME_DIR");
        if let Some(d) = xdg_dir {
            cmd.env("XDG_RUNTIME_DIR", d);
        }
        let out = exec_files(&mut cmd, CMD_TIMEOUT);
        out.assert_ok();
        out.stdout
    };
    let ids = list(true, Some(&xdg));
    assert!(
        ids.lines().any(|l| l == c.id),
        "an unprivileged `list` did not look under $XDG_RUNTIME_DIR: {ids:?}"
    );
    let ids = list(false, Some(&xdg));
    assert!(
        !ids.lines().any(|l| l == c.id),
        "root on the host followed $XDG_RUNTIME_DIR: {ids:?}"
    );
}

/// A reader that went away (`hutch state ID | head -1`) makes writing the output fail: the
/// runtime must report it (or die of SIGPIPE, as runc does), never panic.
#[test]
fn output_to_a_closed_pipe_does_not_panic() {
    let mut c = Ctr::new("closed-pipe");
    c.args(&["sleep", "100"]);
    c.create_ok();
    for args in [
        vec!["--version"],
        vec!["features"],
        vec!["state", c.id.as_str()],
        vec!["ps", "--format", "json", c.id.as_str()],
    ] {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        drop(reader);
        let mut cmd = c.cmd();
        cmd.args(&args).stdout(std::process::Stdio::from(writer));
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} succeeded writing to a closed pipe"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// The commands `hutch --help` lists (clap's "Commands:" block, without its own `help`).
fn listed_commands() -> Vec<String> {
    let out = bare(&["--help"]);
    out.assert_ok();
    out.stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Every command's `--help` ends with one example line of its common use, which runs that very
/// command.
#[test]
fn every_command_help_has_an_example() {
    hutch_only!("runc's help has examples on a few commands only");
    let commands = listed_commands();
    for expected in [
        "create",
        "run",
        "exec",
        "delete",
        "checkpoint",
        "completion",
    ] {
        assert!(commands.iter().any(|c| c == expected), "{commands:?}");
    }
    for command in &commands {
        let out = bare(&[command, "--help"]);
        out.assert_ok();
        let example = out
            .stdout
            .lines()
            .skip_while(|l| *l != "Example:")
            .nth(1)
            .unwrap_or_else(|| panic!("no example in `{command} --help`:\n{out}"));
        assert!(
            example
                .trim_start()
                .starts_with(&format!("hutch {command}")),
            "{command}: {example:?}"
        );
    }
}

/// `completion SHELL` prints a script for bash, zsh and fish that knows every command, and
/// refuses another shell with the usage error's exit code.
#[test]
fn completion_scripts_know_every_command() {
    hutch_only!("runc has no completion command");
    let commands = listed_commands();
    for (shell, marker) in [
        ("bash", "complete -F _hutch"),
        ("zsh", "#compdef hutch"),
        ("fish", "complete -c hutch"),
    ] {
        let out = bare(&["completion", shell]);
        out.assert_ok();
        assert!(out.stdout.contains(marker), "{shell}: no {marker:?}");
        for command in &commands {
            assert!(
                out.stdout.contains(command.as_str()),
                "the {shell} script does not name {command}"
            );
        }
    }
    let out = bare(&["completion", "tcsh"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(out.stderr.contains("tcsh"), "{out}");
}
