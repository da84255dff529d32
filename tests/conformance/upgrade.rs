//! A queue written by the previous release keeps working: its single retry
//! set (Redis) and its dead letters, counted by no one, are taken over by
//! the per-destination sets and the counts. The fixtures in
//! `tests/fixtures/upgrade` were written by that release (`redis-0.1.rdb`: keys
//! under `{events}`; `sqlite-0.1.db`: schema 1): each holds one retry to the
//! destination `retry` and two dead letters to `dead`.

use std::path::Path;

use events::event::now_ms;
use events::queue::prelude::*;
use events::queue::redis::RedisQueue;
use events::queue::sqlite::SqliteQueue;
use events::queue::{Delivery, QueueOptions, Settlement};

use super::{LONG, delivery, event, letter};
use crate::support::RedisServer;

const PREFIX: &str = "{events}";
/// When the fixtures' retries fall due, ms since the epoch.
const REDIS_DUE: i64 = 1_795_849_000_524;
const SQLITE_DUE: i64 = 1_795_849_621_816;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upgrade")
        .join(name)
}

fn options() -> QueueOptions {
    QueueOptions {
        claim_lease: LONG,
        ..QueueOptions::default()
    }
}

fn dead_in_fixture() -> Vec<(String, String, u64)> {
    vec![("dead".into(), "HTTP 404 channel_not_found".into(), 2)]
}

fn check_fixture_queue(q: &mut dyn Queue, due: i64) {
    let only = ["retry".to_owned()];
    let backlog = q.backlog(&only).unwrap();
    assert_eq!((backlog.retries, backlog.next_retry_ms), (1, Some(due)));
    let stats = q.stats().unwrap();
    assert_eq!((stats.retries, stats.next_retry_ms), (1, Some(due)));
    assert_eq!(stats.dead, dead_in_fixture());
    assert!(q.claim_retries(due - 1, 10, &only).unwrap().is_empty());
    let claims = q.claim_retries(due, 10, &only).unwrap();
    assert_eq!(claims.len(), 1);
    let Delivery { dest, attempts, .. } = &claims[0].delivery;
    assert_eq!((dest.as_str(), *attempts), ("retry", 1));
    q.settle(
        "w",
        &Settlement {
            done_retries: vec![claims[0].token.clone()],
            ..Settlement::default()
        },
    )
    .unwrap();
    assert_eq!(q.backlog(&[]).unwrap().retries, 0);
    // The dead letters are requeued like new ones, and uncounted.
    let stored = q.dead_letters().unwrap();
    assert_eq!(stored.len(), 2);
    let back: Vec<(String, Delivery)> = stored
        .iter()
        .map(|s| {
            let event = s.letter.event.clone().unwrap();
            (s.key.clone(), super::delivery(&event, "dead", 0))
        })
        .collect();
    q.requeue_dead(&back[..1], now_ms()).unwrap();
    let stats = q.stats().unwrap();
    assert_eq!(stats.dead[0].2, 1);
    assert_eq!(stats.retries, 1);
}

#[test]
fn a_redis_queue_of_the_previous_release_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("redis-0.1.rdb"), dir.path().join("dump.rdb")).unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let server = RedisServer::start_with(&["--dir", dir_arg, "--dbfilename", "dump.rdb"]);
    assert_eq!(server.cli(&["ZCARD", "{events}:retry"]).trim(), "1");
    let mut q = RedisQueue::open(&server.url(), PREFIX, options()).unwrap();
    check_fixture_queue(&mut q, REDIS_DUE);
    assert_eq!(server.cli(&["EXISTS", "{events}:retry"]).trim(), "0");
}

#[test]
fn a_sqlite_queue_of_the_previous_release_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    std::fs::copy(fixture("sqlite-0.1.db"), &path).unwrap();
    let mut q = SqliteQueue::open(&path, options()).unwrap();
    check_fixture_queue(&mut q, SQLITE_DUE);
}

/// Writes `deliveries` into the single retry set of version 0.1, due one
/// ms apart from `first_due`, with their bodies.
fn write_legacy_retries(server: &RedisServer, deliveries: &[Delivery], first_due: i64) {
    let mut pipe = redis::pipe();
    for (n, d) in deliveries.iter().enumerate() {
        let token = format!("{}|{}", d.event.id, d.dest);
        pipe.cmd("ZADD")
            .arg("{events}:retry")
            .arg(first_due + n as i64)
            .arg(&token)
            .ignore();
        pipe.cmd("HSET")
            .arg("{events}:deliveries")
            .arg(&token)
            .arg(serde_json::to_string(d).unwrap())
            .ignore();
    }
    let client = redis::Client::open(server.url()).unwrap();
    pipe.exec(&mut client.get_connection().unwrap()).unwrap();
}

/// The old single retry set, larger than one page of the move, with
/// deliveries to several destinations: every one is claimed, by a
/// worker for its destination, and counted before and after.
#[test]
fn every_retry_of_the_old_single_set_is_claimed_after_the_upgrade() {
    let server = RedisServer::start();
    let now = now_ms();
    let legacy: Vec<Delivery> = (0..2500)
        .map(|n| delivery(&event(n), if n == 7 { "slack" } else { "webhook" }, 1))
        .collect();
    write_legacy_retries(&server, &legacy, now - 10_000);

    let mut q = RedisQueue::open(&server.url(), PREFIX, options()).unwrap();
    assert_eq!(
        q.stats().unwrap().retries,
        2500,
        "counted before anything moves"
    );
    let slack = ["slack".to_owned()];
    let claims = q.claim_retries(now, 10, &slack).unwrap();
    assert_eq!(
        claims.len(),
        1,
        "found although it was not in the first page"
    );
    assert_eq!(claims[0].delivery, legacy[7]);
    assert_eq!(q.backlog(&["webhook".to_owned()]).unwrap().retries, 2499);
    assert_eq!(server.cli(&["EXISTS", "{events}:retry"]).trim(), "0");
    let mut claimed = 0;
    loop {
        let n = q.claim_retries(now, 1000, &[]).unwrap().len();
        if n == 0 {
            break;
        }
        claimed += n;
    }
    assert_eq!(claimed, 2499);
}

/// A delivery replayed while the old set still holds it, and delivered
/// before the move reaches it, is not delivered again from the old set.
#[test]
fn a_delivery_in_both_layouts_is_delivered_once() {
    let server = RedisServer::start();
    let now = now_ms();
    let legacy: Vec<Delivery> = (0..1500)
        .map(|n| delivery(&event(n), "webhook", 1))
        .collect();
    write_legacy_retries(&server, &legacy, now - 10_000);

    let mut q = RedisQueue::open(&server.url(), PREFIX, options()).unwrap();
    let last = legacy.last().unwrap().clone();
    q.enqueue(std::slice::from_ref(&last), now - 20_000)
        .unwrap();
    let webhook = ["webhook".to_owned()];
    let first = q.claim_retries(now, 1, &webhook).unwrap();
    assert_eq!(first[0].delivery, last, "the replayed one is due first");
    q.settle(
        "w",
        &Settlement {
            done_retries: vec![first[0].token.clone()],
            ..Settlement::default()
        },
    )
    .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let claims = q.claim_retries(now, 100, &webhook).unwrap();
        if claims.is_empty() {
            break;
        }
        for claim in claims {
            assert!(seen.insert(claim.token.clone()), "{} twice", claim.token);
            assert_ne!(claim.delivery.event.id, last.event.id, "delivered again");
        }
    }
    assert_eq!(seen.len(), 1499);
}

/// Dead letters written before the counts existed are counted once, by
/// the first `status`; letters added and removed before that are
/// neither lost nor counted twice.
#[test]
fn dead_letters_of_the_previous_release_are_counted_once() {
    let server = RedisServer::start();
    let now = now_ms();
    let mut pipe = redis::pipe();
    for n in 0..2500 {
        let error = if n % 2 == 0 { "HTTP 500" } else { "timed out" };
        pipe.cmd("XADD")
            .arg("{events}:dead")
            .arg("*")
            .arg(&[
                "event",
                &event(n).to_json_line(),
                "poison",
                "0",
                "dest",
                "webhook",
            ])
            .arg(&["attempts", "5", "error", error, "at", "1"])
            .ignore();
    }
    let client = redis::Client::open(server.url()).unwrap();
    pipe.exec(&mut client.get_connection().unwrap()).unwrap();
    let mut q = RedisQueue::open(&server.url(), PREFIX, options()).unwrap();
    q.settle(
        "w",
        &Settlement {
            dead: vec![letter(&event(9000), "slack", "HTTP 404", now)],
            ..Settlement::default()
        },
    )
    .unwrap();
    let first = q.dead_letters().unwrap().remove(0);
    q.requeue_dead(&[(first.key, delivery(&event(0), "webhook", 0))], now)
        .unwrap();
    let dead = q.stats().unwrap().dead;
    assert_eq!(
        dead,
        [
            ("webhook".to_owned(), "timed out".to_owned(), 1250),
            ("webhook".to_owned(), "HTTP 500".to_owned(), 1249),
            ("slack".to_owned(), "HTTP 404".to_owned(), 1),
        ]
    );
    assert_eq!(q.stats().unwrap().dead, dead, "counted once");
}
