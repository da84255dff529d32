//! The actions: `POST /dead/replay`, `POST /dead/purge` (the dead letters
//! the form's `dest`, `type` and `error` select, as `/dead` shows them) and
//! `POST /destinations/{name}/pause|resume`. Each needs the token (401
//! without), then the CSRF field (403 without or wrong), and answers 303
//! back to its page, saying what it did in the query.

use super::Dashboard;
use super::dead::Filter;
use super::layout;
use super::pause::{self, Refused};
use super::request::{self, link};
use crate::event::now_ms;
use crate::http_server::{Answer, Request};
use crate::queue::{Queue, QueueError};
use crate::replay::{Plan, Replay, ReplayError, Write};

/// Letters read at a time while replaying.
const CHUNK: usize = 1000;

pub fn act(dashboard: &Dashboard, request: &Request, path: &str) -> Answer {
    let action = match path {
        "/dead/replay" => Action::Replay,
        "/dead/purge" => Action::Purge,
        _ => match path
            .strip_prefix("/destinations/")
            .and_then(|rest| rest.rsplit_once('/'))
        {
            Some((name, "pause")) => Action::Pause(request::decode(name)),
            Some((name, "resume")) => Action::Resume(request::decode(name)),
            _ => return Answer::plain(404, "no such action\n"),
        },
    };
    let access = &dashboard.access;
    if !access.has_token() {
        return Answer::plain(
            401,
            "this dashboard is read-only: start it with EVENTS_DASHBOARD_TOKEN to act from it\n",
        );
    }
    if !access.authenticated(request) {
        return Answer::plain(401, "sign in first: send the dashboard token\n");
    }
    let form = request::pairs(&request.body);
    if !access.csrf_ok(request::get(&form, "csrf")) {
        return Answer::plain(
            403,
            "the form's csrf field is missing or wrong: reload the page and try again\n",
        );
    }
    let filter = Filter::from(|name| request::get(&form, name).to_owned());
    let done = match action {
        Action::Pause(name) => {
            let done = pause::pause(dashboard, &name, request::get(&form, "for"));
            return held(done, &name, "paused");
        }
        Action::Resume(name) => return held(pause::resume(dashboard, &name), &name, "resumed"),
        Action::Replay => replay(dashboard, &filter).map(|n| ("replayed", n)),
        Action::Purge => purge(dashboard, &filter).map(|n| ("purged", n)),
    };
    match done {
        Ok((what, count)) => {
            let count = count.to_string();
            layout::see_other(&link(
                "/dead",
                &[filter.params().as_slice(), &[(what, &count)]].concat(),
            ))
        }
        Err(e) => Answer::plain(500, format!("{}\n", layout::text(&e))),
    }
}

enum Action {
    Replay,
    Purge,
    Pause(String),
    Resume(String),
}

/// The answer to a pause or resume: back to the overview, saying which.
fn held(done: Result<(), Refused>, name: &str, what: &str) -> Answer {
    match done {
        Ok(()) => layout::see_other(&link("/", &[(what, name)])),
        Err(Refused::Unknown(why)) => Answer::plain(404, format!("{}\n", layout::text(&why))),
        Err(Refused::Duration(why)) => Answer::plain(400, format!("{}\n", layout::text(&why))),
        Err(Refused::Queue(e)) => Answer::plain(500, format!("{}\n", layout::text(&e.to_string()))),
    }
}

/// Removes the letters `filter` selects that were dead-lettered before
/// now: one dead-lettered while the form was sent was not seen, so stays.
fn purge(dashboard: &Dashboard, filter: &Filter) -> Result<u64, String> {
    let selected = filter.dead_filter(Some(now_ms()));
    dashboard
        .with_queue(|q| q.purge_dead(&selected))
        .map_err(|e| format!("the purge stopped part way: {e}"))
}

/// Replays the letters `filter` selects, as `replay --dead` does: each back
/// to the destination that failed, fresh attempts, due now. Reads the
/// letters a chunk at a time, newest first, so memory stays bounded.
fn replay(dashboard: &Dashboard, filter: &Filter) -> Result<u64, String> {
    let routes = dashboard.setup.routes().map_err(|e| e.to_string())?;
    let types: Vec<String> = Some(filter.kind.clone())
        .filter(|k| !k.is_empty())
        .into_iter()
        .collect();
    let plan = Plan::new(routes, None, &types, None).map_err(|e| e.to_string())?;
    let sink = Write {
        queue: dashboard.setup.open_queue().map_err(|e| e.to_string())?,
        due_ms: now_ms(),
    };
    let mut replay = Replay::new(&plan, sink);
    let selected = filter.dead_filter(None);
    let walked = dashboard.with_queue(|q| walk(q, &selected, &mut replay));
    let flushed = walked.and_then(|()| replay.flush().map_err(unwrap_queue));
    flushed.map_err(|e| format!("the replay stopped part way: {e}"))?;
    Ok(replay.scheduled().0)
}

/// Feeds every letter `selected` picks to `replay`.
fn walk(
    queue: &mut dyn Queue,
    selected: &crate::queue::DeadFilter,
    replay: &mut Replay<'_, Write>,
) -> Result<(), QueueError> {
    let mut cursor: Option<String> = None;
    loop {
        let chunk = queue.dead_before(cursor.as_deref(), CHUNK)?;
        let ended = chunk.len() < CHUNK;
        for stored in chunk {
            cursor = Some(stored.key.clone());
            if selected.matches(&stored.letter) {
                replay.letter(stored).map_err(unwrap_queue)?;
            }
        }
        if ended {
            return Ok(());
        }
    }
}

fn unwrap_queue(e: ReplayError) -> QueueError {
    match e {
        ReplayError::Queue(e) => e,
        other => QueueError::Backend(other.to_string()),
    }
}
