//! Dead-letter alerts: when deliveries die, the worker tells the team by
//! appending a built-in `events.dead_letters` event, routed like any other.
//! At most one per destination per window, shared by every worker through
//! the queue; never about an alert, so alerts cannot feed on themselves.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::event::{Event, Payload};
use crate::queue::DeadLetter;

/// The type of the event an alert is.
pub const ALERT_TYPE: &str = "events.dead_letters";

/// At most one alert per destination in this long unless
/// `EVENTS_ALERT_WINDOW` says otherwise; what dies meanwhile is counted into
/// the next.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// The longest error text an alert carries: enough to recognise a cause,
/// short enough for one chat line.
const ERROR_CHARS: usize = 200;

/// One destination's dead letters in one settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub dest: String,
    pub count: u64,
    /// The last error seen, as a sample of the cause.
    pub error: String,
}

/// The dead letters of `letters` worth an alert, per destination. A dead
/// alert raises none: no loops.
pub fn tally(letters: &[DeadLetter]) -> Vec<Tally> {
    let mut by_dest: BTreeMap<&str, Tally> = BTreeMap::new();
    for letter in letters {
        if letter.event.as_ref().is_ok_and(|e| e.kind == ALERT_TYPE) {
            continue;
        }
        let tally = by_dest.entry(&letter.dest).or_insert_with(|| Tally {
            dest: letter.dest.clone(),
            count: 0,
            error: String::new(),
        });
        tally.count += 1;
        tally.error.clone_from(&letter.error);
    }
    by_dest.into_values().collect()
}

/// The event announcing `count` dead deliveries to `dest`.
pub fn event(dest: &str, count: u64, error: &str) -> Event {
    let error: String = error.chars().take(ERROR_CHARS).collect();
    let payload: Payload = [
        ("dest".to_owned(), Value::from(dest)),
        ("count".to_owned(), Value::from(count)),
        ("error".to_owned(), Value::from(error)),
    ]
    .into_iter()
    .collect();
    Event::new(ALERT_TYPE, payload)
}

/// The destination an alert is about, if `event` is one: routing never
/// sends an alert there.
pub fn about(event: &Event) -> Option<&str> {
    (event.kind == ALERT_TYPE)
        .then(|| event.payload.get("dest")?.as_str())
        .flatten()
}

/// One destination's alert window as a queue keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// When the open window ends (ms since the epoch); none when never opened.
    pub until_ms: Option<i64>,
    /// Dead letters counted while it was open, not yet reported.
    pub between: u64,
}

/// Counts `count` dead letters into `window` at `now_ms`: the new window,
/// and how many to report now when this opens a new one (those counted in
/// between included); `None` while the window is still open.
pub fn count_into(
    window: Window,
    count: u64,
    now_ms: i64,
    length: Duration,
) -> (Window, Option<u64>) {
    match window.until_ms {
        Some(until) if now_ms < until => (
            Window {
                between: window.between + count,
                ..window
            },
            None,
        ),
        _ => (
            Window {
                until_ms: Some(now_ms + length.as_millis() as i64),
                between: 0,
            },
            Some(window.between + count),
        ),
    }
}

/// What `window` owes at `now_ms` when no new dead letter comes to carry
/// it: the count of a window that ended with dead letters counted in it,
/// reported now and opening a new window; `None` otherwise.
pub fn due(window: Window, now_ms: i64, length: Duration) -> (Window, Option<u64>) {
    match window.until_ms {
        Some(until) if now_ms >= until && window.between > 0 => (
            Window {
                until_ms: Some(now_ms + length.as_millis() as i64),
                between: 0,
            },
            Some(window.between),
        ),
        _ => (window, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(dest: &str, kind: &str, error: &str) -> DeadLetter {
        DeadLetter {
            event: Ok(Event::new(kind, Payload::new())),
            dest: dest.into(),
            attempts: 1,
            error: error.into(),
            at_ms: 0,
        }
    }

    #[test]
    fn tally_counts_per_destination_with_the_last_error_and_skips_dead_alerts() {
        let letters = [
            letter("segment", "user.signup", "HTTP 401 a"),
            letter("slack", ALERT_TYPE, "HTTP 404"),
            letter("segment", "user.signup", "HTTP 401 b"),
        ];
        assert_eq!(
            tally(&letters),
            [Tally {
                dest: "segment".into(),
                count: 2,
                error: "HTTP 401 b".into()
            }]
        );
    }

    #[test]
    fn an_alert_names_the_destination_it_is_about() {
        let alert = event("segment", 3, &"x".repeat(500));
        assert_eq!(about(&alert), Some("segment"));
        assert_eq!(alert.payload["error"].as_str().unwrap().len(), ERROR_CHARS);
        assert_eq!(about(&Event::new("user.signup", Payload::new())), None);
    }

    #[test]
    fn the_first_opens_a_window_later_ones_are_counted_into_the_next() {
        let minute = 60_000;
        let (w, now) = count_into(Window::default(), 2, 0, WINDOW);
        assert_eq!(now, Some(2), "the first is reported at once");
        let (w, now) = count_into(w, 3, minute, WINDOW);
        assert_eq!(now, None);
        let (w, now) = count_into(w, 4, 4 * minute, WINDOW);
        assert_eq!((now, w.between), (None, 7));
        let (w, now) = count_into(w, 1, 5 * minute, WINDOW);
        assert_eq!(now, Some(8), "what happened in between, and this one");
        assert_eq!(w.until_ms, Some(10 * minute));
    }

    #[test]
    fn a_window_that_ends_with_letters_counted_owes_them_once() {
        let minute = 60_000;
        let (w, _) = count_into(Window::default(), 1, 0, WINDOW);
        assert_eq!(due(w, 6 * minute, WINDOW), (w, None), "nothing counted");
        let (w, _) = count_into(w, 4, minute, WINDOW);
        assert_eq!(due(w, 4 * minute, WINDOW), (w, None), "still open");
        let (w, owed) = due(w, 5 * minute, WINDOW);
        assert_eq!(owed, Some(4));
        assert_eq!(w.until_ms, Some(10 * minute), "reporting opens a window");
        assert_eq!(due(w, 11 * minute, WINDOW).1, None, "owed once");
    }
}
