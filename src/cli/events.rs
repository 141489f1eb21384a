//! `hutch events [--stats] [--interval D] ID`: runc's event stream. `--stats` prints one
//! `{"type":"stats","id":…,"data":…}` line and exits; otherwise stats are printed every
//! interval, `{"type":"oom","id":…}` whenever the OOM killer strikes in the container, until
//! the container stops.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;
use serde_json::json;

use super::{EventsArgs, GlobalOpts};
use crate::container::liveness::process_is_alive;
use crate::container::state::Status;

/// Parses a Go `time.Duration` string (`300ms`, `1.5h`, `2h45m`, `10us`, `0`).
pub fn parse_go_duration(s: &str) -> Result<Duration> {
    let orig = s;
    let bad = || anyhow::anyhow!("time: invalid duration {orig:?}");
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        bail!("time: negative duration {orig:?} is not allowed here");
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => bail!("time: missing unit in duration {orig:?}"),
            _ => bail!("time: unknown unit {unit:?} in duration {orig:?}"),
        };
        total += value * scale;
    }
    // Go's durations are int64 nanoseconds: anything longer is invalid there too.
    const MAX_SECONDS: f64 = i64::MAX as f64 / 1e9;
    if !total.is_finite() || total > MAX_SECONDS {
        bail!("time: invalid duration {orig:?} (longer than Go's maximum, 2562047h)");
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// One event line, keys in runc's order: `{"type":…,"id":…,"data":…}` (data omitted if None).
pub fn event_line(kind: &str, id: &str, data: Option<&serde_json::Value>) -> String {
    let mut s = format!("{{\"type\":{},\"id\":{}", json!(kind), json!(id));
    if let Some(d) = data {
        s.push_str(&format!(",\"data\":{d}"));
    }
    s.push('}');
    s
}

fn print_event(kind: &str, id: &str, data: Option<&serde_json::Value>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", event_line(kind, id, data))?;
    out.flush()?;
    Ok(())
}

pub fn run(global: &GlobalOpts, args: EventsArgs) -> Result<i32> {
    let interval = parse_go_duration(&args.interval).context("--interval")?;
    if interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    let (dir, state, status, m) = super::pause::open_unlocked(global, &args.id)?;
    if status == Status::Stopped {
        bail!("container with id {} is not running", args.id);
    }
    let m = m?;
    drop(dir);
    let id = args.id.as_str();
    if args.stats {
        print_event("stats", id, Some(&m.stats()?))?;
        return Ok(0);
    }
    let init = Pid::from_raw(state.init_pid);
    let alive = || process_is_alive(init, state.init_start_time) || !m.is_empty();
    let mut ooms = m.oom_kill_count().unwrap_or(0);
    let tick = interval.min(Duration::from_millis(100));
    // None once the next time would be past what the clock can hold: no more stats, then.
    let mut next_stats = Some(Instant::now());
    loop {
        if let Some(n) = m.oom_kill_count() {
            if n > ooms {
                print_event("oom", id, None)?;
            }
            ooms = n;
        }
        if !m.exists() || !alive() {
            return Ok(0);
        }
        if let Some(due) = next_stats.filter(|due| Instant::now() >= *due) {
            match m.stats() {
                Ok(data) => print_event("stats", id, Some(&data))?,
                Err(e) => eprintln!("hutch events: {e:#}"),
            }
            next_stats = due.checked_add(interval);
        }
        std::thread::sleep(tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_like_runc() {
        assert_eq!(event_line("oom", "c1", None), r#"{"type":"oom","id":"c1"}"#);
        let d = json!({"pids": {"current": 1}});
        assert_eq!(
            event_line("stats", "c\"1", Some(&d)),
            r#"{"type":"stats","id":"c\"1","data":{"pids":{"current":1}}}"#
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(
            parse_go_duration("300ms").unwrap(),
            Duration::from_millis(300)
        );
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_go_duration("1.5h").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_go_duration("10us").unwrap(),
            Duration::from_micros(10)
        );
        assert_eq!(
            parse_go_duration("10µs").unwrap(),
            Duration::from_micros(10)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_go_duration("2562047h").unwrap(),
            Duration::from_secs(2562047 * 3600)
        );
        // Longer than Go's int64 nanoseconds (runc rejects them; hutch once aborted on them).
        let huge = "9".repeat(400) + "h";
        for bad in [
            "", "5", "s", "5x", "1..2s", "-1s", "5 s", "2562048h", "1e400h", &huge,
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }
}
