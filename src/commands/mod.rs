//! One module per subcommand; each takes its parsed arguments and returns the exit status.

use crate::cli::{Cli, ColorChoice, Command};
use std::io::IsTerminal;
use std::process::ExitCode;

/// Exit status: every input got a result.
pub const SUCCESS: u8 = 0;
/// Exit status: some inputs failed; each has a record with its error.
pub const SOME_FAILED: u8 = 1;
/// Exit status: usage error, or the model or configuration could not be used.
pub const FATAL: u8 = 2;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Predict(args) => predict::run(args, cli.color),
        Command::Archive(args) => archive::run(args),
        Command::Store(args) => store::run(args),
        Command::Serve(args) => serve::run(args),
    }
}

/// Colour for a stream: `auto` colours a terminal unless NO_COLOR is set to anything non-empty.
pub fn use_color(choice: ColorChoice, is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Writes command output (not records: those have their writers) to standard output, the one
/// place it is written. A closed standard output (`| head -1`) ends the command quietly with exit
/// 0, as ripgrep does; any other write error is fatal.
pub fn print(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(SUCCESS));
        }
        eprintln!(
            "scancer: error: cannot write to standard output: {}",
            crate::inputs::io_message(&e)
        );
        std::process::exit(i32::from(FATAL));
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

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

pub mod archive;
pub mod predict;
pub mod serve;
pub mod store;
