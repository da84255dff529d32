//! The configured destinations, from the config file's `[[destination]]`
//! tables or, when it declares none, from the environment alone. The keys
//! every destination shares (`name`, `kind`, `events`, `rate`, `when`,
//! `template`, `breaker`) are read here, once; the rest of a table is its
//! kind's.

use std::sync::Arc;

use super::kind::{Entry, Kind};
use super::{DestConfig, registry};
use crate::catalog::Catalog;
use crate::config::{ConfigError, Env, Table};
use crate::filter::When;
use crate::rate::RateSetting;

/// The keys every destination's table takes.
const COMMON: [&str; 7] = [
    "name", "kind", "events", "rate", "when", "template", "breaker",
];

/// The destinations the file's `tables` declare, in order.
pub fn from_file(
    tables: &[Table],
    catalog: &Catalog,
    env: &Env<'_>,
) -> Result<Vec<DestConfig>, ConfigError> {
    let mut out: Vec<DestConfig> = Vec::new();
    for table in tables {
        let name = table.require::<String>("name")?;
        if out.iter().any(|d| &d.name == name.get_ref()) {
            return Err(table.at(
                name.span(),
                "name",
                format!("destination {:?} is declared twice", name.get_ref()),
            ));
        }
        out.push(from_table(table, catalog, env)?);
    }
    out.iter().try_for_each(check_url)?;
    Ok(out)
}

/// One destination from its table: the common keys here, the rest by its
/// kind.
fn from_table(table: &Table, catalog: &Catalog, env: &Env<'_>) -> Result<DestConfig, ConfigError> {
    let name = table.require::<String>("name")?;
    let kind_name = table.require::<String>("kind")?;
    let kind = registry::find(kind_name.get_ref()).ok_or_else(|| {
        table.at(
            kind_name.span(),
            "kind",
            format!(
                "unknown destination kind {:?} (expected {})",
                kind_name.get_ref(),
                registry::names()
            ),
        )
    })?;
    let known: Vec<&str> = COMMON.iter().chain(kind.keys()).copied().collect();
    table.only(&known, |key| taken_elsewhere(key, kind, name.get_ref()))?;
    if !valid_name(name.get_ref()) {
        return Err(table.at(
            name.span(),
            "name",
            format!(
                "{:?} is not a valid destination name (letters, digits, '_', '-' and '.')",
                name.get_ref()
            ),
        ));
    }
    let events = events(table)?;
    let entry = Entry {
        name: name.get_ref(),
        kind_span: kind_name.span(),
        table,
        env,
        catalog,
        events: &events,
    };
    let settings = kind.parse_table(&entry)?;
    let rate = match table.get::<String>("rate")? {
        Some(rate) => {
            RateSetting::parse(rate.get_ref()).map_err(|e| table.at(rate.span(), "rate", e))?
        }
        None => RateSetting::KindDefault,
    };
    let when = match table.get::<String>("when")? {
        Some(source) => {
            Some(When::compile(source.get_ref()).map_err(|e| table.at(source.span(), "when", e))?)
        }
        None => None,
    };
    let messages = match table.get::<String>("template")? {
        Some(template) => Some(
            catalog
                .with_template(&events, template.get_ref())
                .map_err(|e| table.at(template.span(), "template", e))?,
        ),
        None => None,
    };
    let breaker = match table.get::<toml::Value>("breaker")? {
        Some(value) => crate::breaker::settings::parse(value.get_ref())
            .map_err(|e| table.at(value.span(), "breaker", e))?,
        None => Some(crate::breaker::Settings::default()),
    };
    Ok(DestConfig {
        name: name.into_inner(),
        kind,
        settings: Arc::from(settings),
        events,
        rate,
        when,
        messages,
        breaker,
    })
}

/// The `events` globs; every event when absent.
fn events(table: &Table) -> Result<Vec<String>, ConfigError> {
    match table.get::<Vec<String>>("events")? {
        Some(globs) if globs.get_ref().is_empty() => Err(table.at(
            globs.span(),
            "events",
            "an empty list routes nothing; remove the key to route every event",
        )),
        Some(globs) => Ok(globs.into_inner()),
        None => Ok(vec!["*".to_owned()]),
    }
}

/// The error for `key`, which `kind` does not take, when other kinds do.
fn taken_elsewhere(key: &str, kind: &dyn Kind, name: &str) -> Option<String> {
    let takers: Vec<&str> = registry::KINDS
        .iter()
        .filter(|k| k.keys().contains(&key))
        .map(|k| k.name())
        .collect();
    let (last, rest) = takers.split_last()?;
    let takers = match rest {
        [] => (*last).to_owned(),
        _ => format!("{} or {last}", rest.join(", ")),
    };
    Some(format!(
        "only {takers} destinations take {key}; {name:?} is a {} destination",
        kind.name()
    ))
}

/// The destinations the environment alone defines, one per kind whose
/// variables are set, in the registry's order; and whether console was
/// chosen only because nothing else is configured.
pub fn from_env(env: &Env<'_>) -> Result<(Vec<DestConfig>, bool), ConfigError> {
    let mut dests = Vec::new();
    for kind in registry::KINDS {
        if let Some(settings) = kind.parse_env(env)? {
            dests.push(DestConfig::new(kind.name(), *kind, Arc::from(settings)));
        }
    }
    for dest in &dests {
        check_url(dest)?;
    }
    let fallback = dests.is_empty();
    if fallback {
        let (kind, settings) = registry::fallback();
        dests.push(DestConfig::new(kind.name(), kind, settings));
    }
    Ok((dests, fallback))
}

/// A destination's URL must be http(s); the error never shows it (a
/// webhook URL is a secret).
fn check_url(dest: &DestConfig) -> Result<(), ConfigError> {
    let Some(url) = dest.settings.url() else {
        return Ok(());
    };
    let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
    if matches!(scheme, "http" | "https") && !rest.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::destination(
            &dest.name,
            format!(
                "destination '{}' has a URL that does not start with http:// or https://",
                dest.name
            ),
        ))
    }
}

/// Destination names: letters, digits, `_`, `-` and `.` (so a name never
/// contains the `|` of a retry token).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
