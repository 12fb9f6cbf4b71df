//! Messages for people, on standard error, in one shape: `scancer: <note>`, `scancer: warning: ...`
//! and `scancer: error: ...`, each on one line (records and command output go to standard output).
//! A closed standard error is ignored: there is no one left to tell.

use std::fmt;
use std::io::Write;
use std::sync::OnceLock;

/// Where messages also go, besides standard error (serve's ts_log.log).
type Also = Box<dyn Fn(Level, &str) + Send + Sync>;
static ALSO: OnceLock<Also> = OnceLock::new();

/// Sends every later message to `sink` too (once per process).
pub(crate) fn also_to(sink: Also) {
    let _ = ALSO.set(sink);
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Level {
    Note,
    Warning,
    Error,
}

/// Writes one message; whitespace runs (a libtorch message's newlines) become single spaces, so
/// that every message is one line that scripts can grep.
pub(crate) fn emit(level: Level, text: fmt::Arguments) {
    let text = text.to_string();
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let prefix = match level {
        Level::Note => "scancer: ",
        Level::Warning => "scancer: warning: ",
        Level::Error => "scancer: error: ",
    };
    let _ = writeln!(std::io::stderr().lock(), "{prefix}{line}");
    if let Some(also) = ALSO.get() {
        also(level, &line);
    }
}

/// `scancer: ...` on standard error.
macro_rules! note {
    ($($arg:tt)*) => { $crate::messages::emit($crate::messages::Level::Note, format_args!($($arg)*)) };
}

/// `scancer: warning: ...` on standard error.
macro_rules! warning {
    ($($arg:tt)*) => { $crate::messages::emit($crate::messages::Level::Warning, format_args!($($arg)*)) };
}

/// `scancer: error: ...` on standard error.
macro_rules! error {
    ($($arg:tt)*) => { $crate::messages::emit($crate::messages::Level::Error, format_args!($($arg)*)) };
}

pub(crate) use {error, note, warning};

/// An OS error without Rust's " (os error N)" suffix.
pub(crate) fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}
