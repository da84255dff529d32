//! Slack through an incoming webhook: `{"text": …}` with the message escaped
//! so no field can page a channel. Rate limited to one message a second
//! by default (Slack's limit, shared by every worker); messages that wait
//! meanwhile are joined into one, one line each and in order, so a burst
//! arrives in seconds instead of queueing for hours.

use std::time::Duration;

use serde_json::json;

use super::kind::Entry;
use super::{Answer, BatchLimit, Destination, Item, Unsendable, http};
use crate::catalog::Catalog;
use crate::config::{ConfigError, Env, redact_url};
use crate::event::Event;
use crate::secret::Secret;
use crate::template::Style;
use std::sync::Arc;

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

/// Slack's Web API.
pub const SLACK_DEFAULT_API_URL: &str = "https://slack.com/api";

/// The `slack` kind: an incoming webhook (`url_env`, `SLACK_WEBHOOK_URL`),
/// or a bot token posting to one channel (`channel`, `token_env`,
/// `api_url`).
pub struct SlackKind;

impl super::Kind for SlackKind {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["url_env", "token_env", "channel", "api_url"]
    }

    fn is_chat(&self) -> bool {
        true
    }

    /// About one message a second, as Slack documents.
    fn default_rate(&self) -> Option<crate::rate::Rate> {
        crate::rate::Rate::new(1, Duration::from_secs(1))
    }

    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn super::Settings>, ConfigError> {
        if let Some(channel) = entry.string("channel")? {
            return bot(entry, &channel);
        }
        let token_env = entry.string("token_env")?;
        if let Some(key) = token_env.or(entry.string("api_url")?) {
            return Err(entry.at(key.span(), "channel", format!("destination {:?} posts with a bot token and needs the channel to post to (channel = \"#alerts\")", entry.name)));
        }
        Ok(Box::new(SlackSettings::Webhook {
            url: entry.secret("url_env", "SLACK_WEBHOOK_URL")?,
        }))
    }

    fn parse_env(&self, env: &Env<'_>) -> Result<Option<Box<dyn super::Settings>>, ConfigError> {
        Ok(env.get("SLACK_WEBHOOK_URL").map(|url| {
            Box::new(SlackSettings::Webhook {
                url: Secret::new(url),
            }) as Box<dyn super::Settings>
        }))
    }
}

/// A Slack destination posting to `channel` with a bot token: an
/// incoming-webhook URL beside it would leave which one is meant unclear.
fn bot(
    entry: &Entry<'_>,
    channel: &toml::Spanned<String>,
) -> Result<Box<dyn super::Settings>, ConfigError> {
    let token = entry.secret("token_env", "SLACK_BOT_TOKEN")?;
    if let Some(url_env) = entry.string("url_env")? {
        return Err(entry.at(
            url_env.span(),
            "url_env",
            "a Slack destination posts either through an incoming webhook (url_env) or with a bot token to a channel (token_env and channel), not both",
        ));
    }
    let name = channel.get_ref().trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(entry.at(
            channel.span(),
            "channel",
            "the channel must be a channel name or id, such as \"#alerts\" or \"C0123456789\"",
        ));
    }
    Ok(Box::new(SlackSettings::Bot {
        token,
        channel: name.to_owned(),
        api_url: entry
            .string("api_url")?
            .map_or(SLACK_DEFAULT_API_URL.into(), toml::Spanned::into_inner),
    }))
}

/// What a Slack destination needs to send.
#[derive(Debug)]
pub enum SlackSettings {
    Webhook {
        url: Secret,
    },
    /// Slack's Web API with a bot token: one channel per destination.
    Bot {
        token: Secret,
        channel: String,
        api_url: String,
    },
}

impl super::Settings for SlackSettings {
    fn target(&self) -> String {
        match self {
            SlackSettings::Webhook { url } => redact_url(url.expose()),
            SlackSettings::Bot {
                channel, api_url, ..
            } => format!("{channel} via {}", redact_url(api_url)),
        }
    }

    fn url(&self) -> Option<&str> {
        Some(match self {
            SlackSettings::Webhook { url } => url.expose(),
            SlackSettings::Bot { api_url, .. } => api_url,
        })
    }

    fn build(&self, name: String, catalog: &Catalog, timeout: Duration) -> Arc<dyn Destination> {
        match self {
            SlackSettings::Webhook { url } => {
                Arc::new(Slack::new(name, url.clone(), catalog.clone(), timeout))
            }
            SlackSettings::Bot {
                token,
                channel,
                api_url,
            } => Arc::new(super::slack_bot::SlackBot::new(
                name,
                token.clone(),
                channel.clone(),
                api_url,
                catalog.clone(),
                timeout,
            )),
        }
    }
}
