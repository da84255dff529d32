//! The event itself: the one shape every producer writes, every queue stores
//! and every destination receives, plus the JSON Lines form used by
//! `emit --stdin`, `replay --file` and `--format json`.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The fields of an event, as a JSON object.
pub type Payload = serde_json::Map<String, Value>;

/// A product event. `id` is assigned once, at emit, and kept for the event's
/// whole life, so receivers can drop duplicates of a retried or replayed one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: String,
    pub payload: Payload,
}

/// One line of JSON Lines input: `id` and `ts` may be left to the emitter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLine {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: Option<String>,
    pub payload: Payload,
}

impl Event {
    /// A new event stamped now, with a fresh time-ordered id.
    pub fn new(kind: impl Into<String>, payload: Payload) -> Event {
        let now = Utc::now();
        Event {
            id: next_id(now.into()),
            kind: kind.into(),
            ts: format_ts(now),
            payload,
        }
    }

    /// The event as one line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("an event always serialises")
    }

    /// Milliseconds since the Unix epoch of `ts`, if it parses.
    pub fn ts_ms(&self) -> Option<i64> {
        parse_ts(&self.ts).map(|t| t.timestamp_millis())
    }

    /// The payload field as text, for destinations that need a user id.
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.payload.get(name).and_then(Value::as_str)
    }
}

impl EventLine {
    /// Completes the line into an event: a missing id or ts is assigned now;
    /// a given ts must be RFC 3339 and is normalised to UTC milliseconds.
    pub fn into_event(self) -> Result<Event, String> {
        let ts = match self.ts {
            Some(text) => format_ts(
                parse_ts(&text).ok_or_else(|| format!("'ts' is not an RFC 3339 time: {text:?}"))?,
            ),
            None => format_ts(Utc::now()),
        };
        let id = match self.id {
            Some(id) if id.trim().is_empty() => return Err("'id' is empty".into()),
            Some(id) => id,
            None => next_id(std::time::SystemTime::now()),
        };
        Ok(Event {
            id,
            kind: self.kind,
            ts,
            payload: self.payload,
        })
    }
}

/// A new ULID for `at`, strictly greater than any this process made before,
/// so events emitted in one millisecond keep their order.
fn next_id(at: std::time::SystemTime) -> String {
    static GENERATOR: std::sync::Mutex<ulid::Generator> =
        std::sync::Mutex::new(ulid::Generator::new());
    let mut generator = GENERATOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match generator.generate_from_datetime(at) {
        Ok(id) => id,
        // 2^80 ids in one millisecond: fall back to a fresh random one.
        Err(_) => ulid::Ulid::from_datetime(at),
    }
    .to_string()
}

/// RFC 3339, UTC, millisecond precision: `2026-11-27T09:00:00.123Z`.
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `format_ts` of a Unix time in milliseconds.
pub fn format_ts_ms(ms: i64) -> String {
    format_ts(Utc.timestamp_millis_opt(ms).single().unwrap_or_default())
}

/// Parses an RFC 3339 time into UTC.
pub fn parse_ts(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A deterministic id for an entry written without one (a plain `XADD`):
/// derived from the queue position, so every retry and replay of that entry
/// carries the same id.
pub fn derived_id(ms: u64, seq: u64) -> String {
    let random = (u128::from(seq) << 64) | u128::from(ms.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15);
    ulid::Ulid::from_parts(ms, random & ((1u128 << 80) - 1)).to_string()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_the_documented_field_order() {
        let mut payload = Payload::new();
        payload.insert("email".into(), "ada@example.com".into());
        let event = Event {
            id: "01JDX3M7Q7G5N8W4K2B9C1T6ZR".into(),
            kind: "user.signup".into(),
            ts: "2026-11-27T09:00:00.123Z".into(),
            payload,
        };
        assert_eq!(
            event.to_json_line(),
            r#"{"id":"01JDX3M7Q7G5N8W4K2B9C1T6ZR","type":"user.signup","ts":"2026-11-27T09:00:00.123Z","payload":{"email":"ada@example.com"}}"#
        );
    }

    #[test]
    fn ts_is_normalised_to_utc_milliseconds() {
        let line: EventLine = serde_json::from_str(
            r#"{"type":"user.signup","ts":"2026-11-27T10:00:00+01:00","payload":{}}"#,
        )
        .unwrap();
        let event = line.into_event().unwrap();
        assert_eq!(event.ts, "2026-11-27T09:00:00.000Z");
        assert_eq!(event.id.len(), 26);
    }

    #[test]
    fn bad_ts_is_named() {
        let line: EventLine =
            serde_json::from_str(r#"{"type":"user.signup","ts":"yesterday","payload":{}}"#)
                .unwrap();
        assert!(line.into_event().unwrap_err().contains("yesterday"));
    }

    #[test]
    fn ids_made_in_one_process_are_strictly_increasing() {
        let ids: Vec<String> = (0..1000)
            .map(|_| Event::new("x", Payload::new()).id)
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_line_never_panics(line in "\\PC*") {
            if let Ok(parsed) = serde_json::from_str::<EventLine>(&line) {
                let _ = parsed.into_event();
            }
        }

        #[test]
        fn parsing_any_json_shaped_line_never_panics(
            kind in "[a-z.]{0,12}",
            ts in "\\PC{0,30}",
            id in "\\PC{0,30}",
        ) {
            let line = serde_json::json!({"id": id, "type": kind, "ts": ts, "payload": {}}).to_string();
            let parsed: EventLine = serde_json::from_str(&line).unwrap();
            let _ = parsed.into_event();
        }
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(
            derived_id(1_700_000_000_000, 0),
            derived_id(1_700_000_000_000, 0)
        );
        assert_ne!(
            derived_id(1_700_000_000_000, 0),
            derived_id(1_700_000_000_000, 1)
        );
        let id = ulid::Ulid::from_string(&derived_id(1_700_000_000_000, 3)).unwrap();
        assert_eq!(id.timestamp_ms(), 1_700_000_000_000);
    }
}
