//! Reading Redis's replies: stream ids, entries and their fields, and the
//! loosely typed values a server returns.

use std::collections::HashMap;

use redis::Value;

use super::SKEW_MS;
use crate::event::Event;
use crate::queue::entry::{self, RawEntry};

/// Whether an entry's `ts` is too far from its id's time to be found by
/// reading the stream by id around a window.
pub(super) fn is_skewed_ms(entry_ms: u64, ts_ms: i64) -> bool {
    (i128::from(ts_ms) - i128::from(entry_ms)).abs() > i128::from(SKEW_MS)
}

/// Compares two stream ids `ms-seq`.
pub(super) fn id_lt(a: &str, b: &str) -> bool {
    parse_id(a) < parse_id(b)
}

pub(super) fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

pub(super) fn next_id(id: &str) -> String {
    let (ms, seq) = parse_id(id);
    format!("{ms}-{}", seq + 1)
}

pub(super) fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

pub(super) fn map(v: Value) -> HashMap<String, Value> {
    let mut items = array(v).into_iter();
    let mut out = HashMap::new();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        out.insert(text(&k), v);
    }
    out
}

pub(super) fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::VerbatimString { text, .. } => text.clone(),
        _ => String::new(),
    }
}

/// `text`, taking a bulk string's bytes instead of copying them.
fn into_text(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8(b)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        other => text(&other),
    }
}

pub(super) fn int(v: &Value) -> u64 {
    match v {
        Value::Int(i) => u64::try_from(*i).unwrap_or(0),
        other => text(other).parse().unwrap_or(0),
    }
}

/// Entries of an `XREADGROUP` reply (one stream), or none on a timeout.
pub(super) fn read_reply_entries(reply: Value) -> Vec<RawEntry> {
    array(reply)
        .into_iter()
        .flat_map(|stream| {
            array(stream)
                .into_iter()
                .nth(1)
                .map(entries)
                .unwrap_or_default()
        })
        .collect()
}

/// An entry's fields, in order.
pub(super) type Fields = Vec<(String, String)>;

/// `[[id, [field, value, ...]], ...]` as (id, fields); fields are `None`
/// for an entry deleted while pending.
pub(super) fn raw_entries(v: Value) -> Vec<(String, Option<Fields>)> {
    array(v)
        .into_iter()
        .filter_map(|entry| {
            let mut parts = array(entry).into_iter();
            let id = into_text(parts.next()?);
            let fields = match parts.next() {
                Some(Value::Nil) | None => None,
                Some(f) => {
                    let mut flat = array(f).into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                        pairs.push((into_text(k), into_text(v)));
                    }
                    Some(pairs)
                }
            };
            Some((id, fields))
        })
        .collect()
}

pub(super) fn entries(v: Value) -> Vec<RawEntry> {
    raw_entries(v)
        .into_iter()
        .map(|(key, fields)| raw_entry(key, fields))
        .collect()
}

/// An entry as the decoder above the backends takes it: its write time and
/// sequence are its entry id's.
pub(super) fn raw_entry(key: String, fields: Option<Fields>) -> RawEntry {
    let (written_ms, seq) = parse_id(&key);
    RawEntry {
        key,
        written_ms,
        seq,
        fields,
    }
}

/// The event an entry holds, if it is not poison.
pub(super) fn event_of(key: String, fields: Option<Fields>) -> Option<Event> {
    entry::decode(&raw_entry(key, fields)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::derived_id;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_entry_without_id_or_ts_gets_them_from_its_entry_id() {
        let event = event_of(
            "1700000000123-4".into(),
            Some(fields(&[
                ("type", "user.signup"),
                ("payload", r#"{"email":"a@b"}"#),
            ])),
        )
        .unwrap();
        assert_eq!(event.ts, "2023-11-14T22:13:20.123Z");
        assert_eq!(event.id, derived_id(1_700_000_000_123, 4));
    }

    #[test]
    fn stream_ids_compare_numerically() {
        assert!(id_lt("999-0", "1000-0"));
        assert!(id_lt("1000-9", "1000-10"));
        assert_eq!(next_id("1000-9"), "1000-10");
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_fields_never_panics(
            key in "\\PC{0,20}",
            pairs in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,40}"), 0..6),
        ) {
            let _ = event_of(key, Some(pairs));
        }
    }
}
