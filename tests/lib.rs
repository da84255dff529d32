//! The integration tests: one binary (linking happens once), one module per
//! feature. Tests that need Redis start their own `redis-server`; HTTP
//! destinations are tested against in-process servers that record requests.

mod support;

mod alerts;
mod breaker;
mod browser;
mod cluster;
mod config_file;
mod conformance;
mod dashboard;
mod digest;
mod discord;
mod durable_emit;
mod email;
mod emit;
mod forget;
mod generated;
mod hostile;
mod inspect;
mod metrics;
mod mixpanel;
mod outbox;
mod pagerduty;
mod pause;
mod postgres_failures;
mod postgres_migrate;
mod postgres_tls;
mod postgres_wake;
mod posthog;
mod purge;
mod rate_limit;
mod readme;
mod reload;
mod replay;
mod segment;
mod sentinel;
mod slack_bot;
mod sqlite_store;
mod status;
mod tail;
mod teams;
mod templates;
mod templates_preview;
mod untrusted_input;
mod upgrade;
mod watch;
mod webhook;
mod webhook_shape;
mod when;
mod work;
