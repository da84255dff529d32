//! The token bucket that paces a destination, shared by every connection.

use std::thread;
use std::time::Duration;

use events::rate::Rate;

use super::{Backend, LONG};

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
