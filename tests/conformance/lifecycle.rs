//! What the queue keeps and remembers over time: history by event time and
//! its trimming by write time, the pipeline's stats, consumers leaving and
//! holding their names, delivery tallies and alert windows.

use std::thread;
use std::time::{Duration, Instant};

use events::event::{Event, now_ms};
use events::queue::{ConsumerHeld, ConsumerStats, Queue, QueueError, Settlement, Tally};

use super::{Backend, LONG, SHORT, acks, delivery, event, event_at, events_of, keys_of, letter};

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

pub fn tallies_add_up_across_settles_and_connections(b: &dyn Backend) {
    let mut q = b.open(LONG);
    assert!(q.stats().unwrap().tallies.is_empty());
    let settle = |q: &mut Box<dyn Queue>, dest: &str, delivered, rate_limited| {
        let mut s = Settlement::default();
        s.tallies.insert(
            dest.to_owned(),
            Tally {
                delivered,
                rate_limited,
            },
        );
        q.settle("w", &s).unwrap();
    };
    settle(&mut q, "slack", 3, 1);
    settle(&mut q, "segment", 500, 0);
    let mut other = b.reopen();
    settle(&mut other, "slack", 2, 4);
    let tallies = q.stats().unwrap().tallies;
    let slack = Tally {
        delivered: 5,
        rate_limited: 5,
    };
    let segment = Tally {
        delivered: 500,
        rate_limited: 0,
    };
    assert_eq!(
        tallies.into_iter().collect::<Vec<_>>(),
        [("segment".to_owned(), segment), ("slack".to_owned(), slack)]
    );
}

pub fn an_alert_window_that_ends_owes_what_it_counted_to_one_caller(b: &dyn Backend) {
    let window = Duration::from_millis(400);
    let mut q = b.open(LONG);
    assert_eq!(
        q.count_dead_for_alert("segment", 1, "HTTP 401 a", window)
            .unwrap(),
        Some(1),
        "the first is reported at once"
    );
    for error in ["HTTP 401 b", "HTTP 401 c"] {
        assert_eq!(
            q.count_dead_for_alert("segment", 2, error, window).unwrap(),
            None
        );
    }
    // A window with nothing counted owes nothing, ended or not.
    assert_eq!(
        q.count_dead_for_alert("slack", 1, "HTTP 404", window)
            .unwrap(),
        Some(1)
    );
    assert!(q.alerts_due(window).unwrap().is_empty(), "still open");
    thread::sleep(window + Duration::from_millis(100));
    let mut other = b.reopen();
    let owed = other.alerts_due(window).unwrap();
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(
        (owed[0].dest.as_str(), owed[0].count, owed[0].error.as_str()),
        ("segment", 4, "HTTP 401 c")
    );
    assert!(q.alerts_due(window).unwrap().is_empty(), "owed once");
    assert_eq!(
        q.count_dead_for_alert("segment", 1, "HTTP 401 d", window)
            .unwrap(),
        None,
        "reporting opened a window"
    );
}
