//! The destination kinds, one line each.
//!
//! Adding a kind is its file (or folder) under `src/dest/` plus one line
//! here, and nothing else:
//!
//! 1. In `src/dest/<kind>.rs` (declared `pub mod <kind>;` in
//!    `dest/mod.rs`), write the sender (`impl Destination`), a
//!    settings value (`impl Settings`: its safe `target()`, its `url()`
//!    checked as http(s), and `build()`), and a unit struct implementing
//!    [`Kind`]: its `name()`, the table `keys()` it takes besides the
//!    common `name`, `kind`, `events`, `rate`, `when` and `template`,
//!    `is_chat()`, `default_rate()` and `default_attempts()` when not the
//!    defaults, `parse_table()` (secrets through `Entry::secret`, errors
//!    through `Entry::at` so they name `file:line: key`), and `parse_env()`
//!    for the one destination its variables define without a config file.
//! 2. Add `&<kind>::<Kind>,` to [`KINDS`] below (its module is already in
//!    scope). The order is the order of the destinations the environment
//!    alone defines, and of the kinds an unknown `kind` lists.

use std::sync::Arc;

use super::kind::{Kind, Settings};
// Every kind's module, so that adding a kind is its one line in `KINDS`.
use super::*;

/// Every kind, in order.
pub static KINDS: &[&dyn Kind] = &[
    &slack::SlackKind,
    &discord::DiscordKind,
    &teams::TeamsKind,
    &segment::SegmentKind,
    &posthog::PostHogKind,
    &mixpanel::MixpanelKind,
    &webhook::WebhookKind,
    &pagerduty::PagerDutyKind,
    &email::EmailKind,
    &console::ConsoleKind,
];

/// The kind named `name`.
pub fn find(name: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.name() == name)
}

/// The destination used when nothing else is configured: stdout.
pub fn fallback() -> (&'static dyn Kind, Arc<dyn Settings>) {
    (&console::ConsoleKind, Arc::new(console::ConsoleSettings))
}

/// The kinds' names as a list in prose: `a, b or c`.
pub fn names() -> String {
    let names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}
