//! hutch: an OCI container runtime with runc's command line.

use clap::Parser;

use hutch::cli::{self, Cli, Command};
use hutch::{logging, sealed_exe, OCI_VERSION};

fn main() {
    // anyhow captures a backtrace into every error when RUST_BACKTRACE is set, and hutch never
    // prints one: in this static binary each capture costs ~2 ms (libgcc sorts every unwind
    // entry first), on paths engines hit often (`state`/`delete` of a container that is gone).
    // RUST_LIB_BACKTRACE governs only those captures; panics still honour RUST_BACKTRACE. Set
    // before any thread exists.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let args = cli::normalize_args(std::env::args().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 1 } else { 0 };
            let _ = err.print();
            std::process::exit(code);
        }
    };
    if cli.global.version {
        let code = match print_version() {
            Ok(()) => 0,
            Err(err) => {
                eprintln!("{err:#}");
                1
            }
        };
        std::process::exit(code);
    }
    let Some(command) = cli.command else {
        eprintln!("hutch: no command given; see 'hutch --help'");
        std::process::exit(1);
    };
    if let Err(err) = logging::init(
        cli.global.log.as_deref(),
        cli.global.log_format.into(),
        cli.global.debug,
    ) {
        eprintln!("{err:#}");
        std::process::exit(1);
    }
    let code = match dispatch(&cli.global, command) {
        Ok(code) => code,
        Err(err) => {
            let msg = format!("{err:#}");
            logging::error(&msg);
            if logging::logs_to_file() {
                eprintln!("{msg}");
            }
            1
        }
    };
    std::process::exit(code);
}

fn dispatch(global: &cli::GlobalOpts, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Create(args) => {
            sealed_exe::ensure_sealed()?;
            cli::create::run(global, args)
        }
        Command::Run(args) => {
            sealed_exe::ensure_sealed()?;
            cli::run::run(global, args)
        }
        Command::Exec(args) => {
            sealed_exe::ensure_sealed()?;
            cli::exec::run(global, args)
        }
        Command::Start(args) => cli::start::run(global, args),
        Command::State(args) => cli::state::run(global, args),
        Command::Kill(args) => cli::kill::run(global, args),
        Command::Delete(args) => cli::delete::run(global, args),
        Command::List(args) => cli::list::run(global, args),
        Command::Spec(args) => cli::spec::run(args),
        Command::Features => cli::features::run(),
        Command::Pause(args) => cli::pause::run(global, args),
        Command::Resume(args) => cli::resume::run(global, args),
        Command::Ps(args) => cli::ps::run(global, args),
        Command::Events(args) => cli::events::run(global, args),
        Command::Update(args) => cli::update::run(global, args),
        Command::Checkpoint(args) => cli::checkpoint::run(global, args),
        Command::Restore(args) => cli::restore::run(global, args),
        Command::Completion(args) => cli::completion::run(args),
    }
}

fn print_version() -> anyhow::Result<()> {
    cli::print_stdout(&format!(
        "hutch version {}\ncommit: {}\nspec: {OCI_VERSION}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("HUTCH_COMMIT").unwrap_or("unknown")
    ))
}
