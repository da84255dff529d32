//! The stream: appending (idempotently too), claiming in order under a
//! lease, recovering and renewing claims, settling, the backlog of each
//! stage, and decoding raw entries, poison included, the same everywhere.

use std::thread;
use std::time::{Duration, Instant};

use events::event::{Event, now_ms};
use events::queue::{Backlog, DeadLetter, Delivery, Settlement};

use super::{
    Backend, LONG, SHORT, acks, deliveries_of, delivery, event, events_of, keys_of, letter,
};

pub fn append_and_claim_in_order(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let all = [event(0), event(1), event(2), event(3)];
    q.append(&all[..1]).unwrap();
    q.append(&all[1..]).unwrap();
    q.append(&[]).unwrap();

    let entries = q.claim("w1", 10, Duration::ZERO).unwrap();
    assert_eq!(events_of(&entries), all);
    let mut keys = keys_of(&entries);
    keys.dedup();
    assert_eq!(keys.len(), 4, "keys must be distinct: {keys:?}");
    assert!(q.claim("w1", 10, Duration::ZERO).unwrap().is_empty());
    assert!(q.claim("w2", 10, Duration::ZERO).unwrap().is_empty());
}

pub fn claim_respects_count(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let all: Vec<Event> = (0..5).map(event).collect();
    q.append(&all).unwrap();
    assert!(q.claim("w", 0, Duration::ZERO).unwrap().is_empty());
    assert_eq!(
        events_of(&q.claim("w", 2, Duration::ZERO).unwrap()),
        all[..2]
    );
    assert_eq!(
        events_of(&q.claim("w", 10, Duration::ZERO).unwrap()),
        all[2..]
    );
}

pub fn claim_waits_then_returns_nothing(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let started = Instant::now();
    let entries = q.claim("w", 10, Duration::from_millis(300)).unwrap();
    let waited = started.elapsed();
    assert!(entries.is_empty());
    assert!(
        waited >= Duration::from_millis(250),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "returned after {waited:?}");
}

pub fn expired_lease_passes_to_another_consumer(b: &dyn Backend) {
    let mut q = b.open(SHORT);
    let e = event(1);
    q.append(std::slice::from_ref(&e)).unwrap();
    let started = Instant::now();
    let first = q.claim("a", 10, Duration::ZERO).unwrap();
    assert_eq!(events_of(&first), std::slice::from_ref(&e));

    let early = q.claim("b", 10, Duration::ZERO).unwrap();
    // Only meaningful while the lease certainly still runs; a starved test
    // machine may have taken longer than the lease to get here.
    if started.elapsed() < SHORT - Duration::from_millis(20) {
        assert!(early.is_empty(), "taken over before the lease expired");
    }

    thread::sleep((SHORT * 2).saturating_sub(started.elapsed()));
    let taken = q.claim("b", 10, Duration::ZERO).unwrap();
    assert_eq!(events_of(&taken), std::slice::from_ref(&e));
    assert_eq!(taken[0].key, first[0].key);
    assert!(q.recover("a").unwrap().is_empty(), "b owns it now");
    assert_eq!(events_of(&q.recover("b").unwrap()), [e]);
}

pub fn recover_returns_own_unsettled_entries(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let all: Vec<Event> = (0..3).map(event).collect();
    q.append(&all).unwrap();
    let of_a = q.claim("a", 2, Duration::ZERO).unwrap();
    let of_b = q.claim("b", 10, Duration::ZERO).unwrap();
    assert_eq!(events_of(&of_b), all[2..]);

    let recovered = q.recover("a").unwrap();
    assert_eq!(events_of(&recovered), all[..2]);
    assert_eq!(keys_of(&recovered), keys_of(&of_a));
    assert_eq!(events_of(&q.recover("b").unwrap()), all[2..]);
    assert!(q.recover("c").unwrap().is_empty());

    q.settle("a", &acks(&of_a[..1])).unwrap();
    assert_eq!(events_of(&q.recover("a").unwrap()), all[1..2]);
    assert!(
        q.claim("c", 10, Duration::ZERO).unwrap().is_empty(),
        "held entries are not claimable before their lease expires"
    );
}

pub fn renewed_claims_outlive_their_first_lease(b: &dyn Backend) {
    let mut q = b.open(SHORT);
    q.append(&[event(1)]).unwrap();
    let entries = q.claim("slow", 1, Duration::ZERO).unwrap();
    q.enqueue(&[delivery(&event(2), "slack", 0)], now_ms())
        .unwrap();
    let retries = q.claim_retries(now_ms(), 10, &[]).unwrap();
    assert_eq!(retries.len(), 1);
    let tokens: Vec<String> = retries.iter().map(|r| r.token.clone()).collect();
    // Renewed twice, each time before the lease ran out: never taken over.
    for _ in 0..2 {
        thread::sleep(SHORT / 2);
        q.renew("slow", &keys_of(&entries), &tokens).unwrap();
    }
    thread::sleep(SHORT / 2);
    assert!(q.claim("other", 1, Duration::ZERO).unwrap().is_empty());
    assert!(q.claim_retries(now_ms(), 10, &[]).unwrap().is_empty());
    // Left alone, the lease runs out and the claims pass on.
    thread::sleep(SHORT * 2);
    assert_eq!(
        keys_of(&q.claim("other", 1, Duration::ZERO).unwrap()),
        keys_of(&entries)
    );
    assert_eq!(q.claim_retries(now_ms(), 10, &[]).unwrap().len(), 1);
}

pub fn settle_acks_and_writes_retries_and_dead_letters(b: &dyn Backend) {
    let mut q = b.open(SHORT);
    let (e1, e2) = (event(1), event(2));
    q.append(&[e1.clone(), e2.clone()]).unwrap();
    let entries = q.claim("w", 10, Duration::ZERO).unwrap();
    let due = now_ms() + 3_600_000;
    let retry = Delivery {
        last_error: Some("HTTP 503".into()),
        ..delivery(&e1, "slack", 1)
    };
    let dead = letter(&e2, "webhook", "HTTP 410 Gone", now_ms());
    q.settle(
        "w",
        &Settlement {
            acks: keys_of(&entries),
            done_retries: vec![],
            retries: vec![(retry.clone(), due)],
            dead: vec![dead.clone()],
            ..Settlement::default()
        },
    )
    .unwrap();
    q.settle("w", &Settlement::default()).unwrap();

    assert_eq!(
        q.backlog(&[]).unwrap(),
        Backlog {
            unread: 0,
            pending: 0,
            retries: 1,
            next_retry_ms: Some(due),
        }
    );
    let letters = q.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].letter, dead);
    assert_eq!(
        deliveries_of(&q.claim_retries(due, 10, &[]).unwrap()),
        [retry]
    );

    // Acknowledged entries never come back, not even after the lease.
    thread::sleep(SHORT + Duration::from_millis(100));
    assert!(q.claim("other", 10, Duration::ZERO).unwrap().is_empty());
    assert!(q.recover("w").unwrap().is_empty());
}

pub fn idempotent_append_returns_the_first_id(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let (e1, e2) = (event(1), event(2));
    assert_eq!(q.append_idempotent("order-1", &e1, LONG).unwrap(), None);
    assert_eq!(
        q.append_idempotent("order-1", &e2, LONG).unwrap(),
        Some(e1.id.clone())
    );
    assert_eq!(q.append_idempotent("order-2", &e2, LONG).unwrap(), None);
    assert_eq!(
        events_of(&q.claim("w", 10, Duration::ZERO).unwrap()),
        [e1, e2]
    );
}

pub fn expired_idempotency_key_can_be_reused(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let (e1, e2, e3) = (event(1), event(2), event(3));
    assert_eq!(
        q.append_idempotent("k", &e1, Duration::from_millis(1))
            .unwrap(),
        None
    );
    thread::sleep(Duration::from_millis(50));
    assert_eq!(q.append_idempotent("k", &e2, LONG).unwrap(), None);
    assert_eq!(
        q.append_idempotent("k", &e3, LONG).unwrap(),
        Some(e2.id.clone())
    );
    assert_eq!(
        events_of(&q.claim("w", 10, Duration::ZERO).unwrap()),
        [e1, e2]
    );
}

pub fn backlog_counts_each_stage(b: &dyn Backend) {
    let mut q = b.open(LONG);
    assert_eq!(q.backlog(&[]).unwrap(), Backlog::default());

    let all: Vec<Event> = (0..3).map(event).collect();
    q.append(&all).unwrap();
    assert_eq!(
        q.backlog(&[]).unwrap(),
        Backlog {
            unread: 3,
            ..Backlog::default()
        }
    );

    let entries = q.claim("w", 2, Duration::ZERO).unwrap();
    assert_eq!(
        q.backlog(&[]).unwrap(),
        Backlog {
            unread: 1,
            pending: 2,
            ..Backlog::default()
        }
    );

    let later = now_ms() + 3_600_000;
    q.settle(
        "w",
        &Settlement {
            acks: keys_of(&entries[..1]),
            retries: vec![(delivery(&all[0], "slack", 1), later)],
            ..Settlement::default()
        },
    )
    .unwrap();
    assert_eq!(
        q.backlog(&[]).unwrap(),
        Backlog {
            unread: 1,
            pending: 1,
            retries: 1,
            next_retry_ms: Some(later),
        }
    );

    let sooner = later - 1_800_000;
    q.enqueue(&[delivery(&all[1], "slack", 0)], sooner).unwrap();
    let rest = q.claim("w", 10, Duration::ZERO).unwrap();
    q.settle("w", &acks(&entries[1..])).unwrap();
    q.settle("w", &acks(&rest)).unwrap();
    assert_eq!(
        q.backlog(&[]).unwrap(),
        Backlog {
            unread: 0,
            pending: 0,
            retries: 2,
            next_retry_ms: Some(sooner),
        }
    );
}

pub fn poison_comes_out_of_claim(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let (good1, good2) = (event(1), event(2));
    q.append(std::slice::from_ref(&good1)).unwrap();
    b.write_garbage();
    q.append(std::slice::from_ref(&good2)).unwrap();

    let entries = q.claim("w", 10, Duration::ZERO).unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].event.as_ref().ok(), Some(&good1));
    assert_eq!(entries[2].event.as_ref().ok(), Some(&good2));
    let poison = entries[1]
        .event
        .clone()
        .expect_err("garbage must be poison");
    assert_eq!(
        poison.reason,
        "'payload' is not valid JSON: key must be a string at line 1 column 2"
    );
    assert!(
        poison.raw.contains(r#""payload":"{not json""#),
        "{}",
        poison.raw
    );

    // History cannot replay poison and leaves it out.
    let mut seen = Vec::new();
    q.history(now_ms() - 3_600_000, now_ms() + 3_600_000, &mut |batch| {
        seen.extend(batch);
        true
    })
    .unwrap();
    assert_eq!(seen, [good1, good2]);

    let dead = DeadLetter {
        event: Err(poison.raw.clone()),
        dest: String::new(),
        attempts: 0,
        error: poison.reason.clone(),
        at_ms: now_ms(),
    };
    q.settle(
        "w",
        &Settlement {
            acks: keys_of(&entries),
            dead: vec![dead.clone()],
            ..Settlement::default()
        },
    )
    .unwrap();
    let letters = q.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].letter, dead);
    assert_eq!(
        q.backlog(&[]).unwrap(),
        Backlog::default(),
        "poison is settled like any entry"
    );
}

pub fn ids_and_types_that_are_not_one_printable_word_are_poison(b: &dyn Backend) {
    let mut q = b.open(LONG);
    b.write_raw("evt-1\nevents: delivered user.signup FORGED", "user.signup");
    b.write_raw("evt 2", "user.signup");
    b.write_raw(&"x".repeat(129), "user.signup");
    b.write_raw("evt-4", "user.\u{1b}[2Ksignup");
    b.write_raw("evt-5", "user.signup");
    let entries = q.claim("w", 10, Duration::ZERO).unwrap();
    let reasons: Vec<String> = entries
        .iter()
        .map(|e| match &e.event {
            Ok(event) => format!("ok {}", event.id),
            Err(poison) => poison.reason.clone(),
        })
        .collect();
    // The same reasons, word for word, on every backend.
    assert_eq!(
        reasons,
        [
            "'id' has '\\u{a}' at byte 5; only printable ASCII without spaces is allowed",
            "'id' has '\\u{20}' at byte 3; only printable ASCII without spaces is allowed",
            "'id' is 129 bytes long; at most 128 are allowed",
            "'type' has '\\u{1b}' at byte 5; only printable ASCII without spaces is allowed",
            "ok evt-5",
        ]
    );
}

/// The same raw entries, written by each backend's own means, give the same
/// events, the same derived ids and `ts`, the same poison and the same dead
/// letters, word for word: what is poison is decided once, above the
/// backends.
pub fn the_same_raw_entries_decode_the_same_on_every_backend(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let at = 1_700_000_000_123;
    let good = r#"{"email":"a@b"}"#;
    b.write_fields(at, 3, &[("type", "user.signup"), ("payload", good)]);
    b.write_fields(
        at,
        4,
        &[
            ("id", "E5"),
            ("type", "user.signup"),
            ("ts", "2026-01-01T01:00:00+01:00"),
            ("payload", good),
        ],
    );
    b.write_fields(
        at,
        5,
        &[
            ("id", "P1"),
            ("type", "user.signup"),
            ("payload", "not json"),
        ],
    );
    b.write_fields(
        at,
        6,
        &[("id", "P2"), ("type", "user.signup"), ("payload", "[1]")],
    );
    b.write_fields(
        at,
        7,
        &[("id", ""), ("type", "user.signup"), ("payload", good)],
    );
    b.write_fields(
        at,
        8,
        &[
            ("id", "P4"),
            ("type", "user.signup"),
            ("ts", "yesterday"),
            ("payload", good),
        ],
    );
    let entries = q.claim("w", 10, Duration::ZERO).unwrap();
    let seen: Vec<String> = entries
        .iter()
        .map(|e| match &e.event {
            Ok(event) => format!("{} {} {}", event.id, event.ts, event.payload["email"]),
            Err(poison) => format!("{} | {}", poison.reason, poison.raw),
        })
        .collect();
    assert_eq!(
        seen,
        [
            r#"01HF7YAT3V001ST876EEQVRZ0N 2023-11-14T22:13:20.123Z "a@b""#,
            r#"E5 2026-01-01T00:00:00.000Z "a@b""#,
            r#"'payload' is not valid JSON: expected ident at line 1 column 2 | {"id":"P1","payload":"not json","type":"user.signup"}"#,
            r#"'payload' is JSON but not an object | {"id":"P2","payload":"[1]","type":"user.signup"}"#,
            r#"'id' is empty | {"id":"","payload":"{\"email\":\"a@b\"}","type":"user.signup"}"#,
            r#"'ts' is not an RFC 3339 time: "yesterday" | {"id":"P4","payload":"{\"email\":\"a@b\"}","ts":"yesterday","type":"user.signup"}"#,
        ]
    );

    // Dead-lettered as the worker does, the poison reads back the same.
    let dead: Vec<DeadLetter> = entries
        .iter()
        .filter_map(|e| e.event.as_ref().err())
        .map(|poison| DeadLetter {
            event: Err(poison.raw.clone()),
            dest: String::new(),
            attempts: 0,
            error: poison.reason.clone(),
            at_ms: at,
        })
        .collect();
    q.settle(
        "w",
        &Settlement {
            acks: keys_of(&entries),
            dead,
            ..Settlement::default()
        },
    )
    .unwrap();
    let letters: Vec<(String, String)> = q
        .dead_letters()
        .unwrap()
        .into_iter()
        .map(|l| (l.letter.event.unwrap_err(), l.letter.error))
        .collect();
    assert_eq!(
        letters[0],
        (
            r#"{"id":"P1","payload":"not json","type":"user.signup"}"#.to_owned(),
            "'payload' is not valid JSON: expected ident at line 1 column 2".to_owned()
        )
    );
    assert_eq!(letters.len(), 4);
}
