//! The command line, shaped exactly like runc's so engines can call hutch in its place.
//!
//! clap parses the arguments; `normalize_args` first rewrites the spellings runc's urfave/cli
//! parser accepts and clap does not (single-dash long flags such as go-runc's `-no-subreaper`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logging::LogFormat;

pub mod checkpoint;
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

pub const DEFAULT_ROOT: &str = "/run/hutch";

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

#[derive(Parser, Debug)]
#[command(
    name = "hutch",
    about = "hutch: an OCI container runtime (runc-compatible command line)",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Root directory for storage of container state (tmpfs recommended; default /run/hutch,
    /// or $XDG_RUNTIME_DIR/hutch for an unprivileged caller)
    #[arg(long, global = true, default_value_os_t = default_root())]
    pub root: PathBuf,

    /// Set the log file to write hutch logs to (default is stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,

    /// Set the log format ('text' (default), or 'json')
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,

    /// Enable systemd cgroup support
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,

    /// Ignore cgroup permission errors ('true', 'false', or 'auto'). Not global: `spec` has a
    /// boolean `--rootless` of its own, as in runc.
    #[arg(long, default_value = "auto")]
    pub rootless: RootlessMode,

    /// Path to the criu binary used for checkpoint and restore (default: criu, from PATH)
    #[arg(long, global = true)]
    pub criu: Option<String>,

    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

/// A directory argument whose empty value means the current directory (clap refuses an empty
/// default for a `PathBuf`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BundleDir(pub PathBuf);

impl std::ops::Deref for BundleDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl std::str::FromStr for BundleDir {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(BundleDir(PathBuf::from(s)))
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootlessMode {
    Auto,
    True,
    False,
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

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container
    Create(CreateArgs),
    /// Executes the user defined process in a created container
    Start(IdArg),
    /// Output the state of a container
    State(IdArg),
    /// Kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill(KillArgs),
    /// Delete any resources held by the container often used with detached container
    Delete(DeleteArgs),
    /// Create and run a container
    Run(RunArgs),
    /// Execute new process inside the container
    Exec(exec::ExecArgs),
    /// Lists containers started by hutch with the given root
    List(ListArgs),
    /// Create a new specification file
    Spec(SpecArgs),
    /// Show the enabled features
    Features,
    /// Suspend all processes inside the container
    Pause(pause::PauseArgs),
    /// Resume all processes that have been previously paused
    Resume(resume::ResumeArgs),
    /// Display the processes running inside a container
    Ps(ps::PsArgs),
    /// Display container events such as OOM notifications, cpu, memory, and IO usage statistics
    Events(events::EventsArgs),
    /// Update container resource constraints
    Update(update::UpdateArgs),
    /// Checkpoint a running container (with CRIU)
    Checkpoint(checkpoint::CheckpointArgs),
    /// Restore a container from a previous checkpoint (with CRIU)
    Restore(restore::RestoreArgs),
}

#[derive(Args, Debug, Clone)]
pub struct IdArg {
    /// The container id
    pub id: String,
}

#[derive(Args, Debug, Clone, Default)]
pub struct CreateArgs {
    /// Path to the root of the bundle directory, defaults to the current directory
    #[arg(short = 'b', long, default_value = "")]
    pub bundle: BundleDir,
    /// Path to an AF_UNIX socket which will receive a file descriptor referencing the master end
    /// of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Path to an AF_UNIX socket which will receive the pidfd of the container's init
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container id
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
    /// Disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

#[derive(Args, Debug, Clone)]
pub struct KillArgs {
    /// Send the specified signal to all processes inside the container
    #[arg(short = 'a', long)]
    pub all: bool,
    /// The container id
    pub id: String,
    /// The signal: a name (TERM, SIGTERM) or a number; default SIGTERM
    // A negative number reaches the signal parser, which names it, rather than clap's usage.
    #[arg(allow_negative_numbers = true)]
    pub signal: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct DeleteArgs {
    /// Forcibly delete the container if it is still running (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The container id
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Select one of: table or json
    #[arg(short = 'f', long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Display only container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct SpecArgs {
    /// Path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = "")]
    pub bundle: BundleDir,
    /// Generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
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
