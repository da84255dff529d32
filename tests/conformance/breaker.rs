//! The breaker's state role: a destination's breaker, stored as a hold of
//! kind `breaker`, changes only by compare-and-swap from what was read, so
//! of many workers seeing the same failures one opens it, one takes its
//! probe, one closes it.

use std::sync::{Arc, Barrier};
use std::thread;

use events::breaker::{self, Seen, Settings, State};
use events::queue::{Hold, HoldKind};

use super::{Backend, LONG};

fn failures(n: u32) -> Seen {
    Seen {
        failures: n,
        error: "HTTP 503".into(),
        ..Seen::default()
    }
}

const SETTINGS: Settings = Settings {
    after: 3,
    cooldown: std::time::Duration::from_secs(1),
};

pub fn a_breakers_state_changes_only_from_what_was_read(b: &dyn Backend) {
    let mut q = b.open(LONG);
    let mut other = b.reopen();
    assert_eq!(q.hold_raw("hook", HoldKind::Breaker).unwrap(), None);
    let counted = breaker::after_sends(None, &failures(2), SETTINGS, "w1", 1000)
        .unwrap()
        .hold
        .unwrap();
    assert!(
        q.swap_hold("hook", HoldKind::Breaker, None, Some(&counted))
            .unwrap()
    );
    assert!(
        !other
            .swap_hold("hook", HoldKind::Breaker, None, Some(&counted))
            .unwrap(),
        "it is there now"
    );
    let raw = other.hold_raw("hook", HoldKind::Breaker).unwrap().unwrap();
    let open = breaker::after_sends(Some(&counted), &failures(1), SETTINGS, "w2", 2000)
        .unwrap()
        .hold
        .unwrap();
    assert!(
        other
            .swap_hold("hook", HoldKind::Breaker, Some(&raw), Some(&open))
            .unwrap()
    );
    // The first connection's reading is stale: its swap changes nothing.
    assert!(
        !q.swap_hold("hook", HoldKind::Breaker, Some(&raw), None)
            .unwrap()
    );
    let stored: Vec<(String, Hold)> = q.holds().unwrap();
    assert_eq!(stored, [("hook".to_owned(), open.clone())]);
    assert_eq!(stored[0].1.breaker().unwrap().state, State::Open);
    // A pause beside it is another kind, untouched.
    let now = q.hold_raw("hook", HoldKind::Breaker).unwrap().unwrap();
    assert_eq!(q.hold_raw("hook", HoldKind::Pause).unwrap(), None);
    assert!(
        q.swap_hold("hook", HoldKind::Breaker, Some(&now), None)
            .unwrap()
    );
    assert!(q.holds().unwrap().is_empty());
    assert!(
        q.swap_hold("hook", HoldKind::Breaker, None, None).unwrap(),
        "absent as read"
    );
}

pub fn of_workers_racing_to_open_a_breaker_exactly_one_does(b: &dyn Backend) {
    let _q = b.open(LONG);
    let workers = 6;
    let barrier = Arc::new(Barrier::new(workers));
    let racers: Vec<_> = (0..workers)
        .map(|i| {
            let mut queue = b.reopen();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let me = format!("w{i}");
                // Each saw `after` failures: read, decide, swap, as a settler does.
                loop {
                    let raw = queue.hold_raw("hook", HoldKind::Breaker).unwrap();
                    let current = raw
                        .as_ref()
                        .map(|json| serde_json::from_str::<Hold>(json).expect("a stored breaker"));
                    let Some(next) =
                        breaker::after_sends(current.as_ref(), &failures(3), SETTINGS, &me, 5000)
                    else {
                        return false;
                    };
                    if queue
                        .swap_hold(
                            "hook",
                            HoldKind::Breaker,
                            raw.as_deref(),
                            next.hold.as_ref(),
                        )
                        .unwrap()
                    {
                        return next.change == Some(breaker::Change::Opened);
                    }
                }
            })
        })
        .collect();
    let opened = racers
        .into_iter()
        .map(|r| r.join().unwrap())
        .filter(|&opened| opened)
        .count();
    assert_eq!(opened, 1, "one opening, so one alert");
}
