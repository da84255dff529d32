//! One behavioural suite for every queue backend. The worker, `emit`,
//! `replay` and `status` are written against the `Queue` trait alone, so the
//! backends must agree on every observable detail; writing the checks once
//! and running them against each backend is what keeps Redis and SQLite from
//! drifting apart.
//!
//! A backend joins by implementing [`Backend`] and invoking
//! `conformance_tests!(name, BackendValue)` here, which generates one
//! `#[test]` per check so a failure names the check and the backend.

use std::thread;
use std::time::{Duration, Instant};

use events::event::{Event, Payload, format_ts_ms, now_ms};
use events::queue::{
    Admin, Backlog, Consumer, ConsumerHeld, ConsumerStats, DeadFilter, DeadLetter, Delivery,
    Describe, Producer, Queue, QueueError, RetryClaim, Settlement, StreamEntry,
};
use events::rate::Rate;

/// Room for any check to finish without a lease running out.
const LONG: Duration = Duration::from_secs(60);

/// A lease short enough to watch expire.
const SHORT: Duration = Duration::from_millis(200);

/// A queue implementation under test.
pub trait Backend {
    /// Opens a fresh, empty queue with the given claim lease.
    fn open(&self, lease: Duration) -> Box<dyn Queue>;

    /// A second connection to the queue opened last, as another worker has.
    fn reopen(&self) -> Box<dyn Queue>;

    /// Appends an entry that cannot be decoded into an event to the end of
    /// the stream of the queue opened last, by backend-specific means, with
    /// an entry time of now.
    fn write_garbage(&self);

    /// Appends an entry with this `id` and `type` (and a valid payload) to
    /// the stream of the queue opened last, by backend-specific means.
    fn write_raw(&self, id: &str, kind: &str);

    /// Appends an entry with exactly these fields (a field left out is a
    /// NULL column on SQLite), written at `written_ms` as its `seq`-th entry
    /// (Redis: the entry id `written_ms-seq`; SQLite: the row `seq` with
    /// that write time), to the queue opened last. Entries are written in
    /// increasing order.
    fn write_fields(&self, written_ms: i64, seq: u64, fields: &[(&str, &str)]);

    /// Puts a retry `token` with this delivery text, due at `due_ms`,
    /// straight into the retry set of the queue opened last.
    fn write_retry(&self, token: &str, body: &str, due_ms: i64);
}

/// Generates one `#[test]` per check for a backend.
///
/// `conformance_tests!(redis, RedisBackend::new());` at the top level of this
/// file makes a module `redis`; `conformance_tests!(SqliteBackend::new());`
/// inside a module that is a direct child of this file puts the tests in that
/// module, next to the backend's own tests. The expression is evaluated once
/// per test, so each test gets its own backend.
macro_rules! conformance_tests {
    (@checks $backend:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                super::$check(&$backend);
            }
        )*
    };
    ($module:ident, $backend:expr $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            conformance_tests!($backend);
        }
    };
    ($backend:expr $(,)?) => {
        conformance_tests!(@checks $backend;
            append_and_claim_in_order,
            claim_respects_count,
            claim_waits_then_returns_nothing,
            expired_lease_passes_to_another_consumer,
            recover_returns_own_unsettled_entries,
            settle_acks_and_writes_retries_and_dead_letters,
            claim_retries_only_due_and_leases_them,
            rescheduled_retry_keeps_its_attempts,
            retries_can_be_limited_to_destinations,
            idempotent_append_returns_the_first_id,
            expired_idempotency_key_can_be_reused,
            history_returns_the_exact_time_window,
            history_stops_when_visit_says_so,
            history_selects_by_ts_whatever_the_write_time,
            trim_goes_by_write_time_not_ts,
            enqueued_deliveries_are_claimed_as_retries,
            requeue_dead_moves_letters_to_retries,
            backlog_counts_each_stage,
            stats_describe_the_pipeline,
            trim_removes_only_acked_history,
            poison_comes_out_of_claim,
            ids_and_types_that_are_not_one_printable_word_are_poison,
            leave_forgets_only_consumers_that_hold_nothing,
            renewed_claims_outlive_their_first_lease,
            a_delivery_is_scheduled_once_per_event_and_destination,
            a_consumer_name_is_held_by_one_holder_until_released_or_expired,
            the_same_raw_entries_decode_the_same_on_every_backend,
            a_retry_that_cannot_be_decoded_is_dead_lettered_in_the_claim,
            claims_for_some_destinations_pass_over_the_others,
            dead_letter_counts_follow_the_letters,
            purged_dead_letters_are_the_filtered_ones_and_leave_the_counts_right,
            a_rate_limit_is_shared_by_every_connection,
        );
    };
}

fn event(n: i64) -> Event {
    let mut payload = Payload::new();
    payload.insert("n".into(), n.into());
    payload.insert("email".into(), format!("user{n}@example.com").into());
    Event::new("user.signup", payload)
}

fn event_at(ts_ms: i64, n: i64) -> Event {
    Event {
        ts: format_ts_ms(ts_ms),
        ..event(n)
    }
}

fn delivery(event: &Event, dest: &str, attempts: u32) -> Delivery {
    Delivery {
        event: event.clone(),
        dest: dest.into(),
        attempts,
        last_error: None,
    }
}

fn letter(event: &Event, dest: &str, error: &str, at_ms: i64) -> DeadLetter {
    DeadLetter {
        event: Ok(event.clone()),
        dest: dest.into(),
        attempts: 5,
        error: error.into(),
        at_ms,
    }
}

fn events_of(entries: &[StreamEntry]) -> Vec<Event> {
    entries
        .iter()
        .map(|entry| match &entry.event {
            Ok(event) => event.clone(),
            Err(poison) => panic!("entry {} is poison: {poison:?}", entry.key),
        })
        .collect()
}

fn keys_of(entries: &[StreamEntry]) -> Vec<String> {
    entries.iter().map(|entry| entry.key.clone()).collect()
}

fn deliveries_of(claims: &[RetryClaim]) -> Vec<Delivery> {
    claims.iter().map(|claim| claim.delivery.clone()).collect()
}

fn acks(entries: &[StreamEntry]) -> Settlement {
    Settlement {
        acks: keys_of(entries),
        ..Settlement::default()
    }
}

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
            attempts: vec![],
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

pub fn claim_retries_only_due_and_leases_them(b: &dyn Backend) {
    let mut q = b.open(SHORT);
    let (e1, e2) = (event(1), event(2));
    let now = now_ms();
    let due = delivery(&e1, "slack", 1);
    let later = delivery(&e2, "slack", 1);
    q.enqueue(std::slice::from_ref(&due), now - 1000).unwrap();
    q.enqueue(std::slice::from_ref(&later), now + 3_600_000)
        .unwrap();

    let started = Instant::now();
    let claims = q.claim_retries(now_ms(), 10, &[]).unwrap();
    assert_eq!(deliveries_of(&claims), std::slice::from_ref(&due));
    let again = q.claim_retries(now_ms(), 10, &[]).unwrap();
    if started.elapsed() < SHORT - Duration::from_millis(20) {
        assert!(again.is_empty(), "a leased retry was handed out twice");
    }
    assert_eq!(
        q.backlog(&[]).unwrap().retries,
        2,
        "leased retries still count"
    );

    thread::sleep((SHORT * 2).saturating_sub(started.elapsed()));
    let reclaimed = q.claim_retries(now_ms(), 10, &[]).unwrap();
    assert_eq!(deliveries_of(&reclaimed), [due]);
    assert_eq!(reclaimed[0].token, claims[0].token);

    q.settle(
        "w",
        &Settlement {
            done_retries: vec![reclaimed[0].token.clone()],
            ..Settlement::default()
        },
    )
    .unwrap();
    assert_eq!(q.backlog(&[]).unwrap().retries, 1);
    assert_eq!(
        deliveries_of(&q.claim_retries(now + 7_200_000, 10, &[]).unwrap()),
        [later]
    );
}

pub fn rescheduled_retry_keeps_its_attempts(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let e = event(1);
    q.enqueue(&[delivery(&e, "segment", 2)], now_ms() - 1)
        .unwrap();
    let claims = q.claim_retries(now_ms(), 10, &[]).unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].delivery.attempts, 2);

    // The worker finishes the claim and reschedules the same delivery, in one
    // settlement: the new retry must survive the removal of the old claim.
    let next = Delivery {
        attempts: 3,
        last_error: Some("HTTP 503".into()),
        ..claims[0].delivery.clone()
    };
    q.settle(
        "w",
        &Settlement {
            done_retries: vec![claims[0].token.clone()],
            retries: vec![(next.clone(), now_ms() - 1)],
            ..Settlement::default()
        },
    )
    .unwrap();
    assert_eq!(q.backlog(&[]).unwrap().retries, 1);
    assert_eq!(
        deliveries_of(&q.claim_retries(now_ms(), 10, &[]).unwrap()),
        [next]
    );
}

pub fn retries_can_be_limited_to_destinations(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let (e1, e2) = (event(1), event(2));
    let now = now_ms();
    let slack = [delivery(&e1, "slack", 0), delivery(&e2, "slack", 0)];
    let segment = delivery(&e1, "segment", 0);
    q.enqueue(&slack[..1], now - 3000).unwrap();
    q.enqueue(std::slice::from_ref(&segment), now - 2000)
        .unwrap();
    q.enqueue(&slack[1..], now - 1000).unwrap();
    q.append(&[event(3)]).unwrap();
    let only = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();

    assert_eq!(
        q.backlog(&only(&["segment"])).unwrap(),
        Backlog {
            unread: 1,
            pending: 0,
            retries: 1,
            next_retry_ms: Some(now - 2000),
        }
    );
    assert_eq!(
        q.backlog(&only(&["nowhere"])).unwrap(),
        Backlog {
            unread: 1,
            ..Backlog::default()
        },
        "the filter applies to retries only"
    );
    assert_eq!(q.backlog(&[]).unwrap().retries, 3);
    assert_eq!(q.backlog(&only(&["slack", "segment"])).unwrap().retries, 3);

    // Filtered before counting: the older slack retry does not use the room.
    let claims = q.claim_retries(now, 1, &only(&["segment"])).unwrap();
    assert_eq!(deliveries_of(&claims), [segment]);
    assert!(
        q.claim_retries(now, 10, &only(&["nowhere"]))
            .unwrap()
            .is_empty()
    );
    let mut rest = deliveries_of(&q.claim_retries(now, 10, &[]).unwrap());
    rest.sort_by(|a, b| a.event.id.cmp(&b.event.id));
    let mut expected = slack.to_vec();
    expected.sort_by(|a, b| a.event.id.cmp(&b.event.id));
    assert_eq!(rest, expected);
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

pub fn history_returns_the_exact_time_window(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let t = 1_700_000_000_000;
    let all: Vec<Event> = (0..5).map(|i| event_at(t + i * 1000, i)).collect();
    q.append(&all).unwrap();

    let mut seen = Vec::new();
    q.history(t + 1000, t + 3000, &mut |batch| {
        seen.extend(batch);
        true
    })
    .unwrap();
    assert_eq!(seen, all[1..3], "from is inclusive, until exclusive");

    let mut none = Vec::new();
    q.history(t + 1001, t + 1002, &mut |batch| {
        none.extend(batch);
        true
    })
    .unwrap();
    assert!(none.is_empty());
}

pub fn history_stops_when_visit_says_so(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let all: Vec<Event> = (0..1500).map(event).collect();
    q.append(&all).unwrap();
    let window = (now_ms() - 3_600_000, now_ms() + 3_600_000);

    let mut seen = Vec::new();
    q.history(window.0, window.1, &mut |batch| {
        assert!(!batch.is_empty(), "batches are never empty");
        seen.extend(batch);
        true
    })
    .unwrap();
    assert_eq!(seen, all);

    let mut calls = 0;
    q.history(window.0, window.1, &mut |_| {
        calls += 1;
        false
    })
    .unwrap();
    assert_eq!(calls, 1);
}

/// Every event of the window, by id (the backends may order differently).
fn window(q: &mut Box<dyn Queue>, from_ms: i64, until_ms: i64) -> Vec<String> {
    let mut ids = Vec::new();
    q.history(from_ms, until_ms, &mut |batch| {
        ids.extend(batch.into_iter().map(|e| e.id));
        true
    })
    .unwrap();
    ids.sort();
    ids
}

/// `history` selects by `ts` exactly, whether `ts` is ahead of the time the
/// event was written, behind it (a backfill) or close to it, and whether the
/// event was already delivered or not.
pub fn history_selects_by_ts_whatever_the_write_time(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let now = now_ms();
    let (hour, day) = (3_600_000, 86_400_000);
    let future = event_at(now + 2 * hour, 1);
    let past = event_at(now - 3 * day, 2);
    let near = event_at(now - 120_000, 3);
    let current = event_at(now, 4);
    q.append(&[future.clone(), past.clone(), near.clone(), current.clone()])
        .unwrap();
    let settled = q.claim("w", 10, Duration::ZERO).unwrap();
    assert_eq!(settled.len(), 4);
    q.settle("w", &acks(&settled)).unwrap();
    // And the same kinds of event, never read by a worker.
    let unread_future = event_at(now + 2 * hour + 500, 5);
    let unread_past = event_at(now - 3 * day + 500, 6);
    q.append(&[unread_future.clone(), unread_past.clone()])
        .unwrap();

    let ids = |events: &[&Event]| {
        let mut ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        window(&mut q, now + 2 * hour - 1000, now + 2 * hour + 1000),
        ids(&[&future, &unread_future]),
        "a ts ahead of its write time"
    );
    assert_eq!(
        window(&mut q, now - 3 * day - 1000, now - 3 * day + 1000),
        ids(&[&past, &unread_past]),
        "a ts behind its write time"
    );
    assert_eq!(
        window(&mut q, now - 180_000, now + 1),
        ids(&[&near, &current]),
        "a ts close to its write time"
    );
    assert_eq!(window(&mut q, now - 2 * day, now - hour), ids(&[]));
    assert_eq!(
        window(&mut q, now - 4 * day, now + 3 * hour),
        ids(&[
            &future,
            &past,
            &near,
            &current,
            &unread_future,
            &unread_past
        ])
    );
    // Exact bounds: from inclusive, until exclusive.
    assert_eq!(
        window(&mut q, now + 2 * hour, now + 2 * hour + 500),
        ids(&[&future])
    );
}

/// History is kept by the time each event was written: a backfilled event
/// (an old `ts`) stays as long as any other, on both backends.
pub fn trim_goes_by_write_time_not_ts(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let now = now_ms();
    let backfilled = event_at(now - 40 * 86_400_000, 1);
    let future = event_at(now + 3_600_000, 2);
    q.append(&[backfilled.clone(), future.clone()]).unwrap();
    let claimed = q.claim("w", 10, Duration::ZERO).unwrap();
    q.settle("w", &acks(&claimed)).unwrap();

    assert_eq!(
        q.trim(now - 30 * 86_400_000).unwrap(),
        0,
        "written just now"
    );
    assert_eq!(window(&mut q, now - 41 * 86_400_000, now + 7_200_000), {
        let mut ids = vec![backfilled.id.clone(), future.id.clone()];
        ids.sort();
        ids
    });
    assert_eq!(q.trim(now_ms() + 1000).unwrap(), 2, "written before then");
    assert_eq!(
        window(&mut q, now - 41 * 86_400_000, now + 7_200_000),
        Vec::<String>::new(),
        "the index of skewed events goes with them"
    );
}

pub fn enqueued_deliveries_are_claimed_as_retries(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let (e1, e2) = (event(1), event(2));
    let now = now_ms();
    let now_due = [delivery(&e1, "slack", 0), delivery(&e1, "segment", 0)];
    q.enqueue(&now_due, now - 1).unwrap();
    q.enqueue(&[delivery(&e2, "slack", 0)], now + 3_600_000)
        .unwrap();
    q.enqueue(&[], now).unwrap();

    let claims = q.claim_retries(now, 10, &[]).unwrap();
    let mut got = deliveries_of(&claims);
    got.sort_by(|a, b| a.dest.cmp(&b.dest));
    assert_eq!(got, [now_due[1].clone(), now_due[0].clone()]);
    assert_ne!(claims[0].token, claims[1].token);
    assert!(q.claim_retries(now, 10, &[]).unwrap().is_empty());
    let backlog = q.backlog(&[]).unwrap();
    assert_eq!((backlog.unread, backlog.retries), (0, 3));
}

pub fn requeue_dead_moves_letters_to_retries(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let (e1, e2) = (event(1), event(2));
    let now = now_ms();
    let (l1, l2) = (
        letter(&e1, "slack", "HTTP 404", now - 10),
        letter(&e2, "webhook", "timeout", now),
    );
    q.settle(
        "w",
        &Settlement {
            dead: vec![l1.clone(), l2.clone()],
            ..Settlement::default()
        },
    )
    .unwrap();
    let stored = q.dead_letters().unwrap();
    let letters: Vec<DeadLetter> = stored.iter().map(|s| s.letter.clone()).collect();
    assert_eq!(letters, [l1, l2.clone()], "oldest first");
    assert_ne!(stored[0].key, stored[1].key);

    let d1 = delivery(&e1, "slack", 0);
    q.requeue_dead(&[(stored[0].key.clone(), d1.clone())], now - 1)
        .unwrap();
    let left = q.dead_letters().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].letter, l2);
    assert_eq!(q.backlog(&[]).unwrap().retries, 1);
    assert_eq!(deliveries_of(&q.claim_retries(now, 10, &[]).unwrap()), [d1]);

    let d2 = delivery(&e2, "webhook", 0);
    q.requeue_dead(&[(stored[1].key.clone(), d2)], now + 1000)
        .unwrap();
    assert!(q.dead_letters().unwrap().is_empty());
    assert_eq!(q.backlog(&[]).unwrap().retries, 2);
    assert!(q.stats().unwrap().dead.is_empty());
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

pub fn a_delivery_is_scheduled_once_per_event_and_destination(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let e = event(1);
    let later = now_ms() + 3_600_000;
    // Failing, then replayed while it waits: one delivery, rescheduled.
    q.settle(
        "w",
        &Settlement {
            retries: vec![(delivery(&e, "slack", 3), later)],
            ..Settlement::default()
        },
    )
    .unwrap();
    q.enqueue(
        &[delivery(&e, "slack", 0), delivery(&e, "segment", 0)],
        now_ms(),
    )
    .unwrap();
    assert_eq!(q.backlog(&[]).unwrap().retries, 2);
    let mut claims = q.claim_retries(now_ms(), 10, &[]).unwrap();
    claims.sort_by(|a, b| a.delivery.dest.cmp(&b.delivery.dest));
    let dests: Vec<(&str, u32)> = claims
        .iter()
        .map(|c| (c.delivery.dest.as_str(), c.delivery.attempts))
        .collect();
    assert_eq!(dests, [("segment", 0), ("slack", 0)]);
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

pub fn leave_forgets_only_consumers_that_hold_nothing(b: &dyn Backend) {
    let mut q = b.open(LONG);
    q.append(&[event(1), event(2)]).unwrap();
    let held = q.claim("holder", 1, Duration::ZERO).unwrap();
    let done = q.claim("done", 1, Duration::ZERO).unwrap();
    q.settle(
        "done",
        &Settlement {
            acks: keys_of(&done),
            ..Settlement::default()
        },
    )
    .unwrap();
    q.leave("holder").unwrap();
    q.leave("done").unwrap();
    q.leave("never-seen").unwrap();
    let names: Vec<String> = q
        .stats()
        .unwrap()
        .consumers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["holder"]);
    assert_eq!(held.len(), 1);
}

pub fn stats_describe_the_pipeline(b: &dyn Backend) {
    let mut q = b.open(LONG);
    assert!(!q.describe().is_empty());
    assert_eq!(q.stats().unwrap(), Default::default());

    let all: Vec<Event> = (0..3).map(event).collect();
    q.append(&all).unwrap();
    let entries = q.claim("w1", 2, Duration::ZERO).unwrap();
    let due = now_ms() + 3_600_000;
    let now = now_ms();
    q.settle(
        "w1",
        &Settlement {
            acks: keys_of(&entries[..1]),
            retries: vec![(delivery(&all[0], "slack", 1), due)],
            dead: vec![
                letter(&all[0], "segment", "HTTP 500", now),
                letter(&all[0], "webhook", "timeout", now),
                letter(&all[1], "segment", "HTTP 500", now),
            ],
            ..Settlement::default()
        },
    )
    .unwrap();

    let stats = q.stats().unwrap();
    assert_eq!(stats.length, 3);
    assert_eq!(stats.oldest, Some((all[0].id.clone(), all[0].ts.clone())));
    assert_eq!(stats.newest, Some((all[2].id.clone(), all[2].ts.clone())));
    assert_eq!(stats.lag, 1);
    assert_eq!(stats.retries, 1);
    assert_eq!(stats.next_retry_ms, Some(due));
    assert_eq!(
        stats.dead,
        [
            ("segment".into(), "HTTP 500".into(), 2),
            ("webhook".into(), "timeout".into(), 1),
        ]
    );
    assert_eq!(stats.consumers.len(), 1, "{:?}", stats.consumers);
    let ConsumerStats {
        name,
        pending,
        idle_ms,
    } = &stats.consumers[0];
    assert_eq!((name.as_str(), *pending), ("w1", 1));
    assert!(*idle_ms < 10_000, "idle {idle_ms} ms right after settling");
}

pub fn trim_removes_only_acked_history(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let all: Vec<Event> = (0..4).map(event).collect();
    q.append(&all).unwrap();
    let claimed = q.claim("w", 3, Duration::ZERO).unwrap();
    q.settle("w", &acks(&claimed[..2])).unwrap();

    assert_eq!(q.trim(1).unwrap(), 0, "nothing is older than 1970");
    assert_eq!(q.stats().unwrap().length, 4);
    assert_eq!(q.trim(now_ms() + 60_000).unwrap(), 2);
    assert_eq!(q.trim(now_ms() + 60_000).unwrap(), 0);

    assert_eq!(q.stats().unwrap().length, 2);
    assert_eq!(events_of(&q.recover("w").unwrap()), all[2..3]);
    assert_eq!(
        events_of(&q.claim("w", 10, Duration::ZERO).unwrap()),
        all[3..]
    );
    let mut seen = Vec::new();
    q.history(0, now_ms() + 3_600_000, &mut |batch| {
        seen.extend(batch);
        true
    })
    .unwrap();
    assert_eq!(seen, all[2..]);
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

pub fn a_rate_limit_is_shared_by_every_connection(b: &dyn Backend) {
    let mut first = b.open(LONG);
    let mut second = b.reopen();
    let hourly = Rate::parse("1/h").unwrap();
    assert_eq!(first.take_token("slack", hourly).unwrap(), None, "free");
    // Another worker: the hour's send is spent, and it is told for how long.
    let wait = second.take_token("slack", hourly).unwrap().expect("spent");
    assert!(wait <= Duration::from_secs(3600) && wait > LONG, "{wait:?}");
    assert!(first.take_token("slack", hourly).unwrap().is_some());
    // Each destination has a limit of its own.
    assert_eq!(second.take_token("billing", hourly).unwrap(), None);
    // Waiting as told frees the next send.
    let quick = Rate::parse("1/300ms").unwrap();
    assert_eq!(first.take_token("fast", quick).unwrap(), None);
    let wait = second.take_token("fast", quick).unwrap().expect("spent");
    thread::sleep(wait);
    assert_eq!(second.take_token("fast", quick).unwrap(), None);
}

pub fn a_consumer_name_is_held_by_one_holder_until_released_or_expired(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let before = now_ms();
    q.hold_consumer("w", "host-a pid 1", LONG).unwrap();
    q.hold_consumer("w", "host-a pid 1", LONG)
        .expect("the holder renews its own name");
    q.hold_consumer("other", "host-b pid 2", LONG)
        .expect("names are held one by one");
    match q.hold_consumer("w", "host-b pid 2", LONG) {
        Err(QueueError::ConsumerHeld(ConsumerHeld {
            name,
            holder,
            until_ms,
        })) => {
            assert_eq!(name, "w");
            assert_eq!(holder, "host-a pid 1");
            let lease = LONG.as_millis() as i64;
            assert!(
                (before + lease - 1000..=now_ms() + lease).contains(&until_ms),
                "{until_ms} is the end of the lease"
            );
        }
        other => panic!("a second holder was let in: {other:?}"),
    }
    q.release_consumer("w", "host-b pid 2").unwrap();
    assert!(
        q.hold_consumer("w", "host-b pid 2", LONG).is_err(),
        "only the holder releases a name"
    );
    q.release_consumer("w", "host-a pid 1").unwrap();
    q.hold_consumer("w", "host-b pid 2", SHORT)
        .expect("a released name is free");

    // A holder that died stops renewing: its name is free once the lease ends.
    let deadline = Instant::now() + LONG;
    while q.hold_consumer("w", "host-c pid 3", LONG).is_err() {
        assert!(Instant::now() < deadline, "the lease never ran out");
        thread::sleep(SHORT / 4);
    }
    assert!(q.hold_consumer("w", "host-b pid 2", LONG).is_err());
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

/// A retry whose stored delivery cannot be decoded would come back forever:
/// claiming it dead-letters it instead, with the same words everywhere.
pub fn a_retry_that_cannot_be_decoded_is_dead_lettered_in_the_claim(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let now = now_ms();
    let good = delivery(&event(1), "slack", 2);
    q.enqueue(std::slice::from_ref(&good), now - 10).unwrap();
    b.write_retry("E2|slack", "{not json", now - 5);
    b.write_retry("E3|hook", r#"{"dest":"hook"}"#, now - 1);
    b.write_retry("E4|hook", "[]", now + 60_000);

    let claims = q.claim_retries(now, 10, &[]).unwrap();
    assert_eq!(deliveries_of(&claims), [good]);
    let mut letters: Vec<DeadLetter> = q
        .dead_letters()
        .unwrap()
        .into_iter()
        .map(|l| l.letter)
        .collect();
    letters.sort_by(|a, b| a.error.cmp(&b.error));
    assert_eq!(
        letters,
        [
            DeadLetter {
                event: Err("{not json".into()),
                dest: "slack".into(),
                attempts: 0,
                error: "the retry E2|slack is not JSON".into(),
                at_ms: now,
            },
            DeadLetter {
                event: Err(r#"{"dest":"hook"}"#.into()),
                dest: "hook".into(),
                attempts: 0,
                error: "the retry E3|hook is not a delivery".into(),
                at_ms: now,
            },
        ]
    );
    let backlog = q.backlog(&[]).unwrap();
    assert_eq!(
        backlog.retries, 2,
        "the good claim and the one not yet due stay"
    );
}

mod sqlite {
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Barrier};

    use events::queue::sqlite::SqliteQueue;
    use events::queue::{QueueError, QueueOptions};

    use super::*;

    /// Each queue is a new file in one temporary directory.
    pub struct SqliteBackend {
        dir: tempfile::TempDir,
        opened: Cell<u32>,
    }

    impl SqliteBackend {
        pub fn new() -> SqliteBackend {
            SqliteBackend {
                dir: tempfile::tempdir().unwrap(),
                opened: Cell::new(0),
            }
        }

        fn path(&self) -> PathBuf {
            self.dir
                .path()
                .join(format!("events-{}.db", self.opened.get()))
        }
    }

    impl Backend for SqliteBackend {
        fn open(&self, lease: Duration) -> Box<dyn Queue> {
            self.opened.set(self.opened.get() + 1);
            Box::new(SqliteQueue::open(&self.path(), options(lease)).unwrap())
        }

        fn reopen(&self) -> Box<dyn Queue> {
            Box::new(SqliteQueue::open(&self.path(), options(LONG)).unwrap())
        }

        fn write_garbage(&self) {
            let conn = rusqlite::Connection::open(self.path()).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let now = now_ms();
            conn.execute(
                "INSERT INTO stream (id, type, ts, ts_ms, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    "01JDX3M7Q7G5N8W4K2B9C1T6ZR",
                    "user.signup",
                    format_ts_ms(now),
                    now,
                    "{not json"
                ],
            )
            .unwrap();
        }

        fn write_raw(&self, id: &str, kind: &str) {
            let conn = rusqlite::Connection::open(self.path()).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let now = now_ms();
            conn.execute(
                "INSERT INTO stream (id, type, ts, ts_ms, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![id, kind, format_ts_ms(now), now, r#"{"email":"a@b"}"#],
            )
            .unwrap();
        }

        fn write_fields(&self, written_ms: i64, seq: u64, fields: &[(&str, &str)]) {
            let conn = rusqlite::Connection::open(self.path()).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
            conn.execute(
                "INSERT INTO stream (seq, id, type, ts, payload, written_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    seq as i64,
                    get("id"),
                    get("type"),
                    get("ts"),
                    get("payload"),
                    written_ms
                ],
            )
            .unwrap();
        }

        fn write_retry(&self, token: &str, body: &str, due_ms: i64) {
            let conn = rusqlite::Connection::open(self.path()).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let dest = token.rsplit_once('|').unwrap().1;
            conn.execute(
                "INSERT INTO retry (token, due_ms, dest, delivery) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![token, due_ms, dest, body],
            )
            .unwrap();
        }
    }

    conformance_tests!(SqliteBackend::new());

    fn options(lease: Duration) -> QueueOptions {
        QueueOptions {
            claim_lease: lease,
            ..QueueOptions::default()
        }
    }

    fn open_err(path: &Path) -> QueueError {
        match SqliteQueue::open(path, QueueOptions::default()) {
            Ok(_) => panic!("{} opened", path.display()),
            Err(e) => e,
        }
    }

    #[test]
    fn reopening_keeps_everything_and_creates_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/events.db");
        let e = event(1);
        {
            let mut q = SqliteQueue::open(&path, options(LONG)).unwrap();
            assert_eq!(q.describe(), format!("sqlite {}", path.display()));
            q.append(&[e.clone(), event(2)]).unwrap();
            q.enqueue(&[delivery(&e, "slack", 1)], 5).unwrap();
            let first = q.claim("w", 1, Duration::ZERO).unwrap();
            q.settle("w", &acks(&first)).unwrap();
        }
        let mut q = SqliteQueue::open(&path, options(LONG)).unwrap();
        assert_eq!(
            q.backlog(&[]).unwrap(),
            Backlog {
                unread: 1,
                pending: 0,
                retries: 1,
                next_retry_ms: Some(5),
            }
        );
        assert_eq!(q.stats().unwrap().length, 2);
    }

    #[test]
    fn read_only_directory_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let locked = tmp.path().join("locked");
        fs::create_dir(&locked).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores directory permissions; a regular file in the way of
        // the directory stops everyone.
        let path = if fs::write(locked.join("probe"), b"").is_err() {
            locked.join("events.db")
        } else {
            let file = tmp.path().join("a-file");
            fs::write(&file, b"").unwrap();
            file.join("events.db")
        };
        let err = open_err(&path);
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(err, QueueError::Unavailable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("cannot open the event store"), "{text}");
    }

    #[test]
    fn corrupt_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.db");
        let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
        fs::write(&path, junk).unwrap();
        let err = open_err(&path);
        assert!(matches!(err, QueueError::Backend(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "{} is not an events database or is corrupt",
                path.display()
            )),
            "{text}"
        );
    }

    #[test]
    fn another_programs_database_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("app.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
            .unwrap();
        let text = open_err(&path).to_string();
        assert!(text.contains("is not an events database"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
    }

    #[test]
    fn newer_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.db");
        drop(SqliteQueue::open(&path, QueueOptions::default()).unwrap());
        rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let text = open_err(&path).to_string();
        assert!(text.contains("newer version"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
    }

    #[test]
    fn lock_held_past_the_timeout_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.db");
        let mut q = SqliteQueue::open(&path, QueueOptions::default()).unwrap();
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let started = Instant::now();
        let err = q.append(&[event(1)]).unwrap_err();
        assert!(started.elapsed() >= Duration::from_secs(4));
        assert!(matches!(err, QueueError::Unavailable { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "{} stayed locked by another process for more than 5 s",
                path.display()
            )
        );
        holder.execute_batch("ROLLBACK").unwrap();
        q.append(&[event(1)]).unwrap();
    }

    #[test]
    fn history_is_in_event_time_order() {
        let backend = SqliteBackend::new();
        let mut q = backend.open(LONG);
        let t = 1_700_000_000_000;
        let late = event_at(t + 2000, 2);
        let early = event_at(t, 0);
        let middle = event_at(t + 1000, 1);
        q.append(&[late.clone(), early.clone(), middle.clone()])
            .unwrap();
        let mut seen = Vec::new();
        q.history(t, t + 3000, &mut |batch| {
            seen.extend(batch);
            true
        })
        .unwrap();
        assert_eq!(seen, [early, middle, late]);
    }

    #[test]
    fn row_inserted_without_an_id_gets_a_stable_one() {
        let backend = SqliteBackend::new();
        let mut q = backend.open(SHORT);
        rusqlite::Connection::open(backend.path())
            .unwrap()
            .execute(
                "INSERT INTO stream (type, payload) VALUES ('user.signup', '{\"n\": 1}')",
                [],
            )
            .unwrap();
        let first = events_of(&q.claim("a", 10, Duration::ZERO).unwrap());
        thread::sleep(SHORT + Duration::from_millis(100));
        let again = events_of(&q.claim("b", 10, Duration::ZERO).unwrap());
        assert_eq!(first, again);
        assert_eq!(first[0].id.len(), 26);
        assert!(first[0].ts.ends_with('Z'), "{}", first[0].ts);
    }

    #[test]
    fn concurrent_appenders_and_a_worker() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.db");
        // Everyone opens at once, so creating the file is raced too.
        let start = Arc::new(Barrier::new(5));
        let writers: Vec<_> = (0..4)
            .map(|writer| {
                let (path, start) = (path.clone(), start.clone());
                thread::spawn(move || -> Result<(), QueueError> {
                    start.wait();
                    let mut q = SqliteQueue::open(&path, options(LONG))?;
                    for n in 0..250 {
                        // Half read before writing: the pattern that
                        // deadlocks unless writes take the lock up front.
                        if n % 2 == 0 {
                            q.append(&[event(n)])?;
                        } else {
                            let key = format!("{writer}-{n}");
                            assert_eq!(q.append_idempotent(&key, &event(n), LONG)?, None);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let worker = {
            let (path, start) = (path.clone(), start.clone());
            thread::spawn(move || -> Result<HashMap<String, u32>, QueueError> {
                start.wait();
                let mut q = SqliteQueue::open(&path, options(LONG))?;
                let mut seen = HashMap::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                while seen.len() < 1000 && Instant::now() < deadline {
                    let entries = q.claim("w", 50, Duration::from_millis(100))?;
                    for event in events_of(&entries) {
                        *seen.entry(event.id).or_insert(0) += 1;
                    }
                    q.settle("w", &acks(&entries))?;
                }
                Ok(seen)
            })
        };
        for writer in writers {
            writer.join().unwrap().unwrap();
        }
        let seen = worker.join().unwrap().unwrap();
        assert_eq!(seen.len(), 1000);
        assert!(seen.values().all(|&n| n == 1), "an event was claimed twice");
        let mut q = SqliteQueue::open(&path, options(LONG)).unwrap();
        assert_eq!(q.backlog(&[]).unwrap(), Backlog::default());
        assert_eq!(q.stats().unwrap().length, 1000);
    }
}

/// Many deliveries parked for one destination, due before those of
/// another: a worker for the other claims and counts only its own, and a
/// worker for every destination takes the earliest due first.
pub fn claims_for_some_destinations_pass_over_the_others(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let now = now_ms();
    let parked: Vec<Delivery> = (0..1500)
        .map(|n| delivery(&event(n), "webhook", 1))
        .collect();
    q.enqueue(&parked, now - 5000).unwrap();
    let (s1, s2) = (
        delivery(&event(2001), "slack", 0),
        delivery(&event(2002), "slack", 0),
    );
    q.enqueue(std::slice::from_ref(&s2), now - 1000).unwrap();
    q.enqueue(std::slice::from_ref(&s1), now - 2000).unwrap();
    let slack = ["slack".to_owned()];

    let backlog = q.backlog(&slack).unwrap();
    assert_eq!(
        (backlog.retries, backlog.next_retry_ms),
        (2, Some(now - 2000))
    );
    let backlog = q.backlog(&[]).unwrap();
    assert_eq!(
        (backlog.retries, backlog.next_retry_ms),
        (1502, Some(now - 5000))
    );
    assert_eq!(
        deliveries_of(&q.claim_retries(now, 1, &slack).unwrap()),
        [s1]
    );
    let claims = q.claim_retries(now, 10, &slack).unwrap();
    assert_eq!(deliveries_of(&claims), [s2]);
    assert!(q.claim_retries(now, 10, &slack).unwrap().is_empty());
    // Leased, not gone: still counted, now due when the lease ends.
    let backlog = q.backlog(&slack).unwrap();
    assert_eq!(backlog.retries, 2);
    assert!(backlog.next_retry_ms.unwrap() > now, "{backlog:?}");

    q.settle(
        "w",
        &Settlement {
            done_retries: claims.iter().map(|c| c.token.clone()).collect(),
            ..Settlement::default()
        },
    )
    .unwrap();
    assert_eq!(q.backlog(&slack).unwrap().retries, 1);
    let all = q.claim_retries(now, 3, &[]).unwrap();
    assert_eq!(all.len(), 3);
    assert!(
        all.iter().all(|c| c.delivery.dest == "webhook"),
        "earliest first"
    );
    assert_eq!(q.stats().unwrap().retries, 1501);
}

/// `status` counts dead letters by destination and error without reading
/// them; the counts must stay those of the letters through dead-lettering,
/// requeueing (`replay --dead`, the same letter twice included) and
/// replaying history (which leaves dead letters alone).
/// `purge_dead` removes exactly the letters its filter selects (by time,
/// type and destination; poison has no type), counting without removing
/// when asked, and the counts `status` shows stay those of the letters left.
pub fn purged_dead_letters_are_the_filtered_ones_and_leave_the_counts_right(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let now = now_ms();
    let old = now - 2000;
    let paid = Event::new("order.paid", Payload::new());
    let dead = vec![
        letter(&event(1), "slack", "HTTP 500", old),
        letter(&event(2), "webhook", "HTTP 410 Gone", old),
        letter(&paid, "slack", "HTTP 500", now - 1000),
        DeadLetter {
            event: Err("{not json".into()),
            dest: "*".into(),
            attempts: 0,
            error: "'payload' is not valid JSON".into(),
            at_ms: old,
        },
    ];
    q.settle(
        "w",
        &Settlement {
            dead,
            ..Settlement::default()
        },
    )
    .unwrap();
    let left = |q: &mut Box<dyn Queue>| -> Vec<String> {
        let letters: Vec<DeadLetter> = q
            .dead_letters()
            .unwrap()
            .into_iter()
            .map(|s| s.letter)
            .collect();
        assert_eq!(
            q.stats().unwrap().dead,
            events::queue::count_dead(letters.iter()),
            "the counts are those of the letters left"
        );
        letters.iter().map(|l| l.dest.clone()).collect()
    };
    let strings = |list: &[&str]| -> Vec<String> { list.iter().map(|s| s.to_string()).collect() };

    let before = now - 1500;
    let users = DeadFilter::new(Some(before), &strings(&["user.*"]), &[]);
    assert_eq!(q.count_dead(&DeadFilter::before(before)).unwrap(), 3);
    assert_eq!(q.count_dead(&users).unwrap(), 2);
    assert_eq!(left(&mut q).len(), 4, "counting removes nothing");
    assert_eq!(q.purge_dead(&users).unwrap(), 2);
    assert_eq!(left(&mut q), ["slack", "*"]);

    let to_slack = DeadFilter::new(None, &[], &strings(&["slack"]));
    assert_eq!(q.purge_dead(&to_slack).unwrap(), 1);
    assert_eq!(left(&mut q), ["*"]);
    assert_eq!(q.purge_dead(&to_slack).unwrap(), 0);

    assert_eq!(q.purge_dead(&DeadFilter::default()).unwrap(), 1);
    assert!(left(&mut q).is_empty());
    assert!(q.stats().unwrap().dead.is_empty());
}

pub fn dead_letter_counts_follow_the_letters(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let now = now_ms();
    let counted = |q: &mut Box<dyn Queue>| {
        let letters: Vec<DeadLetter> = q
            .dead_letters()
            .unwrap()
            .into_iter()
            .map(|s| s.letter)
            .collect();
        assert_eq!(
            q.stats().unwrap().dead,
            events::queue::count_dead(letters.iter()),
            "the counts are those of the letters"
        );
        q.stats().unwrap().dead
    };
    let owned = |rows: &[(&str, &str, u64)]| -> Vec<(String, String, u64)> {
        rows.iter()
            .map(|(d, e, n)| (d.to_string(), e.to_string(), *n))
            .collect()
    };
    assert!(counted(&mut q).is_empty());
    let mut dead: Vec<DeadLetter> = (0..3)
        .map(|n| letter(&event(n), "slack", "HTTP 404 channel_not_found", now))
        .collect();
    dead.push(letter(&event(3), "webhook", "timed out", now));
    dead.push(DeadLetter {
        event: Err("{not json".into()),
        dest: "*".into(),
        attempts: 0,
        error: "'payload' is not valid JSON".into(),
        at_ms: now,
    });
    q.settle(
        "w",
        &Settlement {
            dead,
            ..Settlement::default()
        },
    )
    .unwrap();
    assert_eq!(
        counted(&mut q),
        owned(&[
            ("slack", "HTTP 404 channel_not_found", 3),
            ("*", "'payload' is not valid JSON", 1),
            ("webhook", "timed out", 1),
        ])
    );

    let stored = q.dead_letters().unwrap();
    let again = (stored[0].key.clone(), delivery(&event(0), "slack", 0));
    q.requeue_dead(
        &[
            again.clone(),
            (stored[3].key.clone(), delivery(&event(3), "webhook", 0)),
        ],
        now - 1,
    )
    .unwrap();
    q.requeue_dead(&[again], now - 1).unwrap();
    q.enqueue(&[delivery(&event(7), "slack", 0)], now - 1)
        .unwrap();
    assert_eq!(
        counted(&mut q),
        owned(&[
            ("slack", "HTTP 404 channel_not_found", 2),
            ("*", "'payload' is not valid JSON", 1),
        ])
    );

    // The requeued webhook delivery fails again, differently.
    let claims = q.claim_retries(now, 10, &["webhook".to_owned()]).unwrap();
    assert_eq!(claims.len(), 1);
    q.settle(
        "w",
        &Settlement {
            done_retries: vec![claims[0].token.clone()],
            dead: vec![letter(&event(3), "webhook", "HTTP 500", now)],
            ..Settlement::default()
        },
    )
    .unwrap();
    let left = q.dead_letters().unwrap();
    let requeue_all: Vec<(String, Delivery)> = left
        .iter()
        .filter(|s| s.letter.dest == "slack")
        .map(|s| {
            let event = s.letter.event.clone().unwrap();
            (s.key.clone(), delivery(&event, "slack", 0))
        })
        .collect();
    q.requeue_dead(&requeue_all, now).unwrap();
    assert_eq!(
        counted(&mut q),
        owned(&[
            ("*", "'payload' is not valid JSON", 1),
            ("webhook", "HTTP 500", 1),
        ])
    );
}

/// Redis: one server per test; each queue opened is a fresh key prefix on it.
mod redis_backend {
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
}

/// Redis keeps a `ts` index of only the exceptional (skewed) entries; these
/// check what the shared suite cannot see: that a narrow old window reads
/// about its own entries, not the whole stream, and that trimming empties
/// the index.
mod redis_history {
    use std::time::Duration;

    use events::event::{format_ts_ms, now_ms};
    use events::queue::redis::RedisQueue;
    use events::queue::{Admin, Consumer, QueueOptions, Settlement};

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
}

/// A queue written by the previous release keeps working: its single retry
/// set (Redis) and its dead letters, counted by no one, are taken over by
/// the per-destination sets and the counts. The fixtures in
/// `tests/fixtures/upgrade` were written by that release (`redis-0.1.rdb`: keys
/// under `{events}`; `sqlite-0.1.db`: schema 1): each holds one retry to the
/// destination `retry` and two dead letters to `dead`.
mod upgrade {
    use std::path::Path;

    use events::event::now_ms;
    use events::queue::redis::RedisQueue;
    use events::queue::sqlite::SqliteQueue;
    use events::queue::{Admin, Consumer, Delivery, Queue, QueueOptions, Settlement};

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
}
