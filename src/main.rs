use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let decoding = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with(scancer::pipeline::DECODE_THREAD));
        if !decoding {
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
