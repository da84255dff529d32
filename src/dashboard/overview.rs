//! `GET /`: the overview, what `status` shows: where the queue lives, the
//! backlog, and per destination its limit, deliveries a second, totals,
//! dead letters and latest error. Read from the queue's counters and one
//! bounded read of the newest dead letters, never from every letter.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use maud::html;

use super::Dashboard;
use super::layout::{self, View, text};
use super::request::link;
use crate::event::now_ms;
use crate::http_server::Answer;
use crate::queue::{QueueError, Stats, StoredDeadLetter, Tally};

/// The newest dead letters read for each destination's latest error.
const NEWEST: usize = 200;
/// A destination with a dead letter this recent is shown failing.
const FAILING_WITHIN: Duration = Duration::from_secs(15 * 60);

pub fn page(dashboard: &Dashboard, view: &View) -> Result<Answer, QueueError> {
    let (stats, location, newest) =
        dashboard.with_queue(|q| Ok((q.stats()?, q.describe(), q.dead_before(None, NEWEST)?)))?;
    let rates = dashboard.rates(&stats.tallies);
    let pending: u64 = stats.consumers.iter().map(|c| c.pending).sum();
    let dead_total: u64 = stats.dead.iter().map(|(_, _, n)| n).sum();
    let body = html! {
        h1 { "Overview" }
        p.where { "Queue: " (view.backend) " at " code { (text(&location)) } }
        section data-live="backlog" {
            h2 { "Backlog" }
            dl.backlog {
                div { dt { "Unread" } dd #unread { (stats.lag) } }
                div { dt { "Pending" } dd #pending { (pending) } }
                div { dt { "Retry" } dd #retry { (stats.retries) } }
                div class=(if dead_total > 0 { "bad" } else { "" }) {
                    dt { "Dead" } dd #dead { a href="/dead" { (dead_total) } }
                }
            }
        }
        section data-live="destinations" {
            h2 { "Destinations" }
            (destinations(dashboard, &stats, &newest, rates.as_ref()))
        }
    };
    Ok(layout::page(view, "Overview", body))
}

fn destinations(
    dashboard: &Dashboard,
    stats: &Stats,
    newest: &[StoredDeadLetter],
    rates: Option<&BTreeMap<String, f64>>,
) -> maud::Markup {
    let dests = match dashboard.setup.destinations() {
        Ok(dests) => dests,
        Err(e) => return html! { p.bad { (text(&e.to_string())) } },
    };
    let now = now_ms();
    html! {
        table.destinations {
            thead { tr {
                th { "Destination" } th { "Kind" } th { "State" } th.num { "Rate" }
                th.num { "Deliveries/s" } th.num { "Delivered" } th.num { "Dead" } th { "Latest error" }
            } }
            tbody { @for dest in dests {
                @let name = dest.name.as_str();
                @let latest = newest.iter().find(|l| l.letter.dest == name);
                @let dead: u64 = stats.dead.iter().filter(|(d, _, _)| d == name).map(|(_, _, n)| n).sum();
                @let failing = latest.is_some_and(|l| now - l.letter.at_ms < FAILING_WITHIN.as_millis() as i64);
                tr data-destination=(name) {
                    td { (text(name)) }
                    td { (dest.kind().name()) }
                    td { @if failing { span.state.bad { "failing" } } @else { span.state.good { "ok" } } }
                    td.num { (dest.rate_limit().map_or("unlimited".to_owned(), |r| r.to_string())) }
                    td.num { (rates.and_then(|r| r.get(name)).map_or("–".to_owned(), |r| format!("{r:.1}"))) }
                    td.num { (stats.tallies.get(name).map_or(0, |t| t.delivered)) }
                    td.num { @if dead > 0 { a href=(link("/dead", &[("dest", name)])) { (dead) } } @else { "0" } }
                    td.error { @if let Some(l) = latest {
                        (text(&l.letter.error)) " " small { "(" (layout::time(l.letter.at_ms)) ")" }
                    } }
                }
            } }
        }
    }
}

impl Dashboard {
    /// Deliveries a second per destination since the previous overview (of
    /// any viewer), from the queue's running totals; `None` on the first.
    fn rates(&self, tallies: &BTreeMap<String, Tally>) -> Option<BTreeMap<String, f64>> {
        let now = Instant::now();
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        let rates = previous.as_ref().map(|(at, before)| {
            let secs = now.duration_since(*at).as_secs_f64().max(0.001);
            tallies
                .iter()
                .map(|(dest, tally)| {
                    let was = before.get(dest).map_or(0, |t| t.delivered);
                    (
                        dest.clone(),
                        tally.delivered.saturating_sub(was) as f64 / secs,
                    )
                })
                .collect()
        });
        // Readings closer than a second are too noisy to be a baseline.
        if previous
            .as_ref()
            .is_none_or(|(at, _)| now.duration_since(*at) >= Duration::from_secs(1))
        {
            *previous = Some((now, tallies.clone()));
        }
        rates
    }
}
