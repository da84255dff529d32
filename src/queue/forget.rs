//! Erasing one person (`events forget`): which stored events are theirs,
//! decided once here for both backends, and what an erasure removed, per
//! place. The backends find and remove; whether an event is the person's is
//! never decided twice.

use serde::Serialize;
use serde_json::Value;

use crate::event::Event;
use crate::queue::QueueError;

/// The person to erase: the payload fields and values that identify them
/// (`email=ada@example.com`). An event is theirs when its payload carries
/// any one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    fields: Vec<(String, String)>,
}

impl Person {
    /// `None` when no field is given: erasing "everyone" is not this.
    pub fn new(fields: Vec<(String, String)>) -> Option<Person> {
        (!fields.is_empty()).then_some(Person { fields })
    }

    /// Whether `event`'s payload carries one of the values at its top-level
    /// field: a string equal to it, or a number or boolean written as it.
    pub fn owns(&self, event: &Event) -> bool {
        self.fields
            .iter()
            .any(|(key, wanted)| match event.payload.get(key) {
                Some(Value::String(text)) => text == wanted,
                Some(value @ (Value::Number(_) | Value::Bool(_))) => {
                    wanted.parse::<Value>().is_ok_and(|w| w == *value)
                }
                _ => false,
            })
    }

    /// Whether text that is not an event (a poison entry kept as it was
    /// written) carries one of the values anywhere: such text cannot be
    /// read by field, and must not keep the value either.
    pub fn mentioned_in(&self, raw: &str) -> bool {
        self.fields
            .iter()
            .any(|(_, wanted)| !wanted.is_empty() && raw.contains(wanted.as_str()))
    }
}

/// What `forget` removed (or, with `--dry-run`, would remove), per place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// Events in the stream.
    pub history: u64,
    /// Deliveries waiting in the retry set (with their bodies).
    pub retries: u64,
    pub dead_letters: u64,
    pub attempts: u64,
    /// Idempotency keys that pointed at the erased events.
    pub idempotency_keys: u64,
}

impl Erased {
    pub fn add(&mut self, other: Erased) {
        self.history += other.history;
        self.retries += other.retries;
        self.dead_letters += other.dead_letters;
        self.attempts += other.attempts;
        self.idempotency_keys += other.idempotency_keys;
    }

    pub fn total(&self) -> u64 {
        self.history + self.retries + self.dead_letters + self.attempts + self.idempotency_keys
    }
}

/// `e`, which stopped an erasure, saying first what it had erased: nothing,
/// or (`some`) perhaps part of it.
pub(crate) fn stopped(e: QueueError, some: bool) -> QueueError {
    let said = if some {
        "forget stopped part way: run it again to erase the rest"
    } else {
        "nothing was erased"
    };
    match e {
        QueueError::Unavailable { reason, message } => QueueError::Unavailable {
            reason,
            message: format!("{said}: {message}"),
        },
        QueueError::NotWritable(message) => QueueError::NotWritable(format!("{said}: {message}")),
        QueueError::Auth(message) => QueueError::Auth(format!("{said}: {message}")),
        QueueError::Backend(message) => QueueError::Backend(format!("{said}: {message}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: Value) -> Event {
        Event::new("user.signup", payload.as_object().unwrap().clone())
    }

    #[test]
    fn an_event_is_theirs_when_any_field_carries_its_value_exactly() {
        let ada = Person::new(vec![
            ("email".into(), "ada@example.com".into()),
            ("user_id".into(), "42".into()),
        ])
        .unwrap();
        assert!(ada.owns(&event(serde_json::json!({"email": "ada@example.com"}))));
        assert!(ada.owns(&event(serde_json::json!({"user_id": 42}))));
        assert!(ada.owns(&event(serde_json::json!({"user_id": "42"}))));
        assert!(!ada.owns(&event(serde_json::json!({"email": "ADA@example.com"}))));
        assert!(!ada.owns(&event(serde_json::json!({"referrer": "ada@example.com"}))));
        assert!(!ada.owns(&event(serde_json::json!({"email": ["ada@example.com"]}))));
        assert!(ada.mentioned_in(r#"{"payload":"{\"email\":\"ada@example.com\""}"#));
        assert!(!ada.mentioned_in(r#"{"payload":"{\"email\":\"bob@example.com\""}"#));
        assert_eq!(Person::new(vec![]), None);
    }
}
