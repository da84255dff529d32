//! Discord through a channel webhook: `{"content": …}` with Markdown in
//! values escaped and `allowed_mentions` empty, so no field can ping
//! `@everyone`, a role or a user. Paced to Discord's five requests per two
//! seconds a webhook; messages that wait meanwhile are joined into one, one
//! line each and in order, within Discord's 2,000 characters. Discord's own
//! error body is read: a `429`'s JSON `retry_after` (seconds, a fraction
//! allowed) is waited for, and a refusal names its `message` and `code`.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::http::{self, ErrorBody};
use super::kind::Entry;
use super::{Answer, BatchLimit, Destination, Item, Unsendable};
use crate::catalog::Catalog;
use crate::config::{ConfigError, Env, redact_url};
use crate::event::Event;
use crate::secret::Secret;
use crate::template::Style;
use std::sync::Arc;

/// Discord refuses a message longer than this, in characters.
const MAX_CONTENT_CHARS: usize = 2000;
const MAX_LINES: usize = 20;

pub struct Discord {
    name: String,
    url: Secret,
    catalog: Catalog,
    agent: ureq::Agent,
}

impl Discord {
    pub fn new(name: String, url: Secret, catalog: Catalog, timeout: Duration) -> Discord {
        Discord {
            name,
            url,
            catalog,
            agent: http::agent(timeout),
        }
    }
}

impl Destination for Discord {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        self.catalog
            .render(event, self.style())
            .map_err(Unsendable::from)
    }

    fn style(&self) -> Style {
        Style::Discord
    }

    /// Bytes bound characters from above; with one newline between lines,
    /// a full batch stays under `MAX_CONTENT_CHARS`.
    fn batch_limit(&self) -> BatchLimit {
        BatchLimit {
            items: MAX_LINES,
            bytes: MAX_CONTENT_CHARS - MAX_LINES,
        }
    }

    fn send(&self, items: &[Item]) -> Answer {
        let body = payload(items).to_string();
        http::classify_with(
            self.agent
                .post(self.url.expose())
                .header("Content-Type", "application/json")
                .send(&body),
            read_error,
        )
    }
}

/// The message: the lines joined, cut to Discord's limit (one line can be
/// longer than it), and no mention allowed to ping.
fn payload(items: &[Item]) -> Value {
    let text = super::join_lines(items);
    let content = if text.chars().count() > MAX_CONTENT_CHARS {
        let mut cut: String = text.chars().take(MAX_CONTENT_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        text
    };
    json!({ "content": content, "allowed_mentions": { "parse": [] } })
}

/// Discord's JSON error: `{"message": "Unknown Webhook", "code": 10015}`,
/// and on a `429` `{"retry_after": 0.64, …}`.
fn read_error(body: &str) -> ErrorBody {
    let Ok(Value::Object(error)) = serde_json::from_str::<Value>(body) else {
        return ErrorBody::default();
    };
    let message = error.get("message").and_then(Value::as_str);
    let code = error.get("code").and_then(Value::as_i64);
    ErrorBody {
        retry_after: error
            .get("retry_after")
            .and_then(Value::as_number)
            .and_then(|n| http::parse_retry_after(&n.to_string(), SystemTime::now())),
        text: match (message, code) {
            (Some(message), Some(code)) => Some(format!("{message} (code {code})")),
            (Some(message), None) => Some(message.to_owned()),
            (None, Some(code)) => Some(format!("code {code}")),
            (None, None) => None,
        },
    }
}

/// The `discord` kind: a webhook URL read from `url_env` (`DISCORD_WEBHOOK_URL`).
pub struct DiscordKind;

impl super::Kind for DiscordKind {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["url_env"]
    }

    fn is_chat(&self) -> bool {
        true
    }

    /// Five per two seconds, as Discord documents.
    fn default_rate(&self) -> Option<crate::rate::Rate> {
        crate::rate::Rate::new(5, Duration::from_secs(2))
    }

    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn super::Settings>, ConfigError> {
        Ok(Box::new(DiscordSettings {
            url: entry.secret("url_env", "DISCORD_WEBHOOK_URL")?,
        }))
    }

    fn parse_env(&self, env: &Env<'_>) -> Result<Option<Box<dyn super::Settings>>, ConfigError> {
        Ok(env.get("DISCORD_WEBHOOK_URL").map(|url| {
            Box::new(DiscordSettings {
                url: Secret::new(url),
            }) as Box<dyn super::Settings>
        }))
    }
}

/// The webhook URL a Discord destination posts to.
#[derive(Debug)]
pub struct DiscordSettings {
    pub url: Secret,
}

impl super::Settings for DiscordSettings {
    fn target(&self) -> String {
        redact_url(self.url.expose())
    }

    fn url(&self) -> Option<&str> {
        Some(self.url.expose())
    }

    fn build(&self, name: String, catalog: &Catalog, timeout: Duration) -> Arc<dyn Destination> {
        Arc::new(Discord::new(
            name,
            self.url.clone(),
            catalog.clone(),
            timeout,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discords_error_body_gives_the_wait_and_the_error() {
        let said = read_error(
            r#"{"message": "You are being rate limited.", "retry_after": 0.64, "global": false}"#,
        );
        assert_eq!(said.retry_after, Some(Duration::from_millis(640)));
        assert_eq!(said.text.as_deref(), Some("You are being rate limited."));
        let said = read_error(r#"{"message": "Unknown Webhook", "code": 10015}"#);
        assert_eq!(said.text.as_deref(), Some("Unknown Webhook (code 10015)"));
        assert_eq!(said.retry_after, None);
    }

    #[test]
    fn a_body_that_is_not_discords_json_says_nothing() {
        for body in [
            "",
            "<html>bad gateway</html>",
            "[1]",
            r#"{"retry_after": -1}"#,
        ] {
            let said = read_error(body);
            assert_eq!((said.retry_after, said.text), (None, None), "{body}");
        }
        let huge = read_error(r#"{"retry_after": 1e300}"#).retry_after.unwrap();
        assert!(huge <= Duration::from_secs(3600));
    }

    #[test]
    fn a_message_longer_than_discords_limit_is_cut() {
        let event = std::sync::Arc::new(crate::event::Event::new(
            "user.signup",
            serde_json::Map::new(),
        ));
        let item = Item {
            event,
            body: "é".repeat(3000),
        };
        let content = payload(&[item])["content"].as_str().unwrap().to_owned();
        assert_eq!(content.chars().count(), MAX_CONTENT_CHARS);
        assert!(content.ends_with('…'));
    }
}
