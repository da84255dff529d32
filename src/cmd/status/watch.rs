//! `events status --watch`: the status refreshed every second, for the
//! on-call engineer watching a backlog drain after an outage. It adds what
//! one reading cannot say: deliveries per second per destination, from the
//! difference between two readings of the queue's running totals, so it
//! counts every worker's deliveries, wherever they run.
//!
//! A queue that stops answering is shown as such and watched until it comes
//! back: the view is most needed exactly when something is down.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use libc::{SIGINT, SIGTERM};
use serde_json::json;

use super::{Status, read_held};
use crate::cli::Format;
use crate::cmd::print;
use crate::event::{format_ts_ms, now_ms};
use crate::queue::{Queue, Tally};
use crate::sanitize::escape;
use crate::setup::Setup;
use crate::worker::Stop;

/// How often the view is refreshed.
const EVERY: Duration = Duration::from_secs(1);
/// Moves the cursor home: the next frame is drawn over the last one.
const HOME: &str = "\x1b[H";
/// Erases the rest of a line, or (at the end) everything below the frame:
/// what the last frame had there and this one does not. Drawing over
/// rather than clearing first keeps the view from flickering.
const ERASE_LINE: &str = "\x1b[K";
const ERASE_BELOW: &str = "\x1b[J";

/// Refreshes until SIGINT or SIGTERM, then exits 0.
pub fn run(queue: &mut dyn Queue, config: &Setup, format: Format) -> anyhow::Result<()> {
    let stop = Stop::default();
    stop.on_signals(&[SIGINT, SIGTERM])
        .context("cannot listen for signals")?;
    let terminal = std::io::stdout().is_terminal();
    let mut previous: Option<(Instant, BTreeMap<String, Tally>)> = None;
    while !stop.requested() {
        let started = Instant::now();
        let read = read_held(queue).and_then(|held| Ok((queue.stats()?, held)));
        let frame = match read {
            Ok((stats, held)) => {
                let rates = previous
                    .as_ref()
                    .map(|(at, before)| per_second(before, &stats.tallies, started - *at));
                previous = Some((started, stats.tallies.clone()));
                let status = Status::new(stats, queue.describe(), config, rates).with_held(held);
                match format {
                    Format::Json => format!("{}\n", status.json()),
                    Format::Table => status.table(),
                }
            }
            Err(e) => unreachable_frame(&queue.describe(), &e.to_string(), format),
        };
        let frame = match format {
            Format::Json => frame,
            Format::Table => {
                let frame = format!(
                    "{frame}\nEvery {}s, at {}. Ctrl-C to stop.\n",
                    EVERY.as_secs(),
                    format_ts_ms(now_ms())
                );
                if terminal { in_place(&frame) } else { frame }
            }
        };
        print(&frame)?;
        stop.wait_until(started + EVERY);
    }
    Ok(())
}

/// Deliveries a second per destination between two readings `elapsed`
/// apart. A total that went down (the queue was emptied and started again)
/// counts as nothing rather than as a negative rate.
fn per_second(
    before: &BTreeMap<String, Tally>,
    now: &BTreeMap<String, Tally>,
    elapsed: Duration,
) -> BTreeMap<String, f64> {
    let secs = elapsed.as_secs_f64().max(0.001);
    now.iter()
        .map(|(dest, tally)| {
            let was = before.get(dest).map_or(0, |t| t.delivered);
            (
                dest.clone(),
                tally.delivered.saturating_sub(was) as f64 / secs,
            )
        })
        .collect()
}

/// `frame` drawn over the last one on a terminal.
fn in_place(frame: &str) -> String {
    let mut out = String::from(HOME);
    for line in frame.lines() {
        out.push_str(line);
        out.push_str(ERASE_LINE);
        out.push('\n');
    }
    out.push_str(ERASE_BELOW);
    out
}

/// What a refresh shows while the queue does not answer.
fn unreachable_frame(location: &str, error: &str, format: Format) -> String {
    match format {
        Format::Json => format!(
            "{}\n",
            json!({"backend": {"where": location}, "error": error})
        ),
        Format::Table => format!(
            "Queue: {}\n\nThe queue does not answer: {}\nStill watching: this view recovers when it does.\n",
            escape(location),
            escape(error)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_on_a_terminal_is_drawn_over_the_last_leaving_nothing_of_it() {
        assert_eq!(
            in_place("Queue: x\n\nStream: empty\n"),
            "\x1b[HQueue: x\x1b[K\n\x1b[K\nStream: empty\x1b[K\n\x1b[J"
        );
    }

    #[test]
    fn rates_are_the_deliveries_between_two_readings_over_the_time_between() {
        let tally = |delivered| Tally {
            delivered,
            rate_limited: 0,
        };
        let before = BTreeMap::from([
            ("slack".to_owned(), tally(10)),
            ("gone".to_owned(), tally(5)),
        ]);
        let now = BTreeMap::from([
            ("slack".to_owned(), tally(40)),
            ("new".to_owned(), tally(4)),
            ("gone".to_owned(), tally(0)),
        ]);
        let rates = per_second(&before, &now, Duration::from_secs(2));
        assert_eq!(rates["slack"], 15.0);
        assert_eq!(rates["new"], 2.0);
        assert_eq!(rates["gone"], 0.0);
    }
}
