//! Exit statuses: what every command returns, and the exit-status tables of `--help` and the man
//! pages, generated from the same variants so that the two can never disagree.

use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Every input got a result; the server was stopped; the store did what was asked.
    Success,
    /// Some inputs failed, each with its own error record (the others have results); or the
    /// store's server refused.
    SomeFailed,
    /// A usage error, or nothing could be done (an unusable model, configuration, output or
    /// server); also an internal error (a panic, which the panic hook reports).
    Fatal,
}

/// Which commands a table describes: the model commands (and `scancer` itself), or `store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Models,
    Store,
}

impl Exit {
    const ALL: [Exit; 3] = [Exit::Success, Exit::SomeFailed, Exit::Fatal];

    pub(crate) const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::SomeFailed => 1,
            Exit::Fatal => 2,
        }
    }

    fn meaning(self, table: Table) -> &'static str {
        match (self, table) {
            (Exit::Success, Table::Models) => "every input got a result",
            (Exit::SomeFailed, Table::Models) => {
                "some inputs failed (each has a record with its error; the others have results), \
                 or a slide held no tissue"
            }
            (Exit::Fatal, Table::Models) => {
                "usage error, or the model or its configuration is unusable (nothing was predicted); \
                 or an internal error (a bug: the message says so)"
            }
            (Exit::Success, Table::Store) => "done",
            (Exit::SomeFailed, Table::Store) => {
                "the server refused (its error, and the fix where known, are on standard error)"
            }
            (Exit::Fatal, Table::Store) => {
                "usage error, bad configuration, or no answer from the server"
            }
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// Width of help text, as clap wraps it.
const WIDTH: usize = 100;

/// The "Exit status:" table for `table`'s commands.
pub(crate) fn table(table: Table) -> String {
    let mut rows: Vec<(String, &str)> = Exit::ALL
        .iter()
        .map(|e| (e.code().to_string(), e.meaning(table)))
        .collect();
    if table == Table::Models {
        // Not returned: the process ends by the signal itself (see commands::predict).
        rows.push((
            "130, 143".into(),
            "interrupted by SIGINT or SIGTERM (finished records are kept for --resume)",
        ));
    }
    let mut text = String::from("Exit status:");
    for (code, meaning) in rows {
        let indent = 2 + code.len() + 2;
        let mut line = format!("\n  {code} ");
        let mut width = indent - 1;
        for word in meaning.split_whitespace() {
            if width + 1 + word.len() > WIDTH && width > indent {
                line.push_str(&format!("\n{:indent$}", ""));
                width = indent;
                line.push_str(word);
                width += word.len();
                continue;
            }
            line.push(' ');
            line.push_str(word);
            width += 1 + word.len();
        }
        text.push_str(&line);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_list_every_status_within_the_help_width() {
        let models = table(Table::Models);
        assert!(models.starts_with("Exit status:\n  0  every input got a result\n  1  some inputs"));
        assert!(models.contains("\n  2  usage error"));
        assert!(models.ends_with("(finished records are kept for --resume)"));
        assert!(models.lines().all(|l| l.len() <= WIDTH), "{models}");
        let store = table(Table::Store);
        assert!(store.contains("\n  0  done\n  1  the server refused"));
        assert!(!store.contains("130"));
    }
}
