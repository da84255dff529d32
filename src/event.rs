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

    /// A UUID derived from the id alone, for receivers whose dedupe key must
    /// be a UUID (PostHog's `uuid`, Mixpanel's `$insert_id`): every retry and
    /// replay carries the same one. Python computes it as
    /// `uuid.uuid5(uuid.NAMESPACE_URL, "events:" + id)`.
    pub fn dedupe_uuid(&self) -> String {
        uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("events:{}", self.id).as_bytes(),
        )
        .to_string()
    }
}

/// Longest an event id or type may be, in bytes.
pub const MAX_TOKEN_BYTES: usize = 128;

/// An event id or type that cannot be carried safely: it travels in log lines, HTTP
/// headers (`webhook-id`) and receivers' dedup keys, so it must be one printable word.
/// The message never holds the offending character itself, only its escape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadToken {
    #[error("'{field}' is empty")]
    Empty { field: &'static str },
    #[error("'{field}' is {len} bytes long; at most {MAX_TOKEN_BYTES} are allowed")]
    TooLong { field: &'static str, len: usize },
    #[error("'{field}' has '{shown}' at byte {at}; only printable ASCII without spaces is allowed")]
    BadChar {
        field: &'static str,
        shown: String,
        at: usize,
    },
}

/// Checks that `text`, the event's `field` (`"id"` or `"type"`), is 1 to 128 bytes of
/// printable ASCII without whitespace (0x21..=0x7E).
pub fn check_token(field: &'static str, text: &str) -> Result<(), BadToken> {
    if text.is_empty() {
        return Err(BadToken::Empty { field });
    }
    if let Some((at, c)) = text.char_indices().find(|(_, c)| !matches!(c, '!'..='~')) {
        let shown = if crate::sanitize::is_unsafe(c) || c == ' ' {
            c.escape_unicode().to_string()
        } else {
            c.to_string()
        };
        return Err(BadToken::BadChar { field, shown, at });
    }
    if text.len() > MAX_TOKEN_BYTES {
        return Err(BadToken::TooLong {
            field,
            len: text.len(),
        });
    }
    Ok(())
}

impl Event {
    /// Checks the event's id and type with [`check_token`]: every producer
    /// (the library, `emit --stdin`) and every decoder of a stored entry
    /// applies this one rule, so they agree on what is acceptable.
    pub fn check_tokens(&self) -> Result<(), BadToken> {
        check_token("id", &self.id)?;
        check_token("type", &self.kind)
    }
}

/// Why an [`EventLine`] does not make an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadEvent {
    #[error("'ts' is not an RFC 3339 time: {0:?}")]
    Ts(String),
    #[error(transparent)]
    Token(#[from] BadToken),
}

impl EventLine {
    /// Completes the line into an event: a missing id or ts is assigned now;
    /// a given ts must be RFC 3339 and is normalised to UTC milliseconds.
    pub fn into_event(self) -> Result<Event, BadEvent> {
        let ts = match self.ts {
            Some(text) => match parse_ts(&text) {
                Some(at) => format_ts(at),
                None => return Err(BadEvent::Ts(text)),
            },
            None => format_ts(Utc::now()),
        };
        let id = match self.id {
            Some(id) => id,
            None => next_id(std::time::SystemTime::now()),
        };
        let event = Event {
            id,
            kind: self.kind,
            ts,
            payload: self.payload,
        };
        event.check_tokens()?;
        Ok(event)
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
    fn the_dedupe_uuid_is_pythons_uuid5_of_the_id() {
        let event = Event {
            id: "01JDX3M7Q7G5N8W4K2B9C1T6ZR".into(),
            kind: "user.signup".into(),
            ts: "2026-11-27T09:00:00.123Z".into(),
            payload: Payload::new(),
        };
        // uuid.uuid5(uuid.NAMESPACE_URL, "events:01JDX3M7Q7G5N8W4K2B9C1T6ZR")
        assert_eq!(event.dedupe_uuid(), "7ae46f92-d630-5e90-9eb7-d4666131cec5");
    }

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
        let err = line.into_event().unwrap_err();
        assert_eq!(err, BadEvent::Ts("yesterday".into()));
        assert_eq!(
            err.to_string(),
            r#"'ts' is not an RFC 3339 time: "yesterday""#
        );
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
    fn ids_and_types_must_be_one_printable_word() {
        assert_eq!(check_token("id", "01JDX3M7Q7G5N8W4K2B9C1T6ZR"), Ok(()));
        assert_eq!(check_token("id", &"x".repeat(128)), Ok(()));
        assert_eq!(check_token("type", "user.signup"), Ok(()));
        let cases = [
            ("", "'id' is empty"),
            (
                "abc\ndelivered FORGED",
                "'id' has '\\u{a}' at byte 3; only printable ASCII without spaces is allowed",
            ),
            (
                "a b",
                "'id' has '\\u{20}' at byte 1; only printable ASCII without spaces is allowed",
            ),
            (
                "\u{1b}[2K",
                "'id' has '\\u{1b}' at byte 0; only printable ASCII without spaces is allowed",
            ),
            (
                "idé",
                "'id' has 'é' at byte 2; only printable ASCII without spaces is allowed",
            ),
            (
                "\u{7f}",
                "'id' has '\\u{7f}' at byte 0; only printable ASCII without spaces is allowed",
            ),
        ];
        for (id, message) in cases {
            assert_eq!(
                check_token("id", id).unwrap_err().to_string(),
                message,
                "{id:?}"
            );
        }
        assert_eq!(
            check_token("id", &"x".repeat(129)).unwrap_err().to_string(),
            "'id' is 129 bytes long; at most 128 are allowed"
        );
        let line: EventLine =
            serde_json::from_str(r#"{"id":"a\rb","type":"user.signup","payload":{}}"#).unwrap();
        assert!(
            line.into_event()
                .unwrap_err()
                .to_string()
                .starts_with("'id' has '\\u{d}'")
        );
        let line: EventLine =
            serde_json::from_str(r#"{"type":"user.\u001b[2Ksignup","payload":{}}"#).unwrap();
        assert!(
            line.into_event()
                .unwrap_err()
                .to_string()
                .starts_with("'type' has '\\u{1b}' at byte 5")
        );
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
