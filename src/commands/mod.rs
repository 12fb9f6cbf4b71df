//! One module per subcommand; each takes its parsed arguments and returns how it ended (`Exit`).
//! `main` is the one place where an error becomes a message and an exit status.

use crate::cli::{self, Cli, Command};
use crate::exit::Exit;
use crate::messages::error;
use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

/// The whole program: parse the command line, run the command, and turn its end into an exit
/// status. An error is one line on standard error and exit 2; a reader that went away (`| head`),
/// anywhere in an error's chain of causes, ends the command quietly with 0, as ripgrep does.
pub fn main() -> ExitCode {
    // Before any thread starts (see there).
    cli::environment::prepare();
    std::panic::set_hook(Box::new(|info| {
        // The last resort: no path of user input should reach a panic.
        if !crate::pipeline::panic_is_caught() {
            error!("internal error (a bug, please report it): {info}");
        }
    }));
    let cli = Cli::parse();
    // A panic that reaches here has been reported by the hook; it ends like any fatal error, not
    // with Rust's 101.
    let outcome = std::panic::catch_unwind(|| run(cli)).unwrap_or_else(|_| Ok(Exit::Fatal));
    match outcome {
        Ok(exit) => exit.into(),
        Err(err)
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            Exit::Success.into()
        }
        Err(err) => {
            error!("{err:#}");
            Exit::Fatal.into()
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Predict(args) => predict::run(cli::predict(*args, cli.color)?),
        Command::Archive(args) => archive::run(args),
        Command::Store(args) => store::run(args),
        Command::Serve(args) => serve::run(args),
    }
}

/// Writes command output (not records: those have their writers) to standard output, the one
/// place it is written. A closed standard output (`| head -1`) ends the command quietly with exit
/// 0, as ripgrep does; any other write error is fatal.
pub(crate) fn print(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(Exit::Success.code()));
        }
        error!(
            "cannot write to standard output: {}",
            crate::inputs::io_message(&e)
        );
        std::process::exit(i32::from(Exit::Fatal.code()));
    }
}

/// `print!` through `commands::print`.
macro_rules! out {
    ($($arg:tt)*) => { $crate::commands::print(format_args!($($arg)*)) };
}

/// `println!` through `commands::print`.
macro_rules! outln {
    () => { $crate::commands::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::commands::print(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

pub(crate) mod archive;
pub(crate) mod predict;
pub(crate) mod serve;
pub(crate) mod store;
