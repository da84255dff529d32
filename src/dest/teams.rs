//! Microsoft Teams through a Workflows (Power Automate) webhook: an Adaptive
//! Card message carrying the text, one `TextBlock` a line, values escaped
//! for the card's Markdown. Messages that wait while one is in flight are
//! joined into one card, in order, well under Teams' 28 KB message limit. Workflows answer `202 Accepted`; any
//! 2xx is delivered.

use std::time::Duration;

use serde_json::{Value, json};

use super::kind::Entry;
use super::{Answer, BatchLimit, Destination, Item, Unsendable, http};
use crate::catalog::Catalog;
use crate::config::{ConfigError, Env, redact_url};
use crate::event::Event;
use crate::secret::Secret;
use crate::template::Style;
use std::sync::Arc;

/// The lines' bytes a card may carry: with every byte doubled by JSON
/// escaping and each line's `TextBlock` around it, the message stays under
/// Teams' 28 KB.
const MAX_TEXT_BYTES: usize = 12_000;
const MAX_LINES: usize = 50;

pub struct Teams {
    name: String,
    url: Secret,
    catalog: Catalog,
    agent: ureq::Agent,
}

impl Teams {
    pub fn new(name: String, url: Secret, catalog: Catalog, timeout: Duration) -> Teams {
        Teams {
            name,
            url,
            catalog,
            agent: http::agent(timeout),
        }
    }
}

impl Destination for Teams {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        self.catalog
            .render(event, self.style())
            .map_err(Unsendable::from)
    }

    fn style(&self) -> Style {
        Style::Teams
    }

    fn batch_limit(&self) -> BatchLimit {
        BatchLimit {
            items: MAX_LINES,
            bytes: MAX_TEXT_BYTES,
        }
    }

    fn send(&self, items: &[Item]) -> Answer {
        let body = payload(items).to_string();
        http::classify(
            self.agent
                .post(self.url.expose())
                .header("Content-Type", "application/json")
                .send(&body),
        )
    }
}

/// The Workflows message: one Adaptive Card, a wrapped `TextBlock` a line.
fn payload(items: &[Item]) -> Value {
    let blocks: Vec<Value> = items
        .iter()
        .map(|i| json!({ "type": "TextBlock", "text": i.body, "wrap": true }))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "type": "AdaptiveCard",
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "version": "1.4",
                "body": blocks,
            },
        }],
    })
}

/// The `teams` kind: a webhook URL read from `url_env` (`TEAMS_WEBHOOK_URL`).
pub struct TeamsKind;

impl super::Kind for TeamsKind {
    fn name(&self) -> &'static str {
        "teams"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["url_env"]
    }

    fn is_chat(&self) -> bool {
        true
    }

    /// Four a second, as Teams documents.
    fn default_rate(&self) -> Option<crate::rate::Rate> {
        crate::rate::Rate::new(4, Duration::from_secs(1))
    }

    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn super::Settings>, ConfigError> {
        Ok(Box::new(TeamsSettings {
            url: entry.secret("url_env", "TEAMS_WEBHOOK_URL")?,
        }))
    }

    fn parse_env(&self, env: &Env<'_>) -> Result<Option<Box<dyn super::Settings>>, ConfigError> {
        Ok(env.get("TEAMS_WEBHOOK_URL").map(|url| {
            Box::new(TeamsSettings {
                url: Secret::new(url),
            }) as Box<dyn super::Settings>
        }))
    }
}

/// The webhook URL a Teams destination posts to.
#[derive(Debug)]
pub struct TeamsSettings {
    pub url: Secret,
}

impl super::Settings for TeamsSettings {
    fn target(&self) -> String {
        redact_url(self.url.expose())
    }

    fn url(&self) -> Option<&str> {
        Some(self.url.expose())
    }

    fn build(&self, name: String, catalog: &Catalog, timeout: Duration) -> Arc<dyn Destination> {
        Arc::new(Teams::new(name, self.url.clone(), catalog.clone(), timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_batch_of_the_worst_text_fits_teams_limit() {
        let event = std::sync::Arc::new(Event::new("user.signup", serde_json::Map::new()));
        let line = "\"\\".repeat(MAX_TEXT_BYTES / MAX_LINES / 2);
        let items: Vec<Item> = (0..MAX_LINES)
            .map(|_| Item {
                event: event.clone(),
                body: line.clone(),
            })
            .collect();
        assert!(payload(&items).to_string().len() < 28 * 1000);
    }
}
