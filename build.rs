//! Build-time outputs: the git commit for `hutch --version` (`commit: …`), and the man pages and
//! shell completions.
//!
//! The documentation is generated from `src/cli/args.rs`, the same definitions `--help` prints,
//! compiled here a second time, so a flag cannot be added, renamed or reworded in one and not
//! the other. Both are written once, into `assets/` beside the binary, where `cargo deb` takes
//! them (cargo-deb rewrites the `target/release/` prefix of its asset paths to the real profile
//! directory; the manifest's `[package.metadata.deb]` lists them): the man pages gzipped, as
//! Debian policy wants them, and the completion scripts. Those are generated into `$OUT_DIR`,
//! which is this build's own, and copied: the binary embeds them from there for `hutch
//! completion`, so another build refreshing `assets/` cannot pull them from under it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

#[allow(dead_code)]
#[path = "src/cli/args.rs"]
mod args;

/// The default `--root` args.rs asks its parent for. At run time it depends on the caller (an
/// unprivileged one gets `$XDG_RUNTIME_DIR/hutch`); the documentation shows root's.
fn default_root() -> PathBuf {
    PathBuf::from(args::DEFAULT_ROOT)
}

/// Section 8, system administration commands, as runc's pages are.
const MAN_SECTION: &str = "8";

fn main() {
    record_commit();
    println!("cargo:rerun-if-changed=src/cli/args.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let assets = assets_dir(&out);
    let cmd = args::Cli::command().version(env!("CARGO_PKG_VERSION"));
    write_man_pages(cmd.clone(), &fresh_dir(&assets.join("man")));
    let completions = fresh_dir(&out.join("completions"));
    write_completions(cmd, &completions);
    let packaged = fresh_dir(&assets.join("completions"));
    let generated = fs::read_dir(&completions)
        .unwrap_or_else(|e| panic!("reading {}: {e}", completions.display()));
    for entry in generated.flatten() {
        let to = packaged.join(entry.file_name());
        fs::copy(entry.path(), &to).unwrap_or_else(|e| panic!("copying to {}: {e}", to.display()));
    }
}

fn record_commit() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    if let Some(commit) = commit {
        println!("cargo:rustc-env=HUTCH_COMMIT={commit}");
    }
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}

/// `hutch(8)`, and `hutch-COMMAND(8)` for each command, each ending with the command's example
/// and a SEE ALSO line.
fn write_man_pages(mut cmd: clap::Command, dir: &Path) {
    // Building propagates the global flags into every command and names the commands
    // `hutch-create` (page name) and `hutch create` (synopsis).
    cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let commands: Vec<clap::Command> = cmd.get_subcommands().cloned().collect();
    let see_also = commands
        .iter()
        .map(|sub| format!("hutch-{}({MAN_SECTION})", sub.get_name()))
        .collect::<Vec<_>>()
        .join(", ");
    write_man_page(&cmd, dir, &see_also);
    for sub in &commands {
        write_man_page(sub, dir, &format!("hutch({MAN_SECTION})"));
    }
}

fn write_man_page(cmd: &clap::Command, dir: &Path, see_also: &str) {
    let man = clap_mangen::Man::new(cmd.clone())
        .section(MAN_SECTION)
        .manual("hutch manual")
        .source(concat!("hutch ", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    let mut render = || -> std::io::Result<()> {
        man.render_title(&mut page)?;
        man.render_name_section(&mut page)?;
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        if cmd.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(&mut page)?;
        }
        if cmd.has_subcommands() {
            man.render_subcommands_section(&mut page)?;
        }
        // The example keeps its lines (clap_mangen's extra section would fill them into one).
        if let Some(after) = cmd.get_after_help() {
            let text = after.to_string();
            let body = text.strip_prefix("Example:\n").unwrap_or(&text);
            writeln!(page, ".SH EXAMPLE\n.nf")?;
            for line in body.lines() {
                writeln!(page, "{}", roff_line(line))?;
            }
            writeln!(page, ".fi")?;
        }
        writeln!(page, ".SH \"SEE ALSO\"\n{}", roff_line(see_also))?;
        // Only `hutch` itself has a version; clap_mangen would unwrap a command's missing one.
        if cmd.get_version().is_some() {
            man.render_version_section(&mut page)?;
        }
        Ok(())
    };
    render().unwrap_or_else(|e| panic!("rendering the man page of {}: {e}", cmd.get_name()));
    let path = dir.join(format!("{}.gz", man.get_filename()));
    fs::write(&path, gzip(&page)).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// One line of literal text in roff: backslashes and hyphens escaped (a bare `-` may print as a
/// typographic hyphen, which breaks copy and paste of flags), and a leading control character
/// neutralised.
fn roff_line(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// gzip at the best level with no name and a zero timestamp, so the package is reproducible.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .unwrap_or_else(|e| panic!("compressing a man page: {e}"))
}

fn write_completions(mut cmd: clap::Command, dir: &Path) {
    use clap_complete::Shell;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "hutch", dir)
            .unwrap_or_else(|e| panic!("writing the {shell} completion script: {e}"));
    }
}

/// `assets/` in the profile directory (the binary's), found from `$OUT_DIR` =
/// `<profile>/build/hutch-<hash>/out`. A layout that does not match is reported, not guessed
/// at: the files stay under `$OUT_DIR`, and `cargo deb` fails on the missing assets.
fn assets_dir(out: &Path) -> PathBuf {
    let mut up = out.ancestors();
    let layout_ok =
        out.ends_with("out") && up.nth(2).and_then(Path::file_name) == Some("build".as_ref());
    match up.next().filter(|_| layout_ok) {
        Some(profile) => profile.join("assets"),
        None => {
            println!(
                "cargo:warning=OUT_DIR {} is not <profile>/build/<pkg>/out: the man pages and \
                 completions stay there",
                out.display()
            );
            out.join("assets")
        }
    }
}

/// `dir`, emptied: the page of a command that no longer exists must not be packaged.
fn fresh_dir(dir: &Path) -> PathBuf {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir.to_path_buf()
}
