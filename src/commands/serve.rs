//! `scancer serve`: the command-line front of `crate::serve`.

use crate::cli::{self, ServeArgs};
use crate::exit::Exit;
use anyhow::Result;

pub(crate) fn run(args: ServeArgs) -> Result<Exit> {
    crate::serve::run(cli::serve(args)?)?;
    Ok(Exit::Success)
}
