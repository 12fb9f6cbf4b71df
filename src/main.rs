use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = scancer::cli::Cli::parse();
    match scancer::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // One line, whatever the chain of causes: scripts grep for it, people read it.
            let message = format!("{err:#}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("scancer: error: {message}");
            ExitCode::from(scancer::commands::FATAL)
        }
    }
}
