//! `work --metrics-addr`: the Prometheus series after known deliveries to
//! real receivers, readiness following a Redis that stops and comes back,
//! and an address in use refused before any work starts.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::support::hostile::{idle_connections, oversized_head, pipeline_unread, trickle};
use crate::support::{Events, RedisServer, Reply, Running, Sink, WEBHOOK_SECRET};

/// Only a hang guard: every wait below ends as soon as its condition holds.
const GUARD: Duration = Duration::from_secs(60);

const CONFIG: &str = r#"
[[destination]]
name = "good"
kind = "webhook"
url_env = "GOOD_URL"
secret_env = "HOOK_SECRET"

[[destination]]
name = "refused"
kind = "webhook"
url_env = "REFUSED_URL"
secret_env = "HOOK_SECRET"

[[destination]]
name = "flaky"
kind = "webhook"
url_env = "FLAKY_URL"
secret_env = "HOOK_SECRET"
"#;

/// A free local port, for the metrics server to listen on.
pub(crate) fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `GET http://addr/path`: the status (0 when nothing answers) and body.
pub(crate) fn get(addr: &str, path: &str) -> (u16, String) {
    get_within(addr, path, Duration::from_secs(10))
}

/// `get`, giving up (status 0) after `timeout`.
fn get_within(addr: &str, path: &str, timeout: Duration) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into();
    match agent.get(format!("http://{addr}{path}")).call() {
        Ok(mut response) => (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

/// Polls `GET addr/path` until `done` holds for its answer; returns it.
fn wait_for(addr: &str, path: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
    wait_within(addr, path, GUARD, done)
}

/// `wait_for`, giving up after `limit`.
fn wait_within(
    addr: &str,
    path: &str,
    limit: Duration,
    done: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = get(addr, path);
        if done(status, &body) || Instant::now() > deadline {
            return (status, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of one series (`name{labels}`) in a scrape.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

fn deliveries(scrape: &str, dest: &str, outcome: &str) -> Option<f64> {
    let series = format!("events_deliveries_total{{destination=\"{dest}\",outcome=\"{outcome}\"}}");
    value(scrape, &series)
}

pub(crate) fn of_dest(scrape: &str, metric: &str, dest: &str) -> Option<f64> {
    value(scrape, &format!("{metric}{{destination=\"{dest}\"}}"))
}

fn worker(events: Events, addr: &str) -> Running {
    let running = events.args(["work", "--metrics-addr", addr]).spawn();
    let (status, _) = wait_for(addr, "/healthz", |status, _| status == 200);
    assert_eq!(status, 200, "{}", running.stderr_so_far());
    running
}

#[test]
fn metrics_count_every_outcome_request_and_dead_letter_exactly() {
    const N: usize = 4;
    let redis = RedisServer::start();
    let (good, refused, flaky) = (Sink::start(), Sink::start(), Sink::start());
    refused.set_default(Reply::status(401, "bad key"));
    // One 503 (a retry) and one 429 (waited out in the lane) among flaky's
    // answers: 4 deliveries take 6 requests there.
    flaky.script(vec![
        Reply::status(503, "busy"),
        Reply::status(429, "slow down").header("Retry-After", "1"),
    ]);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("events.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let events = || {
        Events::new()
            .env("REDIS_URL", redis.url())
            .env("EVENTS_CONFIG", &config)
            .env("GOOD_URL", good.url())
            .env("REFUSED_URL", refused.url())
            .env("FLAKY_URL", flaky.url())
            .env("HOOK_SECRET", WEBHOOK_SECRET)
            .env("EVENTS_RETRY_BASE_MS", "10")
    };
    let addr = free_addr();
    let mut running = worker(events(), &addr);
    let (_, before) = get(&addr, "/metrics");
    for dest in ["good", "refused", "flaky"] {
        for outcome in ["delivered", "retried", "dead"] {
            assert_eq!(deliveries(&before, dest, outcome), Some(0.0), "{before}");
        }
        assert_eq!(of_dest(&before, "events_inflight", dest), Some(0.0));
    }
    for n in 0..N {
        events()
            .args([
                "emit",
                "user.signup",
                "--email",
                &format!("u{n}@example.com"),
            ])
            .run()
            .success();
    }
    let settled = |scrape: &str| {
        deliveries(scrape, "good", "delivered") == Some(N as f64)
            && deliveries(scrape, "flaky", "delivered") == Some(N as f64)
            && deliveries(scrape, "refused", "dead") == Some(N as f64)
            && value(scrape, "events_backlog{state=\"dead\"}") == Some(N as f64)
            && value(scrape, "events_backlog{state=\"pending\"}") == Some(0.0)
    };
    let (_, scrape) = wait_for(&addr, "/metrics", |_, body| settled(body));
    assert!(settled(&scrape), "{scrape}\n{}", running.stderr_so_far());
    let expected = [
        ("good", [N, 0, 0], N, N, 0),
        ("refused", [0, 0, N], N, 0, 0),
        ("flaky", [N, 1, 0], N + 2, N, 1),
    ];
    for (dest, [delivered, retried, dead], requests, lags, limited) in expected {
        let counts = ["delivered", "retried", "dead"].map(|o| deliveries(&scrape, dest, o));
        let want = [delivered, retried, dead].map(|n| Some(n as f64));
        assert_eq!(counts, want, "{dest}: {scrape}");
        let count = |metric: &str| of_dest(&scrape, metric, dest);
        assert_eq!(
            count("events_delivery_duration_seconds_count"),
            Some(requests as f64),
            "{dest}"
        );
        assert_eq!(
            count("events_delivery_lag_seconds_count"),
            Some(lags as f64),
            "{dest}"
        );
        assert_eq!(
            count("events_rate_limited_total"),
            Some(limited as f64),
            "{dest}"
        );
        assert_eq!(count("events_inflight"), Some(0.0), "{dest}");
    }
    assert_eq!(refused.request_count(), N);
    assert_eq!(flaky.request_count(), N + 2);
    assert_eq!(value(&scrape, "events_queue_up"), Some(1.0));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(
            &scrape,
            &format!("events_build_info{{version=\"{version}\"}}")
        ),
        Some(1.0)
    );
    let status = events()
        .args(["status", "--format", "json"])
        .run()
        .success()
        .stdout_json();
    assert_eq!(status["dead"]["total"], N);
    assert_eq!(get(&addr, "/nowhere").0, 404);
    running.kill();
}

#[test]
fn readyz_follows_the_queue_while_healthz_stays_up() {
    let mut redis = RedisServer::start();
    let addr = free_addr();
    let mut running = worker(
        Events::new()
            .env("REDIS_URL", redis.url())
            .env("EVENTS_CONSOLE", "1"),
        &addr,
    );
    let (status, body) = wait_for(&addr, "/readyz", |s, _| s == 200);
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    redis.stop();
    let (status, body) = wait_for(&addr, "/readyz", |s, _| s == 503);
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("the queue does not answer: "), "{body}");
    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".into()));
    let (_, scrape) = get(&addr, "/metrics");
    assert_eq!(value(&scrape, "events_queue_up"), Some(0.0), "{scrape}");
    redis.restart();
    let (status, body) = wait_for(&addr, "/readyz", |s, _| s == 200);
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(&addr, "/healthz").0, 200);
    running.kill();
}

#[test]
fn a_metrics_address_in_use_is_exit_2_before_any_work() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let home = tempfile::tempdir().unwrap();
    Events::new()
        .env("EVENTS_DB", home.path().join("events.db"))
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .run()
        .success();
    Events::new()
        .env("EVENTS_DB", home.path().join("events.db"))
        .env("EVENTS_CONSOLE", "1")
        .env("EVENTS_METRICS_ADDR", &addr)
        .args(["work", "--burst"])
        .run()
        .code(2)
        .stderr_has(&format!("--metrics-addr {addr}: cannot listen there"))
        .stdout_is("");
    Events::new()
        .env("EVENTS_DB", home.path().join("events.db"))
        .args(["work", "--burst", "--metrics-addr", "no-port-here"])
        .run()
        .code(2)
        .stderr_has("not a host:port address");
}

/// Where a probe used to hang for good: an answer within this long is no hang.
const PROBE_BOUND: Duration = Duration::from_secs(5);

/// A worker on SQLite (no Redis needed) serving on a free address.
fn sqlite_worker(home: &tempfile::TempDir) -> (Running, String) {
    let addr = free_addr();
    let events = Events::new()
        .env("EVENTS_DB", home.path().join("events.db"))
        .env("EVENTS_CONSOLE", "1");
    (worker(events, &addr), addr)
}

#[test]
fn a_client_pipelining_scrapes_it_never_reads_does_not_block_healthz() {
    let home = tempfile::tempdir().unwrap();
    let (mut running, addr) = sqlite_worker(&home);
    let _greedy = pipeline_unread(&addr, "/metrics", 20_000);
    for _ in 0..3 {
        let answer = get_within(&addr, "/healthz", PROBE_BOUND);
        assert_eq!(answer, (200, "ok\n".into()), "{}", running.stderr_so_far());
    }
    let (status, scrape) = get_within(&addr, "/metrics", PROBE_BOUND);
    assert_eq!(status, 200, "{scrape}");
    assert_eq!(value(&scrape, "events_queue_up"), Some(1.0), "{scrape}");
    running.kill();
}

#[test]
fn idle_slow_and_oversized_clients_do_not_block_healthz() {
    let home = tempfile::tempdir().unwrap();
    let (mut running, addr) = sqlite_worker(&home);
    let slow = trickle(&addr, Duration::from_millis(500), GUARD);
    let idle = idle_connections(&addr, 30);
    let answer = get_within(&addr, "/healthz", PROBE_BOUND);
    assert_eq!(answer, (200, "ok\n".into()), "{}", running.stderr_so_far());
    let answer = oversized_head(&addr, "/healthz", 64 * 1024);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    let put_up_with = slow.join().unwrap();
    assert!(
        put_up_with < GUARD,
        "a head sent a byte at a time kept its connection"
    );
    drop(idle);
    // More connections than are served at once, all silent: the oldest
    // make way for the probe.
    let _flood = idle_connections(&addr, 300);
    let answer = get_within(&addr, "/healthz", PROBE_BOUND);
    assert_eq!(answer, (200, "ok\n".into()), "{}", running.stderr_so_far());
    assert_eq!(get_within(&addr, "/readyz", PROBE_BOUND).0, 200);
    running.kill();
}

#[test]
fn readyz_turns_503_while_redis_is_frozen_and_200_once_it_thaws() {
    let redis = RedisServer::start();
    let addr = free_addr();
    let mut running = worker(
        Events::new()
            .env("REDIS_URL", redis.url())
            .env("EVENTS_CONSOLE", "1"),
        &addr,
    );
    let (status, _) = wait_for(&addr, "/readyz", |s, _| s == 200);
    assert_eq!(status, 200);
    redis.pause();
    // Refreshed every 2 s, each check given 2 s: 503 well within 10 s, where
    // it used to stay 200 until the client's own timeouts ran out.
    let (status, body) = wait_within(&addr, "/readyz", Duration::from_secs(10), |s, _| s == 503);
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("the queue does not answer: "), "{body}");
    assert_eq!(
        get_within(&addr, "/healthz", PROBE_BOUND),
        (200, "ok\n".into())
    );
    let (_, scrape) = get_within(&addr, "/metrics", PROBE_BOUND);
    assert_eq!(value(&scrape, "events_queue_up"), Some(0.0), "{scrape}");
    redis.resume();
    let (status, body) = wait_for(&addr, "/readyz", |s, _| s == 200);
    assert_eq!(status, 200, "{body}");
    let (_, scrape) = get(&addr, "/metrics");
    assert_eq!(value(&scrape, "events_queue_up"), Some(1.0), "{scrape}");
    running.kill();
}
