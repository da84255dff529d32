//! One connection type for the Redis backend, whether `REDIS_URL` names a
//! single server or any node of a Redis Cluster, so every operation of the
//! backend is written once.
//!
//! The mode is found at connect time (`INFO cluster`, `cluster_enabled:1`).
//! On a cluster, the redis crate's cluster client follows `MOVED`/`ASK` and
//! reconnects; every key of the queue shares one hash tag, so one slot holds
//! the queue and everything the backend sends goes to that slot's primary:
//! keyed commands by their key, and keyless ones (`WAIT` after a write,
//! `SCRIPT LOAD` when a script is missing, `INFO`) routed there explicitly,
//! never to a random node, where `WAIT` would count another primary's
//! replicas.

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{
    Cmd, Connection, ConnectionAddr, ConnectionLike, ErrorKind, RedisResult, ServerErrorKind, Value,
};

/// Attempts of one request through redirections, reconnections and
/// `TRYAGAIN` before the backend reports the cluster unavailable (and the
/// worker waits and resumes).
const RETRIES: u32 = 6;
/// Bounds of the wait between those attempts (ms).
const MIN_RETRY_WAIT_MS: u64 = 50;
const MAX_RETRY_WAIT_MS: u64 = 1_000;

/// How the queue's Redis is deployed, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mode {
    Standalone,
    /// A Redis Cluster; `owner` (`host:port`) is the primary that held the
    /// queue's slot when connected.
    Cluster {
        slot: u16,
        owner: String,
    },
}

/// A connection to the queue's Redis, single server or cluster.
pub(super) enum Conn {
    Single(Connection),
    Cluster(Box<Cluster>),
}

pub(super) struct Cluster {
    conn: ClusterConnection,
    slot: u16,
    /// `PTTL <a queue key>`, packed. The cluster client routes a pipeline by
    /// its first command, and a random node when that one is keyless (`WAIT`)
    /// or multi-key (`DEL`): put first, it sends every pipeline to the slot.
    anchor: Vec<u8>,
    owner: String,
    /// Every node of the cluster when connected (`host`, `port`).
    nodes: Vec<Node>,
}

impl Conn {
    /// Connects to the server `client` names and, when it is a cluster
    /// node, to the cluster through it. `key` is any key of the queue;
    /// replies may take up to `response` (longer than any blocking read).
    ///
    /// When that server cannot be reached and it was a cluster node, the
    /// cluster's other nodes as last seen (`known`) are tried in turn: a
    /// worker whose `REDIS_URL` names the primary that died finds the
    /// replica that took over.
    pub(super) fn open(
        client: &redis::Client,
        known: &[Node],
        key: &str,
        connect: Duration,
        response: Duration,
    ) -> RedisResult<Conn> {
        let first = Conn::open_one(client, key, connect, response);
        let Err(e) = &first else { return first };
        if !super::is_connection_error(e) {
            return first;
        }
        let info = client.get_connection_info();
        for (host, port) in known {
            let Some(addr) = node_addr(info.addr(), host, *port) else {
                continue;
            };
            let Ok(other) = redis::Client::open(info.clone().set_addr(addr)) else {
                continue;
            };
            if let Ok(conn) = Conn::open_one(&other, key, connect, response) {
                return Ok(conn);
            }
        }
        first
    }

    /// The cluster's nodes (`host`, `port`) as this connection last saw
    /// them; none for a single server.
    pub(super) fn nodes(&self) -> &[Node] {
        match self {
            Conn::Single(_) => &[],
            Conn::Cluster(c) => &c.nodes,
        }
    }

    fn open_one(
        client: &redis::Client,
        key: &str,
        connect: Duration,
        response: Duration,
    ) -> RedisResult<Conn> {
        let mut single = client.get_connection_with_timeout(connect)?;
        single.set_read_timeout(Some(response))?;
        let info = match redis::cmd("INFO")
            .arg("cluster")
            .query::<String>(&mut single)
        {
            Ok(info) => info,
            // A server that forbids or renamed INFO is not a cluster node:
            // those always answer it.
            Err(e) if forbids_info(&e) => return Ok(Conn::Single(single)),
            Err(e) => return Err(e),
        };
        if !cluster_enabled(&info) {
            return Ok(Conn::Single(single));
        }
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut single)?;
        drop(single);
        let mut conn = ClusterClient::builder([client.get_connection_info().clone()])
            .connection_timeout(connect)
            .response_timeout(response)
            .retries(RETRIES)
            .min_retry_wait(MIN_RETRY_WAIT_MS)
            .max_retry_wait(MAX_RETRY_WAIT_MS)
            .build()?
            .get_connection()?;
        let slots = conn.route_command(redis::cmd("CLUSTER").arg("SLOTS"), to_slot(slot))?;
        let owner = owner_in(&slots, slot).unwrap_or_else(|| "an unknown node".into());
        Ok(Conn::Cluster(Box::new(Cluster {
            conn,
            slot,
            anchor: redis::cmd("PTTL").arg(key).get_packed_command(),
            owner,
            nodes: nodes_in(&slots),
        })))
    }

    /// How long a reply may take (longer than a blocking read's `BLOCK`).
    pub(super) fn set_read_timeout(&self, timeout: Option<Duration>) -> RedisResult<()> {
        match self {
            Conn::Single(c) => c.set_read_timeout(timeout),
            Conn::Cluster(c) => c.conn.set_read_timeout(timeout),
        }
    }

    /// Where the queue lives.
    pub(super) fn mode(&self) -> Mode {
        match self {
            Conn::Single(_) => Mode::Standalone,
            Conn::Cluster(c) => Mode::Cluster {
                slot: c.slot,
                owner: c.owner.clone(),
            },
        }
    }
}

impl Cluster {
    /// Sends a packed pipeline (a transaction when it opens with `MULTI`)
    /// with the anchor as its first command, and drops the anchor's reply.
    /// Inside a transaction the anchor follows `MULTI`: its reply is the
    /// first of `EXEC`'s.
    fn pipeline(&mut self, cmd: &[u8], offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        let mut anchored = Vec::with_capacity(self.anchor.len() + cmd.len());
        if let Some(rest) = cmd.strip_prefix(MULTI) {
            anchored.extend_from_slice(MULTI);
            anchored.extend_from_slice(&self.anchor);
            anchored.extend_from_slice(rest);
            let mut replies = self
                .conn
                .req_packed_commands(&anchored, offset + 1, count)?;
            if let Some(Value::Array(exec)) = replies.first_mut()
                && !exec.is_empty()
            {
                exec.remove(0);
            }
            return Ok(replies);
        }
        anchored.extend_from_slice(&self.anchor);
        anchored.extend_from_slice(cmd);
        let mut replies = self
            .conn
            .req_packed_commands(&anchored, 0, offset + count + 1)?;
        let skip = (offset + 1).min(replies.len());
        replies.drain(..skip);
        Ok(replies)
    }
}

/// How a transaction's packed pipeline opens.
const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";

fn to_slot(slot: u16) -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
        slot,
        SlotAddr::Master,
    )))
}

/// `INFO` refused for this user (`NOPERM`) or unknown (renamed away).
fn forbids_info(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::NoPerm | ServerErrorKind::ResponseError)
    )
}

/// `cluster_enabled:1` in an `INFO cluster` reply.
fn cluster_enabled(info: &str) -> bool {
    info.lines()
        .any(|line| line.trim_end() == "cluster_enabled:1")
}

/// A node's `host` and `port`.
pub(super) type Node = (String, u16);

/// The ranges of a `CLUSTER SLOTS` reply: `[start, end, [host, port, id,
/// …], replicas…]`, as (start, end, primary first then replicas).
fn ranges(slots: &Value) -> Vec<(i64, i64, Vec<Node>)> {
    let Value::Array(ranges) = slots else {
        return Vec::new();
    };
    ranges
        .iter()
        .filter_map(|range| {
            let Value::Array(range) = range else {
                return None;
            };
            let (Some(Value::Int(start)), Some(Value::Int(end))) = (range.first(), range.get(1))
            else {
                return None;
            };
            Some((*start, *end, range[2..].iter().filter_map(node).collect()))
        })
        .collect()
}

/// `[host, port, id, …]` of a `CLUSTER SLOTS` range.
fn node(node: &Value) -> Option<Node> {
    let Value::Array(node) = node else {
        return None;
    };
    let host = match node.first()? {
        Value::BulkString(host) => String::from_utf8_lossy(host).into_owned(),
        Value::SimpleString(host) => host.clone(),
        _ => return None,
    };
    let Value::Int(port) = node.get(1)? else {
        return None;
    };
    Some((host, u16::try_from(*port).ok()?))
}

/// `host:port` of the primary of `slot` in a `CLUSTER SLOTS` reply.
fn owner_in(slots: &Value, slot: u16) -> Option<String> {
    ranges(slots)
        .into_iter()
        .find(|(start, end, _)| (*start..=*end).contains(&i64::from(slot)))
        .and_then(|(_, _, nodes)| nodes.into_iter().next())
        .map(|(host, port)| format!("{host}:{port}"))
}

/// Every node in a `CLUSTER SLOTS` reply, once each.
fn nodes_in(slots: &Value) -> Vec<Node> {
    let mut nodes: Vec<Node> = ranges(slots)
        .into_iter()
        .flat_map(|(_, _, nodes)| nodes)
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

/// The address of another node, connected to the way `like` is (TLS or not).
fn node_addr(like: &ConnectionAddr, host: &str, port: u16) -> Option<ConnectionAddr> {
    match like {
        ConnectionAddr::Tcp(..) => Some(ConnectionAddr::Tcp(host.to_owned(), port)),
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => Some(ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        }),
        _ => None,
    }
}

/// A packed command back into a `Cmd`, to route it.
fn unpack(packed: &[u8]) -> RedisResult<Cmd> {
    let mut cmd = Cmd::new();
    if let Value::Array(args) = redis::parse_redis_value(packed)? {
        for arg in args {
            match arg {
                Value::BulkString(bytes) => cmd.arg(bytes),
                Value::SimpleString(text) => cmd.arg(text),
                _ => &mut cmd,
            };
        }
    }
    Ok(cmd)
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.conn.route_command(&unpack(cmd)?, to_slot(c.slot)),
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_command(cmd),
            Conn::Cluster(c) => c.conn.route_command(cmd, to_slot(c.slot)),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.pipeline(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.conn.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Single(c) => c.check_connection(),
            Conn::Cluster(c) => c.conn.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Single(c) => c.is_open(),
            Conn::Cluster(c) => c.conn.is_open(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_mode_is_read_from_its_info_field() {
        assert!(cluster_enabled("# Cluster\r\ncluster_enabled:1\r\n"));
        assert!(!cluster_enabled("# Cluster\r\ncluster_enabled:0\r\n"));
        assert!(!cluster_enabled(""));
    }

    #[test]
    fn the_owner_is_the_primary_of_the_range_holding_the_slot() {
        let node = |host: &str, port| {
            Value::Array(vec![
                Value::BulkString(host.into()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let range = |start, end, port| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                node("10.0.0.1", port),
                node("10.0.0.2", port + 1),
            ])
        };
        let slots = Value::Array(vec![range(0, 5460, 7000), range(5461, 10922, 7002)]);
        assert_eq!(owner_in(&slots, 5461).as_deref(), Some("10.0.0.1:7002"));
        assert_eq!(owner_in(&slots, 0).as_deref(), Some("10.0.0.1:7000"));
        assert_eq!(owner_in(&slots, 16000), None);
        let nodes = nodes_in(&slots);
        assert_eq!(nodes.len(), 4, "{nodes:?}");
        assert!(nodes.contains(&("10.0.0.2".to_owned(), 7003)));
    }

    #[test]
    fn another_node_is_reached_the_way_the_url_node_is() {
        let tcp = ConnectionAddr::Tcp("10.0.0.5".into(), 6379);
        assert!(matches!(
            node_addr(&tcp, "10.0.0.7", 7000),
            Some(ConnectionAddr::Tcp(host, 7000)) if host == "10.0.0.7"
        ));
        let tls = ConnectionAddr::TcpTls {
            host: "10.0.0.5".into(),
            port: 6379,
            insecure: false,
            tls_params: None,
        };
        assert!(matches!(
            node_addr(&tls, "10.0.0.7", 7000),
            Some(ConnectionAddr::TcpTls { host, port: 7000, insecure: false, .. }) if host == "10.0.0.7"
        ));
        assert!(node_addr(&ConnectionAddr::Unix("/tmp/r.sock".into()), "h", 1).is_none());
    }

    #[test]
    fn a_packed_command_unpacks_to_the_same_command() {
        let cmd = redis::cmd("WAIT").arg(1).arg(500).clone();
        let again = unpack(&cmd.get_packed_command()).expect("it parses");
        assert_eq!(again.get_packed_command(), cmd.get_packed_command());
    }
}
