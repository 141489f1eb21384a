//! The command line, shaped exactly like runc's so engines can call hutch in its place.
//!
//! clap parses the arguments; `normalize_args` first rewrites the spellings runc's urfave/cli
//! parser accepts and clap does not (single-dash long flags such as go-runc's `-no-subreaper`).

mod args;
pub mod checkpoint;
pub mod completion;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod resume;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

pub use args::*;

/// Where state lives without `--root`, by runc's rule: `$XDG_RUNTIME_DIR/hutch` for an
/// unprivileged caller, or for root inside a user namespace whose `$USER` is not root (rootless
/// podman); `/run/hutch` otherwise (root on the host never follows a session's variable).
fn default_root() -> std::path::PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    let honour = xdg.is_some()
        && (!nix::unistd::geteuid().is_root()
            || (crate::host_proc::in_user_namespace()
                && std::env::var_os("USER").is_none_or(|u| u != "root")));
    match xdg {
        Some(dir) if honour => std::path::Path::new(&dir).join("hutch"),
        _ => DEFAULT_ROOT.into(),
    }
}

impl From<LogFormat> for crate::logging::Format {
    fn from(format: LogFormat) -> Self {
        match format {
            LogFormat::Text => crate::logging::Format::Text,
            LogFormat::Json => crate::logging::Format::Json,
        }
    }
}

impl RootlessMode {
    /// Whether cgroup permission errors are tolerated. `auto`, as runc decides it: an
    /// unprivileged caller, or root inside a user namespace other than the host's (rootless
    /// podman runs the runtime there), cannot be expected to own the host's cgroups.
    pub fn is_rootless(self) -> bool {
        match self {
            RootlessMode::True => true,
            RootlessMode::False => false,
            RootlessMode::Auto => {
                !nix::unistd::geteuid().is_root() || crate::host_proc::in_user_namespace()
            }
        }
    }
}

/// Long option names that runc's parser also accepts with a single dash.
const LONG_FLAGS: &[&str] = &[
    "root",
    "log",
    "log-format",
    "debug",
    "systemd-cgroup",
    "rootless",
    "criu",
    "version",
    "bundle",
    "console-socket",
    "pidfd-socket",
    "pid-file",
    "no-pivot",
    "no-new-keyring",
    "preserve-fds",
    "detach",
    "keep",
    "no-subreaper",
    "all",
    "force",
    "format",
    "quiet",
    "help",
    "stats",
    "interval",
    "resources",
    "memory",
    "memory-swap",
    "memory-reservation",
    "cpu-share",
    "cpu-quota",
    "cpu-period",
    "pids-limit",
    "blkio-weight",
    "cpuset-cpus",
    "cpuset-mems",
    "process",
    "tty",
    "user",
    "env",
    "cwd",
    "cap",
    "additional-gids",
    "ignore-paused",
    "no-new-privs",
    "apparmor",
    "process-label",
];

/// Writes a command's output to stdout. An error (a reader that went away: `hutch state ID |
/// head`) is returned, not a panic as from `println!`.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::anyhow!("writing to stdout: {e}"))
}

/// Rewrites `-long-flag[=v]` to `--long-flag[=v]` for the names runc knows, as urfave/cli treats
/// one and two leading dashes alike. Short flags (`-b`, `-d`) and values are left alone.
pub fn normalize_args(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut after_double_dash = false;
    for arg in args {
        if after_double_dash {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            after_double_dash = true;
            out.push(arg);
            continue;
        }
        let single_dash_long = arg.len() > 2
            && arg.starts_with('-')
            && !arg.starts_with("--")
            && LONG_FLAGS.contains(&arg[1..].split('=').next().unwrap_or_default());
        if single_dash_long {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser;

    use super::*;

    fn norm(v: &[&str]) -> Vec<String> {
        normalize_args(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            norm(&["hutch", "-no-subreaper", "-root=/x", "-b", "/b"]),
            ["hutch", "--no-subreaper", "--root=/x", "-b", "/b"]
        );
    }

    #[test]
    fn unknown_and_short_flags_are_untouched() {
        assert_eq!(
            norm(&["hutch", "-d", "-xyz", "--", "-all"]),
            ["hutch", "-d", "-xyz", "--", "-all"]
        );
    }

    #[test]
    fn options_after_the_id_parse() {
        let cli = Cli::try_parse_from(norm(&["hutch", "kill", "c1", "9", "--all"])).unwrap();
        match cli.command {
            Some(Command::Kill(k)) => {
                assert!(k.all);
                assert_eq!(k.id, "c1");
                assert_eq!(k.signal.as_deref(), Some("9"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn global_flags_after_subcommand_parse() {
        let cli = Cli::try_parse_from(norm(&["hutch", "state", "c1", "--root=/tmp/r"])).unwrap();
        assert_eq!(cli.global.root, PathBuf::from("/tmp/r"));
    }
}
