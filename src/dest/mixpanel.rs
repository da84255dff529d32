//! Mixpanel's `/import` API: events batched as a JSON array within
//! Mixpanel's limits, each with an `$insert_id` derived from the event id so
//! Mixpanel drops the duplicates of a retry or a replay. With `strict=1` a
//! `400` names the records that failed and imports the rest: only those are
//! dead-lettered.

use std::cell::RefCell;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::kind::Entry;
use super::{
    Answer, Attempt, BatchLimit, Destination, Item, Unsendable, http, join_bodies, split_if_refused,
};
use crate::config::{ConfigError, Env, redact_url};
use crate::event::Event;
use crate::secret::Secret;
use std::sync::Arc;

/// Mixpanel refuses an event over 1 MB.
const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Mixpanel accepts 10 MB per request; room is left for the separators.
const MAX_BATCH_BYTES: usize = 10_000_000 - 64 * 1024;
const MAX_BATCH_ITEMS: usize = 2000;

pub struct Mixpanel {
    name: String,
    authorization: Secret,
    url: String,
    agent: ureq::Agent,
}

impl Mixpanel {
    /// `token` is the project token, sent as the basic-auth user name with
    /// an empty password, as Mixpanel's `/import` documents.
    pub fn new(name: String, token: &Secret, api_url: &str, timeout: Duration) -> Mixpanel {
        let authorization = Secret::new(format!(
            "Basic {}",
            STANDARD.encode(format!("{}:", token.expose()))
        ));
        Mixpanel {
            name,
            authorization,
            url: format!("{}/import?strict=1", api_url.trim_end_matches('/')),
            agent: http::agent(timeout),
        }
    }

    /// Posts `items`; a `400` naming failed records is one outcome per item.
    fn post(&self, items: &[Item]) -> (Answer, Vec<FailedRecord>) {
        let failed = RefCell::new(Vec::new());
        let answer = http::classify_with(
            self.agent
                .post(&self.url)
                .header("Content-Type", "application/json")
                .header("Authorization", self.authorization.expose())
                .send(&format!("[{}]", join_bodies(items))),
            |body| {
                let said: ErrorResponse = serde_json::from_str(body).unwrap_or_default();
                *failed.borrow_mut() = said.failed_records;
                http::ErrorBody {
                    retry_after: None,
                    text: said.error,
                }
            },
        );
        (answer, failed.into_inner())
    }
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
pub fn record(event: &Event) -> Result<Value, String> {
    let time = event
        .ts_ms()
        .ok_or_else(|| format!("the event's time {:?} is not RFC 3339", event.ts))?;
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

impl Destination for Mixpanel {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        let record = record(event).map_err(Unsendable)?.to_string();
        if record.len() > MAX_EVENT_BYTES {
            return Err(Unsendable(format!(
                "the event is {} bytes as a Mixpanel record; Mixpanel accepts at most 1 MB",
                record.len()
            )));
        }
        Ok(record)
    }

    fn batch_limit(&self) -> BatchLimit {
        BatchLimit {
            items: MAX_BATCH_ITEMS,
            bytes: MAX_BATCH_BYTES,
        }
    }

    /// A `400` listing failed records is a partial success: Mixpanel kept
    /// the rest. A `400` or `413` that lists none refused the batch as a
    /// whole: it is sent again in halves, so only a bad event dies.
    fn send(&self, items: &[Item]) -> Answer {
        let (answer, failed) = self.post(items);
        if answer.status == Some(400) && !failed.is_empty() {
            return partial(items.len(), &failed);
        }
        split_if_refused(&self.name, items, answer, |part| self.send(part))
    }
}

/// Mixpanel's ingestion API (US residency).
pub const MIXPANEL_DEFAULT_API_URL: &str = "https://api.mixpanel.com";

/// The `mixpanel` kind: its secret from `token_env` (`MIXPANEL_TOKEN`), its
/// URL from `api_url` (`MIXPANEL_API_URL`, else Mixpanel's ingestion API (US residency)).
pub struct MixpanelKind;

impl super::Kind for MixpanelKind {
    fn name(&self) -> &'static str {
        "mixpanel"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["token_env", "api_url"]
    }

    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn super::Settings>, ConfigError> {
        Ok(Box::new(MixpanelSettings {
            token: entry.secret("token_env", "MIXPANEL_TOKEN")?,
            api_url: entry.setting("api_url", "MIXPANEL_API_URL", MIXPANEL_DEFAULT_API_URL)?,
        }))
    }

    fn parse_env(&self, env: &Env<'_>) -> Result<Option<Box<dyn super::Settings>>, ConfigError> {
        Ok(env.get("MIXPANEL_TOKEN").map(|secret| {
            Box::new(MixpanelSettings {
                token: Secret::new(secret),
                api_url: env
                    .get("MIXPANEL_API_URL")
                    .unwrap_or_else(|| MIXPANEL_DEFAULT_API_URL.into()),
            }) as Box<dyn super::Settings>
        }))
    }
}

/// What a Mixpanel destination needs to send.
#[derive(Debug)]
pub struct MixpanelSettings {
    pub token: Secret,
    pub api_url: String,
}

impl super::Settings for MixpanelSettings {
    fn target(&self) -> String {
        redact_url(&self.api_url)
    }

    fn url(&self) -> Option<&str> {
        Some(&self.api_url)
    }

    fn build(
        &self,
        name: String,
        _: &crate::catalog::Catalog,
        timeout: Duration,
    ) -> Arc<dyn Destination> {
        Arc::new(Mixpanel::new(name, &self.token, &self.api_url, timeout))
    }
}

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
}
