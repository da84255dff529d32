//! The retry set: deliveries scheduled once per event and destination,
//! claimed only when due and only for the destinations asked for, leased,
//! rescheduled with their attempts, and dead-lettered when they cannot be
//! decoded.

use std::thread;
use std::time::{Duration, Instant};

use events::event::now_ms;
use events::queue::{Backlog, DeadLetter, Delivery, Settlement};

use super::{Backend, LONG, SHORT, deliveries_of, delivery, event};

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
