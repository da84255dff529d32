//! The TOML config file as written: its `[[event]]` and `[[destination]]`
//! tables, every key and value with its position, so that whoever reads a
//! value can name `file:line: key` when it is wrong. What a table means is
//! its reader's business (the catalog, a destination kind), not this file's.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::{ConfigError, Location};

/// The file's path and text, shared by its tables to place their errors.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    /// An error naming the file, the line of `span` and `key`.
    pub fn at(&self, span: Range<usize>, key: &str, message: impl fmt::Display) -> ConfigError {
        ConfigError::File {
            at: Location {
                file: self.path.clone(),
                line: line_of(&self.text, span.start),
                key: Some(key.to_owned()),
            },
            message: message.to_string(),
        }
    }

    /// An error naming the file and the line of `span` only.
    fn at_line(&self, span: Range<usize>, message: impl fmt::Display) -> ConfigError {
        ConfigError::File {
            at: Location {
                file: self.path.clone(),
                line: line_of(&self.text, span.start),
                key: None,
            },
            message: message.to_string(),
        }
    }
}

/// The config file, read.
#[derive(Debug)]
pub struct File {
    pub source: Arc<Source>,
    /// The `[[event]]` tables, in order.
    pub events: Vec<Table>,
    /// The `[[destination]]` tables, in order.
    pub destinations: Vec<Table>,
}

/// The file's top level: only these two arrays of tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Layout {
    #[serde(default)]
    event: Vec<Spanned<Entries>>,
    #[serde(default)]
    destination: Vec<Spanned<Entries>>,
}

impl File {
    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<File, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        File::parse(path, &text)
    }

    /// Parses `text`, read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<File, ConfigError> {
        let source = Arc::new(Source {
            path: path.to_owned(),
            text: text.to_owned(),
        });
        let layout: Layout = toml::from_str(text)
            .map_err(|e| source.at_line(e.span().unwrap_or(0..0), e.message().trim_end()))?;
        let tables = |entries: Vec<Spanned<Entries>>| {
            entries
                .into_iter()
                .map(|t| Table {
                    source: source.clone(),
                    span: t.span(),
                    entries: t.into_inner().0,
                })
                .collect()
        };
        Ok(File {
            events: tables(layout.event),
            destinations: tables(layout.destination),
            source,
        })
    }
}

/// One table as written: its keys and values in order, with positions.
#[derive(Debug, Clone)]
pub struct Table {
    source: Arc<Source>,
    span: Range<usize>,
    entries: Vec<(Spanned<String>, Spanned<toml::Value>)>,
}

impl Table {
    /// The file it was read from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// An error naming the file, the line of `span` and `key`.
    pub fn at(&self, span: Range<usize>, key: &str, message: impl fmt::Display) -> ConfigError {
        self.source.at(span, key, message)
    }

    /// Its keys, in order, with where each is written.
    pub fn keys(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        self.entries
            .iter()
            .map(|(k, _)| (k.get_ref().as_str(), k.span()))
    }

    /// The value of `key` read as a `T`, with its position; `None` when the
    /// key is absent, an error naming the line when it is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Spanned<T>>, ConfigError> {
        let Some((_, value)) = self.entries.iter().find(|(k, _)| k.get_ref() == key) else {
            return Ok(None);
        };
        let span = value.span();
        T::deserialize(value.get_ref().clone())
            .map(|v| Some(Spanned::new(span.clone(), v)))
            .map_err(|e| self.source.at_line(span, e.message().trim_end()))
    }

    /// Like [`Table::get`], for a key the table must have.
    pub fn require<T: DeserializeOwned>(&self, key: &str) -> Result<Spanned<T>, ConfigError> {
        self.get(key)?.ok_or_else(|| {
            self.source
                .at_line(self.span.clone(), format!("missing field `{key}`"))
        })
    }

    /// Refuses the first key not in `known`, as serde's `deny_unknown_fields`
    /// words it; `other` may word it instead (a key another kind takes).
    pub fn only(
        &self,
        known: &[&str],
        other: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let Some((key, span)) = self.keys().find(|(key, _)| !known.contains(key)) else {
            return Ok(());
        };
        if let Some(message) = other(key) {
            return Err(self.source.at(span, key, message));
        }
        let expected = match known {
            [] => "there are no fields".to_owned(),
            [one] => format!("expected `{one}`"),
            _ => format!(
                "expected one of {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Err(self
            .source
            .at_line(span, format!("unknown field `{key}`, {expected}")))
    }
}

/// A table's entries in order, keys and values spanned.
struct Entries(Vec<(Spanned<String>, Spanned<toml::Value>)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Entries, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    entries.push(pair);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_config_text_gives_a_file_or_an_error(text in "\\PC{0,200}") {
            let _ = File::parse(Path::new("events.toml"), &text);
        }
    }

    fn table(text: &str) -> Table {
        let file = File::parse(Path::new("events.toml"), text).unwrap();
        file.destinations.into_iter().next().unwrap()
    }

    #[test]
    fn every_value_keeps_its_line_and_a_wrong_type_names_it() {
        let t = table("[[destination]]\nname = \"a\"\n\nurl_env = 3\n");
        assert_eq!(t.require::<String>("name").unwrap().into_inner(), "a");
        assert_eq!(
            t.get::<String>("url_env").unwrap_err().to_string(),
            "events.toml:4: invalid type: integer `3`, expected a string"
        );
        assert_eq!(
            t.require::<String>("kind").unwrap_err().to_string(),
            "events.toml:1: missing field `kind`"
        );
        assert_eq!(
            t.only(&["name", "kind"], |_| None).unwrap_err().to_string(),
            "events.toml:4: unknown field `url_env`, expected one of `name`, `kind`"
        );
        let err = t
            .only(&["name"], |k| Some(format!("not here: {k}")))
            .unwrap_err();
        assert_eq!(err.to_string(), "events.toml:4: url_env: not here: url_env");
        assert_eq!(err.location().unwrap().line, 4);
    }
}
