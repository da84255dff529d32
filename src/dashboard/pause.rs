//! `POST /destinations/{name}/pause|resume`: what `events pause` and
//! `events resume` do, from the overview. A pause lasts until resumed, or
//! for the form's optional `for` field (`15m`, `2h`), as `pause --for`.

use super::Dashboard;
use crate::event::now_ms;
use crate::queue::{Hold, HoldKind, QueueError};

/// Why a pause or resume was not done.
pub enum Refused {
    /// No destination has that name (404).
    Unknown(String),
    /// The `for` field is not a duration (400).
    Duration(String),
    /// The queue failed (500).
    Queue(QueueError),
}

impl From<QueueError> for Refused {
    fn from(e: QueueError) -> Refused {
        Refused::Queue(e)
    }
}

/// Pauses `name` until resumed or for `duration` (empty: until resumed).
/// Pausing again keeps when the pause began and takes the new end.
pub fn pause(dashboard: &Dashboard, name: &str, duration: &str) -> Result<(), Refused> {
    let name = known(dashboard, "pause", name)?;
    let until = match duration.trim() {
        "" => None,
        text => {
            let d = humantime::parse_duration(text).map_err(|e| {
                Refused::Duration(format!("for: {e}: give a duration such as 15m or 2h"))
            })?;
            Some(now_ms().saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
        }
    };
    dashboard.with_queue(|q| {
        let now = now_ms();
        let previous = paused(q.holds()?, &name);
        let hold = Hold::paused(previous.as_ref(), &who(), now, until);
        q.put_hold(&name, &hold)
    })?;
    Ok(())
}

/// Lifts `name`'s pause (one that ended by itself is cleared too).
pub fn resume(dashboard: &Dashboard, name: &str) -> Result<(), Refused> {
    let name = known(dashboard, "resume", name)?;
    dashboard.with_queue(|q| q.remove_hold(&name, HoldKind::Pause))?;
    Ok(())
}

/// The configured destination's name, or why there is none.
fn known(dashboard: &Dashboard, action: &'static str, name: &str) -> Result<String, Refused> {
    let routes = dashboard
        .setup
        .routes()
        .map_err(|e| Refused::Queue(QueueError::Backend(e.to_string())))?;
    routes
        .lookup(action, name)
        .map(|route| route.name().to_owned())
        .map_err(|e| Refused::Unknown(e.to_string()))
}

fn paused(holds: Vec<(String, Hold)>, name: &str) -> Option<Hold> {
    holds
        .into_iter()
        .find(|(dest, hold)| dest == name && hold.kind() == HoldKind::Pause)
        .map(|(_, hold)| hold)
}

/// Who paused, as `status` shows it: the dashboard, its host and pid.
fn who() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("the dashboard on {host} pid {}", std::process::id())
}
