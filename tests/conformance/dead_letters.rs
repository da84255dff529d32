//! Dead letters: requeued into the retry set, purged by filter, and counted
//! by destination and error without being read.

use events::event::{Event, Payload, now_ms};
use events::queue::{DeadFilter, DeadLetter, Delivery, Queue, Settlement};

use super::{Backend, LONG, deliveries_of, delivery, event, letter};

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

/// `status` counts dead letters by destination and error without reading
/// them; the counts must stay those of the letters through dead-lettering,
/// requeueing (`replay --dead`, the same letter twice included) and
/// replaying history (which leaves dead letters alone).
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

/// The dashboard pages through dead letters by cursor: newest first, each
/// read bounded, the next starting just past the last key returned.
pub fn dead_letters_are_read_newest_first_from_a_cursor(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let now = now_ms();
    let letters: Vec<DeadLetter> = (0..5)
        .map(|n| letter(&event(n), "slack", &format!("HTTP 50{n}"), now + n))
        .collect();
    q.settle(
        "w",
        &Settlement {
            dead: letters.clone(),
            ..Settlement::default()
        },
    )
    .unwrap();
    let first = q.dead_before(None, 2).unwrap();
    let errors = |page: &[events::queue::StoredDeadLetter]| -> Vec<String> {
        page.iter().map(|s| s.letter.error.clone()).collect()
    };
    assert_eq!(errors(&first), ["HTTP 504", "HTTP 503"]);
    let second = q.dead_before(Some(&first[1].key), 2).unwrap();
    assert_eq!(errors(&second), ["HTTP 502", "HTTP 501"]);
    let last = q.dead_before(Some(&second[1].key), 2).unwrap();
    assert_eq!(errors(&last), ["HTTP 500"]);
    assert!(q.dead_before(Some(&last[0].key), 2).unwrap().is_empty());
    assert_eq!(last[0].letter, letters[0]);

    let page = events::queue::dead_page(
        q.as_mut(),
        &DeadFilter::new(None, &[], &[]).with_error("HTTP 50"),
        Some(&first[0].key),
        3,
    )
    .unwrap();
    assert_eq!(errors(&page.letters), ["HTTP 503", "HTTP 502", "HTTP 501"]);
    assert_eq!(page.next.as_deref(), Some(page.letters[2].key.as_str()));
    let none = DeadFilter::new(None, &[], &[]).with_error("timeout");
    let empty = events::queue::dead_page(q.as_mut(), &none, None, 3).unwrap();
    assert!(empty.letters.is_empty() && empty.next.is_none());
    assert_eq!(empty.scanned, 5);
}
