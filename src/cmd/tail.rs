//! `events tail`: watch events as they are written, for a teammate asking
//! "did that signup go in?". It follows the stream by position without the
//! consumer group ([`crate::queue::Admin::follow`]), so workers lose nothing
//! to it, and holds at most one page of events at a time: on a slow terminal
//! it waits on its own output rather than reading ahead.

use std::time::Duration;

use anyhow::Context as _;
use libc::{SIGINT, SIGTERM};
use wildmatch::WildMatch;

use super::{Context, print};
use crate::catalog::Catalog;
use crate::cli::{TailArgs, TailFormat};
use crate::error::Error;
use crate::event::{Event, now_ms};
use crate::queue::{QueueError, entry};
use crate::replay::parse_when;
use crate::sanitize;
use crate::template::Style;
use crate::worker::Stop;

/// Entries read and printed at a time: all `tail` ever holds.
const PAGE: usize = 100;
/// How long one read waits for new entries: a stop is noticed within it.
const BLOCK: Duration = Duration::from_millis(500);

pub fn run(ctx: &Context, args: TailArgs) -> anyhow::Result<()> {
    let from_ms = args
        .since
        .as_deref()
        .map(|when| parse_when("--since", when, now_ms()))
        .transpose()
        .map_err(Error::from)?;
    let types: Vec<WildMatch> = args.types.iter().map(|g| WildMatch::new(g)).collect();
    let config = ctx.setup()?;
    let stop = Stop::default();
    stop.on_signals(&[SIGINT, SIGTERM])
        .context("cannot listen for signals")?;
    let mut queue = config.open_queue()?;
    let mut after = queue.follow_from(from_ms)?;
    if !ctx.quiet {
        log::info!(
            "following the events written to {} (Ctrl-C to stop)",
            queue.describe()
        );
    }
    while !stop.requested() {
        let entries = match queue.follow(&after, PAGE, BLOCK) {
            Ok(entries) => entries,
            // A read cut short by the stop signal is the end, not a failure.
            Err(QueueError::Unavailable { .. }) if stop.requested() => break,
            Err(e) => return Err(e.into()),
        };
        let Some(last) = entries.last() else {
            continue;
        };
        after = last.key.clone();
        let mut out = String::new();
        // Poison is not an event: the worker dead-letters it, `status` counts it.
        for event in entries.iter().filter_map(|raw| entry::decode(raw).ok()) {
            if types.is_empty() || types.iter().any(|glob| glob.matches(&event.kind)) {
                out.push_str(&line(&event, args.format, &config.catalog));
                out.push('\n');
            }
        }
        print(&out)?;
    }
    Ok(())
}

/// One event as printed: its message (or, for a type the catalog cannot
/// render, its type and id), or its JSON line.
fn line(event: &Event, format: TailFormat, catalog: &Catalog) -> String {
    match format {
        TailFormat::Json => event.to_json_line(),
        TailFormat::Text => match catalog.render(event, Style::Plain) {
            Ok(message) => sanitize::one_line(&message).into_owned(),
            Err(_) => sanitize::one_line(&format!("{} {}", event.kind, event.id)).into_owned(),
        },
    }
}
