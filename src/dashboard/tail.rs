//! `GET /tail`: the newest events, newest first; the live refresh shows new
//! ones as they arrive. Read by position without the consumer group, as
//! `events tail` does, so workers lose nothing to it; and bounded: the
//! newest events are found by reading forward from ever shorter windows
//! back in time until one reaches the end within [`READS`] reads.

use std::time::Duration;

use maud::html;

use super::Dashboard;
use super::layout::{self, View, text};
use super::request::segment;
use crate::event::{Event, now_ms};
use crate::http_server::Answer;
use crate::queue::{Queue, QueueError, entry};
use crate::sanitize;
use crate::template::Style;

/// Events shown.
const SHOWN: usize = 50;
/// Entries read at a time.
const PAGE: usize = 200;
/// The most reads one window may take to reach the newest entry.
const READS: usize = 5;
/// How far back the windows start, longest first.
const WINDOWS: [Duration; 4] = [
    Duration::from_secs(3600),
    Duration::from_secs(300),
    Duration::from_secs(30),
    Duration::from_secs(5),
];

pub fn page(dashboard: &Dashboard, view: &View) -> Result<Answer, QueueError> {
    let events = dashboard.with_queue(newest)?;
    let catalog = &dashboard.setup.catalog;
    let body = html! {
        h1 { "Tail" }
        p.hint { "The newest events of the last hour, newest first. " a href="/tail" { "Refresh" } }
        section data-live="tail" {
            @if events.is_empty() { p.empty { "No event in the last hour." } } @else {
                table.tail {
                    thead { tr { th { "Time" } th { "Type" } th { "Message" } th { "Event" } } }
                    tbody { @for event in &events { tr {
                        td.time { (text(&event.ts)) }
                        td { (text(&event.kind)) }
                        td.message { (catalog.render(event, Style::Plain).map_or(String::new(), |m| sanitize::one_line(&m).into_owned())) }
                        td.id { a href={ "/events/" (segment(&event.id)) } { (text(&event.id)) } }
                    } } }
                }
            }
        }
    };
    Ok(layout::page(view, "Tail", body))
}

/// Up to [`SHOWN`] of the newest events, newest first.
fn newest(queue: &mut dyn Queue) -> Result<Vec<Event>, QueueError> {
    let now = now_ms();
    for window in WINDOWS {
        let from = now - window.as_millis() as i64;
        if let Some(events) = read_to_end(queue, from)? {
            return Ok(events);
        }
    }
    Ok(Vec::new())
}

/// The last [`SHOWN`] events written since `from_ms`, newest first, or
/// `None` when more than [`READS`] reads would be needed.
fn read_to_end(queue: &mut dyn Queue, from_ms: i64) -> Result<Option<Vec<Event>>, QueueError> {
    let mut after = queue.follow_from(Some(from_ms))?;
    let mut kept: std::collections::VecDeque<Event> = Default::default();
    for _ in 0..READS {
        let entries = queue.follow(&after, PAGE, Duration::ZERO)?;
        let full = entries.len() == PAGE;
        if let Some(last) = entries.last() {
            after = last.key.clone();
        }
        for event in entries.iter().filter_map(|raw| entry::decode(raw).ok()) {
            if kept.len() == SHOWN {
                kept.pop_front();
            }
            kept.push_back(event);
        }
        if !full {
            return Ok(Some(kept.into_iter().rev().collect()));
        }
    }
    Ok(None)
}
