//! The batched kinds — Segment, PostHog, Mixpanel — and what they share,
//! written once: each event encoded as one JSON document within the
//! service's limit for one event, as many joined into one request as the
//! service's batch limits allow, posted, and a batch the service refuses as
//! a whole sent again in halves so only the bad events die. A kind says
//! only what differs: how to encode an event and the batch, its limits, and
//! how to read its service's answer (one per item when the service says).

pub mod mixpanel;
pub mod posthog;
pub mod segment;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::http::{self, Post, Sent};
use super::{Answer, Attempt, BatchLimit, Destination, Item, Unsendable};
use crate::config::{ConfigError, Env, redact_url};
use crate::dest::kind::{Entry, Settings};
use crate::event::Event;
use crate::secret::Secret;

/// What one batched kind says about its requests.
pub trait Batched: Send + Sync + 'static {
    /// The largest event it takes, in bytes as encoded.
    const MAX_ITEM_BYTES: usize;
    /// What an encoded event is called in the error about one too large:
    /// `a Segment call`.
    const ITEM: &'static str;
    /// The service's limit for one event, in its words:
    /// `Segment accepts at most 32 KB`.
    const ITEM_LIMIT: &'static str;
    /// How many events one request may carry.
    const LIMIT: BatchLimit;

    /// The document `event` becomes, or why it never can.
    fn encode(&self, event: &Event) -> Result<Value, Unsendable>;

    /// The request body for the encoded events `joined` with commas.
    fn body(&self, joined: &str) -> String;

    /// What the service's answer to a batch of `count` events means; by
    /// default, what the status says ([`http::classify`]).
    fn classify(&self, sent: Sent, count: usize) -> Answer {
        let _ = count;
        http::classify(sent)
    }
}

/// A batched destination: its name, where it posts and what its kind says.
pub struct BatchSender<B: Batched> {
    name: String,
    post: Post,
    agent: ureq::Agent,
    batched: B,
}

impl<B: Batched> BatchSender<B> {
    pub fn new(name: String, post: Post, timeout: Duration, batched: B) -> Self {
        BatchSender {
            name,
            post,
            agent: http::agent(timeout),
            batched,
        }
    }
}

impl<B: Batched> Destination for BatchSender<B> {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        let item = self.batched.encode(event)?.to_string();
        if item.len() > B::MAX_ITEM_BYTES {
            return Err(Unsendable(format!(
                "the event is {} bytes as {}; {}",
                item.len(),
                B::ITEM,
                B::ITEM_LIMIT
            )));
        }
        Ok(item)
    }

    fn batch_limit(&self) -> BatchLimit {
        B::LIMIT
    }

    /// A batch the service refuses as a whole (`400`, `413`) may hold one
    /// bad event among good ones: it is sent again in halves, down to
    /// single events, so only the refused ones are dead-lettered, with the
    /// service's error, and their batch-mates are delivered.
    fn send(&self, items: &[Item]) -> Answer {
        let body = self.batched.body(&join_bodies(items));
        let answer = self
            .batched
            .classify(self.post.send(&self.agent, &body), items.len());
        split_if_refused(&self.name, items, answer, |part| self.send(part))
    }
}

/// The body pieces of `items` joined with commas, for a JSON array.
fn join_bodies(items: &[Item]) -> String {
    items
        .iter()
        .map(|i| i.body.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// A batched destination's answer to `items`, narrowed when the receiver
/// refused the whole batch (`400`, `413`) for what may be one bad event:
/// the batch is sent again in two halves through `send` (which may halve
/// again), one outcome per item, so only the refused events are
/// dead-lettered and their batch-mates are delivered; each item keeps the
/// status of the last request that carried it. An answer that already has
/// one outcome per item stands.
fn split_if_refused(
    name: &str,
    items: &[Item],
    answer: Answer,
    send: impl Fn(&[Item]) -> Answer,
) -> Answer {
    let refused = matches!(answer.status, Some(400 | 413));
    if items.len() < 2 || !refused || matches!(answer.attempt, Attempt::Each(_)) {
        return answer;
    }
    log::debug!(
        "{name} refused a batch of {} ({:?}): sending it again in halves",
        items.len(),
        answer.attempt
    );
    let each = |part: &[Item]| match send(part) {
        Answer {
            attempt: Attempt::Each(answers),
            ..
        } => answers,
        answer => vec![answer; part.len()],
    };
    let (left, right) = items.split_at(items.len() / 2);
    let mut answers = each(left);
    answers.extend(each(right));
    Attempt::Each(answers).into()
}

/// How a batched kind is configured, the same for all three: a key read
/// from the environment variable its table names (`<key>_env`, default
/// `key_var`), and the API's base URL from its table, else `url_var`, else
/// the service's own. The kind says only the names and how to build its
/// sender.
pub struct KeyedApi {
    pub key_setting: &'static str,
    pub key_var: &'static str,
    pub url_setting: &'static str,
    pub url_var: &'static str,
    pub default_url: &'static str,
    pub sender: fn(String, &Secret, &str, Duration) -> Arc<dyn Destination>,
}

impl KeyedApi {
    /// The settings of a `[[destination]]` table of this kind.
    pub fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn Settings>, ConfigError> {
        Ok(Box::new(KeyAndUrl {
            key: entry.secret(self.key_setting, self.key_var)?,
            url: entry.setting(self.url_setting, self.url_var, self.default_url)?,
            sender: self.sender,
        }))
    }

    /// The destination the environment alone configures, when its key is set.
    pub fn parse_env(&self, env: &Env<'_>) -> Option<Box<dyn Settings>> {
        env.get(self.key_var).map(|key| {
            Box::new(KeyAndUrl {
                key: Secret::new(key),
                url: env
                    .get(self.url_var)
                    .unwrap_or_else(|| self.default_url.into()),
                sender: self.sender,
            }) as Box<dyn Settings>
        })
    }
}

/// What a batched destination needs to send: its key and the API's base URL.
#[derive(Debug)]
pub struct KeyAndUrl {
    pub key: Secret,
    pub url: String,
    sender: fn(String, &Secret, &str, Duration) -> Arc<dyn Destination>,
}

impl Settings for KeyAndUrl {
    fn target(&self) -> String {
        redact_url(&self.url)
    }

    fn url(&self) -> Option<&str> {
        Some(&self.url)
    }

    fn build(
        &self,
        name: String,
        _: &crate::catalog::Catalog,
        timeout: Duration,
    ) -> Arc<dyn Destination> {
        (self.sender)(name, &self.key, &self.url, timeout)
    }
}
