//! `GET /`: the overview, what `status` shows: where the queue lives, the
//! backlog, and per destination its limit, deliveries a second, totals,
//! dead letters and latest error. Read from the queue's counters and one
//! bounded read of the newest dead letters, never from every letter.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use maud::{Markup, html};

use super::Dashboard;
use super::layout::{self, View, text};
use super::request::{Target, link, segment};
use crate::event::now_ms;
use crate::http_server::Answer;
use crate::queue::hold::{self, Hold, HoldKind};
use crate::queue::{QueueError, Stats, StoredDeadLetter, Tally};

/// The newest dead letters read for each destination's latest error.
const NEWEST: usize = 200;
/// A destination with a dead letter this recent is shown failing.
const FAILING_WITHIN: Duration = Duration::from_secs(15 * 60);

/// A destination held now: why (a pause, its breaker, or both), until
/// when, and how many deliveries wait.
struct Held {
    holds: Vec<Hold>,
    waiting: u64,
}

impl Held {
    fn paused(&self) -> bool {
        self.holds.iter().any(|h| h.kind() == HoldKind::Pause)
    }
}

pub fn page(dashboard: &Dashboard, view: &View, target: &Target) -> Result<Answer, QueueError> {
    let (stats, location, newest, held) = dashboard.with_queue(|q| {
        let held = hold::in_force(q.holds()?, now_ms())
            .into_iter()
            .map(|(dest, holds)| {
                Ok((
                    dest.clone(),
                    Held {
                        holds,
                        waiting: q.waiting(&dest)?,
                    },
                ))
            })
            .collect::<Result<BTreeMap<_, _>, QueueError>>()?;
        Ok((q.stats()?, q.describe(), q.dead_before(None, NEWEST)?, held))
    })?;
    let rates = dashboard.rates(&stats.tallies);
    let pending: u64 = stats.consumers.iter().map(|c| c.pending).sum();
    let dead_total: u64 = stats.dead.iter().map(|(_, _, n)| n).sum();
    let body = html! {
        h1 { "Overview" }
        (notice(target))
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
            (destinations(dashboard, view, &Shown { stats: &stats, newest: &newest, held: &held, rates: rates.as_ref() }))
        }
    };
    Ok(layout::page(view, "Overview", body))
}

/// What the overview pause or resume came back from did.
fn notice(target: &Target) -> Markup {
    let named = |what| Some(target.get(what)).filter(|n| !n.is_empty());
    html! {
        @if let Some(name) = named("paused") { p.notice.good { "Paused " (text(name)) ": workers stop sending to it within a second." } }
        @if let Some(name) = named("resumed") { p.notice.good { "Resumed " (text(name)) ": workers send what waited within a second." } }
    }
}

/// What the destinations' table is read from.
struct Shown<'a> {
    stats: &'a Stats,
    newest: &'a [StoredDeadLetter],
    held: &'a BTreeMap<String, Held>,
    rates: Option<&'a BTreeMap<String, f64>>,
}

fn destinations(dashboard: &Dashboard, view: &View, shown: &Shown<'_>) -> Markup {
    let Shown {
        stats,
        newest,
        held,
        rates,
    } = shown;
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
                @if view.csrf.is_some() { th { "Action" } }
            } }
            tbody { @for dest in dests {
                @let name = dest.name.as_str();
                @let latest = newest.iter().find(|l| l.letter.dest == name);
                @let dead: u64 = stats.dead.iter().filter(|(d, _, _)| d == name).map(|(_, _, n)| n).sum();
                @let failing = latest.is_some_and(|l| now - l.letter.at_ms < FAILING_WITHIN.as_millis() as i64);
                tr data-destination=(name) {
                    td { (text(name)) }
                    td { (dest.kind().name()) }
                    (state(held.get(name), failing))
                    td.num { (dest.rate_limit().map_or("unlimited".to_owned(), |r| r.to_string())) }
                    td.num { (rates.and_then(|r| r.get(name)).map_or("–".to_owned(), |r| format!("{r:.1}"))) }
                    td.num { (stats.tallies.get(name).map_or(0, |t| t.delivered)) }
                    td.num { @if dead > 0 { a href=(link("/dead", &[("dest", name)])) { (dead) } } @else { "0" } }
                    td.error { @if let Some(l) = latest {
                        (text(&l.letter.error)) " " small { "(" (layout::time(l.letter.at_ms)) ")" }
                    } }
                    @if let Some(csrf) = &view.csrf { td { (hold_form(name, held.get(name).is_some_and(Held::paused), csrf)) } }
                }
            } }
        }
    }
}

/// A destination's state: paused (by whom, until when) or its breaker open
/// or probing (why), with how many deliveries wait; else failing or ok.
fn state(held: Option<&Held>, failing: bool) -> Markup {
    html! { td {
        @if let Some(held) = held {
            @for hold in &held.holds {
                @match hold.breaker() {
                    Some(breaker) => { span.state.bad { "breaker " (breaker.state_name()) } " " }
                    None => { span.state.warn { "paused" } " " }
                }
            }
            small.held {
                (held.waiting) " waiting"
                @for hold in &held.holds {
                    " · " (text(&hold.why()))
                    @if let Some(until) = hold.until_ms { " · until " (layout::time(until)) }
                }
            }
        } @else if failing { span.state.bad { "failing" } } @else { span.state.good { "ok" } }
    } }
}

/// The pause or resume button of a destination.
fn hold_form(name: &str, paused: bool, csrf: &str) -> Markup {
    let (action, label) = if paused {
        ("resume", "Resume")
    } else {
        ("pause", "Pause")
    };
    html! {
        form.hold method="post" action={ "/destinations/" (segment(name)) "/" (action) } {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { (label) }
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
