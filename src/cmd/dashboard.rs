//! `events dashboard`: binds, checks who may use it from where, prints the
//! address it serves (alone, on stdout, for scripts and tests; port 0
//! picks a free one) and serves until SIGINT or SIGTERM.

use std::time::Duration;

use anyhow::Context as _;
use libc::{SIGINT, SIGTERM};

use super::Context;
use crate::cli::DashboardArgs;
use crate::dashboard::{Access, Dashboard};
use crate::error::Error;
use crate::metrics::serve::{MetricsError, bind};
use crate::secret::Secret;
use crate::setup::Setup;
use crate::worker::Stop;

pub fn run(ctx: &Context, args: DashboardArgs) -> anyhow::Result<()> {
    let token = std::env::var("EVENTS_DASHBOARD_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(Secret::new);
    let setup = Setup::load(&ctx.global).map_err(Error::from)?;
    let listener = bind(&args.addr).map_err(|e| match e {
        MetricsError::BadAddress { addr } => Error::Usage(format!(
            "--addr {addr}: not a host:port address to listen on"
        )),
        MetricsError::Bind { addr, source } => {
            Error::Usage(format!("--addr {addr}: cannot listen there: {source}"))
        }
    })?;
    let bound = listener
        .local_addr()
        .context("cannot tell the address listened on")?;
    let access = Access::new(token, bound, args.public_url.as_deref())
        .map_err(|e| Error::Usage(e.to_string()))?;
    let read_only = !access.has_token();
    // Fails now, not at the first page, when the queue cannot be opened.
    drop(setup.open_queue()?);
    let stop = Stop::default();
    stop.on_signals(&[SIGINT, SIGTERM])
        .context("cannot listen for signals")?;
    Dashboard::new(setup, access)
        .start(listener)
        .context("cannot start the dashboard's server")?;
    super::print(&format!("http://{bound}/\n"))?;
    if !ctx.quiet {
        let mode = if read_only {
            " (read-only: no EVENTS_DASHBOARD_TOKEN)"
        } else {
            ""
        };
        log::info!("dashboard on http://{bound}/{mode}");
    }
    while !stop.requested() {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
