//! `hutch completion SHELL`: prints the completion script build.rs generated from the same
//! command-line definitions as `--help` (the package installs these very files), so the binary
//! carries text, not a generator.

use anyhow::Result;

use super::{CompletionArgs, Shell};

const BASH: &str = include_str!(concat!(env!("OUT_DIR"), "/completions/hutch.bash"));
const ZSH: &str = include_str!(concat!(env!("OUT_DIR"), "/completions/_hutch"));
const FISH: &str = include_str!(concat!(env!("OUT_DIR"), "/completions/hutch.fish"));

pub fn run(args: CompletionArgs) -> Result<i32> {
    let script = match args.shell {
        Shell::Bash => BASH,
        Shell::Zsh => ZSH,
        Shell::Fish => FISH,
    };
    super::print_stdout(script)?;
    Ok(0)
}
