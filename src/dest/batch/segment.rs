//! Segment's HTTP tracking API: events batched to `/v1/batch` as `track`
//! calls, within Segment's limits (32 KB per call, 500 KB per batch), with
//! the event id as `messageId` so Segment drops duplicates of a retry.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{BatchSender, Batched, KeyedApi};
use crate::config::{ConfigError, Env};
use crate::dest::http::Post;
use crate::dest::kind::{Entry, Kind, Settings};
use crate::dest::{BatchLimit, Unsendable};
use crate::event::Event;
use crate::secret::Secret;

/// Segment's `/v1/batch`.
pub struct Segment;

impl Batched for Segment {
    /// Segment rejects a call over 32 KB.
    const MAX_ITEM_BYTES: usize = 32 * 1024;
    const ITEM: &'static str = "a Segment call";
    const ITEM_LIMIT: &'static str = "Segment accepts at most 32 KB";
    /// Segment rejects a batch over 500 KB: room is left under it for the
    /// batch envelope and separators.
    const LIMIT: BatchLimit = BatchLimit {
        items: 1000,
        bytes: 500 * 1024 - 4 * 1024,
    };

    fn encode(&self, event: &Event) -> Result<Value, Unsendable> {
        Ok(track(event))
    }

    fn body(&self, joined: &str) -> String {
        format!("{{\"batch\":[{joined}]}}")
    }
}

/// The sender posting to `endpoint`'s `/v1/batch` with `write_key`.
fn sender(
    name: String,
    write_key: &Secret,
    endpoint: &str,
    timeout: Duration,
) -> BatchSender<Segment> {
    let url = format!("{}/v1/batch", endpoint.trim_end_matches('/'));
    // Basic auth: the write key as user name, an empty password.
    let authorization = Secret::new(format!(
        "Basic {}",
        STANDARD.encode(format!("{}:", write_key.expose()))
    ));
    let post = Post::json(Secret::new(url)).authorization(authorization);
    BatchSender::new(name, post, timeout, Segment)
}

/// The `track` call for `event`: `userId` is the email when there is one,
/// otherwise the event id serves as `anonymousId` (Segment needs one of them).
pub fn track(event: &Event) -> Value {
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

/// The public Segment API.
pub const SEGMENT_DEFAULT_ENDPOINT: &str = "https://api.segment.io";

/// The `segment` kind: its secret from `write_key_env` (`SEGMENT_WRITE_KEY`), its
/// URL from `endpoint` (`SEGMENT_ENDPOINT`, else the public Segment API).
pub struct SegmentKind;

impl Kind for SegmentKind {
    fn name(&self) -> &'static str {
        "segment"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["write_key_env", "endpoint"]
    }

    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn Settings>, ConfigError> {
        API.parse_table(entry)
    }

    fn parse_env(&self, env: &Env<'_>) -> Result<Option<Box<dyn Settings>>, ConfigError> {
        Ok(API.parse_env(env))
    }
}

const API: KeyedApi = KeyedApi {
    key_setting: "write_key_env",
    key_var: "SEGMENT_WRITE_KEY",
    url_setting: "endpoint",
    url_var: "SEGMENT_ENDPOINT",
    default_url: SEGMENT_DEFAULT_ENDPOINT,
    sender: |name, key, url, timeout| Arc::new(sender(name, key, url, timeout)),
};
