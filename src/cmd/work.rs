//! `events work`: run a worker until SIGINT/SIGTERM (or, with `--burst`,
//! until nothing is left). The first signal stops it cleanly; a second one
//! exits 130 at once. SIGHUP reloads the config file and `.env`.

use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::Context;
use crate::cli::WorkArgs;
use crate::error::Error;
use crate::metrics::{Metrics, serve};
use crate::setup::Setup;
use crate::worker::{Options, Reload, Stop, Worker};

pub fn run(ctx: &Context, args: WorkArgs) -> anyhow::Result<()> {
    let config = ctx.setup()?;
    let consumer = args.consumer.unwrap_or_else(default_consumer);
    let worker = Worker::new(
        config,
        Options {
            consumer: consumer.clone(),
            concurrency: usize::from(args.concurrency),
            burst: args.burst,
            only: args.only,
        },
    )?;
    // Bound before any work starts, so an address in use stops the worker
    // at once (exit 2) instead of a worker running unobserved.
    let worker = match args.metrics_addr.filter(|a| !a.is_empty()) {
        Some(addr) => {
            let listener = serve::bind(&addr).map_err(Error::from)?;
            let metrics = Arc::new(Metrics::new(worker.routes()));
            serve::start(listener, Arc::clone(&metrics), config.open_queue()?);
            log::info!("serving /metrics, /healthz and /readyz on {addr}");
            worker.with_metrics(metrics)
        }
        None => worker,
    };
    if config.console_fallback {
        log::info!(
            "no destination is configured (SLACK_WEBHOOK_URL, DISCORD_WEBHOOK_URL, TEAMS_WEBHOOK_URL, SEGMENT_WRITE_KEY, POSTHOG_API_KEY, MIXPANEL_TOKEN, EVENTS_WEBHOOK_URL or a config file): messages go to stdout"
        );
    }
    let global = ctx.global.clone();
    let reload = Reload::on_signal(
        SIGHUP,
        Box::new(move || {
            let env = super::reread_env()?;
            Ok(Setup::load_with(&global, &env)?)
        }),
    )?;
    let worker = worker.with_reload(reload);
    let stop = Stop::default();
    stop.on_signals(&[SIGINT, SIGTERM])?;
    log::debug!("worker {consumer} on {}", config.backend());
    worker.run(stop)?;
    Ok(())
}

/// `host-pid`: unique per process, so a restarted worker's old entries are
/// reclaimed by lease rather than mistaken for its own.
fn default_consumer() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{host}-{}", std::process::id())
}
