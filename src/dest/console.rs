//! The console destination: each message as one line on stdout, for a
//! terminal, a log, or a machine with nothing else configured.

use std::io::Write;

use super::{Answer, Attempt, BatchLimit, Destination, Item, Unsendable};
use crate::catalog::Catalog;
use crate::event::Event;
use crate::template::Style;

pub struct Console {
    name: String,
    catalog: Catalog,
}

impl Console {
    pub fn new(name: String, catalog: Catalog) -> Console {
        Console { name, catalog }
    }
}

impl Destination for Console {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, event: &Event) -> Result<String, Unsendable> {
        self.catalog
            .render(event, Style::Plain)
            .map_err(Unsendable::from)
    }

    fn batch_limit(&self) -> BatchLimit {
        BatchLimit {
            items: 1000,
            bytes: 1 << 20,
        }
    }

    fn send(&self, items: &[Item]) -> Answer {
        let mut text = String::new();
        for item in items {
            text.push_str(&item.body);
            text.push('\n');
        }
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => Attempt::Delivered.into(),
            Err(e) => Attempt::Transient(format!("cannot write to stdout: {e}")).into(),
        }
    }
}

/// The `console` kind: no keys, `EVENTS_CONSOLE=1` in the environment, and
/// the fallback when nothing else is configured.
pub struct ConsoleKind;

impl super::Kind for ConsoleKind {
    fn name(&self) -> &'static str {
        "console"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[]
    }

    fn parse_table(
        &self,
        _: &super::kind::Entry<'_>,
    ) -> Result<Box<dyn super::Settings>, crate::config::ConfigError> {
        Ok(Box::new(ConsoleSettings))
    }

    fn parse_env(
        &self,
        env: &crate::config::Env<'_>,
    ) -> Result<Option<Box<dyn super::Settings>>, crate::config::ConfigError> {
        let on = env.flag("EVENTS_CONSOLE")?.unwrap_or(false);
        Ok(on.then(|| Box::new(ConsoleSettings) as Box<dyn super::Settings>))
    }
}

/// A console needs nothing: it writes to stdout.
#[derive(Debug)]
pub struct ConsoleSettings;

impl super::Settings for ConsoleSettings {
    fn target(&self) -> String {
        "stdout".into()
    }

    fn build(
        &self,
        name: String,
        catalog: &Catalog,
        _: std::time::Duration,
    ) -> std::sync::Arc<dyn Destination> {
        std::sync::Arc::new(Console::new(name, catalog.clone()))
    }
}
