//! One behavioural suite for every queue backend. The worker, `emit`,
//! `replay` and `status` are written against the `Queue` trait alone, so the
//! backends must agree on every observable detail; writing the checks once
//! and running them against each backend is what keeps Redis and SQLite from
//! drifting apart.
//!
//! The checks live in one file per concern (`stream`, `retries`,
//! `dead_letters`, `lifecycle`, `limiter`, `holds`, `breaker`); each backend has its own file
//! with its [`Backend`] and the tests only it can run. A backend joins by
//! implementing [`Backend`] in its file and invoking
//! `conformance_tests!(BackendValue)` there once, which generates one
//! `#[test]` per check of every concern so a failure names the check and the
//! backend.

use std::time::Duration;

use events::event::{Event, Payload, format_ts_ms};
use events::queue::{DeadLetter, Delivery, Queue, RetryClaim, Settlement, StreamEntry};

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
/// `conformance_tests!(SqliteBackend::new());` inside a module that is a
/// direct child of this one puts the tests in that module, next to the
/// backend's own tests; `conformance_tests!(name, BackendValue)` makes a
/// module `name` for them. The expression is evaluated once per test, so
/// each test gets its own backend. A new check is listed here under its
/// concern, so every backend runs it (a check left out is never used, which
/// the build warns about).
macro_rules! conformance_tests {
    (@checks $backend:expr; $($concern:ident: [$($check:ident),* $(,)?]),* $(,)?) => {
        $($(
            #[test]
            fn $check() {
                $crate::conformance::$concern::$check(&$backend);
            }
        )*)*
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
            stream: [
                append_and_claim_in_order,
                claim_respects_count,
                claim_waits_then_returns_nothing,
                expired_lease_passes_to_another_consumer,
                recover_returns_own_unsettled_entries,
                renewed_claims_outlive_their_first_lease,
                settle_acks_and_writes_retries_and_dead_letters,
                idempotent_append_returns_the_first_id,
                expired_idempotency_key_can_be_reused,
                backlog_counts_each_stage,
                poison_comes_out_of_claim,
                ids_and_types_that_are_not_one_printable_word_are_poison,
                the_same_raw_entries_decode_the_same_on_every_backend,
            ],
            retries: [
                claim_retries_only_due_and_leases_them,
                rescheduled_retry_keeps_its_attempts,
                retries_can_be_limited_to_destinations,
                enqueued_deliveries_are_claimed_as_retries,
                a_delivery_is_scheduled_once_per_event_and_destination,
                claims_for_some_destinations_pass_over_the_others,
                a_retry_that_cannot_be_decoded_is_dead_lettered_in_the_claim,
            ],
            dead_letters: [
                requeue_dead_moves_letters_to_retries,
                dead_letter_counts_follow_the_letters,
                purged_dead_letters_are_the_filtered_ones_and_leave_the_counts_right,
                dead_letters_are_read_newest_first_from_a_cursor,
            ],
            lifecycle: [
                history_returns_the_exact_time_window,
                history_stops_when_visit_says_so,
                history_selects_by_ts_whatever_the_write_time,
                trim_goes_by_write_time_not_ts,
                trim_removes_only_acked_history,
                stats_describe_the_pipeline,
                leave_forgets_only_consumers_that_hold_nothing,
                a_consumer_name_is_held_by_one_holder_until_released_or_expired,
                tallies_add_up_across_settles_and_connections,
                an_alert_window_that_ends_owes_what_it_counted_to_one_caller,
            ],
            limiter: [
                a_rate_limit_is_shared_by_every_connection,
            ],
            holds: [
                holds_are_kept_per_destination_replaced_and_removed,
                deliveries_parked_together_come_back_in_event_order,
            ],
            breaker: [
                a_breakers_state_changes_only_from_what_was_read,
                of_workers_racing_to_open_a_breaker_exactly_one_does,
            ],
        );
    };
}

mod breaker;
mod dead_letters;
mod holds;
mod lifecycle;
mod limiter;
mod retries;
mod stream;

mod postgres;
mod redis_backend;
mod redis_history;
mod sqlite;
mod upgrade;

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
