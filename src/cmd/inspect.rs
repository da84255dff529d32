//! `events inspect ID`: one event's whole story, for a teammate asking "did
//! the churn for ada@ reach Segment?": the event, then per destination where
//! its delivery stands and every attempt made. Read-only. Everything in it
//! came from outside (payloads, ids, receivers' error texts), so every text
//! is escaped before it reaches the terminal.
//!
//! `--format json` prints one object: `event` (the event, or null once
//! trimmed from the history) and `destinations`: `[{"name", "state",
//! "next_due", "attempts": [{"at", "outcome", "status", "error",
//! "duration_ms"}]}]`, `state` one of `delivered`, `retrying`, `held`,
//! `dead`, `waiting`, `not routed`, and `next_due` RFC 3339 or null. A
//! delivery waiting for a held (paused) destination is `held`, with
//! `held`: `{"why", "since", "until"}` (null otherwise).

use serde_json::{Value, json};

use super::{Context, print};
use crate::cli::{Format, InspectArgs};
use crate::event::{Event, format_ts_ms};
use crate::inspect::{DestReport, story};
use crate::queue::attempt::DestState;

use crate::sanitize::escape;

/// An id no event, retry or attempt record carries.
#[derive(Debug, thiserror::Error)]
#[error(
    "no event with id {0} in the history, nor any attempt to deliver one \
     (it may be older than EVENTS_RETENTION, or erased by forget)"
)]
pub struct UnknownEvent(String);

pub fn run(ctx: &Context, args: InspectArgs) -> anyhow::Result<()> {
    let config = ctx.setup()?;
    let mut queue = config.open_queue()?;
    let routes = match config.routes() {
        Ok(routes) => Some(routes),
        Err(e) => {
            log::warn!("cannot tell where events go now, so none is shown as routed: {e}");
            None
        }
    };
    let story = story(queue.as_mut(), routes.as_ref(), &args.id)?;
    if story.is_unknown() {
        return Err(UnknownEvent(escape(&args.id).into_owned()).into());
    }
    print(&match args.format {
        Format::Json => format!(
            "{}\n",
            json_line(&as_json(story.event.as_ref(), &story.dests))
        ),
        Format::Table => as_text(&args.id, story.event.as_ref(), &story.dests),
    })
}

fn as_text(id: &str, event: Option<&Event>, dests: &[DestReport]) -> String {
    let mut out = match event {
        Some(event) => format!(
            "event {} {} at {}\npayload {}\n",
            escape(&event.id),
            escape(&event.kind),
            escape(&event.ts),
            escape(&Value::Object(event.payload.clone()).to_string())
        ),
        None => format!("event {} (no longer in the history)\n", escape(id)),
    };
    for dest in dests {
        let due = match dest.state {
            DestState::Retrying(Some(due)) => format!(", next due {}", format_ts_ms(due)),
            _ => String::new(),
        };
        let line = match &dest.held {
            Some(hold) => format!(
                "held ({} since {}): waiting, no attempt spent",
                hold.why(),
                format_ts_ms(hold.since_ms)
            ),
            None => format!("{}{due}", dest.state.as_str()),
        };
        out.push_str(&format!("\n{}: {}\n", escape(&dest.name), escape(&line)));
        for attempt in &dest.attempts {
            let status = attempt
                .status
                .map_or(String::new(), |s| format!(" HTTP {s}"));
            let error = attempt
                .error
                .as_deref()
                .map_or(String::new(), |e| format!(": {}", escape(e)));
            out.push_str(&format!(
                "  {} {}{status} ({} ms){error}\n",
                format_ts_ms(attempt.at_ms),
                attempt.outcome.as_str(),
                attempt.duration_ms
            ));
        }
    }
    out
}

/// `value` as one line of JSON with the characters that could drive a
/// terminal escaped too (JSON escapes only the control characters; line
/// separators and bidi overrides would pass as they are).
fn json_line(value: &Value) -> String {
    value
        .to_string()
        .chars()
        .map(|c| {
            if crate::sanitize::is_unsafe(c) {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// As JSON: strings as sent, for tools.
fn as_json(event: Option<&Event>, dests: &[DestReport]) -> Value {
    let destinations: Vec<Value> = dests
        .iter()
        .map(|dest| {
            let next_due = match dest.state {
                DestState::Retrying(Some(due)) => Value::from(format_ts_ms(due)),
                _ => Value::Null,
            };
            let attempts: Vec<Value> = dest
                .attempts
                .iter()
                .map(|a| {
                    json!({
                        "at": format_ts_ms(a.at_ms),
                        "outcome": a.outcome.as_str(),
                        "status": a.status,
                        "error": a.error,
                        "duration_ms": a.duration_ms,
                    })
                })
                .collect();
            let held = dest.held.as_ref().map(|hold| {
                json!({
                    "why": hold.why(),
                    "since": format_ts_ms(hold.since_ms),
                    "until": hold.until_ms.map(format_ts_ms),
                })
            });
            let state = match held {
                Some(_) => "held",
                None => dest.state.as_str(),
            };
            json!({
                "name": dest.name,
                "state": state,
                "next_due": next_due,
                "held": held,
                "attempts": attempts,
            })
        })
        .collect();
    json!({ "event": event, "destinations": destinations })
}
