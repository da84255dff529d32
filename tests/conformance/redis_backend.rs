//! Redis: one server per test; each queue opened is a fresh key prefix on it.

use std::cell::Cell;
use std::time::Duration;

use events::queue::redis::RedisQueue;
use events::queue::{Queue, QueueOptions};

use super::Backend;
use crate::support::RedisServer;

pub struct RedisBackend {
    server: RedisServer,
    opened: Cell<u32>,
}

impl RedisBackend {
    pub fn new() -> RedisBackend {
        RedisBackend {
            server: RedisServer::start(),
            opened: Cell::new(0),
        }
    }

    fn prefix(&self) -> String {
        format!("{{events-{}}}", self.opened.get())
    }
}

impl Backend for RedisBackend {
    fn open(&self, lease: Duration) -> Box<dyn Queue> {
        self.opened.set(self.opened.get() + 1);
        let options = QueueOptions {
            claim_lease: lease,
            ..QueueOptions::default()
        };
        Box::new(RedisQueue::open(&self.server.url(), &self.prefix(), options).unwrap())
    }

    fn reopen(&self) -> Box<dyn Queue> {
        let options = QueueOptions {
            claim_lease: super::LONG,
            ..QueueOptions::default()
        };
        Box::new(RedisQueue::open(&self.server.url(), &self.prefix(), options).unwrap())
    }

    fn write_garbage(&self) {
        let stream = format!("{}:stream", self.prefix());
        self.server.cli(&[
            "XADD",
            &stream,
            "*",
            "type",
            "user.signup",
            "payload",
            "{not json",
        ]);
    }

    fn write_raw(&self, id: &str, kind: &str) {
        let stream = format!("{}:stream", self.prefix());
        self.server.cli(&[
            "XADD",
            &stream,
            "*",
            "id",
            id,
            "type",
            kind,
            "payload",
            r#"{"email":"a@b"}"#,
        ]);
    }

    fn write_fields(&self, written_ms: i64, seq: u64, fields: &[(&str, &str)]) {
        let stream = format!("{}:stream", self.prefix());
        let id = format!("{written_ms}-{seq}");
        let mut args = vec!["XADD", &stream, &id];
        for (k, v) in fields {
            args.extend([*k, *v]);
        }
        self.server.cli(&args);
    }

    fn write_retry(&self, token: &str, body: &str, due_ms: i64) {
        let prefix = self.prefix();
        let due = due_ms.to_string();
        self.server
            .cli(&["ZADD", &format!("{prefix}:retry"), &due, token]);
        self.server
            .cli(&["HSET", &format!("{prefix}:deliveries"), token, body]);
    }
}

conformance_tests!(RedisBackend::new());

/// On Redis the claim is one script: a retry it cannot decode is
/// dead-lettered inside it, not by a second transaction a crash could
/// separate from the claim.
#[test]
fn a_broken_retry_is_dead_lettered_by_the_claim_script_alone() {
    let b = RedisBackend::new();
    let mut q = b.open(super::LONG);
    let now = events::event::now_ms();
    b.write_retry("E2|slack", "{not json", now - 5);
    b.server.cli(&["CONFIG", "RESETSTAT"]);
    assert!(q.claim_retries(now, 10, &[]).unwrap().is_empty());
    let stats = b.server.cli(&["INFO", "commandstats"]);
    let called = |cmd: &str| {
        stats
            .lines()
            .any(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
    };
    assert!(called("evalsha") || called("eval"), "{stats}");
    assert!(!called("exec") && !called("multi"), "{stats}");
    let prefix = b.prefix();
    assert_eq!(
        b.server.cli(&["XLEN", &format!("{prefix}:dead")]).trim(),
        "1"
    );
    assert_eq!(
        b.server.cli(&["ZCARD", &format!("{prefix}:retry")]).trim(),
        "0"
    );
    assert_eq!(
        b.server
            .cli(&["HLEN", &format!("{prefix}:deliveries")])
            .trim(),
        "0"
    );
}

/// The claim script's check and the decoder above the backends agree on
/// every body: what one claims the other decodes, and what one
/// dead-letters the other refuses, for the same reason.
#[test]
fn the_claim_script_refuses_exactly_what_the_decoder_refuses() {
    let event = r#"{"id":"E","type":"a","ts":"2026-01-01T00:00:00.000Z","payload":{}}"#;
    let bodies = [
        "null".to_owned(),
        "\"text\"".to_owned(),
        "[]".to_owned(),
        "{".to_owned(),
        format!(r#"{{"event":{event},"dest":"x"}}"#),
        format!(r#"{{"event":{event},"dest":"x","attempts":-1}}"#),
        format!(r#"{{"event":{event},"dest":"x","attempts":1,"last_error":7}}"#),
        format!(r#"{{"event":{event},"dest":"x","attempts":1,"last_error":null}}"#),
        format!(r#"{{"event":{event},"dest":"x","attempts":3,"last_error":"HTTP 500"}}"#),
        format!(r#"{{"event":{event},"dest":"x","attempts":0,"extra":true}}"#),
    ];
    let b = RedisBackend::new();
    let mut q = b.open(super::LONG);
    let now = events::event::now_ms();
    for (n, body) in bodies.iter().enumerate() {
        let token = format!("E{n}|x");
        b.write_retry(&token, body, now - 1);
        let claims = q.claim_retries(now, 10, &[]).unwrap();
        let letters = q.dead_letters().unwrap();
        match events::queue::entry::decode_retry(Some(body)) {
            Ok(delivery) => {
                assert_eq!(claims.len(), 1, "{body}");
                assert_eq!(claims[0].delivery, delivery, "{body}");
                assert!(letters.is_empty(), "{body}");
                let done = events::queue::Settlement {
                    done_retries: vec![token],
                    ..Default::default()
                };
                q.settle("w", &done).unwrap();
            }
            Err(why) => {
                assert!(claims.is_empty(), "{body}");
                assert_eq!(letters.len(), 1, "{body}");
                assert_eq!(letters[0].letter.error, format!("the retry {token} {why}"));
                let dead = format!("{}:dead", b.prefix());
                b.server.cli(&["XDEL", &dead, &letters[0].key]);
            }
        }
    }
}
