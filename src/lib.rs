//! `events`: emit product events onto a queue (Redis Streams or an embedded
//! SQLite file) and deliver them, reliably, to Slack, Discord, Teams,
//! Segment, PostHog, Mixpanel and signed webhooks.
//!
//! The library is the same core the `events` command uses:
//!
//! ```no_run
//! use events::{Emitter, EventType};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), events::Error> {
//! // Reads REDIS_URL (or EVENTS_DB) and the config file like the command does.
//! let mut emitter = Emitter::from_env()?;
//! let id = emitter.emit(EventType::UserSignup, json!({"email": "ada@example.com"}))?;
//! println!("emitted {id}");
//! # Ok(())
//! # }
//! ```

pub mod alert;
pub mod breaker;
pub mod catalog;
#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod cmd;
pub mod config;
pub mod dashboard;
pub mod dest;
pub mod digest;
pub mod emitter;
pub mod error;
pub mod event;
pub mod filter;
pub mod http_server;
pub mod inspect;
pub mod jsonl;
pub mod metrics;
pub mod queue;
pub mod rate;
pub mod replay;
pub mod retry;
pub mod route;
pub mod sanitize;
pub mod secret;
pub mod setup;
pub mod template;
pub mod worker;

/// The Postgres client whose transactions [`Emitter::emit_in`] writes in.
pub use ::postgres;
pub use catalog::{Catalog, EventType};
pub use emitter::Emitter;
pub use error::Error;
pub use event::Event;
pub use template::{Style, Template};

/// Renders `event`'s message with `catalog`'s template, escaped for Slack or
/// plain for a console.
pub fn render(catalog: &Catalog, event: &Event, style: Style) -> Result<String, Error> {
    Ok(catalog.render(event, style)?)
}
