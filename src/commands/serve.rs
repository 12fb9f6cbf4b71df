//! `scancer serve`: the command-line front of `crate::serve`.

use crate::cli::ServeArgs;
use crate::exit::Exit;
use crate::serve::auth::Auth;
use crate::serve::http::Limits;
use crate::serve::{self, ServeOptions};
use anyhow::Result;
use std::net::SocketAddr;
use std::time::Duration;

pub(crate) fn run(args: ServeArgs) -> Result<Exit> {
    let auth = Auth::load(
        args.auth_file.as_deref(),
        args.token_file.as_deref(),
        args.open.clone(),
    )?;
    serve::run(ServeOptions {
        models: args.models,
        address: SocketAddr::new(args.host, args.port),
        engine: args.engine.options(),
        max_batch_delay: Duration::from_millis(args.max_batch_delay),
        job_queue_size: args.job_queue_size as usize,
        limits: Limits {
            max_body: args.max_request_size,
            client_timeout: Duration::from_secs(args.client_timeout),
            keep_alive: Duration::from_secs(args.keep_alive_timeout),
        },
        max_connections: args.max_connections as usize,
        auth,
        quiet: args.quiet,
    })?;
    Ok(Exit::Success)
}
