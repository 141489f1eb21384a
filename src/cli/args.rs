//! The command line's grammar: every command, flag and help text, as runc has them.
//!
//! Nothing here but clap and std: build.rs compiles this same file to write the man pages and
//! shell completions, so they cannot drift from `--help`. What a flag does lives in the
//! command's own file; values that need the running system (the default `--root`) come from
//! `super`, which build.rs provides too.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::default_root;

/// `--root` for root on the host.
pub const DEFAULT_ROOT: &str = "/run/hutch";

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
    /// Root directory for storage of container state (this should be located in tmpfs; an
    /// unprivileged caller's default is $XDG_RUNTIME_DIR/hutch)
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

    /// Ignore cgroup permission errors ('true', 'false', or 'auto')
    // Not global: `spec` has a boolean `--rootless` of its own, as in runc.
    #[arg(long, default_value = "auto")]
    pub rootless: RootlessMode,

    /// Path to the criu binary used for checkpoint and restore (default: criu, from PATH)
    #[arg(long, global = true)]
    pub criu: Option<String>,

    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

/// How log records are written (`--log-format`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
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

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container
    #[command(
        after_help = "Example:\n  hutch create --bundle /var/lib/bundles/web --pid-file /run/web.pid web"
    )]
    Create(CreateArgs),
    /// Executes the user defined process in a created container
    #[command(after_help = "Example:\n  hutch start web")]
    Start(IdArg),
    /// Output the state of a container
    #[command(after_help = "Example:\n  hutch state web")]
    State(IdArg),
    /// Kill sends the specified signal (default: SIGTERM) to the container's init process
    #[command(after_help = "Example:\n  hutch kill web KILL")]
    Kill(KillArgs),
    /// Delete any resources held by the container often used with detached container
    #[command(after_help = "Example:\n  hutch delete --force web")]
    Delete(DeleteArgs),
    /// Create and run a container
    #[command(after_help = "Example:\n  hutch run --bundle /var/lib/bundles/web web")]
    Run(RunArgs),
    /// Execute new process inside the container
    #[command(after_help = "Example:\n  hutch exec --tty web /bin/sh")]
    Exec(ExecArgs),
    /// Lists containers started by hutch with the given root
    #[command(after_help = "Example:\n  hutch list --format json")]
    List(ListArgs),
    /// Create a new specification file
    #[command(after_help = "Example:\n  hutch spec --bundle /var/lib/bundles/web")]
    Spec(SpecArgs),
    /// Show the enabled features
    #[command(after_help = "Example:\n  hutch features")]
    Features,
    /// Suspend all processes inside the container
    #[command(after_help = "Example:\n  hutch pause web")]
    Pause(PauseArgs),
    /// Resume all processes that have been previously paused
    #[command(after_help = "Example:\n  hutch resume web")]
    Resume(ResumeArgs),
    /// Display the processes running inside a container
    #[command(after_help = "Example:\n  hutch ps web -o pid,comm")]
    Ps(PsArgs),
    /// Display container events such as OOM notifications, cpu, memory, and IO usage statistics
    #[command(after_help = "Example:\n  hutch events --stats web")]
    Events(EventsArgs),
    /// Update container resource constraints
    #[command(after_help = "Example:\n  hutch update --memory 268435456 --pids-limit 100 web")]
    Update(UpdateArgs),
    /// Checkpoint a running container (with CRIU)
    #[command(
        after_help = "Example:\n  hutch checkpoint --image-path /var/lib/checkpoints/web web"
    )]
    Checkpoint(CheckpointArgs),
    /// Restore a container from a previous checkpoint (with CRIU)
    #[command(
        after_help = "Example:\n  hutch restore --detach --bundle /var/lib/bundles/web --image-path /var/lib/checkpoints/web web"
    )]
    Restore(RestoreArgs),
    /// Print a shell completion script (bash, zsh or fish)
    #[command(after_help = "Example:\n  hutch completion bash > /etc/bash_completion.d/hutch")]
    Completion(CompletionArgs),
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

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Path to an AF_UNIX socket which will receive the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Path to an AF_UNIX socket which will receive a pidfd of the process
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Current working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// UID (format: <uid>[:<gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Path to the process.json
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Set the asm process label for the process commonly used with selinux
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Set the apparmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability to the bounding set for the process
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Pass N additional file descriptors to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run the process in an (existing) sub-cgroup (accepted; the container's cgroup is used)
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// The container id
    pub id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PsArgs {
    /// Select one of: table or json
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// The container id
    pub id: String,
    /// Options passed to ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct EventsArgs {
    /// Set the stats collection interval (a Go duration: 5s, 1m30s, 500ms)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    /// The container id
    pub id: String,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    /// Path to a file with the resources to update, or '-' to read them from stdin
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    /// Specifies per cgroup weight, range is from 10 to 1000
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight vs. other containers)
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU(s) to use
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory node(s) to use
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Kernel memory limit (in bytes); ignored, as in runc
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    /// Kernel memory limit for tcp buffer (in bytes)
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (in bytes)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation or soft_limit (in bytes)
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Total memory usage (memory + swap); set '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids allowed in the container
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// The string of Intel RDT/CAT L3 cache schema (not supported)
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// The string of Intel RDT/MBA memory bandwidth schema (not supported)
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    /// The container id
    pub id: String,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PauseArgs {
    /// The container id
    pub id: String,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ResumeArgs {
    /// The container id
    pub id: String,
}

/// The flags `checkpoint` and `restore` share, as runc has them.
#[derive(clap::Args, Debug, Clone)]
pub struct CriuArgs {
    /// Path for saving criu image files (default: ./checkpoint)
    #[arg(long)]
    pub image_path: Option<PathBuf>,
    /// Path for saving work files and logs (default: the image path)
    #[arg(long)]
    pub work_path: Option<PathBuf>,
    /// Allow open tcp connections
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long)]
    pub shell_job: bool,
    /// Handle file locks, for safety
    #[arg(long)]
    pub file_locks: bool,
    /// Use userfaultfd to lazily restore memory pages
    #[arg(long)]
    pub lazy_pages: bool,
    /// Cgroups mode: soft|full|strict|ignore (default: soft)
    #[arg(long)]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace, but don't restore its properties (network only)
    #[arg(long)]
    pub empty_ns: Vec<String>,
    /// Enable auto deduplication of memory images
    #[arg(long)]
    pub auto_dedup: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Path for previous criu image files in pre-dump
    #[arg(long)]
    pub parent_path: Option<String>,
    /// Leave the process running after checkpointing
    #[arg(long)]
    pub leave_running: bool,
    /// criu writes \0 to this FD once lazy-pages is ready
    #[arg(long)]
    pub status_fd: Option<i32>,
    /// ADDRESS:PORT of the page server
    #[arg(long)]
    pub page_server: Option<String>,
    /// Dump container's memory information only, leave the container running after this
    #[arg(long)]
    pub pre_dump: bool,
    /// The container id
    pub id: String,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Path to the root of the bundle directory, defaults to the current directory
    #[arg(short = 'b', long, default_value = "")]
    pub bundle: BundleDir,
    /// Path to an AF_UNIX socket which will receive a file descriptor referencing the master end
    /// of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Do not use pivot root to jail process inside rootfs (CRIU sets the root itself; accepted
    /// for runc's command line)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Specify an LSM profile to be used during restore
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// Specify an LSM mount context to be used during restore
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
    /// The container id
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CompletionArgs {
    /// The shell to print the completion script for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells `completion` writes scripts for (the package installs the same scripts).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}
