//! runc-compatible logging.
//!
//! With `--log FILE --log-format json` every record is one logrus-shaped JSON line
//! (`{"level":"error","msg":"…","time":"RFC 3339"}`): containerd's shim decodes that file and shows
//! the last `error` record to the user, comparing `level` case-sensitively. Without `--log`,
//! records go to stderr. Fatal errors are also printed bare on stderr (see `main`), as runc does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};

use crate::timefmt;

/// How records are written (`--log-format`): plain text, or one logrus-shaped JSON object a
/// line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Warning,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

struct Logger {
    file: Option<File>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Opens the log destination once, before any fork: children inherit the fd (CLOEXEC, so it
/// never reaches the container's process).
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> Result<()> {
    let file = match path.filter(|p| !p.as_os_str().is_empty()) {
        None => None,
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC | libc::O_SYNC)
                .open(path)
                .with_context(|| format!("opening log file {}", path.display()))?,
        ),
    };
    let _ = LOGGER.set(Logger {
        file,
        format,
        debug,
    });
    Ok(())
}

/// True when records go to a file rather than stderr, so a fatal error must also be printed.
pub fn logs_to_file() -> bool {
    LOGGER.get().is_some_and(|l| l.file.is_some())
}

pub fn log(level: Level, msg: &str) {
    let Some(logger) = LOGGER.get() else {
        if level >= Level::Warning {
            eprintln!("{msg}");
        }
        return;
    };
    if level == Level::Debug && !logger.debug {
        return;
    }
    let time = timefmt::now_rfc3339();
    let line = match logger.format {
        Format::Json => {
            let record = serde_json::json!({"level": level.as_str(), "msg": msg, "time": time});
            format!("{record}\n")
        }
        Format::Text => {
            format!("time={:?} level={} msg={:?}\n", time, level.as_str(), msg)
        }
    };
    // One write(2) per record, so concurrent hutch processes sharing a log never interleave.
    match &logger.file {
        Some(f) => {
            let _ = (&*f).write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Is a debug record wanted? Lets callers skip formatting what would be dropped.
pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

/// A debug record with the time since `since`, for `--debug` profiling of a command's steps.
pub fn timing(since: std::time::Instant, step: &str) {
    if debug_enabled() {
        debug(&format!(
            "timing: {step} at {} µs",
            since.elapsed().as_micros()
        ));
    }
}

pub fn warn(msg: &str) {
    log(Level::Warning, msg);
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg);
}

pub fn error(msg: &str) {
    log(Level::Error, msg);
}
