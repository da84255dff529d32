//! Redis keeps a `ts` index of only the exceptional (skewed) entries; these
//! check what the shared suite cannot see: that a narrow old window reads
//! about its own entries, not the whole stream, and that trimming empties
//! the index.

use std::time::Duration;

use events::event::{format_ts_ms, now_ms};
use events::queue::prelude::*;
use events::queue::redis::RedisQueue;
use events::queue::{QueueOptions, Settlement};

use crate::support::RedisServer;

const PREFIX: &str = "{events}";

fn xadd(pipe: &mut redis::Pipeline, id_ms: i64, ts_ms: i64, n: i64) {
    pipe.cmd("XADD")
        .arg(format!("{PREFIX}:stream"))
        .arg(format!("{id_ms}-0"))
        .arg("type")
        .arg("user.signup")
        .arg("payload")
        .arg(format!(r#"{{"email":"u{n}@example.com"}}"#))
        .arg("ts")
        .arg(format_ts_ms(ts_ms))
        .ignore();
}

fn settle_all(q: &mut RedisQueue) {
    loop {
        let claimed = q.claim("w", 1000, Duration::ZERO).unwrap();
        if claimed.is_empty() {
            return;
        }
        let acks = claimed.into_iter().map(|e| e.key).collect();
        q.settle(
            "w",
            &Settlement {
                acks,
                ..Settlement::default()
            },
        )
        .unwrap();
    }
}

fn emails(q: &mut RedisQueue, from: i64, until: i64) -> Vec<String> {
    let mut out = Vec::new();
    q.history(from, until, &mut |batch| {
        out.extend(
            batch
                .into_iter()
                .map(|e| e.payload["email"].as_str().unwrap().to_owned()),
        );
        true
    })
    .unwrap();
    out
}

fn xrange_calls(server: &RedisServer) -> u64 {
    let stats = server.cli(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_xrange:calls="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

#[test]
fn a_narrow_old_window_reads_only_around_itself() {
    let server = RedisServer::start();
    let t0 = now_ms() - 10 * 86_400_000;
    let mut pipe = redis::pipe();
    for n in 0..5000 {
        xadd(&mut pipe, t0 + n * 1000, t0 + n * 1000, n);
    }
    // Written much later, with a ts inside the window.
    xadd(&mut pipe, t0 + 6_000_000, t0 + 15_500, 9999);
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    pipe.exec(&mut conn).unwrap();
    let mut q = RedisQueue::open(&server.url(), PREFIX, QueueOptions::default()).unwrap();
    // In entry-id order: the late entry comes last.
    let expected: Vec<String> = (10..20)
        .chain([9999])
        .map(|n| format!("u{n}@example.com"))
        .collect();
    // Unread: found by reading what no worker settled yet.
    assert_eq!(emails(&mut q, t0 + 10_000, t0 + 20_000), expected);

    settle_all(&mut q);
    server.cli(&["CONFIG", "RESETSTAT"]);
    assert_eq!(emails(&mut q, t0 + 10_000, t0 + 20_000), expected);
    // The window's page, the one indexed entry, and the (empty) unread
    // tail: a scan of the 5,001 entries would take at least six.
    assert!(
        xrange_calls(&server) <= 3,
        "{} XRANGE calls",
        xrange_calls(&server)
    );
}

#[test]
fn trimming_removes_skewed_entries_from_the_index() {
    let server = RedisServer::start();
    let now = now_ms();
    let mut q = RedisQueue::open(&server.url(), PREFIX, QueueOptions::default()).unwrap();
    let mut pipe = redis::pipe();
    xadd(&mut pipe, now - 1000, now - 30 * 86_400_000, 1);
    xadd(&mut pipe, now - 999, now - 999, 2);
    xadd(&mut pipe, now - 998, now + 3_600_000, 3);
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    pipe.exec(&mut conn).unwrap();
    settle_all(&mut q);
    let index = format!("{PREFIX}:ts");
    assert_eq!(
        server.cli(&["ZCARD", &index]),
        "2",
        "only the skewed entries"
    );
    assert_eq!(q.trim(now - 998).unwrap(), 2);
    assert_eq!(server.cli(&["ZCARD", &index]), "1");
    assert_eq!(q.trim(now + 1).unwrap(), 1);
    assert_eq!(server.cli(&["ZCARD", &index]), "0");
}
