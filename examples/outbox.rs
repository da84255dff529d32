//! What `Emitter::emit_in` adds to the application's own transaction, for
//! `bench/run outbox`: the same transaction (one `INSERT` into an app table,
//! then `COMMIT`) timed with and without an `emit_in` in it, alternated
//! iteration by iteration so both see the same machine at the same moment.
//!
//! ```text
//! EVENTS_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release --example outbox -- 20000
//! ```
//!
//! The schema (`EVENTS_PG_SCHEMA`) must exist (`events migrate`). Prints
//! p50 and p99 of each, in ms, and the difference.

use std::time::{Duration, Instant};

use events::Emitter;
use events::postgres::{Client, NoTls};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(20_000), |n| n.parse())?;
    let url = std::env::var("EVENTS_POSTGRES_URL")?;
    let mut emitter = Emitter::from_env()?;
    let mut db = Client::connect(&url, NoTls)?;
    db.batch_execute(
        "DROP TABLE IF EXISTS public.bench_users;
         CREATE TABLE public.bench_users (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL)",
    )?;
    let (mut plain, mut with) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + n / 10 {
        let email = format!("user{i}@example.com");
        let started = Instant::now();
        let mut tx = db.transaction()?;
        tx.execute(
            "INSERT INTO public.bench_users (email) VALUES ($1)",
            &[&email],
        )?;
        tx.commit()?;
        let plain_took = started.elapsed();
        let started = Instant::now();
        let mut tx = db.transaction()?;
        tx.execute(
            "INSERT INTO public.bench_users (email) VALUES ($1)",
            &[&email],
        )?;
        emitter.emit_in(&mut tx, "user.signup", json!({ "email": email }))?;
        tx.commit()?;
        let with_took = started.elapsed();
        // The first tenth warms connections and caches.
        if i >= n / 10 {
            plain.push(plain_took);
            with.push(with_took);
        }
    }
    let (plain50, plain99) = percentiles(&mut plain);
    let (with50, with99) = percentiles(&mut with);
    println!("iterations {n}");
    println!("insert+commit          p50 {plain50:.3} ms  p99 {plain99:.3} ms");
    println!("insert+emit_in+commit  p50 {with50:.3} ms  p99 {with99:.3} ms");
    println!(
        "emit_in adds           p50 {:.3} ms  p99 {:.3} ms",
        with50 - plain50,
        with99 - plain99
    );
    Ok(())
}

/// p50 and p99 in ms.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    (at(0.50), at(0.99))
}
