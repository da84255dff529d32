//! PostHog's capture API: events batched to `{host}/batch/` within PostHog's
//! limits, each carrying a `uuid` derived from the event id so PostHog drops
//! the duplicates of a retry or a replay.

use std::time::Duration;

use serde_json::json;

use super::kind::Entry;
use super::{
    Answer, BatchLimit, Destination, Item, Unsendable, http, join_bodies, split_if_refused,
};
use crate::config::{ConfigError, Env, redact_url};
use crate::event::Event;
use crate::secret::Secret;
use std::sync::Arc;

/// PostHog drops an event over 1 MB.
const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// PostHog accepts a batch request up to 20 MB; smaller batches keep one
/// refused request cheap to split and retry.
const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;
const MAX_BATCH_ITEMS: usize = 1000;

pub struct PostHog {
    name: String,
    /// `{"api_key":"…","batch":[`: the project API key travels in the body.
    envelope: Secret,
    url: String,
    agent: ureq::Agent,
}

impl PostHog {
    pub fn new(name: String, api_key: &Secret, host: &str, timeout: Duration) -> PostHog {
        let key = serde_json::Value::from(api_key.expose()).to_string();
        PostHog {
            name,
            envelope: Secret::new(format!("{{\"api_key\":{key},\"batch\":[")),
            url: format!("{}/batch/", host.trim_end_matches('/')),
            agent: http::agent(timeout),
        }
    }

    fn post(&self, items: &[Item]) -> Answer {
        let body = format!("{}{}]}}", self.envelope.expose(), join_bodies(items));
        http::classify(
            self.agent
                .post(&self.url)
                .header("Content-Type", "application/json")
                .send(&body),
        )
    }
}

/// The capture call for `event`: `distinct_id` is the email when there is
/// one, otherwise the event id; `uuid` is derived from the event id.
pub fn capture(event: &Event) -> serde_json::Value {
    json!({
        "event": event.kind,
        "distinct_id": event.field_str("email").unwrap_or(&event.id),
        "properties": event.payload,
        "timestamp": event.ts,
        "uuid": event.dedupe_uuid(),
    })
}

impl Destination for PostHog {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        let call = capture(event).to_string();
        if call.len() > MAX_EVENT_BYTES {
            return Err(Unsendable(format!(
                "the event is {} bytes as a PostHog event; PostHog accepts at most 1 MB",
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

    /// PostHog refuses a whole batch (`400`, `413`) for one bad event: it is
    /// sent again in halves, down to single events, so only the refused ones
    /// are dead-lettered and their batch-mates are delivered.
    fn send(&self, items: &[Item]) -> Answer {
        let answer = self.post(items);
        split_if_refused(&self.name, items, answer, |part| self.send(part))
    }
}

/// PostHog's US cloud.
pub const POSTHOG_DEFAULT_HOST: &str = "https://us.i.posthog.com";

/// The `posthog` kind: its secret from `api_key_env` (`POSTHOG_API_KEY`), its
/// URL from `host` (`POSTHOG_HOST`, else PostHog's US cloud).
pub struct PostHogKind;

impl super::Kind for PostHogKind {
    fn name(&self) -> &'static str {
        "posthog"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["api_key_env", "host"]
    }

    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn super::Settings>, ConfigError> {
        Ok(Box::new(PostHogSettings {
            api_key: entry.secret("api_key_env", "POSTHOG_API_KEY")?,
            host: entry.setting("host", "POSTHOG_HOST", POSTHOG_DEFAULT_HOST)?,
        }))
    }

    fn parse_env(&self, env: &Env<'_>) -> Result<Option<Box<dyn super::Settings>>, ConfigError> {
        Ok(env.get("POSTHOG_API_KEY").map(|secret| {
            Box::new(PostHogSettings {
                api_key: Secret::new(secret),
                host: env
                    .get("POSTHOG_HOST")
                    .unwrap_or_else(|| POSTHOG_DEFAULT_HOST.into()),
            }) as Box<dyn super::Settings>
        }))
    }
}

/// What a PostHog destination needs to send.
#[derive(Debug)]
pub struct PostHogSettings {
    pub api_key: Secret,
    pub host: String,
}

impl super::Settings for PostHogSettings {
    fn target(&self) -> String {
        redact_url(&self.host)
    }

    fn url(&self) -> Option<&str> {
        Some(&self.host)
    }

    fn build(
        &self,
        name: String,
        _: &crate::catalog::Catalog,
        timeout: Duration,
    ) -> Arc<dyn Destination> {
        Arc::new(PostHog::new(name, &self.api_key, &self.host, timeout))
    }
}

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
        let dest = PostHog::new("posthog".into(), &key, "http://h/", Duration::from_secs(1));
        assert_eq!(
            dest.envelope.expose(),
            r#"{"api_key":"phc_\"quoted\"","batch":["#
        );
        assert_eq!(dest.url, "http://h/batch/");
        assert_eq!(format!("{:?}", dest.envelope), "***");
    }
}
