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
        // A reader that went away (`| head`) ends any command quietly, as ripgrep does.
        Err(err)
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(scancer::commands::SUCCESS)
        }
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
