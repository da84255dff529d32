//! Dead-letter alerts: when deliveries die, the worker tells the team by
//! appending a built-in `events.dead_letters` event, routed like any other.
//! At most one per destination per window, shared by every worker through
//! the queue; never about an alert, so alerts cannot feed on themselves.
//!
//! A destination whose breaker opens (see [`crate::breaker`]) is announced
//! the same way, by one `events.destination_down` event per opening.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::event::{Event, Payload};
use crate::queue::DeadLetter;
pub use crate::queue::window::{Tally, Window, count_into, due};

/// The type of the event an alert is.
pub const ALERT_TYPE: &str = "events.dead_letters";

/// The type of the alert raised when a destination's breaker opens.
pub const DOWN_TYPE: &str = "events.destination_down";

/// Whether `event_type` is one of the worker's own alerts.
pub fn is_alert(event_type: &str) -> bool {
    event_type == ALERT_TYPE || event_type == DOWN_TYPE
}

/// At most one alert per destination in this long unless
/// `EVENTS_ALERT_WINDOW` says otherwise; what dies meanwhile is counted into
/// the next.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// The longest error text an alert carries: enough to recognise a cause,
/// short enough for one chat line.
const ERROR_CHARS: usize = 200;

/// The dead letters of `letters` worth an alert, per destination. A dead
/// alert raises none: no loops.
pub fn tally(letters: &[DeadLetter]) -> Vec<Tally> {
    let mut by_dest: BTreeMap<&str, Tally> = BTreeMap::new();
    for letter in letters {
        if letter.event.as_ref().is_ok_and(|e| is_alert(&e.kind)) {
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

/// The event announcing that `dest`'s breaker opened at `since_ms` after
/// failing with `error`.
pub fn down(dest: &str, error: &str, since_ms: i64) -> Event {
    let error: String = error.chars().take(ERROR_CHARS).collect();
    let payload: Payload = [
        ("dest".to_owned(), Value::from(dest)),
        ("error".to_owned(), Value::from(error)),
        (
            "since".to_owned(),
            Value::from(crate::event::format_ts_ms(since_ms)),
        ),
    ]
    .into_iter()
    .collect();
    Event::new(DOWN_TYPE, payload)
}

/// The destination an alert is about, if `event` is one: routing never
/// sends an alert there.
pub fn about(event: &Event) -> Option<&str> {
    is_alert(&event.kind)
        .then(|| event.payload.get("dest")?.as_str())
        .flatten()
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
        assert_eq!(about(&down("webhook", "HTTP 503", 0)), Some("webhook"));
    }
}
