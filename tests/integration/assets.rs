//! The man pages in man/ and the completions in completions/ are generated from the clap definition;
//! this test fails when they are stale. `cargo xtask bless` (SCANCER_BLESS=1) rewrites them.

use clap::CommandFactory;
use clap_complete::Shell;
use scancer::Cli;
use std::path::PathBuf;

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let cmd = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .unwrap();
    files.push((root.join("man/scancer.1"), page));
    for sub in cmd.get_subcommands() {
        let name: &'static str = Box::leak(format!("scancer-{}", sub.get_name()).into_boxed_str());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name))
            .render(&mut page)
            .unwrap();
        files.push((root.join(format!("man/{name}.1")), page));
    }
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::PowerShell,
        Shell::Elvish,
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "scancer", &mut script);
        let file = match shell {
            Shell::Bash => "scancer.bash",
            Shell::Zsh => "_scancer",
            Shell::Fish => "scancer.fish",
            Shell::PowerShell => "_scancer.ps1",
            _ => "scancer.elv",
        };
        files.push((root.join("completions").join(file), script));
    }
    files
}

#[test]
fn man_pages_and_completions_are_current() {
    let bless = std::env::var_os("SCANCER_BLESS").is_some();
    let mut stale = Vec::new();
    for (path, content) in generated() {
        if std::fs::read(&path).ok().as_deref() == Some(content.as_slice()) {
            continue;
        }
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &content).unwrap();
        } else {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files (run `cargo xtask bless`): {stale:?}"
    );
}

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}
