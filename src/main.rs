use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        if !scancer::pipeline::panic_is_caught() {
            let message = info
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("scancer: internal error (a bug, please report it): {message}");
        }
    }));
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
