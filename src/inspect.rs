//! One event's whole story, read once for `events inspect` and the
//! dashboard's event page: the event (while the history holds it), and per
//! destination where its delivery stands and every attempt made.

use std::collections::BTreeSet;

use crate::event::Event;
use crate::queue::attempt::DestState;
use crate::queue::hold::{self, Hold};
use crate::queue::{AttemptRecord, Queue, Result};
use crate::route::Routes;

/// What is known of one event.
pub struct Story {
    /// The event; `None` once trimmed from the history or erased.
    pub event: Option<Event>,
    pub dests: Vec<DestReport>,
}

impl Story {
    /// Whether nothing at all is known of the event.
    pub fn is_unknown(&self) -> bool {
        self.event.is_none() && self.dests.iter().all(|d| d.attempts.is_empty())
    }
}

/// One destination's part of the story.
pub struct DestReport {
    pub name: String,
    pub state: DestState,
    /// Its attempts, oldest first.
    pub attempts: Vec<AttemptRecord>,
    /// The hold its delivery waits for, when it waits for one.
    pub held: Option<Hold>,
}

/// Reads the story of `id`: every destination that has attempts, that
/// `routes` sends the event to, or that `routes` configures (`None` when
/// the routing cannot be told: no destination is then shown as routed).
pub fn story(queue: &mut dyn Queue, routes: Option<&Routes>, id: &str) -> Result<Story> {
    let records = queue.attempts(id)?;
    let hint = records.iter().find_map(|r| r.entry.as_deref());
    let event = queue.event(id, hint)?;
    let routed: Vec<String> = match (&event, routes) {
        (Some(event), Some(routes)) => routes.of(event).map(|r| r.name().to_owned()).collect(),
        _ => Vec::new(),
    };
    let mut names: BTreeSet<String> = records.iter().map(|r| r.dest.clone()).collect();
    names.extend(routed.iter().cloned());
    if let Some(routes) = routes {
        names.extend(routes.iter().map(|r| r.name().to_owned()));
    }
    let mut holds = hold::in_force(queue.holds()?, crate::event::now_ms());
    let mut dests = Vec::new();
    for name in names {
        let attempts: Vec<AttemptRecord> =
            records.iter().filter(|r| r.dest == name).cloned().collect();
        let due = queue.retry_due(&format!("{id}|{name}"))?;
        let state = DestState::of(
            &attempts.iter().collect::<Vec<_>>(),
            due,
            routed.contains(&name),
        );
        let waits = matches!(state, DestState::Retrying(Some(_)) | DestState::Waiting);
        let held = holds
            .remove(&name)
            .filter(|_| waits)
            .and_then(|h| h.into_iter().next());
        dests.push(DestReport {
            name,
            state,
            attempts,
            held,
        });
    }
    Ok(Story { event, dests })
}
