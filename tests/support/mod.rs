//! Shared helpers for the integration tests: a fluent builder that runs the `events` binary
//! (`cmd`), a throw-away real Redis per test (`redis`), and an in-process HTTP server standing in
//! for Slack, Segment and webhook receivers (`http`), which can also answer like a hostile
//! receiver (`hostile`).

// Every feature module picks the helpers it needs, so some are unused in any given build; one
// allow here keeps `-D warnings` green without sprinkling attributes over every helper.
#![allow(dead_code)]

pub mod backends;
pub mod browser;
pub mod cluster;
pub mod cmd;
pub mod dashboard;
pub mod deliveries;
pub mod hostile;
pub mod http;
pub mod postgres;
pub mod readonly;
pub mod redis;
pub mod sentinel;
pub mod smtp;

// Re-exported so tests can write `support::Events`; like the helpers, not all are used by every
// build. `self::` because the `redis` crate is in scope too and a bare `redis::` is ambiguous.
#[allow(unused_imports)]
pub(crate) use self::backends::on_both_backends;
#[allow(unused_imports)]
pub use self::{
    backends::Backend,
    cluster::RedisCluster,
    cmd::{Events, Outcome, Running, bin},
    deliveries::{
        LONG, ONE_SIGNUP, WEBHOOK_SECRET, eight_signups_one_bad, emit_lines, signups, slack_lines,
        webhook_ids,
    },
    hostile::Misbehaviour,
    http::{Gate, Reply, Request, Sink},
    postgres::{OwnPostgres, PostgresServer},
    redis::RedisServer,
    smtp::{Mail, SmtpServer, Step},
};
