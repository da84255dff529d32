//! Destinations: where a delivered event goes. One trait, ten kinds
//! (console, Slack, Discord, Teams, Segment, PostHog, Mixpanel, signed
//! webhooks, PagerDuty, email); the worker drives them all the same way and
//! never knows which is which.

pub mod batch;
pub mod chat;
pub mod console;
pub mod declare;
pub mod email;
pub mod http;
pub mod kind;
pub mod pagerduty;
pub mod registry;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::event::Event;
use crate::filter::When;
use crate::rate::{Rate, RateSetting};
pub use kind::{Kind, Settings};

/// The result of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Worth retrying with backoff (connection errors, timeouts, 408, 5xx).
    Transient(String),
    /// Rate limited: try again after the wait, without spending an attempt.
    RetryAfter(Duration, String),
    /// Not sent, by the worker's choice (stopping, `--only`, the destination
    /// is behind): back to the retry set after the wait, no attempt spent.
    Deferred(Duration, String),
    /// Will never succeed as sent (other 4xx, a redirect): dead-letter at once.
    Permanent(String),
    /// The items of one send fared differently (Segment refused one event of
    /// a batch): one answer per item, in order.
    Each(Vec<Answer>),
}

/// What one send came to: its outcome, and the HTTP status the receiver
/// answered with when a response came (none for a connection error, or a
/// destination that speaks no HTTP). When the items fared differently the
/// outcome is `Attempt::Each`, each item with its own status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub attempt: Attempt,
    pub status: Option<u16>,
}

impl From<Attempt> for Answer {
    /// An outcome without an HTTP status.
    fn from(attempt: Attempt) -> Answer {
        Answer {
            attempt,
            status: None,
        }
    }
}

impl Answer {
    /// The answer to item `index` of the send: its own when the items fared
    /// differently, else the one answer to them all. Never `Each`.
    pub fn of(&self, index: usize) -> Answer {
        match &self.attempt {
            Attempt::Each(answers) => match answers.get(index) {
                Some(Answer {
                    attempt: Attempt::Each(_),
                    ..
                })
                | None => Answer::from(Attempt::Transient(
                    "the destination reported no outcome for this delivery".into(),
                )),
                Some(answer) => answer.clone(),
            },
            _ => self.clone(),
        }
    }
}

impl Attempt {
    /// Whether the receiver said "too many requests" (to any item of the
    /// send): one rate-limited request, however many items it carried.
    pub fn is_rate_limited(&self) -> bool {
        match self {
            Attempt::RetryAfter(..) => true,
            Attempt::Each(each) => each.iter().any(|a| a.attempt.is_rate_limited()),
            _ => false,
        }
    }
}

/// Why a destination can never take an event as it is: the event cannot be
/// rendered, or is too large for the receiver. A permanent failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsendable(pub String);

impl From<crate::catalog::ValidationError> for Unsendable {
    fn from(err: crate::catalog::ValidationError) -> Unsendable {
        Unsendable(err.to_string())
    }
}

impl From<webhook::shape::UnfitEvent> for Unsendable {
    fn from(err: webhook::shape::UnfitEvent) -> Unsendable {
        Unsendable(err.to_string())
    }
}

/// One delivery ready to send: the event and the body piece this
/// destination made of it (a message line, a JSON document).
#[derive(Debug, Clone)]
pub struct Item {
    pub event: Arc<Event>,
    pub body: String,
}

/// How many items one send may carry.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimit {
    pub items: usize,
    /// The sum of the items' body lengths, in bytes.
    pub bytes: usize,
}

pub trait Destination: Send + Sync {
    /// Its configured name (`slack`, `billing`, …): what `--to` and `--only`
    /// name, and what retries and dead letters record.
    fn name(&self) -> &str;

    /// Makes the body piece for `event`, or says why this destination can
    /// never take it (a permanent failure).
    fn prepare(&self, event: &Event) -> Result<String, Unsendable>;

    /// How values are escaped in what it posts: its markup's
    /// (`Style::Slack`, `Style::Discord`), or none.
    fn style(&self) -> crate::template::Style {
        crate::template::Style::Plain
    }

    /// How many items one send may join.
    fn batch_limit(&self) -> BatchLimit {
        BatchLimit {
            items: 1,
            bytes: usize::MAX,
        }
    }

    /// Sends a batch; one answer for all of it, or `Attempt::Each`.
    fn send(&self, items: &[Item]) -> Answer;
}

/// One configured destination: its name and kind, what its kind read for
/// it, and the common settings routing reads.
#[derive(Debug, Clone)]
pub struct DestConfig {
    pub name: String,
    pub kind: &'static dyn Kind,
    pub settings: Arc<dyn Settings>,
    /// Globs over event types; the destination gets the events matching any.
    pub events: Vec<String>,
    /// Its `rate` in the config file: a limit, `unlimited`, or (absent)
    /// the kind's default ([`Kind::default_rate`]).
    pub rate: RateSetting,
    /// Its `when` in the config file: which of the events its globs match
    /// it wants.
    pub when: Option<When>,
    /// Its messages: the catalog with its `template` in place of each
    /// routed type's, or `None` for the shared catalog's.
    pub messages: Option<Catalog>,
    /// Its `breaker` in the config file: `None` when `"off"`.
    pub breaker: Option<crate::breaker::settings::Settings>,
}

impl DestConfig {
    /// A destination of `kind` named `name` taking every event, with the
    /// kind's defaults.
    pub fn new(name: &str, kind: &'static dyn Kind, settings: Arc<dyn Settings>) -> DestConfig {
        DestConfig {
            name: name.to_owned(),
            kind,
            settings,
            events: vec!["*".to_owned()],
            rate: RateSetting::KindDefault,
            when: None,
            messages: None,
            breaker: Some(crate::breaker::settings::Settings::default()),
        }
    }

    pub fn kind(&self) -> &'static dyn Kind {
        self.kind
    }

    /// The rate limit in force: its `rate`, else its kind's default; `None`
    /// for unlimited.
    pub fn rate_limit(&self) -> Option<Rate> {
        self.rate.or_default(self.kind.default_rate())
    }

    /// Where it sends, safe to print.
    pub fn target(&self) -> String {
        self.settings.target()
    }

    /// Builds its sender, its messages from its own `template` when it has
    /// one.
    pub fn build(&self, catalog: &Catalog, timeout: Duration) -> Arc<dyn Destination> {
        let catalog = self.messages.as_ref().unwrap_or(catalog);
        self.settings.build(self.name.clone(), catalog, timeout)
    }
}

#[cfg(test)]
impl DestConfig {
    /// A console destination named `name`, for tests.
    pub fn console(name: &str) -> DestConfig {
        DestConfig::new(
            name,
            &console::ConsoleKind,
            Arc::new(console::ConsoleSettings),
        )
    }

    /// A Slack incoming webhook named `name`, for tests.
    pub fn slack(name: &str, url: crate::secret::Secret) -> DestConfig {
        DestConfig::new(
            name,
            &chat::slack::SlackKind,
            Arc::new(chat::slack::SlackSettings::Webhook { url }),
        )
    }
}

/// Builds the destination `config` describes, its messages from its own
/// `template` when it has one.
pub fn build(config: &DestConfig, catalog: &Catalog, timeout: Duration) -> Arc<dyn Destination> {
    config.build(catalog, timeout)
}
