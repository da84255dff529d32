//! Tests of `redis+sentinel://` URLs against a real Sentinel setup (a
//! primary, a replica and three sentinels): emit, `SENTINEL FAILOVER`, emit
//! again and work, with every event delivered once; a running worker that
//! follows the failover; `status` naming the primary; and the URL and
//! reachability errors.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use crate::support::sentinel::{FakeSentinel, SERVICE, SentinelSetup, Trick};
use crate::support::{Events, LONG, Outcome, RedisServer, Sink, WEBHOOK_SECRET, webhook_ids};

const STREAM: &str = "{events}:stream";

/// The binary on the setup's sentinels, delivering to a webhook `sink`.
fn events(url: &str, sink: &Sink) -> Events {
    Events::new()
        .env("REDIS_URL", url)
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("EVENTS_RETRY_BASE_MS", "10")
}

/// Emits one signup and returns the id `emit` printed.
fn emit(events: Events, email: &str) -> String {
    let outcome = events
        .args(["emit", "user.signup", "--email", email])
        .run()
        .success();
    outcome.stdout.trim().to_owned()
}

#[test]
fn events_emitted_before_and_after_a_failover_are_each_delivered_once() {
    let setup = SentinelSetup::start();
    let sink = Sink::start();
    let url = setup.url();
    let before = emit(
        events(&url, &sink)
            .env("EVENTS_EMIT_REPLICAS", "1")
            .env("EVENTS_EMIT_REPLICAS_TIMEOUT_MS", "30000"),
        "before@example.com",
    );
    setup.failover();
    let after = emit(events(&url, &sink), "after@example.com");
    assert_eq!(
        setup.cli(&setup.replica, &["XLEN", STREAM]),
        "2",
        "both events are on the promoted replica"
    );
    events(&url, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    assert_eq!(
        webhook_ids(&sink),
        BTreeMap::from([(before, 1), (after, 1)]),
        "each event delivered exactly once"
    );
}

#[test]
fn a_running_worker_follows_the_failover_to_the_new_primary() {
    let setup = SentinelSetup::start();
    let sink = Sink::start();
    let url = setup.url();
    let worker = events(&url, &sink).arg("work").spawn();
    let first = emit(events(&url, &sink), "first@example.com");
    assert_eq!(sink.wait_accepted(1, LONG).len(), 1);
    // What the primary acknowledged (the delivery included) is on the
    // replica before it is promoted: nothing is delivered twice.
    setup.sync_replica();
    setup.failover();
    let second = emit(events(&url, &sink), "second@example.com");
    assert_eq!(
        sink.wait_accepted(2, LONG).len(),
        2,
        "{}",
        worker.stderr_so_far()
    );
    let moved = format!(
        "the sentinels name a new primary for {SERVICE}: 127.0.0.1:{} (was 127.0.0.1:{})",
        setup.replica.port(),
        setup.primary.port()
    );
    assert!(
        worker.wait_for_stderr(&moved, LONG),
        "{}",
        worker.stderr_so_far()
    );
    worker.signal("TERM");
    worker.wait(LONG).success();
    let delivered = webhook_ids(&sink);
    assert_eq!(delivered.get(&first), Some(&1), "{delivered:?}");
    assert_eq!(delivered.get(&second), Some(&1), "{delivered:?}");
    assert_eq!(delivered.len(), 2);
}

#[test]
fn a_running_worker_follows_when_the_primary_is_killed() {
    let mut setup = SentinelSetup::start();
    let sink = Sink::start();
    let url = setup.url();
    let worker = events(&url, &sink).arg("work").spawn();
    let durable = || {
        events(&url, &sink)
            .env("EVENTS_EMIT_REPLICAS", "1")
            .env("EVENTS_EMIT_REPLICAS_TIMEOUT_MS", "30000")
    };
    let first = emit(durable(), "first@example.com");
    assert_eq!(sink.wait_accepted(1, LONG).len(), 1);
    setup.sync_replica();
    let killed = setup.primary.port();
    setup.crash_primary();
    let second = emit(events(&url, &sink), "second@example.com");
    assert_eq!(
        sink.wait_accepted(2, LONG).len(),
        2,
        "{}",
        worker.stderr_so_far()
    );
    let moved = format!(
        "the sentinels name a new primary for {SERVICE}: 127.0.0.1:{} (was 127.0.0.1:{killed})",
        setup.replica.port()
    );
    assert!(
        worker.wait_for_stderr(&moved, LONG),
        "{}",
        worker.stderr_so_far()
    );
    worker.signal("TERM");
    worker.wait(LONG).success();
    assert_eq!(
        webhook_ids(&sink),
        BTreeMap::from([(first, 1), (second, 1)])
    );
}

#[test]
fn status_names_the_service_and_its_primary_never_the_password() {
    let setup = SentinelSetup::start_with(Some("Zs3cret"));
    let sink = Sink::start();
    let hosts = setup.url();
    let url = hosts.replacen("redis+sentinel://", "redis+sentinel://:Zs3cret@", 1);
    emit(events(&url, &sink), "a@example.com");
    let primary = format!(
        "sentinel {SERVICE}, primary 127.0.0.1:{}",
        setup.primary.port()
    );
    events(&url, &sink)
        .arg("status")
        .run()
        .success()
        .stdout_has(&primary)
        .stdout_lacks("Zs3cret");
}

#[test]
fn a_sentinel_url_without_a_service_is_refused_with_exit_2() {
    let sink = Sink::start();
    events("redis+sentinel://:Zs3cret@127.0.0.1:26379", &sink)
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .run()
        .code(2)
        .stderr_has("names no service: end it with /SERVICE")
        .stderr_lacks("Zs3cret");
}

#[test]
fn unreachable_sentinels_are_exit_1_naming_each_one_tried() {
    let sink = Sink::start();
    // Ports nobody listens on: bound, then freed.
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
        })
        .collect();
    let url = format!(
        "redis+sentinel://127.0.0.1:{},127.0.0.1:{}/svc",
        ports[0], ports[1]
    );
    events(&url, &sink)
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "cannot reach the Redis primary of svc (sentinels tried: 127.0.0.1:{}, 127.0.0.1:{})",
            ports[0], ports[1]
        ));
}

/// A sentinel that accepts connections and never answers (a hung process,
/// a proxy in front of a dead one) costs a couple of seconds, not the whole
/// lookup: the next sentinel is asked.
#[test]
fn a_sentinel_that_never_answers_is_passed_over() {
    let setup = SentinelSetup::start();
    let sink = Sink::start();
    let hung = TcpListener::bind("127.0.0.1:0").expect("a port to hang on");
    let port = hung.local_addr().unwrap().port();
    // Connections complete in the kernel's backlog and are never read.
    let url = setup.url().replacen(
        "redis+sentinel://",
        &format!("redis+sentinel://127.0.0.1:{port},"),
        1,
    );
    let id = emit(events(&url, &sink).timeout(LONG), "hung@example.com");
    events(&url, &sink)
        .args(["work", "--burst"])
        .timeout(LONG)
        .run()
        .success();
    assert_eq!(webhook_ids(&sink), BTreeMap::from([(id, 1)]));
    drop(hung);
}

/// A primary turned replica without dropping its clients answers READONLY:
/// the connection is closed on it, so the next call reconnects (with
/// Sentinel, asking the sentinels for the new primary first).
#[test]
fn a_connection_to_a_server_turned_replica_is_closed_on_readonly() {
    use events::config::Global;
    use events::error::Error;
    use events::queue::{QueueError, UnavailableReason};
    use events::setup::Setup;
    use serde_json::json;

    let server = RedisServer::start();
    let other = RedisServer::start();
    let url = server.url();
    let env = |name: &str| (name == "REDIS_URL").then(|| url.clone());
    let config = Setup::load_with(&Global::default(), &env).unwrap();
    let mut emitter = events::Emitter::new(config).unwrap();
    let signup = json!({"email": "a@example.com"});
    emitter.emit("user.signup", signup.clone()).unwrap();
    server.cli(&["REPLICAOF", "127.0.0.1", &other.port().to_string()]);
    let err = emitter.emit("user.signup", signup.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Queue(QueueError::Unavailable {
                reason: UnavailableReason::ReadOnly,
                ..
            })
        ),
        "{err:?}"
    );
    let clients = server.cli(&["CLIENT", "LIST", "TYPE", "normal"]);
    assert_eq!(
        clients.lines().count(),
        1,
        "only redis-cli's own connection is left: {clients}"
    );
    server.cli(&["REPLICAOF", "NO", "ONE"]);
    emitter.emit("user.signup", signup).unwrap();
}

#[test]
fn a_primary_that_needs_the_password_the_url_lacks_is_exit_1_saying_where_it_goes() {
    let setup = SentinelSetup::start_with(Some("Zs3cret"));
    let sink = Sink::start();
    events(&setup.url(), &sink)
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "Redis at sentinel {SERVICE}, sentinels 127.0.0.1:"
        ))
        .stderr_has("needs a password")
        .stderr_has("give it in the URL, redis+sentinel://:PASSWORD@host:port,…/SERVICE");
    let wrong = setup
        .url()
        .replacen("redis+sentinel://", "redis+sentinel://:Zwrong@", 1);
    events(&wrong, &sink)
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .run()
        .code(1)
        .stderr_has("refused the password (or user) in the URL")
        .stderr_lacks("Zwrong");
}

/// Far longer than the lookup may take (2 s a sentinel); reached only when
/// a sentinel holds the command for ever.
const HANG: Duration = Duration::from_secs(30);

/// `emit` with the fake sentinel alone: it fails, exit 1.
fn emit_via(fake: &FakeSentinel) -> Outcome {
    let sink = Sink::start();
    let url = format!("redis+sentinel://127.0.0.1:{}/mymaster", fake.port());
    events(&url, &sink)
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .timeout(HANG)
        .run()
        .code(1)
}

/// stderr is one short line, with nothing that could drive a terminal.
fn assert_short_and_safe(out: &Outcome) {
    let stderr = &out.stderr;
    assert!(stderr.len() < 2048, "{} bytes of stderr", stderr.len());
    let line = stderr.strip_suffix('\n').unwrap_or(stderr);
    assert!(
        !line.chars().any(|c| c.is_control()),
        "a control character in {line:?}"
    );
}

#[test]
fn a_sentinel_that_trickles_its_answer_is_given_up_on_after_2_s() {
    let fake = FakeSentinel::start(Trick::Trickle);
    let out = emit_via(&fake).stderr_has(&format!(
        "cannot reach the Redis primary of mymaster (sentinels tried: 127.0.0.1:{port}): \
         sentinel 127.0.0.1:{port} did not answer within 2 s",
        port = fake.port()
    ));
    assert_short_and_safe(&out);
}

#[test]
fn a_sentinels_64_mb_answer_is_cut_short_and_never_echoed() {
    let fake = FakeSentinel::start(Trick::Huge(64 << 20));
    let out = emit_via(&fake).stderr_has(&format!(
        "sentinel 127.0.0.1:{} sent more than 64 KiB without finishing its answer",
        fake.port()
    ));
    assert_short_and_safe(&out);
}

#[test]
fn a_sentinels_error_is_echoed_short_with_its_controls_escaped() {
    let mut said = b"-ERR \x1b[2Kforged\x07 ".to_vec();
    said.extend(b"x".repeat(3000));
    said.extend(b"\r\n");
    let fake = FakeSentinel::start(Trick::Say(said));
    let out = emit_via(&fake).stderr_has(&format!(
        "sentinel 127.0.0.1:{} answered with an error: ERR \\u{{1b}}[2Kforged\\u{{7}} xxx",
        fake.port()
    ));
    assert_short_and_safe(&out);
    assert!(out.stderr.contains("…"), "{}", out.stderr);
}

/// An HTTP server in the list (a wrong port) waits for a request's end,
/// which a Redis command never has: it is passed over as one that never
/// answers, and the next sentinel names the primary.
#[test]
fn an_http_server_listed_as_a_sentinel_is_passed_over() {
    let setup = SentinelSetup::start();
    let sink = Sink::start();
    let http = Sink::start();
    let url = setup.url().replacen(
        "redis+sentinel://",
        &format!("redis+sentinel://127.0.0.1:{},", http.port()),
        1,
    );
    emit(events(&url, &sink).timeout(HANG), "http@example.com");
    assert!(http.requests().is_empty(), "{:?}", http.requests());
}
