//! Mixpanel's `/import` API: events batched as a JSON array within
//! Mixpanel's limits, each with an `$insert_id` derived from the event id so
//! Mixpanel drops the duplicates of a retry or a replay. With `strict=1` a
//! `400` names the records that failed and imports the rest: only those are
//! dead-lettered.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{BatchSender, Batched, KeyedApi};
use crate::config::{ConfigError, Env};
use crate::dest::http::{self, Post, Sent};
use crate::dest::kind::{Entry, Kind, Settings};
use crate::dest::{Answer, Attempt, BatchLimit, Unsendable};
use crate::event::Event;
use crate::secret::Secret;

/// Mixpanel's `/import`, strict.
pub struct Mixpanel;

impl Batched for Mixpanel {
    /// Mixpanel refuses an event over 1 MB.
    const MAX_ITEM_BYTES: usize = 1024 * 1024;
    const ITEM: &'static str = "a Mixpanel record";
    const ITEM_LIMIT: &'static str = "Mixpanel accepts at most 1 MB";
    /// Mixpanel accepts 10 MB per request; room is left for the separators.
    const LIMIT: BatchLimit = BatchLimit {
        items: 2000,
        bytes: 10_000_000 - 64 * 1024,
    };

    fn encode(&self, event: &Event) -> Result<Value, Unsendable> {
        record(event).map_err(|e| Unsendable(e.to_string()))
    }

    fn body(&self, joined: &str) -> String {
        format!("[{joined}]")
    }

    /// A `400` listing failed records is a partial success: Mixpanel kept
    /// the rest, one outcome per item. A `400` or `413` that lists none
    /// refused the batch as a whole.
    fn classify(&self, sent: Sent, count: usize) -> Answer {
        let failed = RefCell::new(Vec::new());
        let answer = http::classify_with(sent, |body| {
            let said: ErrorResponse = serde_json::from_str(body).unwrap_or_default();
            *failed.borrow_mut() = said.failed_records;
            http::ErrorBody {
                retry_after: None,
                text: said.error,
            }
        });
        let failed = failed.into_inner();
        if answer.status == Some(400) && !failed.is_empty() {
            return partial(count, &failed);
        }
        answer
    }
}

/// The sender importing into `api_url` with the project `token`, sent as
/// the basic-auth user name with an empty password, as Mixpanel's
/// `/import` documents.
fn sender(name: String, token: &Secret, api_url: &str, timeout: Duration) -> BatchSender<Mixpanel> {
    let url = format!("{}/import?strict=1", api_url.trim_end_matches('/'));
    let authorization = Secret::new(format!(
        "Basic {}",
        STANDARD.encode(format!("{}:", token.expose()))
    ));
    let post = Post::json(Secret::new(url)).authorization(authorization);
    BatchSender::new(name, post, timeout, Mixpanel)
}

/// An event Mixpanel cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Mixpanel needs the time as a number, which an unreadable `ts` is not.
    #[error("the event's time {0:?} is not RFC 3339")]
    Time(String),
}

/// Mixpanel's error body, as far as it matters here.
#[derive(Debug, Default, Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    #[serde(default)]
    failed_records: Vec<FailedRecord>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
struct FailedRecord {
    index: usize,
    #[serde(default)]
    field: String,
    #[serde(default)]
    message: String,
}

/// The import record for `event`: its payload as properties, with `time`
/// (milliseconds), `distinct_id` (the email, or the event id) and
/// `$insert_id` (derived from the event id) set over any payload field of
/// the same name.
pub fn record(event: &Event) -> Result<Value, RecordError> {
    let time = event
        .ts_ms()
        .ok_or_else(|| RecordError::Time(event.ts.clone()))?;
    let mut properties = event.payload.clone();
    properties.insert("time".into(), json!(time));
    properties.insert(
        "distinct_id".into(),
        json!(event.field_str("email").unwrap_or(&event.id)),
    );
    properties.insert("$insert_id".into(), json!(event.dedupe_uuid()));
    Ok(json!({"event": event.kind, "properties": properties}))
}

/// The outcome of each of `count` items when Mixpanel imported all but
/// `failed`: those are permanent failures with Mixpanel's reason. Every
/// item had the one answer's status, `400`.
fn partial(count: usize, failed: &[FailedRecord]) -> Answer {
    let answered = |attempt| Answer {
        attempt,
        status: Some(400),
    };
    let mut answers = vec![answered(Attempt::Delivered); count];
    for record in failed {
        if let Some(answer) = answers.get_mut(record.index) {
            let reason = format!("{}: {}", record.field, record.message);
            *answer = answered(Attempt::Permanent(http::error_text(
                400,
                reason.trim_matches([':', ' ']),
            )));
        }
    }
    answered(Attempt::Each(answers))
}

/// Mixpanel's ingestion API (US residency).
pub const MIXPANEL_DEFAULT_API_URL: &str = "https://api.mixpanel.com";

/// The `mixpanel` kind: its secret from `token_env` (`MIXPANEL_TOKEN`), its
/// URL from `api_url` (`MIXPANEL_API_URL`, else Mixpanel's ingestion API (US residency)).
pub struct MixpanelKind;

impl Kind for MixpanelKind {
    fn name(&self) -> &'static str {
        "mixpanel"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["token_env", "api_url"]
    }

    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn Settings>, ConfigError> {
        API.parse_table(entry)
    }

    fn parse_env(&self, env: &Env<'_>) -> Result<Option<Box<dyn Settings>>, ConfigError> {
        Ok(API.parse_env(env))
    }
}

const API: KeyedApi = KeyedApi {
    key_setting: "token_env",
    key_var: "MIXPANEL_TOKEN",
    url_setting: "api_url",
    url_var: "MIXPANEL_API_URL",
    default_url: MIXPANEL_DEFAULT_API_URL,
    sender: |name, key, url, timeout| Arc::new(sender(name, key, url, timeout)),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_records_die_and_the_rest_are_delivered() {
        let failed = vec![FailedRecord {
            index: 1,
            field: "properties.time".into(),
            message: "'properties.time' is invalid\u{1b}[31m".into(),
        }];
        let outcomes = |answer: Answer| match answer.attempt {
            Attempt::Each(answers) => answers
                .into_iter()
                .map(|a| (a.attempt, a.status))
                .collect::<Vec<_>>(),
            other => panic!("one outcome for all: {other:?}"),
        };
        assert_eq!(
            outcomes(partial(3, &failed)),
            [
                (Attempt::Delivered, Some(400)),
                (
                    Attempt::Permanent(
                        "HTTP 400 properties.time: 'properties.time' is invalid\\u{1b}[31m".into()
                    ),
                    Some(400)
                ),
                (Attempt::Delivered, Some(400)),
            ]
        );
        // An index Mixpanel should not have sent changes nothing.
        let stray = vec![FailedRecord {
            index: 9,
            field: String::new(),
            message: "x".into(),
        }];
        assert_eq!(
            outcomes(partial(1, &stray)),
            [(Attempt::Delivered, Some(400))]
        );
    }

    #[test]
    fn our_keys_win_over_payload_fields_of_the_same_name() {
        let mut event = Event::new("user.signup", serde_json::Map::new());
        event.id = "01JDX3M7Q7G5N8W4K2B9C1T6ZR".into();
        event.ts = "2026-11-27T09:00:00.123Z".into();
        event.payload.insert("time".into(), json!("noon"));
        event
            .payload
            .insert("email".into(), json!("ada@example.com"));
        let properties = &record(&event).unwrap()["properties"];
        assert_eq!(properties["time"], 1_795_770_000_123_i64);
        assert_eq!(properties["distinct_id"], "ada@example.com");
        assert_eq!(
            properties["$insert_id"],
            "7ae46f92-d630-5e90-9eb7-d4666131cec5"
        );
    }

    #[test]
    fn an_event_whose_time_cannot_be_read_is_named() {
        let mut event = Event::new("user.signup", serde_json::Map::new());
        event.ts = "noon".into();
        let err = record(&event).unwrap_err();
        assert_eq!(err, RecordError::Time("noon".into()));
        assert_eq!(err.to_string(), "the event's time \"noon\" is not RFC 3339");
    }
}
