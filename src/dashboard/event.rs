//! `GET /events/{id}`: one event's payload and every attempt to deliver it,
//! per destination, as `events inspect` shows them.

use maud::html;
use serde_json::Value;

use super::Dashboard;
use super::layout::{self, View, text};
use crate::http_server::Answer;
use crate::inspect::story;
use crate::queue::QueueError;
use crate::queue::attempt::DestState;

pub fn page(dashboard: &Dashboard, view: &View, id: &str) -> Result<Answer, QueueError> {
    let routes = dashboard.setup.routes().ok();
    let story = dashboard.with_queue(|q| story(q, routes.as_ref(), id))?;
    if story.is_unknown() {
        return Ok(layout::not_found(
            view,
            "no event with this id in the history, nor any attempt to deliver one",
        ));
    }
    let body = html! {
        h1 { "Event " code { (text(id)) } }
        @match &story.event {
            Some(event) => {
                dl.facts {
                    div { dt { "Type" } dd { (text(&event.kind)) } }
                    div { dt { "Time" } dd { (text(&event.ts)) } }
                }
                h2 { "Payload" }
                pre.payload { (payload(&event.payload)) }
            }
            None => p.notice { "No longer in the history (trimmed or erased): only its attempts are known." },
        }
        h2 { "Deliveries" }
        section data-live="deliveries" { @for dest in &story.dests {
            @let state = dest.state.as_str();
            h3 { (text(&dest.name)) " " span class={ "state " (state_class(dest.state)) } { (state) }
                @if let DestState::Retrying(Some(due)) = dest.state { " " small { "next due " (layout::time(due)) } }
            }
            @if dest.attempts.is_empty() { p.empty { "No attempt yet." } } @else {
                table.attempts {
                    thead { tr { th { "At" } th { "Outcome" } th.num { "HTTP" } th.num { "ms" } th { "Error" } } }
                    tbody { @for a in &dest.attempts { tr {
                        td.time { (layout::time(a.at_ms)) }
                        td { (a.outcome.as_str()) }
                        td.num { @if let Some(s) = a.status { (s) } }
                        td.num { (a.duration_ms) }
                        td.error { @if let Some(e) = &a.error { (text(e)) } }
                    } } }
                }
            }
        } }
    };
    Ok(layout::page(view, "Event", body))
}

/// The payload as indented JSON, each line made safe to show.
fn payload(payload: &serde_json::Map<String, Value>) -> String {
    let pretty = serde_json::to_string_pretty(payload).unwrap_or_default();
    pretty.lines().map(text).collect::<Vec<_>>().join("\n")
}

fn state_class(state: DestState) -> &'static str {
    match state {
        DestState::Delivered => "good",
        DestState::Dead => "bad",
        DestState::Retrying(_) => "warn",
        DestState::Waiting | DestState::NotRouted => "",
    }
}
