//! PostHog's capture API: events batched to `{host}/batch/` within PostHog's
//! limits, each carrying a `uuid` derived from the event id so PostHog drops
//! the duplicates of a retry or a replay.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{BatchSender, Batched, KeyedApi};
use crate::config::{ConfigError, Env};
use crate::dest::http::Post;
use crate::dest::kind::{Entry, Kind, Settings};
use crate::dest::{BatchLimit, Unsendable};
use crate::event::Event;
use crate::secret::Secret;

/// PostHog's `/batch/`.
pub struct PostHog {
    /// `{"api_key":"…","batch":[`: the project API key travels in the body.
    envelope: Secret,
}

impl PostHog {
    fn new(api_key: &Secret) -> PostHog {
        let key = Value::from(api_key.expose()).to_string();
        PostHog {
            envelope: Secret::new(format!("{{\"api_key\":{key},\"batch\":[")),
        }
    }
}

impl Batched for PostHog {
    /// PostHog drops an event over 1 MB.
    const MAX_ITEM_BYTES: usize = 1024 * 1024;
    const ITEM: &'static str = "a PostHog event";
    const ITEM_LIMIT: &'static str = "PostHog accepts at most 1 MB";
    /// PostHog accepts a batch request up to 20 MB; smaller batches keep
    /// one refused request cheap to split and retry.
    const LIMIT: BatchLimit = BatchLimit {
        items: 1000,
        bytes: 5 * 1024 * 1024,
    };

    fn encode(&self, event: &Event) -> Result<Value, Unsendable> {
        Ok(capture(event))
    }

    fn body(&self, joined: &str) -> String {
        format!("{}{joined}]}}", self.envelope.expose())
    }
}

/// `host`'s `/batch/`.
fn batch_url(host: &str) -> String {
    format!("{}/batch/", host.trim_end_matches('/'))
}

/// The capture call for `event`: `distinct_id` is the email when there is
/// one, otherwise the event id; `uuid` is derived from the event id.
pub fn capture(event: &Event) -> Value {
    json!({
        "event": event.kind,
        "distinct_id": event.field_str("email").unwrap_or(&event.id),
        "properties": event.payload,
        "timestamp": event.ts,
        "uuid": event.dedupe_uuid(),
    })
}

/// PostHog's US cloud.
pub const POSTHOG_DEFAULT_HOST: &str = "https://us.i.posthog.com";

/// The `posthog` kind: its secret from `api_key_env` (`POSTHOG_API_KEY`), its
/// URL from `host` (`POSTHOG_HOST`, else PostHog's US cloud).
pub struct PostHogKind;

impl Kind for PostHogKind {
    fn name(&self) -> &'static str {
        "posthog"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["api_key_env", "host"]
    }

    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn Settings>, ConfigError> {
        API.parse_table(entry)
    }

    fn parse_env(&self, env: &Env<'_>) -> Result<Option<Box<dyn Settings>>, ConfigError> {
        Ok(API.parse_env(env))
    }
}

const API: KeyedApi = KeyedApi {
    key_setting: "api_key_env",
    key_var: "POSTHOG_API_KEY",
    url_setting: "host",
    url_var: "POSTHOG_HOST",
    default_url: POSTHOG_DEFAULT_HOST,
    sender: |name, key, url, timeout| {
        Arc::new(BatchSender::new(
            name,
            Post::json(Secret::new(batch_url(url))),
            timeout,
            PostHog::new(key),
        ))
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_without_email_is_its_own_distinct_id() {
        let mut event = Event::new("deploy.finished", serde_json::Map::new());
        event.id = "01JDX3M7Q7G5N8W4K2B9C1T6ZR".into();
        let call = capture(&event);
        assert_eq!(call["distinct_id"], "01JDX3M7Q7G5N8W4K2B9C1T6ZR");
        assert_eq!(call["uuid"], "7ae46f92-d630-5e90-9eb7-d4666131cec5");
    }

    #[test]
    fn the_api_key_is_escaped_into_the_body_and_never_shown() {
        let key = Secret::new("phc_\"quoted\"");
        let dest = PostHog::new(&key);
        assert_eq!(
            dest.envelope.expose(),
            r#"{"api_key":"phc_\"quoted\"","batch":["#
        );
        assert_eq!(batch_url("http://h/"), "http://h/batch/");
        assert_eq!(format!("{:?}", dest.envelope), "***");
    }
}
