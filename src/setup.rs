//! The one place that builds the parts from the configuration as written
//! (`config`): the catalog with the file's event types, the destinations
//! and their routes, the store's settings and the delivery tuning, each
//! part parsing its own settings. Commands and the library use what this
//! built, once; its errors still name `file:line: key`.

use std::path::PathBuf;

use crate::catalog::{self, Catalog};
use crate::config::{Config, ConfigError, Env, Global};
use crate::dest::{DestConfig, declare};
use crate::queue::{self, Backend, Queue, QueueError, QueueOptions};
use crate::route::Routes;
use crate::worker::settings::Delivery;

/// Everything a subcommand needs, checked.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Where the queue lives, its key prefix and the replicas an emit waits
    /// for.
    pub store: queue::Settings,
    pub catalog: Catalog,
    /// `EVENTS_DISABLED=1`: `emit` validates and writes nothing.
    pub disabled: bool,
    pub delivery: Delivery,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// Destinations, resolved lazily: `emit` must work in a cron job whose
    /// environment lacks the worker's secrets.
    destinations: Result<Vec<DestConfig>, ConfigError>,
    /// Whether console was chosen only because nothing else is configured.
    pub console_fallback: bool,
}

impl Setup {
    /// Builds the parts from `global` and the process environment.
    pub fn load(global: &Global) -> Result<Setup, ConfigError> {
        Setup::build(Config::read(global, Env::process())?)
    }

    /// Builds the parts with `env` as the environment.
    pub fn load_with(
        global: &Global,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Setup, ConfigError> {
        Setup::build(Config::read(global, Env::with(env))?)
    }

    /// Builds the parts from what `config` read.
    pub fn build(config: Config<'_>) -> Result<Setup, ConfigError> {
        let env = &config.env;
        let delivery = Delivery::from_env(env)?;
        let store = queue::Settings::parse(
            config.global.redis_url.as_deref(),
            config.global.postgres_url.as_deref(),
            config.global.db.as_deref(),
            &|name| env.get(name),
            QueueOptions {
                claim_lease: delivery.claim_lease,
                retention: delivery.retention,
                durability: None,
                timeout: None,
            },
        )
        .map_err(|e| ConfigError::variable(e.name, e.message))?;
        let disabled = env.flag("EVENTS_DISABLED")?.unwrap_or(false);
        let catalog = match &config.file {
            Some(file) => catalog::with_tables(Catalog::builtin(), &file.events)?,
            None => Catalog::builtin(),
        };
        let (destinations, console_fallback) = match &config.file {
            Some(file) if !file.destinations.is_empty() => {
                (declare::from_file(&file.destinations, &catalog, env), false)
            }
            _ => match declare::from_env(env) {
                Ok((dests, fallback)) => (Ok(dests), fallback),
                Err(e) => (Err(e), false),
            },
        };
        Ok(Setup {
            file: config.path().map(Into::into),
            store,
            catalog,
            disabled,
            delivery,
            destinations,
            console_fallback,
        })
    }

    /// The configured destinations, or the reason they cannot be used.
    pub fn destinations(&self) -> Result<&[DestConfig], ConfigError> {
        self.destinations.as_deref().map_err(Clone::clone)
    }

    /// The routes of the destinations, with the delivery tuning.
    pub fn routes(&self) -> Result<Routes, ConfigError> {
        Ok(Routes::new(
            self.destinations()?,
            self.delivery.max_attempts,
            self.delivery.retry_base,
        ))
    }

    /// Where the queue lives.
    pub fn backend(&self) -> &Backend {
        &self.store.backend
    }

    /// Opens the queue.
    pub fn open_queue(&self) -> Result<Box<dyn Queue>, QueueError> {
        queue::open(&self.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::Kind;

    fn load(vars: &[(&str, &str)]) -> Setup {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let global = Global {
            db: Some("/nonexistent/events.db".into()),
            config: Some("/dev/null".into()),
            ..Global::default()
        };
        Setup::load_with(&global, &|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    #[test]
    fn posthog_and_mixpanel_default_to_the_us_clouds_and_show_no_secret() {
        let config = load(&[
            ("POSTHOG_API_KEY", "phc_hidden"),
            ("MIXPANEL_TOKEN", "mp_hidden"),
            ("MIXPANEL_API_URL", "https://api-eu.mixpanel.com"),
        ]);
        let dests = config.destinations().unwrap();
        let shown: Vec<(&str, &str, String)> = dests
            .iter()
            .map(|d| (d.name.as_str(), d.kind().name(), d.target()))
            .collect();
        assert_eq!(
            shown,
            [
                ("posthog", "posthog", "https://us.i.posthog.com".into()),
                ("mixpanel", "mixpanel", "https://api-eu.mixpanel.com".into()),
            ]
        );
        let debug = format!("{dests:?}");
        assert!(!debug.contains("hidden"), "{debug}");
        let posthog = crate::dest::batch::posthog::PostHogKind;
        assert!(
            !posthog.is_chat()
                && crate::dest::batch::mixpanel::MixpanelKind
                    .default_rate()
                    .is_none()
        );
    }

    #[test]
    fn the_signing_key_is_decoded_once_at_load() {
        let config = load(&[
            ("EVENTS_WEBHOOK_URL", "https://example.com/hook"),
            ("EVENTS_WEBHOOK_SECRET", "whsec_AAEC"),
        ]);
        let dests = config.destinations().unwrap();
        assert_eq!(dests[0].kind().name(), "webhook");
        assert_eq!(dests[0].target(), "https://example.com/***");
    }

    #[test]
    fn unusable_destinations_are_a_typed_error_that_spares_emit() {
        let config = load(&[
            ("EVENTS_WEBHOOK_URL", "https://example.com/hook"),
            ("EVENTS_WEBHOOK_SECRET", "whsec_!!!"),
        ]);
        let err: ConfigError = config.destinations().unwrap_err();
        assert_eq!(
            err.to_string(),
            "EVENTS_WEBHOOK_SECRET is not a valid signing secret: expected whsec_ followed by base64"
        );
        assert!(matches!(err, ConfigError::Destination { ref name, .. } if name == "webhook"));
        // The rest of the configuration loaded: `emit` needs no destination.
        assert!(matches!(config.backend(), Backend::Sqlite { .. }));
    }

    #[test]
    fn a_bad_variable_and_a_bad_file_are_told_apart() {
        let global = Global::default();
        let err = Setup::load_with(&global, &|name| {
            (name == "EVENTS_MAX_ATTEMPTS").then(|| "0".to_owned())
        })
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::Variable { ref name, .. } if name == "EVENTS_MAX_ATTEMPTS")
        );
        let file = crate::config::File::parse(
            std::path::Path::new("events.toml"),
            "[[destination]]\nname = \"a\"\nkind = \"console\"\nrate = \"fast\"\n",
        )
        .unwrap();
        let config = Config {
            global: Global {
                db: Some("/nonexistent/events.db".into()),
                ..global
            },
            env: Env::with(&|_| None),
            file: Some(file),
        };
        let err = Setup::build(config).unwrap().destinations().unwrap_err();
        let at = err.location().expect("a place in the file");
        assert_eq!((at.line, at.key.as_deref()), (4, Some("rate")));
    }

    #[test]
    fn the_redis_client_is_made_once_at_load_and_never_shows_the_password() {
        let config = load(&[("REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0")]);
        let Backend::Redis { client, .. } = config.backend() else {
            panic!("not redis");
        };
        assert_eq!(
            client.get_connection_info().addr().to_string(),
            "127.0.0.1:6379"
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
