//! Slack through an incoming webhook: `{"text": …}` with the message escaped
//! so no field can page a channel. Rate limited to one message a second
//! by default (Slack's limit, shared by every worker); messages that wait
//! meanwhile are joined into one, one line each and in order, so a burst
//! arrives in seconds instead of queueing for hours.

use std::time::Duration;

use serde_json::json;

use super::{Answer, BatchLimit, Destination, Item, Unsendable, http};
use crate::catalog::Catalog;
use crate::event::Event;
use crate::secret::Secret;
use crate::template::Style;

/// Slack truncates long messages on display; stay well under its limit.
const MAX_MESSAGE_BYTES: usize = 3500;
const MAX_LINES: usize = 40;

pub struct Slack {
    name: String,
    url: Secret,
    catalog: Catalog,
    agent: ureq::Agent,
}

impl Slack {
    pub fn new(name: String, url: Secret, catalog: Catalog, timeout: Duration) -> Slack {
        Slack {
            name,
            url,
            catalog,
            agent: http::agent(timeout),
        }
    }
}

impl Destination for Slack {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        self.catalog
            .render(event, self.style())
            .map_err(Unsendable::from)
    }

    fn style(&self) -> Style {
        Style::Slack
    }

    fn batch_limit(&self) -> BatchLimit {
        BatchLimit {
            items: MAX_LINES,
            bytes: MAX_MESSAGE_BYTES,
        }
    }

    fn send(&self, items: &[Item]) -> Answer {
        let text = super::join_lines(items);
        let body = json!({ "text": text }).to_string();
        http::classify(
            self.agent
                .post(self.url.expose())
                .header("Content-Type", "application/json")
                .send(&body),
        )
    }
}
