//! Reloading the configuration while the worker runs (`SIGHUP`): the
//! signal handler only sets a flag; the reader notices it between reads,
//! loads the configuration again and, when it loads, routes and builds the
//! destinations anew for what it claims from then on. Deliveries already
//! handed to a lane finish there, with the destination they began with.
//!
//! What cannot change under a running worker (where the queue lives, its
//! leases and retention, timeouts, alerts) is said once as needing a
//! restart and otherwise ignored; a configuration that does not load is
//! said once, with its `file:line`, and the last good one stays in force.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::reader::Reader;
use crate::setup::Setup;

/// Loads the configuration again, as `events work` read it at start.
pub type Loader = Box<dyn Fn() -> Result<Setup, crate::Error> + Send + Sync>;

/// A reload request, and how to load the configuration it asks for.
pub struct Reload {
    requested: Arc<AtomicBool>,
    load: Loader,
}

impl Reload {
    /// Reloads with `load` each time `signal` arrives.
    pub fn on_signal(signal: libc::c_int, load: Loader) -> std::io::Result<Reload> {
        let requested = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal, Arc::clone(&requested))?;
        Ok(Reload { requested, load })
    }

    /// Whether a reload was asked for since the last call.
    pub(super) fn take(&self) -> bool {
        self.requested.swap(false, Ordering::SeqCst)
    }

    pub(super) fn load(&self) -> Result<Setup, crate::Error> {
        (self.load)()
    }
}

/// What a reload changed, for its one line in the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// The event types or their templates.
    pub catalog: bool,
}

impl Changes {
    /// The differences between the running configuration and `new`.
    pub fn between(old: &Setup, new: &Setup) -> Changes {
        let (Ok(before), Ok(after)) = (old.destinations(), new.destinations()) else {
            return Changes::default();
        };
        let find = |dests: &[crate::dest::DestConfig], name: &str| {
            dests
                .iter()
                .find(|d| d.name == name)
                .map(|d| format!("{d:?}"))
        };
        let mut changes = Changes {
            catalog: format!("{:?}", old.catalog) != format!("{:?}", new.catalog),
            ..Changes::default()
        };
        for dest in after {
            match find(before, &dest.name) {
                None => changes.added.push(dest.name.clone()),
                Some(was) if was != format!("{dest:?}") => changes.changed.push(dest.name.clone()),
                Some(_) => {}
            }
        }
        for dest in before {
            if find(after, &dest.name).is_none() {
                changes.removed.push(dest.name.clone());
            }
        }
        changes
    }

    /// One line: what was added, removed and changed, or that nothing was.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (what, names) in [
            ("added", &self.added),
            ("removed", &self.removed),
            ("changed", &self.changed),
        ] {
            if !names.is_empty() {
                parts.push(format!("destinations {what}: {}", names.join(", ")));
            }
        }
        if self.catalog {
            parts.push("event types or templates changed".into());
        }
        if parts.is_empty() {
            "no destination, route or template changed".into()
        } else {
            parts.join("; ")
        }
    }
}

/// The settings `new` changes that only a restart applies, by the name
/// each is set with.
pub fn needs_restart(old: &Setup, new: &Setup) -> Vec<&'static str> {
    let (a, b) = (&old.delivery, &new.delivery);
    let mut names = Vec::new();
    if format!("{:?}", old.store) != format!("{:?}", new.store) {
        names.push("the queue (REDIS_URL, EVENTS_POSTGRES_URL, EVENTS_DB, EVENTS_PREFIX and their settings)");
    }
    for (name, differs) in [
        ("EVENTS_HTTP_TIMEOUT_MS", a.http_timeout != b.http_timeout),
        ("EVENTS_CLAIM_LEASE_MS", a.claim_lease != b.claim_lease),
        ("EVENTS_RETENTION", a.retention != b.retention),
        (
            "EVENTS_DEAD_RETENTION",
            a.dead_retention != b.dead_retention,
        ),
        ("EVENTS_ALERTS", a.alerts != b.alerts),
        ("EVENTS_ALERT_WINDOW", a.alert_window != b.alert_window),
    ] {
        if differs {
            names.push(name);
        }
    }
    names
}

impl Reader<'_> {
    /// Reloads the configuration if a reload was asked for: on success,
    /// what is claimed from now on is routed and sent by the new one; on
    /// failure, says why once and keeps the one in force.
    pub(super) fn reload_if_asked(&mut self) {
        let Some(reload) = &self.worker.reload else {
            return;
        };
        if !reload.take() {
            return;
        }
        let loaded = reload.load().and_then(|setup| {
            setup.destinations()?;
            Ok(setup)
        });
        let new = match loaded {
            Ok(setup) => setup,
            Err(e) => {
                log::error!("cannot reload the configuration, keeping the one in force: {e}");
                return;
            }
        };
        self.note_restart(&new);
        if let Err(e) = self.apply(new) {
            log::error!("cannot reload the configuration, keeping the one in force: {e}");
        }
    }

    /// Warns of the settings only a restart applies, once for each change.
    fn note_restart(&mut self, new: &Setup) {
        let names = needs_restart(&self.worker.config, new);
        if names != self.current.restart_noted && !names.is_empty() {
            log::warn!(
                "changed settings that need a restart to apply, ignored until then: {}",
                names.join(", ")
            );
        }
        self.current.restart_noted = names;
    }

    /// Routes by `new` from now on, with lanes of its own: the old lanes
    /// finish what they were handed, with the destinations they began with.
    fn apply(&mut self, new: Setup) -> Result<(), crate::Error> {
        let delivery = &new.delivery;
        let routes = Arc::new(self.current.routes.reloaded(
            new.destinations()?,
            delivery.max_attempts,
            delivery.retry_base,
        ));
        let (served, lanes) = self.worker.start_lanes(
            &routes,
            &new.catalog,
            &self.reports,
            &self.stop,
            &self.gate,
        )?;
        if let Some(metrics) = &self.worker.metrics {
            metrics.set_routes(&routes);
        }
        // The settler learns the new routes before any delivery by them.
        self.current.shared.set(Arc::clone(&routes));
        self.routes = served;
        self.current.lanes.extend(lanes);
        let changes = Changes::between(&self.current.setup, &new);
        self.current.claims = self.worker.claims_for(&routes);
        self.current.routes = routes;
        self.current.catalog = new.catalog.clone();
        self.current.setup = new;
        log::info!("reloaded the configuration: {}", changes.describe());
        Ok(())
    }
}
