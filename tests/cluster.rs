//! `events` on a real Redis Cluster (three primaries, three replicas),
//! always through a node that does not own the queue's slot: the commands
//! follow the cluster to the slot's primary, and a running worker keeps
//! going (nothing lost) through a primary's crash and a slot migration. And
//! the check for a cluster never gets in the way of one server.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{
    Events, LONG, RedisCluster, RedisServer, Running, Sink, WEBHOOK_SECRET, signups, webhook_ids,
};

/// `events` on the cluster node at `url`, with fast retries.
fn events(url: &str) -> Events {
    Events::new()
        .env("REDIS_URL", url)
        .env("EVENTS_RETRY_BASE_MS", "10")
        .env("EVENTS_HTTP_TIMEOUT_MS", "3000")
}

fn webhook(url: &str, sink: &Sink) -> Events {
    events(url)
        .env("EVENTS_WEBHOOK_URL", sink.url())
        .env("EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET)
}

/// Emits one signup; its id when `emit` succeeded.
fn emit_one(events: Events, i: usize) -> Option<String> {
    let outcome = events
        .args(["emit", "user.signup", "--email"])
        .arg(format!("user{i}@example.com"))
        .timeout(LONG)
        .run();
    (outcome.status == Some(0)).then(|| outcome.stdout.trim().to_owned())
}

/// Waits until the sink has received every id of `ids`.
fn wait_delivered(sink: &Sink, ids: &BTreeSet<String>) {
    let deadline = Instant::now() + LONG;
    loop {
        let delivered = webhook_ids(sink);
        let missing: Vec<&String> = ids
            .iter()
            .filter(|id| !delivered.contains_key(*id))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never delivered: {missing:?} (delivered {})",
            delivered.len()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Emits one signup after another from a thread until stopped; the ids of
/// those that succeeded.
struct Emitter {
    stop: Arc<AtomicBool>,
    succeeded: Arc<Mutex<Vec<String>>>,
    thread: thread::JoinHandle<usize>,
}

impl Emitter {
    fn start(make: impl Fn() -> Events + Send + 'static) -> Emitter {
        let stop = Arc::new(AtomicBool::new(false));
        let succeeded = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, succeeded) = (Arc::clone(&stop), Arc::clone(&succeeded));
            thread::spawn(move || {
                let mut tried = 0;
                while !stop.load(Ordering::Relaxed) {
                    tried += 1;
                    if let Some(id) = emit_one(make(), 1000 + tried) {
                        succeeded.lock().unwrap().push(id);
                    }
                }
                tried
            })
        };
        Emitter {
            stop,
            succeeded,
            thread,
        }
    }

    fn succeeded(&self) -> usize {
        self.succeeded.lock().unwrap().len()
    }

    /// Stops, and returns the ids of the emits that succeeded.
    fn finish(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the emitter thread");
        self.succeeded.lock().unwrap().iter().cloned().collect()
    }
}

/// Stops a worker with SIGTERM and checks it had kept running until then.
fn stop_worker(mut worker: Running) {
    assert!(
        worker.is_running(),
        "the worker exited: {}",
        worker.stderr_so_far()
    );
    worker.signal("TERM");
    worker.wait(LONG).success();
}

#[test]
fn emit_work_replay_and_status_go_through_a_node_that_does_not_own_the_slot() {
    let cluster = RedisCluster::start();
    let (owner, other) = (cluster.owner(), cluster.other_primary());
    let url = RedisCluster::url(other);
    let sink = Sink::start();

    events(&url)
        .args(["emit", "--stdin"])
        .stdin(signups(0..20))
        .run()
        .success();
    let single = emit_one(events(&url), 20).expect("a single emit succeeds");
    assert_eq!(cluster.cli(owner, &["XLEN", "{events}:stream"]), "21");

    let status = events(&url)
        .args(["status", "--format", "json"])
        .run()
        .success();
    let shown = status.stdout_json()["backend"]["where"]
        .as_str()
        .expect("where the queue is")
        .to_owned();
    assert!(
        shown.ends_with(&format!(
            "Redis Cluster, slot 9102 on the primary 127.0.0.1:{owner})"
        )),
        "{shown}"
    );
    assert_eq!(status.stdout_json()["stream"]["length"], 21);

    webhook(&url, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    let delivered = webhook_ids(&sink);
    assert_eq!(delivered.len(), 21, "{delivered:?}");
    assert!(delivered.values().all(|&n| n == 1), "{delivered:?}");
    assert_eq!(delivered.get(&single), Some(&1));

    webhook(&url, &sink)
        .args(["replay", "--since", "1h", "--yes"])
        .run()
        .success();
    webhook(&url, &sink)
        .args(["work", "--burst"])
        .run()
        .success();
    let delivered = webhook_ids(&sink);
    assert!(delivered.values().all(|&n| n == 2), "{delivered:?}");

    // Keys without a hash tag would be spread over the cluster's slots.
    events(&url)
        .env("EVENTS_PREFIX", "events")
        .args(["emit", "user.signup", "--email", "a@example.com"])
        .run()
        .code(2)
        .stderr_has("{events}");
}

#[test]
fn a_primary_crash_under_a_running_worker_loses_no_confirmed_emit() {
    let mut cluster = RedisCluster::start();
    let (owner, other) = (cluster.owner(), cluster.other_primary());
    let url = RedisCluster::url(other);
    let sink = Sink::start();
    // The worker names the primary that will die: it must find the rest
    // of the cluster on its own.
    let worker = webhook(&RedisCluster::url(owner), &sink)
        .arg("work")
        .spawn();
    let emitter = {
        let url = url.clone();
        Emitter::start(move || {
            events(&url)
                .env("EVENTS_EMIT_REPLICAS", "1")
                .env("EVENTS_EMIT_REPLICAS_TIMEOUT_MS", "2000")
        })
    };
    let deadline = Instant::now() + LONG;
    while emitter.succeeded() < 5 {
        assert!(Instant::now() < deadline, "no emit succeeded");
        thread::sleep(Duration::from_millis(20));
    }

    cluster.crash(owner);
    cluster.wait_failed_over(owner);
    // While the node of its URL is down, the worker delivers through the
    // replica that took over (the new primary has no replica yet, so this
    // emit does not wait for one).
    let deadline = Instant::now() + LONG;
    let marker = loop {
        if let Some(id) = emit_one(events(&url), 0) {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no emit succeeded after the failover"
        );
    };
    wait_delivered(&sink, &BTreeSet::from([marker]));
    // Back as a replica of the new primary, so WAIT 1 can be met again.
    cluster.restart(owner);
    cluster.wait_healthy();
    let before = emitter.succeeded();
    let deadline = Instant::now() + LONG;
    while emitter.succeeded() < before + 5 {
        assert!(
            Instant::now() < deadline,
            "no emit succeeded after the failover"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let confirmed = emitter.finish();

    wait_delivered(&sink, &confirmed);
    assert_ne!(cluster.owner(), owner, "a replica took the slot over");
    stop_worker(worker);
}

#[test]
fn a_slot_migration_under_a_running_worker_loses_nothing() {
    let cluster = RedisCluster::start();
    let owner = cluster.owner();
    let others: Vec<u16> = cluster
        .primary_ports()
        .into_iter()
        .filter(|&p| p != owner)
        .collect();
    let (url, target) = (RedisCluster::url(others[0]), others[1]);
    let sink = Sink::start();
    events(&url)
        .args(["emit", "--stdin"])
        .stdin(signups(0..10))
        .run()
        .success();
    let worker = webhook(&url, &sink).arg("work").spawn();
    sink.wait_accepted(10, LONG);
    let emitter = {
        let url = url.clone();
        Emitter::start(move || events(&url))
    };
    let deadline = Instant::now() + LONG;
    while emitter.succeeded() < 3 {
        assert!(Instant::now() < deadline, "no emit succeeded");
        thread::sleep(Duration::from_millis(20));
    }

    cluster.migrate_slot(target);
    assert_eq!(cluster.owner(), target);
    let before = emitter.succeeded();
    let deadline = Instant::now() + LONG;
    while emitter.succeeded() < before + 3 {
        assert!(
            Instant::now() < deadline,
            "no emit succeeded after the migration"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let emitted = emitter.finish();

    wait_delivered(&sink, &emitted);
    assert!(webhook_ids(&sink).len() >= 10 + emitted.len());
    stop_worker(worker);
}

#[test]
fn a_user_not_allowed_info_still_gets_one_server() {
    let redis = RedisServer::start();
    redis.cli(&[
        "ACL", "SETUSER", "emitter", "on", ">s3cret", "~*", "+@all", "-info",
    ]);
    let url = format!("redis://emitter:s3cret@127.0.0.1:{}", redis.port());
    emit_one(events(&url), 1).expect("the emit succeeds");
    assert_eq!(redis.cli(&["XLEN", "{events}:stream"]), "1");
}
