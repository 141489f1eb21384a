//! The spellings runc's command-line parser (urfave/cli) accepts and clap does not: a long flag
//! with one leading dash (`-no-subreaper`, go-runc's spelling, or `-root=/x`).
//!
//! Which words are flags comes from the clap definitions themselves, so a new flag needs no
//! second list. The walk follows the command line as runc reads it: a flag's value is never
//! rewritten, and whatever follows the container id of a command that takes the rest of the line
//! (`exec ID CMD…`, `ps ID PS-OPTIONS…`) belongs to that command, verbatim: `hutch exec c1 find /
//! -user root` must run `find / -user root`.

use clap::{Arg, Command as ClapCommand, CommandFactory};

use super::Cli;

/// Rewrites `-long[=v]` to `--long[=v]` where `long` is a long flag of the command (or a global
/// one) at that position. Everything else, short flags (`-b`, `-d`) and values included, is left
/// alone. The definitions are only built when some word looks like a single-dash long flag.
pub fn normalize_args(args: Vec<String>) -> Vec<String> {
    if !args.iter().skip(1).any(|a| single_dash_word(a).is_some()) {
        return args;
    }
    let cli = Cli::command();
    let mut walk = Walk {
        cli: &cli,
        command: None,
        verbatim: false,
        value_next: false,
    };
    let mut iter = args.into_iter();
    let mut out: Vec<String> = iter.next().into_iter().collect();
    out.extend(iter.map(|arg| walk.next(arg)));
    out
}

/// Where the walk over the arguments is.
struct Walk<'a> {
    cli: &'a ClapCommand,
    /// The command named so far (`exec`, `kill`…), whose flags are known at this point.
    command: Option<&'a ClapCommand>,
    /// After `--`, or after the id of a command that takes the rest of the line.
    verbatim: bool,
    /// The previous word was a flag that takes a separate value.
    value_next: bool,
}

impl Walk<'_> {
    fn next(&mut self, arg: String) -> String {
        if self.verbatim {
            return arg;
        }
        if self.value_next {
            self.value_next = false;
            return arg;
        }
        if arg == "--" {
            self.verbatim = true;
            return arg;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, inline_value) = split_value(body);
            self.value_next = !inline_value && self.long(name).is_some_and(takes_value);
            return arg;
        }
        if let Some(body) = single_dash_word(&arg) {
            let (name, inline_value) = split_value(body);
            if let Some(flag) = self.long(name) {
                self.value_next = !inline_value && takes_value(flag);
                return format!("-{arg}");
            }
        }
        if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            // `-b DIR` takes the next word; `-bDIR` and `-db DIR` as clap reads them.
            let mut chars = shorts.chars();
            while let Some(c) = chars.next() {
                if self.short(c).is_some_and(takes_value) {
                    self.value_next = chars.as_str().is_empty();
                    break;
                }
            }
            return arg;
        }
        self.positional(&arg);
        arg
    }

    /// A word that is not a flag: the command's name, or one of its positional arguments.
    fn positional(&mut self, word: &str) {
        match self.command {
            None => self.command = self.cli.find_subcommand(word),
            // The first positional is the container id; a command whose last argument takes
            // the rest of the line owns everything after it.
            Some(command) => {
                self.verbatim = command
                    .get_arguments()
                    .any(|a| a.is_positional() && a.is_trailing_var_arg_set());
            }
        }
    }

    fn long(&self, name: &str) -> Option<&Arg> {
        let named = |a: &&Arg| {
            a.get_long() == Some(name)
                || a.get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&name))
        };
        self.command
            .and_then(|c| c.get_arguments().find(named))
            .or_else(|| self.cli.get_arguments().find(named))
            .or_else(|| (name == "help").then_some(&HELP))
    }

    fn short(&self, c: char) -> Option<&Arg> {
        let named = |a: &&Arg| a.get_short() == Some(c);
        self.command
            .and_then(|command| command.get_arguments().find(named))
            .or_else(|| self.cli.get_arguments().find(named))
    }
}

/// clap adds `--help` when it builds a command, which the walk does not wait for.
static HELP: std::sync::LazyLock<Arg> =
    std::sync::LazyLock::new(|| Arg::new("help").long("help").action(clap::ArgAction::Help));

fn takes_value(flag: &Arg) -> bool {
    flag.get_action().takes_values()
}

/// `name=value` → (`name`, true); `name` → (`name`, false).
fn split_value(body: &str) -> (&str, bool) {
    match body.split_once('=') {
        Some((name, _)) => (name, true),
        None => (body, false),
    }
}

/// The body of `-word` when it could be a single-dash long flag: two or more characters after
/// one dash.
fn single_dash_word(arg: &str) -> Option<&str> {
    let body = arg.strip_prefix('-')?;
    (!body.starts_with('-') && split_value(body).0.len() > 1).then_some(body)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser;

    use super::*;
    use crate::cli::Command;

    fn norm(v: &[&str]) -> Vec<String> {
        normalize_args(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            norm(&[
                "hutch",
                "-root=/x",
                "restore",
                "-no-subreaper",
                "-b",
                "/b",
                "c1"
            ]),
            [
                "hutch",
                "--root=/x",
                "restore",
                "--no-subreaper",
                "-b",
                "/b",
                "c1"
            ]
        );
        assert_eq!(
            norm(&["hutch", "update", "-cpu-shares", "2", "-memory=1M", "c1"]),
            ["hutch", "update", "--cpu-shares", "2", "--memory=1M", "c1"]
        );
    }

    #[test]
    fn unknown_and_short_flags_are_untouched() {
        assert_eq!(
            norm(&["hutch", "run", "-d", "-xyz", "--", "-all"]),
            ["hutch", "run", "-d", "-xyz", "--", "-all"]
        );
    }

    #[test]
    fn a_flag_of_another_command_is_untouched() {
        // `--all` is kill's, not delete's: clap names it as unknown, as runc does.
        assert_eq!(
            norm(&["hutch", "delete", "-all", "c1"]),
            ["hutch", "delete", "-all", "c1"]
        );
    }

    #[test]
    fn the_command_line_of_exec_and_ps_is_left_alone() {
        assert_eq!(
            norm(&["hutch", "exec", "-tty", "c1", "find", "/", "-user", "root", "-all"]),
            ["hutch", "exec", "--tty", "c1", "find", "/", "-user", "root", "-all"]
        );
        assert_eq!(
            norm(&["hutch", "-root", "/r", "exec", "-cwd", "/w", "c1", "sh", "-debug"]),
            ["hutch", "--root", "/r", "exec", "--cwd", "/w", "c1", "sh", "-debug"]
        );
        assert_eq!(
            norm(&["hutch", "ps", "-format", "table", "c1", "-eo", "-user"]),
            ["hutch", "ps", "--format", "table", "c1", "-eo", "-user"]
        );
    }

    #[test]
    fn values_are_never_rewritten_or_taken_for_the_command() {
        // `-e -root=1`: the value of --env; `-p exec`: a file named exec, not the command.
        assert_eq!(
            norm(&["hutch", "exec", "-e", "-root=1", "-p", "-debug", "c1"]),
            ["hutch", "exec", "-e", "-root=1", "-p", "-debug", "c1"]
        );
        assert_eq!(
            norm(&["hutch", "--log", "exec", "-debug", "state", "c1"]),
            ["hutch", "--log", "exec", "--debug", "state", "c1"]
        );
    }

    #[test]
    fn options_after_the_id_parse() {
        let cli = Cli::try_parse_from(norm(&["hutch", "kill", "c1", "9", "-all"])).unwrap();
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
        let cli = Cli::try_parse_from(norm(&["hutch", "state", "c1", "-root=/tmp/r"])).unwrap();
        assert_eq!(cli.global.root, PathBuf::from("/tmp/r"));
    }
}
