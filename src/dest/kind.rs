//! What a destination kind says about itself: its name, its defaults, how
//! it reads its own `[[destination]]` table and environment variables, and
//! how it builds its sender. The kinds are listed in [`super::registry`];
//! routing and the worker only ever see these traits.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::Destination;
use crate::catalog::Catalog;
use crate::config::{ConfigError, Env, Secret, Table};
use crate::rate::Rate;

/// A kind of destination (`slack`, `webhook`, …).
pub trait Kind: Sync {
    /// Its name, as `kind = "…"` writes it; also the name of the one
    /// destination of this kind the environment alone defines.
    fn name(&self) -> &'static str;

    /// The keys its config-file table takes besides the common ones
    /// (`name`, `kind`, `events`, `rate`, `when`, `template`); any other
    /// key is an error naming its line.
    fn keys(&self) -> &'static [&'static str];

    /// Whether it posts messages people read: a replay there repeats what
    /// they have seen, and a stale one loses its value.
    fn is_chat(&self) -> bool {
        false
    }

    /// The rate limit of a destination whose config sets none: the pace
    /// the service documents, or `None` for unlimited.
    fn default_rate(&self) -> Option<Rate> {
        None
    }

    /// The attempt budget unless `EVENTS_MAX_ATTEMPTS` sets one. A stale
    /// chat notification loses its value: it gives up sooner.
    fn default_attempts(&self) -> u32 {
        if self.is_chat() { 5 } else { 10 }
    }

    /// Its settings from its config-file table (only its own keys are
    /// there), its secrets read from the variables the table names.
    fn parse_table(&self, entry: &Entry<'_>) -> Result<Box<dyn Settings>, ConfigError>;

    /// Its settings from the environment alone, when there is no config
    /// file or the file declares no destination; `None` when its variables
    /// are not set.
    fn parse_env(&self, env: &Env<'_>) -> Result<Option<Box<dyn Settings>>, ConfigError>;
}

impl fmt::Debug for dyn Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for dyn Kind {
    fn eq(&self, other: &dyn Kind) -> bool {
        self.name() == other.name()
    }
}

/// What one destination of a kind needs to send. `Debug` must never show
/// a secret (wrap them in `Secret`).
pub trait Settings: fmt::Debug + Send + Sync {
    /// Where it sends, safe to print.
    fn target(&self) -> String;

    /// The URL it sends to, which must be http(s); `None` for none.
    fn url(&self) -> Option<&str> {
        None
    }

    /// Its sender, named `name`, rendering messages from `catalog`.
    fn build(&self, name: String, catalog: &Catalog, timeout: Duration) -> Arc<dyn Destination>;
}

/// One `[[destination]]` table, for its kind to read: the common keys are
/// already read.
pub struct Entry<'a> {
    /// The destination's name.
    pub name: &'a str,
    /// Where `kind = …` is written: the line of an error about a default.
    pub kind_span: Range<usize>,
    pub table: &'a Table,
    pub env: &'a Env<'a>,
    /// The catalog, with the file's own event types.
    pub catalog: &'a Catalog,
    /// The event globs it routes.
    pub events: &'a [String],
}

impl Entry<'_> {
    /// The string value of `key`, if set.
    pub fn string(&self, key: &str) -> Result<Option<Spanned<String>>, ConfigError> {
        self.table.get(key)
    }

    /// The secret in the environment variable `key` names (`default` when
    /// the key is absent); an error naming the key's line when it is unset.
    pub fn secret(&self, key: &str, default: &str) -> Result<Secret, ConfigError> {
        let named = self.string(key)?;
        let var = named.as_ref().map_or(default, |v| v.get_ref().as_str());
        let span = named.as_ref().map_or(self.kind_span.clone(), Spanned::span);
        self.env.get(var).map(Secret::new).ok_or_else(|| {
            self.at(
                span,
                key,
                format!(
                    "destination {:?} reads its secret from the environment variable {var}, which is not set",
                    self.name
                ),
            )
        })
    }

    /// A setting that is `key` in the table, else the variable `var`, else
    /// `default`.
    pub fn setting(&self, key: &str, var: &str, default: &str) -> Result<String, ConfigError> {
        Ok(match self.string(key)? {
            Some(value) => value.into_inner(),
            None => self.env.get(var).unwrap_or_else(|| default.into()),
        })
    }

    /// An error naming the file, the line of `span` and `key`.
    pub fn at(&self, span: Range<usize>, key: &str, message: impl fmt::Display) -> ConfigError {
        self.table.at(span, key, message)
    }
}
