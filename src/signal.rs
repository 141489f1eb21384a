//! Signal names and numbers as `kill` accepts them.
//!
//! runc upper-cases the argument and adds a missing `SIG` prefix, so `kill`, `KILL`, `SIGKILL`
//! and `9` all mean the same signal. Real-time signals do not fit `nix::sys::signal::Signal`, so
//! the primary entry point is [`parse_signal_number`], which covers every deliverable signal
//! (1..=64).

use std::str::FromStr;

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

/// The first real-time signal as user space sees it: glibc (and bash's `kill -l`, and moby's
/// signal table) reserve the kernel's 32 and 33 for the threading library.
pub const SIGRTMIN: i32 = 34;
/// The last real-time signal on every architecture hutch builds for (MIPS would be 127).
pub const SIGRTMAX: i32 = 64;

/// Historical aliases the kernel headers define for the standard signals.
const ALIASES: &[(&str, Signal)] = &[
    ("SIGIOT", Signal::SIGABRT),
    ("SIGPOLL", Signal::SIGIO),
    ("SIGCLD", Signal::SIGCHLD),
];

/// Parses a signal the way `runc kill` does and returns its number, real-time signals included:
/// a decimal number, a name with or without `SIG` in any case (`term`, `SIGTERM`), or a
/// real-time signal as `RTMIN`, `RTMIN+n`, `RTMAX-n` or `RTMAX`.
pub fn parse_signal_number(raw: &str) -> Result<i32> {
    if let Ok(num) = raw.parse::<i32>() {
        if (1..=SIGRTMAX).contains(&num) {
            return Ok(num);
        }
        bail!("unknown signal {raw:?}");
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(num) = parse_realtime(name) {
        return Ok(num);
    }
    let full = format!("SIG{name}");
    if let Some(sig) = lookup_standard(&full) {
        return Ok(sig as i32);
    }
    bail!("unknown signal {raw:?}")
}

/// A printable name for a signal number, for log and error messages ("SIGKILL", "SIGRTMIN+3").
pub fn signal_name(num: i32) -> String {
    if let Ok(sig) = Signal::try_from(num) {
        return sig.as_str().to_string();
    }
    match num {
        SIGRTMIN => "SIGRTMIN".to_string(),
        SIGRTMAX => "SIGRTMAX".to_string(),
        // Same split as glibc's strsignal and bash: the lower half counts up from RTMIN.
        n if n > SIGRTMIN && n <= (SIGRTMIN + SIGRTMAX) / 2 => format!("SIGRTMIN+{}", n - SIGRTMIN),
        n if n > (SIGRTMIN + SIGRTMAX) / 2 && n < SIGRTMAX => {
            format!("SIGRTMAX-{}", SIGRTMAX - n)
        }
        n => format!("signal {n}"),
    }
}

fn lookup_standard(full_name: &str) -> Option<Signal> {
    if let Ok(sig) = Signal::from_str(full_name) {
        return Some(sig);
    }
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == full_name)
        .map(|(_, sig)| *sig)
}

/// `name` is upper-case without the `SIG` prefix.
fn parse_realtime(name: &str) -> Option<i32> {
    let offset = |digits: &str| -> Option<i32> {
        // `u8::from_str` would also take "+3"; "RTMIN++3" is not a signal.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i32>().ok()
    };
    let num = if name == "RTMIN" {
        SIGRTMIN
    } else if name == "RTMAX" {
        SIGRTMAX
    } else if let Some(rest) = name.strip_prefix("RTMIN+") {
        SIGRTMIN.checked_add(offset(rest)?)?
    } else if let Some(rest) = name.strip_prefix("RTMAX-") {
        SIGRTMAX.checked_sub(offset(rest)?)?
    } else {
        return None;
    };
    (SIGRTMIN..=SIGRTMAX).contains(&num).then_some(num)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_signal_number("9").unwrap(), 9);
        assert_eq!(parse_signal_number("15").unwrap(), 15);
        assert_eq!(parse_signal_number("64").unwrap(), 64);
        assert_eq!(parse_signal_number("34").unwrap(), 34);
        assert!(parse_signal_number("0").is_err());
        assert!(parse_signal_number("65").is_err());
        assert!(parse_signal_number("-9").is_err());
    }

    #[test]
    fn names_any_case_with_or_without_prefix() {
        for s in ["KILL", "SIGKILL", "kill", "sigkill", "SigKill"] {
            assert_eq!(
                parse_signal_number(s).unwrap(),
                Signal::SIGKILL as i32,
                "{s}"
            );
        }
        assert_eq!(parse_signal_number("term").unwrap(), Signal::SIGTERM as i32);
        assert_eq!(
            parse_signal_number("SIGUSR1").unwrap(),
            Signal::SIGUSR1 as i32
        );
        assert_eq!(
            parse_signal_number("winch").unwrap(),
            Signal::SIGWINCH as i32
        );
        assert_eq!(parse_signal_number("IOT").unwrap(), Signal::SIGABRT as i32);
        assert_eq!(parse_signal_number("cld").unwrap(), Signal::SIGCHLD as i32);
        assert_eq!(parse_signal_number("9").unwrap(), Signal::SIGKILL as i32);
    }

    #[test]
    fn realtime() {
        assert_eq!(parse_signal_number("RTMIN").unwrap(), 34);
        assert_eq!(parse_signal_number("SIGRTMIN").unwrap(), 34);
        assert_eq!(parse_signal_number("rtmin+3").unwrap(), 37);
        assert_eq!(parse_signal_number("SIGRTMAX-1").unwrap(), 63);
        assert_eq!(parse_signal_number("RTMAX").unwrap(), 64);
        assert_eq!(parse_signal_number("RTMIN+30").unwrap(), 64);
        assert!(parse_signal_number("RTMIN+31").is_err());
        assert!(parse_signal_number("RTMAX-31").is_err());
        assert!(parse_signal_number("RTMIN++1").is_err());
        assert!(parse_signal_number("RTMIN+").is_err());
        assert!(parse_signal_number("RTMIN-1").is_err());
    }

    #[test]
    fn unknown() {
        let err = parse_signal_number("FOO").unwrap_err();
        assert_eq!(err.to_string(), "unknown signal \"FOO\"");
        let err = parse_signal_number("sigfoo").unwrap_err();
        assert_eq!(err.to_string(), "unknown signal \"sigfoo\"");
        assert!(parse_signal_number("").is_err());
        assert!(parse_signal_number("SIG").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(34), "SIGRTMIN");
        assert_eq!(signal_name(37), "SIGRTMIN+3");
        assert_eq!(signal_name(63), "SIGRTMAX-1");
        assert_eq!(signal_name(64), "SIGRTMAX");
        for n in 1..=64 {
            if n == 32 || n == 33 {
                continue;
            }
            assert_eq!(parse_signal_number(&signal_name(n)).unwrap(), n, "{n}");
        }
    }
}
