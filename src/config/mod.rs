//! Configuration as written: flags, then the environment (with `.env`
//! already loaded by `main`), then the optional TOML file, read into plain
//! values that keep where each was written. Nothing here decides what a
//! value means: each part parses its own settings from these values, and
//! `setup` builds the parts from them once.
//!
//! Secrets (webhook URLs, write keys, signing secrets, Redis passwords)
//! live only in the environment; whoever reads one wraps it in `Secret`,
//! whose `Debug` and `Display` never show it.

mod env;
mod error;
pub mod file;

use std::path::{Path, PathBuf};

pub use crate::secret::{Secret, SigningKey, redact_url};
pub use env::Env;
pub use error::{ConfigError, Location};
pub use file::{File, Table};

/// The global options every subcommand shares, as parsed from the command
/// line and environment.
#[derive(Debug, Clone, Default)]
pub struct Global {
    pub redis_url: Option<String>,
    pub postgres_url: Option<String>,
    pub db: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

/// Everything written, before anyone reads meaning into it.
pub struct Config<'a> {
    /// The flags.
    pub global: Global,
    /// The environment.
    pub env: Env<'a>,
    /// The config file, if there is one.
    pub file: Option<File>,
}

impl<'a> Config<'a> {
    /// Reads the flags in `global`, the environment `env`, and the config
    /// file the flags or environment name (else `./events.toml`, if any).
    pub fn read(global: &Global, env: Env<'a>) -> Result<Config<'a>, ConfigError> {
        let path = global
            .config
            .clone()
            .or_else(|| env.get("EVENTS_CONFIG").map(PathBuf::from))
            .or_else(|| {
                Path::new("events.toml")
                    .exists()
                    .then(|| "events.toml".into())
            });
        let file = path.as_deref().map(File::read).transpose()?;
        Ok(Config {
            global: global.clone(),
            env,
            file,
        })
    }

    /// The config file's path, if one was read.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.source.path.as_path())
    }
}
