//! Destinations' holds (`events pause`): stored per destination and kind,
//! seen by every connection, replaced and removed; and the deliveries a hold
//! parks, all due at its start, claimed back in event order.

use events::event::now_ms;
use events::queue::hold::HoldReason;
use events::queue::{Hold, HoldKind, Settlement};

use super::{Backend, LONG, deliveries_of, delivery, event};

fn pause(by: &str, since_ms: i64, until_ms: Option<i64>) -> Hold {
    Hold {
        reason: HoldReason::Paused { by: by.into() },
        since_ms,
        until_ms,
    }
}

pub fn holds_are_kept_per_destination_replaced_and_removed(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let mut other = b.reopen();
    assert!(q.holds().unwrap().is_empty());
    let first = pause("web-1 ada pid 7", 1_700_000_000_000, None);
    q.put_hold("webhook", &first).unwrap();
    assert_eq!(other.holds().unwrap(), [("webhook".to_owned(), first)]);
    // Pausing again replaces the hold of that kind: one per destination.
    let extended = pause(
        "web-2 bob pid 9",
        1_700_000_000_000,
        Some(1_800_000_000_000),
    );
    other.put_hold("webhook", &extended).unwrap();
    let slack = pause("web-1 ada pid 7", 1_700_000_000_500, None);
    other.put_hold("slack", &slack).unwrap();
    let mut held = q.holds().unwrap();
    held.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        held,
        [
            ("slack".to_owned(), slack.clone()),
            ("webhook".to_owned(), extended)
        ]
    );
    assert!(q.remove_hold("webhook", HoldKind::Pause).unwrap());
    assert!(
        !other.remove_hold("webhook", HoldKind::Pause).unwrap(),
        "gone"
    );
    assert_eq!(other.holds().unwrap(), [("slack".to_owned(), slack)]);
}

pub fn deliveries_parked_together_come_back_in_event_order(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let events: Vec<_> = (0..12).map(event).collect();
    let since = now_ms() - 1000;
    // Parked by two workers, each in its own order, due at the hold's start.
    let park = |indexes: &[usize]| Settlement {
        retries: indexes
            .iter()
            .map(|&i| (delivery(&events[i], "webhook", 0), since))
            .collect(),
        ..Settlement::default()
    };
    q.settle("w1", &park(&[7, 2, 11, 0, 5, 9])).unwrap();
    b.reopen()
        .settle("w2", &park(&[4, 10, 1, 8, 3, 6]))
        .unwrap();
    // A delivery to another destination, due later, is not among them.
    q.enqueue(&[delivery(&events[0], "slack", 0)], since + 10)
        .unwrap();
    assert_eq!(q.waiting("webhook").unwrap(), 12);
    assert_eq!(q.waiting("slack").unwrap(), 1);
    assert_eq!(q.waiting("nowhere").unwrap(), 0);
    let mut claimed = Vec::new();
    let only = ["webhook".to_owned()];
    for filter in [&only[..], &[][..]] {
        for _ in 0..2 {
            let claims = q.claim_retries(now_ms(), 3, filter).unwrap();
            claimed.extend(deliveries_of(&claims));
        }
    }
    let ids: Vec<&str> = claimed.iter().map(|d| d.event.id.as_str()).collect();
    let expected: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids, expected,
        "claimed in event order, with --only or without"
    );
}
