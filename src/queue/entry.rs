//! What a stored stream entry or retry is: an event, a delivery, or poison.
//! Decided here, once, for both backends: they only fetch what they hold
//! (a Redis entry's fields, a SQLite row's columns) and hand it over as a
//! [`RawEntry`], so the two can never disagree on what is poison, why, or
//! which id and `ts` an entry written without them gets.

use serde_json::{Map, Value};

use super::{DeadLetter, Delivery, Poison, StreamEntry, token_dest};
use crate::event::{BadEvent, Event, EventLine, derived_id, format_ts_ms, parse_ts};

/// A stream entry as stored, before anyone decides what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The backend's position of the entry (a Redis entry id, a SQLite row).
    pub key: String,
    /// When it was written, ms since the epoch: a Redis entry id's time, a
    /// SQLite row's write time. An entry written without `ts` has this one.
    pub written_ms: u64,
    /// Its place among entries written in that millisecond (a Redis entry
    /// id's sequence, a SQLite row number): with `written_ms`, what an entry
    /// written without `id` derives its id from.
    pub seq: u64,
    /// Its fields as stored, in order; `None` for an entry deleted from the
    /// stream while a worker held it.
    pub fields: Option<Vec<(String, String)>>,
}

impl RawEntry {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .as_ref()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `ts` its event has, in ms: the one given, or its write time;
    /// `None` when the one given is not a time (the entry is poison).
    pub fn ts_ms(&self) -> Option<i64> {
        match self.get("ts") {
            Some(ts) => parse_ts(ts).map(|t| t.timestamp_millis()),
            None => i64::try_from(self.written_ms).ok(),
        }
    }

    /// The entry as JSON text, for the dead letter of a poison entry: the
    /// same text on both backends for the same fields, in any order.
    pub fn raw(&self) -> String {
        let Some(fields) = &self.fields else {
            return serde_json::json!({ "entry": self.key }).to_string();
        };
        // By name (a JSON object's keys are sorted), the first of a repeated
        // field winning as it does when decoding.
        let mut raw = Map::new();
        for (name, value) in fields {
            raw.entry(name.clone())
                .or_insert_with(|| value.as_str().into());
        }
        Value::Object(raw).to_string()
    }
}

/// Why an entry is poison. One set of reasons for both backends: the text is
/// what an operator reads in `replay --dead` and `status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoisonReason {
    #[error("the entry was deleted from the stream before it was delivered")]
    Deleted,
    #[error("the entry has no '{0}' field")]
    Missing(&'static str),
    #[error("'payload' is JSON but not an object")]
    PayloadNotObject,
    #[error("'payload' is not valid JSON: {0}")]
    PayloadNotJson(String),
    /// A bad `ts`, id or type, as [`EventLine::into_event`] words it.
    #[error(transparent)]
    Invalid(#[from] BadEvent),
}

/// Decides what a stored entry is: its event, with `id` and `ts` derived
/// from where and when it was written when the producer left them out, or
/// poison with the reason.
pub fn decode(raw: &RawEntry) -> Result<Event, Poison> {
    decode_event(raw).map_err(|reason| Poison {
        raw: raw.raw(),
        reason: reason.to_string(),
    })
}

fn decode_event(raw: &RawEntry) -> Result<Event, PoisonReason> {
    if raw.fields.is_none() {
        return Err(PoisonReason::Deleted);
    }
    let kind = raw.get("type").ok_or(PoisonReason::Missing("type"))?;
    let payload = raw.get("payload").ok_or(PoisonReason::Missing("payload"))?;
    let payload = match serde_json::from_str::<Value>(payload) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(PoisonReason::PayloadNotObject),
        Err(e) => return Err(PoisonReason::PayloadNotJson(e.to_string())),
    };
    let line = EventLine {
        id: Some(
            raw.get("id")
                .map_or_else(|| derived_id(raw.written_ms, raw.seq), str::to_owned),
        ),
        kind: kind.to_owned(),
        ts: Some(raw.get("ts").map_or_else(
            || format_ts_ms(i64::try_from(raw.written_ms).unwrap_or(i64::MAX)),
            str::to_owned,
        )),
        payload,
    };
    // Checks `ts`, the id and the type, with the rule every producer obeys.
    line.into_event().map_err(PoisonReason::Invalid)
}

/// The id and `ts` `status` shows for an entry: its event's, or for poison
/// its key and write time.
pub fn identity(raw: &RawEntry) -> (String, String) {
    match decode_event(raw) {
        Ok(event) => (event.id, event.ts),
        Err(_) => (
            raw.key.clone(),
            format_ts_ms(i64::try_from(raw.written_ms).unwrap_or(i64::MAX)),
        ),
    }
}

impl From<RawEntry> for StreamEntry {
    fn from(raw: RawEntry) -> StreamEntry {
        let event = decode(&raw);
        StreamEntry {
            key: raw.key,
            event,
        }
    }
}

/// Why a stored retry cannot be delivered. The Redis claim script applies
/// the same rule, with the same words, so it can dead-letter in the claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenRetry {
    #[error("has no delivery")]
    Missing,
    #[error("is not JSON")]
    NotJson,
    #[error("is not a delivery")]
    NotDelivery,
}

/// Decides what a stored retry (its delivery JSON, if any) is.
pub fn decode_retry(body: Option<&str>) -> Result<Delivery, BrokenRetry> {
    let body = body.ok_or(BrokenRetry::Missing)?;
    let value = serde_json::from_str::<Value>(body).map_err(|_| BrokenRetry::NotJson)?;
    serde_json::from_value(value).map_err(|_| BrokenRetry::NotDelivery)
}

/// The dead letter of a retry that cannot be decoded: it would otherwise
/// come back forever. It keeps whatever text there was.
pub fn broken_retry_letter(
    token: &str,
    body: Option<&str>,
    why: &BrokenRetry,
    at_ms: i64,
) -> DeadLetter {
    DeadLetter {
        event: Err(body.unwrap_or_default().to_owned()),
        dest: token_dest(token).to_owned(),
        attempts: 0,
        error: format!("the retry {token} {why}"),
        at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pairs: &[(&str, &str)]) -> RawEntry {
        RawEntry {
            key: "k".into(),
            written_ms: 1_700_000_000_123,
            seq: 4,
            fields: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn an_entry_without_id_or_ts_gets_them_from_where_it_was_written() {
        let event = decode(&entry(&[("type", "user.signup"), ("payload", "{}")])).unwrap();
        assert_eq!(event.ts, "2023-11-14T22:13:20.123Z");
        assert_eq!(event.id, derived_id(1_700_000_000_123, 4));
        let again = decode(&entry(&[("payload", "{}"), ("type", "user.signup")])).unwrap();
        assert_eq!(again, event);
    }

    #[test]
    fn a_given_ts_is_normalised_and_a_bad_one_is_poison() {
        let event = decode(&entry(&[
            ("type", "a"),
            ("payload", "{}"),
            ("id", "E1"),
            ("ts", "2026-01-01T01:00:00+01:00"),
        ]))
        .unwrap();
        assert_eq!(event.ts, "2026-01-01T00:00:00.000Z");
        assert_eq!(
            entry(&[("ts", "2026-01-01T01:00:00+01:00")]).ts_ms(),
            event.ts_ms()
        );
        assert_eq!(entry(&[]).ts_ms(), Some(1_700_000_000_123));
        assert_eq!(entry(&[("ts", "soon")]).ts_ms(), None);
        let bad = decode(&entry(&[("type", "a"), ("payload", "{}"), ("ts", "soon")]));
        assert_eq!(
            bad.unwrap_err().reason,
            "'ts' is not an RFC 3339 time: \"soon\""
        );
    }

    #[test]
    fn every_reason_is_worded_once() {
        let reason = |pairs: &[(&str, &str)]| decode(&entry(pairs)).unwrap_err().reason;
        assert_eq!(
            reason(&[("payload", "{}")]),
            "the entry has no 'type' field"
        );
        assert_eq!(reason(&[("type", "a")]), "the entry has no 'payload' field");
        assert_eq!(
            reason(&[("type", "a"), ("payload", "[1]")]),
            "'payload' is JSON but not an object"
        );
        assert_eq!(
            reason(&[("type", "a"), ("payload", "not json")]),
            "'payload' is not valid JSON: expected ident at line 1 column 2"
        );
        assert_eq!(
            reason(&[("type", "a"), ("payload", "{}"), ("id", "")]),
            "'id' is empty"
        );
        assert_eq!(
            reason(&[("type", "a b"), ("payload", "{}")]),
            "'type' has '\\u{20}' at byte 1; only printable ASCII without spaces is allowed"
        );
    }

    #[test]
    fn poison_keeps_its_fields_in_one_order() {
        let poison = decode(&entry(&[("x", "1"), ("payload", "nope"), ("type", "a")])).unwrap_err();
        assert_eq!(poison.raw, r#"{"payload":"nope","type":"a","x":"1"}"#);
        let deleted = RawEntry {
            fields: None,
            ..entry(&[])
        };
        let poison = decode(&deleted).unwrap_err();
        assert_eq!(poison.raw, r#"{"entry":"k"}"#);
        assert_eq!(
            poison.reason,
            "the entry was deleted from the stream before it was delivered"
        );
    }

    #[test]
    fn a_retry_is_a_delivery_or_says_why_not() {
        assert_eq!(decode_retry(None), Err(BrokenRetry::Missing));
        assert_eq!(decode_retry(Some("{")), Err(BrokenRetry::NotJson));
        assert_eq!(
            decode_retry(Some(r#"{"dest":"x"}"#)),
            Err(BrokenRetry::NotDelivery)
        );
        let good = r#"{"event":{"id":"E","type":"a","ts":"2026-01-01T00:00:00.000Z","payload":{}},"dest":"x","attempts":2}"#;
        assert_eq!(decode_retry(Some(good)).unwrap().attempts, 2);
        let letter = broken_retry_letter("E|x", Some("{"), &BrokenRetry::NotJson, 7);
        assert_eq!(letter.error, "the retry E|x is not JSON");
        assert_eq!(letter.dest, "x");
        assert_eq!(letter.event, Err("{".into()));
    }
}
