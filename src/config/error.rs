//! What can be wrong with what was written, as values a caller can tell
//! apart: the config file (with the place as data), an environment
//! variable, or a destination that cannot be used. Every one is invalid
//! input: exit status 2.

use std::fmt;
use std::path::PathBuf;

/// Where a value was written in the config file: the file, the 1-based
/// line, and the key when one is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub key: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        match &self.key {
            Some(key) => write!(f, ": {key}"),
            None => Ok(()),
        }
    }
}

/// A bad setting or config file. Exit status 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read at all.
    #[error("cannot read the config file {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    /// The config file does not parse, or a value in it is wrong.
    #[error("{at}: {message}")]
    File { at: Location, message: String },
    /// An environment variable (or the flag standing for it) holds a value
    /// that cannot be used.
    #[error("{message}")]
    Variable { name: String, message: String },
    /// A destination cannot be used as configured (a missing or bad
    /// secret, a URL that is not http): the worker cannot start, `emit`
    /// still can.
    #[error("{message}")]
    Destination { name: String, message: String },
}

impl ConfigError {
    /// The environment variable `name` is wrong, as `message` says.
    pub fn variable(name: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Variable {
            name: name.to_owned(),
            message: message.into(),
        }
    }

    /// The destination `name` cannot be used, as `message` says.
    pub fn destination(name: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Destination {
            name: name.to_owned(),
            message: message.into(),
        }
    }

    /// Where in the config file the mistake is, if it is in the file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::File { at, .. } => Some(at),
            _ => None,
        }
    }
}
