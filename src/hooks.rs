//! OCI hooks: run each hook binary with the container state on its stdin.
//!
//! Hooks run either in the runtime's namespaces or inside the container's init process after its
//! namespaces exist, so nothing here may rely on the host's `PATH` or `/proc`. hutch must stay
//! single-threaded (it forks container processes), so the timeout is enforced with `poll` on a
//! pidfd instead of a watcher thread, and the state is fed through a non-blocking pipe in the same
//! loop: a hook that never reads its stdin cannot stall hutch past the timeout.
//!
//! Error messages number hooks from 0, like runc's "hook #N".

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;

use crate::logging;
use crate::signal::signal_name;

/// Upper bound on one `poll`, so that a very long timeout is still checked against the clock.
const MAX_POLL_SLICE: Duration = Duration::from_secs(60);
/// Without a pidfd nothing wakes the loop when the hook exits, so it looks this often.
const FALLBACK_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Runs `hooks` in order and stops at the first one that fails (prestart, createRuntime,
/// createContainer and startContainer semantics: the caller then aborts the container).
pub fn run_hooks(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    run_hooks_with_env(kind, hooks, state_json, None)
}

/// Like [`run_hooks`]; a hook without `env` of its own gets `default_env` (the container
/// process's, for the hooks that run in the container), else an empty environment.
pub fn run_hooks_with_env(
    kind: &str,
    hooks: &[Hook],
    state_json: &[u8],
    default_env: Option<&[String]>,
) -> Result<()> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(kind, index, hook, state_json, default_env)?;
    }
    Ok(())
}

/// Runs every hook in `hooks`, logging a warning for each failure (poststart and poststop
/// semantics: the container's fate is already decided, so a failing hook must not change it).
pub fn run_hooks_warn(kind: &str, hooks: &[Hook], state_json: &[u8]) {
    for (index, hook) in hooks.iter().enumerate() {
        if let Err(err) = run_one(kind, index, hook, state_json, None) {
            logging::warn(&format!("{err:#}"));
        }
    }
}

fn run_one(
    kind: &str,
    index: usize,
    hook: &Hook,
    state_json: &[u8],
    default_env: Option<&[String]>,
) -> Result<()> {
    let path = hook.path();
    logging::debug(&format!(
        "running {kind} hook #{index} ({})",
        path.display()
    ));
    // One flat message rather than an anyhow chain: callers print errors with either `{}` or
    // `{:#}`, and the hook's identity must survive both.
    run_hook(hook, state_json, default_env)
        .map_err(|err| anyhow!("{kind} hook #{index} ({}): {err:#}", hook.path().display()))
}

fn run_hook(hook: &Hook, state_json: &[u8], default_env: Option<&[String]>) -> Result<()> {
    let path = hook.path();
    if !path.is_absolute() {
        bail!("hook path must be absolute");
    }
    let timeout = match hook.timeout() {
        None => None,
        Some(secs) if secs > 0 => Some(secs),
        Some(secs) => bail!("invalid timeout {secs}: it must be greater than zero"),
    };

    let mut cmd = Command::new(path);
    if let Some([argv0, rest @ ..]) = hook.args().as_deref() {
        cmd.arg0(argv0).args(rest);
    }
    // The hook's environment is exactly `env` (or the default it was given): nothing of
    // hutch's (or the caller's) leaks in.
    cmd.env_clear();
    for entry in hook.env().as_deref().or(default_env).into_iter().flatten() {
        match entry.split_once('=') {
            Some((key, value)) => {
                cmd.env(key, value);
            }
            None => logging::debug(&format!("ignoring hook env entry without '=': {entry:?}")),
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    // A hook dies with the hutch that runs it: a `create` killed mid-hook must not leave the
    // hook running where nothing records it.
    let parent = std::process::id() as libc::pid_t;
    crate::syscall::process::die_with_parent_and_cloexec(&mut cmd, parent);

    let deadline = timeout.and_then(|secs| {
        let secs = u64::try_from(secs).ok()?;
        Instant::now().checked_add(Duration::from_secs(secs))
    });
    let mut child = cmd.spawn().context("starting the hook")?;
    let outcome = supervise(&mut child, state_json, deadline);
    let status = match outcome {
        Ok(Some(status)) => status,
        Ok(None) => {
            reap_killed(&mut child);
            bail!("timed out after {}s", timeout.unwrap_or_default());
        }
        Err(err) => {
            reap_killed(&mut child);
            return Err(err);
        }
    };
    if status.success() {
        return Ok(());
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => bail!("exited with status {code}"),
        (None, Some(sig)) => bail!("killed by signal {}", signal_name(sig)),
        (None, None) => bail!("ended with {status}"),
    }
}

/// Feeds `input` to the hook's stdin and waits for it to exit. `Ok(None)` means the deadline
/// passed first; the hook is still running then.
fn supervise(
    child: &mut Child,
    mut input: &[u8],
    deadline: Option<Instant>,
) -> Result<Option<ExitStatus>> {
    let pidfd =
        crate::syscall::process::pidfd_open(nix::unistd::Pid::from_raw(child.id() as i32)).ok();
    let mut stdin = child.stdin.take();
    if let Some(pipe) = &stdin {
        fcntl(pipe, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .context("making the stdin pipe non-blocking")?;
    }
    if input.is_empty() {
        stdin = None;
    }
    loop {
        if let Some(status) = child.try_wait().context("waiting for the hook")? {
            return Ok(Some(status));
        }
        let mut wait = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => return Ok(None),
            },
            None => MAX_POLL_SLICE,
        };
        wait = wait.min(if pidfd.is_some() {
            MAX_POLL_SLICE
        } else {
            FALLBACK_POLL_INTERVAL
        });

        let stdin_events = {
            let mut fds = Vec::with_capacity(2);
            if let Some(pidfd) = &pidfd {
                fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
            }
            let stdin_slot = stdin.as_ref().map(|pipe| {
                fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLOUT));
                fds.len() - 1
            });
            if fds.is_empty() {
                std::thread::sleep(wait);
                continue;
            }
            match poll(&mut fds, poll_timeout(wait)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(err) => return Err(err).context("polling the hook"),
            }
            stdin_slot
                .and_then(|slot| fds[slot].revents())
                .unwrap_or(PollFlags::empty())
        };

        if !stdin_events.is_empty() {
            if let Some(pipe) = stdin.as_mut() {
                if feed(pipe, &mut input) {
                    // Closing the pipe is the EOF the hook waits for.
                    stdin = None;
                }
            }
        }
    }
}

/// Writes what the pipe takes now; returns true once there is nothing more to write.
fn feed(pipe: &mut ChildStdin, input: &mut &[u8]) -> bool {
    match pipe.write(input) {
        Ok(0) => true,
        Ok(n) => {
            *input = &input[n..];
            input.is_empty()
        }
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            false
        }
        // EPIPE: the hook closed its stdin without reading the state, which is its business.
        Err(_) => true,
    }
}

fn poll_timeout(wait: Duration) -> PollTimeout {
    // Round up: rounding down turns the last sub-millisecond into a busy loop.
    let millis = wait.as_nanos().div_ceil(1_000_000);
    u32::try_from(millis)
        .ok()
        .and_then(|ms| PollTimeout::try_from(ms).ok())
        .unwrap_or(PollTimeout::MAX)
}

/// SIGKILL and reap a hook hutch gave up on, so it neither lingers nor stays a zombie.
fn reap_killed(child: &mut Child) {
    if let Err(err) = child.kill() {
        logging::debug(&format!("killing hook pid {}: {err}", child.id()));
    }
    if let Err(err) = child.wait() {
        logging::debug(&format!("reaping hook pid {}: {err}", child.id()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;
    use std::path::PathBuf;

    fn sh_hook(script: &str, env: &[&str], timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path(PathBuf::from("/bin/sh"))
            .args(vec!["sh".to_string(), "-c".to_string(), script.to_string()])
            .env(env.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hutch-hooks-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn state_arrives_on_stdin() {
        let dir = tempdir("stdin");
        let out = dir.join("state");
        let hook = sh_hook(&format!("cat > {}", out.display()), &[], None);
        let state = br#"{"ociVersion":"1.2.1","id":"x","status":"created","pid":1,"bundle":"/b"}"#;
        run_hooks("prestart", &[hook], state).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), state);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn large_state_not_read_does_not_block_past_exit() {
        // Bigger than a pipe buffer, and the hook never reads it.
        let state = vec![b'x'; 1 << 20];
        let hook = sh_hook("exit 0", &[], Some(5));
        run_hooks("poststop", &[hook], &state).unwrap();
    }

    #[test]
    fn environment_is_exactly_the_hook_env() {
        std::env::set_var("HUTCH_HOOK_TEST_LEAK", "leaked");
        let dir = tempdir("env");
        let out = dir.join("env");
        let hook = sh_hook(
            &format!("env > {}", out.display()),
            &["FOO=bar=baz", "EMPTY="],
            None,
        );
        run_hooks("createRuntime", &[hook], b"{}").unwrap();
        let env = std::fs::read_to_string(&out).unwrap();
        let mut lines: Vec<&str> = env
            .lines()
            // dash exports PWD itself.
            .filter(|l| !l.starts_with("PWD="))
            .collect();
        lines.sort();
        assert_eq!(lines, vec!["EMPTY=", "FOO=bar=baz"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn argv0_and_args() {
        let dir = tempdir("argv");
        let out = dir.join("argv");
        let hook = HookBuilder::default()
            .path(PathBuf::from("/bin/sh"))
            .args(vec![
                "custom-name".to_string(),
                "-c".to_string(),
                format!("tr '\\0' ' ' < /proc/$$/cmdline > {}", out.display()),
            ])
            .build()
            .unwrap();
        run_hooks("prestart", &[hook], b"{}").unwrap();
        let cmdline = std::fs::read_to_string(&out).unwrap();
        assert!(cmdline.starts_with("custom-name -c "), "{cmdline}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_stops_the_chain() {
        let dir = tempdir("fail");
        let marker = dir.join("second-ran");
        let hooks = [
            sh_hook("exit 3", &[], None),
            sh_hook(&format!("touch {}", marker.display()), &[], None),
        ];
        let err = run_hooks("prestart", &hooks, b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "prestart hook #0 (/bin/sh): exited with status 3"
        );
        assert!(!marker.exists());

        run_hooks_warn("poststop", &hooks, b"{}");
        assert!(
            marker.exists(),
            "run_hooks_warn must continue after a failure"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn killed_by_signal() {
        let hook = sh_hook("kill -TERM $$", &[], None);
        let err = run_hooks("poststart", &[hook], b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "poststart hook #0 (/bin/sh): killed by signal SIGTERM"
        );
    }

    #[test]
    fn timeout_kills_the_hook() {
        let started = Instant::now();
        let hooks = [
            sh_hook("true", &[], Some(5)),
            sh_hook("exec sleep 30", &["PATH=/usr/bin:/bin"], Some(1)),
        ];
        let err = run_hooks("createContainer", &hooks, b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "createContainer hook #1 (/bin/sh): timed out after 1s"
        );
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(1), "{took:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn missing_binary_and_bad_config() {
        let hook = HookBuilder::default()
            .path(PathBuf::from("/nonexistent/hook"))
            .build()
            .unwrap();
        let err = run_hooks("startContainer", &[hook], b"{}").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("startContainer hook #0 (/nonexistent/hook): starting the hook: "),
            "{msg}"
        );
        assert!(msg.contains("No such file or directory"), "{msg}");

        let relative = HookBuilder::default()
            .path(PathBuf::from("bin/sh"))
            .build()
            .unwrap();
        assert!(run_hooks("prestart", &[relative], b"{}").is_err());
        let zero = sh_hook("true", &[], Some(0));
        assert!(run_hooks("prestart", &[zero], b"{}").is_err());
    }

    #[test]
    fn inherited_descriptors_are_not_passed_on() {
        let dir = tempdir("fds");
        let out = dir.join("fds");
        // A descriptor without CLOEXEC, as --preserve-fds leaves them. Its number is fixed
        // far above what the shell uses itself: dash parks the saved stdout of the redirect
        // below at the lowest free number from 10, which a low inherited number could be
        // while other tests hold descriptors, and the check would see the shell's own.
        let null = std::fs::File::open("/dev/null").unwrap();
        let raw = fcntl(&null, FcntlArg::F_DUPFD(700)).unwrap();
        // SAFETY: F_DUPFD just returned this descriptor and nothing else owns it.
        let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        assert!(raw >= 700, "F_DUPFD(700) returned {raw}");
        fcntl(&file, FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())).unwrap();
        let hook = sh_hook(
            &format!(
                "if [ -e /proc/self/fd/{raw} ]; then echo open; else echo closed; fi > {}",
                out.display()
            ),
            &[],
            None,
        );
        run_hooks("prestart", &[hook], b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "closed\n");
        drop(file);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
