//! A real, throw-away Redis Cluster for the tests that need one: three
//! primaries and three replicas (`redis-server --cluster-enabled yes`, joined
//! by `redis-cli --cluster create`), each node in its own temporary
//! directory, all killed when dropped. Real nodes rather than a fake, so
//! `MOVED`, `ASK`, failover and slot migration behave as in production.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a node may take to start, and the cluster to agree on a change.
const SETTLE: Duration = Duration::from_secs(60);
/// How long a node goes unanswered before the others fail it over: short,
/// so a failover takes a few seconds.
const NODE_TIMEOUT_MS: &str = "1000";
/// The slot of the `{events}` hash tag (`CLUSTER KEYSLOT {events}:stream`).
pub const EVENTS_SLOT: &str = "9102";
const EVENTS_SLOT_NUMBER: u32 = 9102;

/// One `redis-server` of the cluster.
struct Node {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// A running 3-primary, 3-replica cluster on 127.0.0.1.
pub struct RedisCluster {
    nodes: Vec<Node>,
}

/// Node ports lie in `PORTS`, so that each cluster bus port (+10000) lies
/// below the kernel's ephemeral range (32768 and up) too: no client socket
/// or `redis-server` started on a port picked by the kernel can take the port
/// of a node that is down for a restart.
const PORTS: std::ops::Range<u32> = 20_000..22_700;
/// The next candidate of this process; every test runs in a process of its
/// own, which starts at its own hundred of `PORTS`.
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

fn free_port_pair() -> u16 {
    let span = PORTS.end - PORTS.start;
    let first = std::process::id() % (span / 100) * 100;
    let _ = NEXT_PORT.compare_exchange(0, first + 1, Ordering::Relaxed, Ordering::Relaxed);
    loop {
        let n = NEXT_PORT.fetch_add(1, Ordering::Relaxed) - 1;
        let port = u16::try_from(PORTS.start + n % span).expect("a port");
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
}

impl RedisCluster {
    /// Starts six nodes, joins them (each primary gets one replica) and
    /// waits until every node reports `cluster_state:ok` and every primary
    /// has its replica online.
    pub fn start() -> RedisCluster {
        let nodes: Vec<Node> = (0..6).map(|_| Node::start()).collect();
        let cluster = RedisCluster { nodes };
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        cluster.wait_healthy();
        cluster
    }

    /// `redis://127.0.0.1:PORT` of the node on `port`.
    pub fn url(port: u16) -> String {
        format!("redis://127.0.0.1:{port}")
    }

    /// The primary that owns the `{events}` slot.
    pub fn owner(&self) -> u16 {
        self.owner_now().expect("a primary owns the {events} slot")
    }

    /// The live primary that owns the `{events}` slot, if any (none while
    /// its crashed primary is being failed over).
    fn owner_now(&self) -> Option<u16> {
        self.primaries()
            .into_iter()
            .find(|(_, slots)| slots.iter().any(|r| r.contains(&EVENTS_SLOT_NUMBER)))
            .map(|(port, _)| port)
    }

    /// A primary that does not own the `{events}` slot.
    pub fn other_primary(&self) -> u16 {
        let owner = self.owner();
        self.primaries()
            .into_keys()
            .find(|&port| port != owner)
            .expect("another primary")
    }

    /// The ports of the three live primaries.
    pub fn primary_ports(&self) -> Vec<u16> {
        self.primaries().into_keys().collect()
    }

    /// `redis-cli -c` on the node on `port` (following redirections), with
    /// its trimmed output; panics when it fails.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-c", "-h", "127.0.0.1", "-p", &port.to_string(), "--raw"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert!(
            output.status.success() && !text.starts_with("ERR"),
            "redis-cli {args:?} on {port}: {text} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        text
    }

    /// Kills the node on `port` with SIGKILL: a crash.
    pub fn crash(&mut self, port: u16) {
        let node = self.node_mut(port);
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node on `port` again from its directory; it rejoins the
    /// cluster (as a replica, if it was failed over).
    pub fn restart(&mut self, port: u16) {
        let node = self.node_mut(port);
        assert!(node.child.is_none(), "the node on {port} is running");
        node.child = Some(spawn(port, node.dir.path()));
        wait_ping(port, node.dir.path());
    }

    /// Waits until every running node reports `cluster_state:ok`, the
    /// `{events}` slot has a primary that every node agrees on, and every
    /// primary has its replicas online.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + SETTLE;
        loop {
            match self.health() {
                Ok(()) => return,
                Err(why) if Instant::now() > deadline => {
                    panic!("the cluster did not settle within {SETTLE:?}: {why}")
                }
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn health(&self) -> Result<(), String> {
        let mut owners = Vec::new();
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let info = try_cli(node.port, &["CLUSTER", "INFO"])?;
            if !info.contains("cluster_state:ok") {
                return Err(format!("{} is not ok", node.port));
            }
            owners.push(try_cli(node.port, &["CLUSTER", "NODES"]).map(|n| owner_in(&n))?);
        }
        if owners.windows(2).any(|w| w[0] != w[1]) || owners[0].is_none() {
            return Err(format!("the nodes disagree on the owner: {owners:?}"));
        }
        let all_running = self.nodes.iter().all(|n| n.child.is_some());
        for (port, _) in self.primaries() {
            let info = try_cli(port, &["INFO", "replication"])?;
            if all_running && !info.contains("state=online") {
                return Err(format!("{port} has no replica online"));
            }
        }
        Ok(())
    }

    /// Waits until a replica has taken over the `{events}` slot from the
    /// primary on `port` (crashed), and the cluster is healthy again.
    pub fn wait_failed_over(&self, port: u16) {
        let deadline = Instant::now() + SETTLE;
        while self.owner_now().is_none_or(|owner| owner == port) || self.health().is_err() {
            assert!(
                Instant::now() < deadline,
                "no replica took over from {port} within {SETTLE:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Moves the `{events}` slot and its keys to the primary on `to`, the
    /// way `redis-cli --cluster reshard` does: `IMPORTING` on the target,
    /// `MIGRATING` on the source, `MIGRATE … KEYS …` until the slot is
    /// empty, then `SETSLOT … NODE` on every primary.
    pub fn migrate_slot(&self, to: u16) {
        let from = self.owner();
        let id = |port: u16| self.cli(port, &["CLUSTER", "MYID"]);
        let (from_id, to_id) = (id(from), id(to));
        self.cli(
            to,
            &["CLUSTER", "SETSLOT", EVENTS_SLOT, "IMPORTING", &from_id],
        );
        self.cli(
            from,
            &["CLUSTER", "SETSLOT", EVENTS_SLOT, "MIGRATING", &to_id],
        );
        loop {
            let keys = self.cli(from, &["CLUSTER", "GETKEYSINSLOT", EVENTS_SLOT, "100"]);
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let to_port = to.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
            args.extend(keys);
            self.cli(from, &args);
        }
        self.cli(to, &["CLUSTER", "SETSLOT", EVENTS_SLOT, "NODE", &to_id]);
        self.cli(from, &["CLUSTER", "SETSLOT", EVENTS_SLOT, "NODE", &to_id]);
        for (port, _) in self.primaries() {
            if port != to && port != from {
                self.cli(port, &["CLUSTER", "SETSLOT", EVENTS_SLOT, "NODE", &to_id]);
            }
        }
    }

    /// Each live primary's port and slot ranges, as a running node sees them.
    fn primaries(&self) -> BTreeMap<u16, Vec<std::ops::RangeInclusive<u32>>> {
        let node = self
            .nodes
            .iter()
            .find(|n| n.child.is_some())
            .expect("a running node");
        let nodes = self.cli(node.port, &["CLUSTER", "NODES"]);
        primaries_in(&nodes)
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on {port}"))
    }
}

/// Live primaries in a `CLUSTER NODES` reply: `id host:port@bus flags
/// primary ping pong epoch state slot…`.
fn primaries_in(nodes: &str) -> BTreeMap<u16, Vec<std::ops::RangeInclusive<u32>>> {
    let mut primaries = BTreeMap::new();
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 || !fields[2].contains("master") || fields[2].contains("fail") {
            continue;
        }
        let Some(port) = fields[1]
            .split(['@', ':'])
            .nth(1)
            .and_then(|p| p.parse().ok())
        else {
            continue;
        };
        let ranges = fields[8..]
            .iter()
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| {
                let (a, b) = s.split_once('-').unwrap_or((s, s));
                Some(a.parse().ok()?..=b.parse().ok()?)
            })
            .collect();
        primaries.insert(port, ranges);
    }
    primaries
}

/// The primary owning the `{events}` slot in a `CLUSTER NODES` reply.
fn owner_in(nodes: &str) -> Option<u16> {
    primaries_in(nodes)
        .into_iter()
        .find(|(_, slots)| slots.iter().any(|r| r.contains(&EVENTS_SLOT_NUMBER)))
        .map(|(port, _)| port)
}

impl Node {
    fn start() -> Node {
        let dir = tempfile::Builder::new()
            .prefix("events-cluster-")
            .tempdir()
            .expect("create a temporary directory for a cluster node");
        let port = free_port_pair();
        let child = spawn(port, dir.path());
        wait_ping(port, dir.path());
        Node {
            port,
            child: Some(child),
            dir,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(port: u16, dir: &Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ])
        .args(["--cluster-node-timeout", NODE_TIMEOUT_MS])
        .arg("--dir")
        .arg(dir)
        .args(["--daemonize", "no", "--save", "", "--appendonly", "no"])
        .args([
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ])
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server (is it on PATH?)")
}

fn wait_ping(port: u16, dir: &Path) {
    let deadline = Instant::now() + SETTLE;
    while try_cli(port, &["PING"]).as_deref() != Ok("PONG") {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "the cluster node on {port} did not answer PING; its log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn try_cli(port: u16, args: &[&str]) -> Result<String, String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--raw"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && !text.starts_with("ERR") && !text.starts_with("Could not") {
        Ok(text)
    } else {
        Err(format!(
            "{text} {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
