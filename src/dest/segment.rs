//! Segment's HTTP tracking API: events batched to `/v1/batch` as `track`
//! calls, within Segment's limits (32 KB per call, 500 KB per batch), with
//! the event id as `messageId` so Segment drops duplicates of a retry.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::kind::Entry;
use super::{
    Answer, BatchLimit, Destination, Item, Unsendable, http, join_bodies, split_if_refused,
};
use crate::config::{ConfigError, Env, redact_url};
use crate::event::Event;
use crate::secret::Secret;
use std::sync::Arc;

/// Segment rejects a call over 32 KB and a batch over 500 KB.
const MAX_CALL_BYTES: usize = 32 * 1024;
/// Room under 500 KB for the batch envelope and separators.
const MAX_BATCH_BYTES: usize = 500 * 1024 - 4 * 1024;
const MAX_BATCH_ITEMS: usize = 1000;

pub struct Segment {
    name: String,
    authorization: Secret,
    url: String,
    agent: ureq::Agent,
}

impl Segment {
    pub fn new(name: String, write_key: Secret, endpoint: &str, timeout: Duration) -> Segment {
        // Basic auth: the write key as user name, an empty password.
        let authorization = Secret::new(format!(
            "Basic {}",
            STANDARD.encode(format!("{}:", write_key.expose()))
        ));
        Segment {
            name,
            authorization,
            url: format!("{}/v1/batch", endpoint.trim_end_matches('/')),
            agent: http::agent(timeout),
        }
    }
}

/// The `track` call for `event`: `userId` is the email when there is one,
/// otherwise the event id serves as `anonymousId` (Segment needs one of them).
pub fn track(event: &Event) -> serde_json::Value {
    let mut call = json!({
        "type": "track",
        "event": event.kind,
        "properties": event.payload,
        "timestamp": event.ts,
        "messageId": event.id,
    });
    match event.field_str("email") {
        Some(email) => call["userId"] = json!(email),
        None => call["anonymousId"] = json!(event.id),
    }
    call
}

impl Destination for Segment {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        let call = track(event).to_string();
        if call.len() > MAX_CALL_BYTES {
            return Err(Unsendable(format!(
                "the event is {} bytes as a Segment call; Segment accepts at most 32 KB",
                call.len()
            )));
        }
        Ok(call)
    }

    fn batch_limit(&self) -> BatchLimit {
        BatchLimit {
            items: MAX_BATCH_ITEMS,
            bytes: MAX_BATCH_BYTES,
        }
    }

    /// A batch Segment refuses as a whole (`400`, `413`) may hold one bad
    /// event among good ones: it is sent again in halves, down to single
    /// events, so only the refused ones are dead-lettered, with Segment's
    /// error, and their batch-mates are delivered.
    fn send(&self, items: &[Item]) -> Answer {
        let answer = self.post(items);
        split_if_refused(&self.name, items, answer, |part| self.send(part))
    }
}

impl Segment {
    fn post(&self, items: &[Item]) -> Answer {
        let calls = join_bodies(items);
        let body = format!("{{\"batch\":[{calls}]}}");
        http::classify(
            self.agent
                .post(&self.url)
                .header("Content-Type", "application/json")
                .header("Authorization", self.authorization.expose())
                .send(&body),
        )
    }
}

/// The public Segment API.
pub const SEGMENT_DEFAULT_ENDPOINT: &str = "https://api.segment.io";

/// The `segment` kind: its secret from `write_key_env` (`SEGMENT_WRITE_KEY`), its
/// URL from `endpoint` (`SEGMENT_ENDPOINT`, else the public Segment API).
pub struct SegmentKind;

impl super::Kind for SegmentKind {
    fn name(&self) -> &'static str {
        "segment"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["write_key_env", "endpoint"]
    }

    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn super::Settings>, ConfigError> {
        Ok(Box::new(SegmentSettings {
            write_key: entry.secret("write_key_env", "SEGMENT_WRITE_KEY")?,
            endpoint: entry.setting("endpoint", "SEGMENT_ENDPOINT", SEGMENT_DEFAULT_ENDPOINT)?,
        }))
    }

    fn parse_env(&self, env: &Env<'_>) -> Result<Option<Box<dyn super::Settings>>, ConfigError> {
        Ok(env.get("SEGMENT_WRITE_KEY").map(|secret| {
            Box::new(SegmentSettings {
                write_key: Secret::new(secret),
                endpoint: env
                    .get("SEGMENT_ENDPOINT")
                    .unwrap_or_else(|| SEGMENT_DEFAULT_ENDPOINT.into()),
            }) as Box<dyn super::Settings>
        }))
    }
}

/// What a Segment destination needs to send.
#[derive(Debug)]
pub struct SegmentSettings {
    pub write_key: Secret,
    pub endpoint: String,
}

impl super::Settings for SegmentSettings {
    fn target(&self) -> String {
        redact_url(&self.endpoint)
    }

    fn url(&self) -> Option<&str> {
        Some(&self.endpoint)
    }

    fn build(
        &self,
        name: String,
        _: &crate::catalog::Catalog,
        timeout: Duration,
    ) -> Arc<dyn Destination> {
        Arc::new(Segment::new(
            name,
            self.write_key.clone(),
            &self.endpoint,
            timeout,
        ))
    }
}
