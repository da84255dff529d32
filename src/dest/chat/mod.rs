//! The chat kinds — Slack (an incoming webhook or a bot token), Discord,
//! Teams — and what they share, written once: a message rendered with the
//! kind's own markup escaping ([`markup`]), the lines that wait joined into
//! one message under the kind's limit, posted as JSON, and the answer
//! classified. A kind says only what differs: its markup and limit, the
//! body its service takes, and how to read its service's answer.

pub mod discord;
pub mod markup;
pub mod slack;
pub mod slack_bot;
pub mod teams;

use std::time::Duration;

use serde_json::Value;

use super::http::{self, Post, Sent};
use super::{Answer, BatchLimit, Destination, Item, Unsendable};
use crate::catalog::Catalog;
use crate::event::Event;
use crate::template::Style;

/// What one chat kind says about its messages.
pub trait Chat: Send + Sync + 'static {
    /// How values are escaped in its messages.
    const STYLE: Style;
    /// How many lines one message may join.
    const LIMIT: BatchLimit;

    /// The JSON it posts for `items`, one line each, in order.
    fn body(&self, items: &[Item]) -> Value;

    /// What its service's answer means; by default, what the status says
    /// ([`http::classify`]).
    fn classify(&self, sent: Sent) -> Answer {
        http::classify(sent)
    }
}

/// A chat destination: its name, its messages, where it posts and what its
/// kind says.
pub struct ChatSender<C: Chat> {
    name: String,
    catalog: Catalog,
    post: Post,
    agent: ureq::Agent,
    chat: C,
}

impl<C: Chat> ChatSender<C> {
    pub fn new(name: String, catalog: Catalog, post: Post, timeout: Duration, chat: C) -> Self {
        ChatSender {
            name,
            catalog,
            post,
            agent: http::agent(timeout),
            chat,
        }
    }
}

impl<C: Chat> Destination for ChatSender<C> {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        self.catalog
            .render(event, C::STYLE)
            .map_err(Unsendable::from)
    }

    fn style(&self) -> Style {
        C::STYLE
    }

    fn batch_limit(&self) -> BatchLimit {
        C::LIMIT
    }

    fn send(&self, items: &[Item]) -> Answer {
        let body = self.chat.body(items).to_string();
        self.chat.classify(self.post.send(&self.agent, &body))
    }
}

/// The lines of `items` as one chat message, one line each, in order.
pub fn join_lines(items: &[Item]) -> String {
    items
        .iter()
        .map(|i| i.body.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `items` cut into the messages that carry them, in order: runs that
/// each keep to `limit` (one item at least).
pub fn messages(items: &[Item], limit: BatchLimit) -> Vec<&[Item]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let full = i - start >= limit.items || bytes + item.body.len() > limit.bytes;
        if i > start && full {
            out.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += item.body.len();
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::Payload;

    #[test]
    fn messages_keep_to_the_item_and_byte_limits() {
        let event = Arc::new(Event::new("events.digest", Payload::new()));
        let items: Vec<Item> = [5, 5, 5, 20, 1]
            .iter()
            .map(|&n| Item {
                event: Arc::clone(&event),
                body: "x".repeat(n),
            })
            .collect();
        let sizes =
            |limit| -> Vec<usize> { messages(&items, limit).iter().map(|b| b.len()).collect() };
        assert_eq!(
            sizes(BatchLimit {
                items: 2,
                bytes: 100
            }),
            [2, 2, 1]
        );
        assert_eq!(
            sizes(BatchLimit {
                items: 10,
                bytes: 15
            }),
            [3, 1, 1]
        );
        assert_eq!(
            sizes(BatchLimit {
                items: 10,
                bytes: 1000
            }),
            [5]
        );
    }
}
