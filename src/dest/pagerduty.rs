//! PagerDuty through the Events API v2: one `trigger` per event, to page
//! someone when `events.dead_letters` fires or a payment fails. The event
//! id is the `dedup_key`, so a retried or replayed event updates the one
//! incident instead of opening another. PagerDuty answers `202`; a `429`
//! waits (a minute of its rate limit, unless it says how long), other 4xx
//! are dead-lettered with PagerDuty's own words. The routing key is a
//! secret: it is never shown, not even when PagerDuty's answer quotes it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::http::{self, ErrorBody};
use super::kind::Entry;
use super::{Answer, Attempt, Destination, Item, Unsendable};
use crate::catalog::Catalog;
use crate::config::{ConfigError, Env, redact_url};
use crate::event::Event;
use crate::secret::Secret;

/// PagerDuty's own endpoint.
pub const DEFAULT_API_URL: &str = "https://events.pagerduty.com";

/// The longest `payload.summary` PagerDuty takes.
const MAX_SUMMARY_CHARS: usize = 1024;
/// The longest `payload.source` we send.
const MAX_SOURCE_CHARS: usize = 255;
/// The wait after a `429` that does not say how long: PagerDuty counts its
/// limit per minute, so retrying every second would only be refused again.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);

/// How urgent the incidents it opens are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    Critical,
    #[default]
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn parse(text: &str) -> Option<Severity> {
        Some(match text {
            "critical" => Severity::Critical,
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            "info" => Severity::Info,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a PagerDuty destination needs to send.
#[derive(Debug, Clone)]
pub struct PagerDutySettings {
    pub routing_key: Secret,
    pub severity: Severity,
    /// `https://events.pagerduty.com`, or a test server.
    pub api_url: String,
}

impl super::Settings for PagerDutySettings {
    fn target(&self) -> String {
        redact_url(&self.api_url)
    }

    fn url(&self) -> Option<&str> {
        Some(&self.api_url)
    }

    fn build(&self, name: String, catalog: &Catalog, timeout: Duration) -> Arc<dyn Destination> {
        Arc::new(PagerDuty::new(name, self, catalog.clone(), timeout))
    }
}

/// The `pagerduty` kind: its routing key from `routing_key_env`
/// (`PAGERDUTY_ROUTING_KEY`), its `severity` (default `error`), PagerDuty's
/// API unless `api_url` says otherwise. Only a config file declares one: a
/// key alone in the environment must not page someone for every event.
pub struct PagerDutyKind;

impl super::Kind for PagerDutyKind {
    fn name(&self) -> &'static str {
        "pagerduty"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["routing_key_env", "severity", "api_url"]
    }

    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn super::Settings>, ConfigError> {
        let routing_key = entry.secret("routing_key_env", "PAGERDUTY_ROUTING_KEY")?;
        let severity = match entry.string("severity")? {
            Some(severity) => Severity::parse(severity.get_ref()).ok_or_else(|| {
                entry.at(
                    severity.span(),
                    "severity",
                    format!(
                        "unknown severity {:?} (expected critical, error, warning or info)",
                        severity.get_ref()
                    ),
                )
            })?,
            None => Severity::default(),
        };
        Ok(Box::new(PagerDutySettings {
            routing_key,
            severity,
            api_url: entry
                .string("api_url")?
                .map_or(DEFAULT_API_URL.into(), toml::Spanned::into_inner),
        }))
    }

    fn parse_env(&self, _: &Env<'_>) -> Result<Option<Box<dyn super::Settings>>, ConfigError> {
        Ok(None)
    }
}

pub struct PagerDuty {
    name: String,
    routing_key: Secret,
    severity: Severity,
    /// `…/v2/enqueue`.
    endpoint: String,
    /// Where the incidents say they come from: this host's name.
    source: String,
    catalog: Catalog,
    agent: ureq::Agent,
}

impl PagerDuty {
    pub fn new(
        name: String,
        settings: &PagerDutySettings,
        catalog: Catalog,
        timeout: Duration,
    ) -> PagerDuty {
        PagerDuty {
            name,
            routing_key: settings.routing_key.clone(),
            severity: settings.severity,
            endpoint: format!("{}/v2/enqueue", settings.api_url.trim_end_matches('/')),
            source: source(),
            catalog,
            agent: http::agent(timeout),
        }
    }

    /// The Events API v2 `trigger` for `event`, whose message is `summary`.
    fn trigger(&self, event: &Event, summary: &str) -> Value {
        json!({
            "routing_key": self.routing_key.expose(),
            "event_action": "trigger",
            "dedup_key": event.id,
            "payload": {
                "summary": cut(summary, MAX_SUMMARY_CHARS),
                "source": self.source,
                "severity": self.severity.as_str(),
                "timestamp": event.ts,
                "class": event.kind,
                "custom_details": event.payload,
            },
        })
    }
}

impl Destination for PagerDuty {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        self.catalog
            .render(event, self.style())
            .map_err(Unsendable::from)
    }

    /// One event a request: an incident each.
    fn send(&self, items: &[Item]) -> Answer {
        let Some(item) = items.first() else {
            return Attempt::Delivered.into();
        };
        let body = self.trigger(&item.event, &item.body).to_string();
        let result = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json")
            .send(&body);
        let said_wait = match &result {
            Ok(response) => http::retry_after_header(response).is_some(),
            Err(_) => false,
        };
        let mut answer = http::classify_with(result, |body| ErrorBody {
            retry_after: None,
            text: Some(hide(
                pagerduty_error(body).as_deref().unwrap_or(body),
                self.routing_key.expose(),
            )),
        });
        if !said_wait && let Attempt::RetryAfter(wait, _) = &mut answer.attempt {
            *wait = DEFAULT_RATE_LIMIT_WAIT;
        }
        answer
    }
}

/// This host's name, or `events` when it has none worth showing.
fn source() -> String {
    let host = gethostname::gethostname();
    let host = host.to_string_lossy();
    let host: String = host.chars().filter(|c| !c.is_control()).collect();
    match host.trim() {
        "" => "events".into(),
        host => cut(host, MAX_SOURCE_CHARS).to_owned(),
    }
}

/// At most `max` characters of `text`, cut on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// PagerDuty's error in its own words: `{"status": "invalid event",
/// "message": "Event object is invalid", "errors": ["…"]}` becomes
/// `Event object is invalid: …`. `None` when the body is not that.
fn pagerduty_error(body: &str) -> Option<String> {
    let answer: Value = serde_json::from_str(body).ok()?;
    let message = answer
        .get("message")
        .or_else(|| answer.get("status"))?
        .as_str()?;
    let errors: Vec<&str> = answer
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| errors.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Some(if errors.is_empty() {
        message.to_owned()
    } else {
        format!("{message}: {}", errors.join("; "))
    })
}

/// `text` with every appearance of the routing key replaced, before it is
/// cut short: PagerDuty's answer is not trusted to keep the secret.
fn hide(text: &str, key: &str) -> String {
    if key.is_empty() {
        text.to_owned()
    } else {
        text.replace(key, "***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pagerduty(api_url: &str) -> PagerDuty {
        let settings = PagerDutySettings {
            routing_key: Secret::new("R0UTINGKEY"),
            severity: Severity::Warning,
            api_url: api_url.into(),
        };
        PagerDuty::new(
            "pager".into(),
            &settings,
            Catalog::builtin(),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn a_trigger_carries_the_event_and_a_summary_cut_on_a_char_boundary() {
        let mut payload = serde_json::Map::new();
        payload.insert("email".into(), json!("ada@example.com"));
        let event = Event::new("user.signup", payload);
        let summary = "é".repeat(2000);
        let trigger = pagerduty("https://events.pagerduty.com/").trigger(&event, &summary);
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(trigger["dedup_key"], event.id.as_str());
        assert_eq!(trigger["payload"]["severity"], "warning");
        assert_eq!(trigger["payload"]["timestamp"], event.ts.as_str());
        assert_eq!(trigger["payload"]["class"], "user.signup");
        assert_eq!(
            trigger["payload"]["custom_details"],
            json!({"email": "ada@example.com"})
        );
        assert_eq!(trigger["payload"]["summary"], "é".repeat(1024).as_str());
        assert!(!trigger["payload"]["source"].as_str().unwrap().is_empty());
    }

    #[test]
    fn the_endpoint_is_the_api_urls_enqueue_and_nothing_shows_the_key() {
        let pd = pagerduty("http://127.0.0.1:9/");
        assert_eq!(pd.endpoint, "http://127.0.0.1:9/v2/enqueue");
        let settings = PagerDutySettings {
            routing_key: Secret::new("R0UTINGKEY"),
            severity: Severity::default(),
            api_url: DEFAULT_API_URL.into(),
        };
        assert!(!format!("{settings:?}").contains("R0UTINGKEY"));
        assert_eq!(settings.severity, Severity::Error);
    }

    #[test]
    fn pagerdutys_error_is_read_in_its_own_words() {
        assert_eq!(
            pagerduty_error(
                r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect"]}"#
            )
            .as_deref(),
            Some("Event object is invalid: Length of 'routing_key' is incorrect")
        );
        assert_eq!(
            pagerduty_error(r#"{"status":"throttled"}"#).as_deref(),
            Some("throttled")
        );
        assert_eq!(pagerduty_error("<html>"), None);
    }

    #[test]
    fn the_routing_key_is_hidden_even_when_the_answer_quotes_it() {
        assert_eq!(hide("bad key R0UTINGKEY", "R0UTINGKEY"), "bad key ***");
    }

    #[test]
    fn severities_parse_and_default_to_error() {
        for s in ["critical", "error", "warning", "info"] {
            assert_eq!(Severity::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(Severity::parse("fatal"), None);
    }
}
