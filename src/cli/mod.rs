//! The command line, shaped exactly like runc's so engines can call hutch in its place.
//!
//! clap parses the arguments (`args.rs` defines them); `normalize_args` first rewrites the
//! spellings runc's urfave/cli parser accepts and clap does not (single-dash long flags such as
//! go-runc's `-no-subreaper`).

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
mod normalize;
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
pub use normalize::normalize_args;

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

/// Writes a command's output to stdout. An error (a reader that went away: `hutch state ID |
/// head`) is returned, not a panic as from `println!`.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::anyhow!("writing to stdout: {e}"))
}
