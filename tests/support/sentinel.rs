//! A real Redis Sentinel setup for the tests that need one: a primary, a
//! replica of it and three sentinels (`redis-server <conf> --sentinel`,
//! each with its own writable config file, since a sentinel rewrites it),
//! on free ports of 127.0.0.1, all killed when dropped. Failover times are
//! short so a test's `SENTINEL FAILOVER` completes in seconds. Also fake
//! sentinels that answer like hostile servers ([`FakeSentinel`]).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::redis::RedisServer;

/// The name the sentinels monitor the primary under.
pub const SERVICE: &str = "events-primary";
/// Long enough for anything the setup waits for; reached only when it fails.
const SETTLE: Duration = Duration::from_secs(60);

/// One `redis-server --sentinel` process and its directory.
struct SentinelProcess {
    child: Child,
    port: u16,
    // Declared last so it is removed only after the process is gone.
    dir: tempfile::TempDir,
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A primary, its replica, and three sentinels watching them.
pub struct SentinelSetup {
    sentinels: Vec<SentinelProcess>,
    /// The data nodes' password (`requirepass`), if any.
    password: Option<&'static str>,
    // Servers after the sentinels, so the sentinels go first on drop and
    // never see them fail.
    pub primary: RedisServer,
    pub replica: RedisServer,
}

impl SentinelSetup {
    /// Starts everything and returns once every sentinel knows the replica
    /// and the other sentinels, so a failover can run.
    pub fn start() -> SentinelSetup {
        SentinelSetup::start_with(None)
    }

    /// Like `start`, with data nodes that require `password` (the
    /// sentinels are told it with `sentinel auth-pass`; they need none).
    pub fn start_with(password: Option<&'static str>) -> SentinelSetup {
        // No delay before the first sync (5 s by default, to batch replicas).
        let mut options = vec!["--repl-diskless-sync-delay", "0"];
        if let Some(password) = password {
            options.extend(["--requirepass", password, "--masterauth", password]);
        }
        let primary = RedisServer::start_with(&options);
        let primary_port = primary.port().to_string();
        options.extend(["--replicaof", "127.0.0.1", &primary_port]);
        let replica = RedisServer::start_with(&options);
        let sentinels = (0..3)
            .map(|_| start_sentinel(primary.port(), password))
            .collect();
        let setup = SentinelSetup {
            sentinels,
            password,
            primary,
            replica,
        };
        wait_until("the replica to come online", || {
            setup
                .cli(&setup.primary, &["INFO", "replication"])
                .contains("state=online")
        });
        wait_until("every sentinel to know the replica and its peers", || {
            setup.sentinels.iter().all(|s| {
                let master = sentinel_cli(s.port, &["SENTINEL", "MASTER", SERVICE]);
                field(&master, "num-slaves") == Some("1")
                    && field(&master, "num-other-sentinels") == Some("2")
            })
        });
        setup
    }

    /// `redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/SERVICE`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{SERVICE}", hosts.join(","))
    }

    /// `redis-cli` against one of the data nodes, with the password.
    pub fn cli(&self, server: &RedisServer, args: &[&str]) -> String {
        let mut all = Vec::new();
        if let Some(password) = self.password {
            all.extend(["--no-auth-warning", "-a", password]);
        }
        all.extend(args);
        server.cli(&all)
    }

    /// Waits until the replica holds everything the primary has (`WAIT`),
    /// as it does moments after any write: a failover then loses nothing.
    pub fn sync_replica(&self) {
        let synced = self.cli(&self.primary, &["WAIT", "1", "30000"]);
        assert_eq!(synced, "1", "the replica did not catch up");
    }

    /// The port of the server each sentinel names as the primary now.
    pub fn primary_ports(&self) -> Vec<Option<u16>> {
        self.sentinels
            .iter()
            .map(|s| {
                let addr = sentinel_cli(s.port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE]);
                addr.lines().nth(1).and_then(|port| port.parse().ok())
            })
            .collect()
    }

    /// Runs `SENTINEL FAILOVER` and returns once every sentinel names the
    /// replica as the primary and the replica answers as one.
    pub fn failover(&self) {
        let first = self.sentinels.first().expect("three sentinels");
        sentinel_cli(first.port, &["SENTINEL", "FAILOVER", SERVICE]);
        self.wait_for_promotion();
    }

    /// Kills the primary (SIGKILL) and returns once the sentinels, finding
    /// it down, have promoted the replica and all name it.
    pub fn crash_primary(&mut self) {
        self.primary.crash();
        self.wait_for_promotion();
    }

    fn wait_for_promotion(&self) {
        let promoted = Some(self.replica.port());
        wait_until("every sentinel to name the replica as the primary", || {
            self.primary_ports().iter().all(|port| *port == promoted)
                && self.cli(&self.replica, &["ROLE"]).starts_with("master")
        });
    }
}

fn start_sentinel(primary: u16, password: Option<&str>) -> SentinelProcess {
    // A port taken between the pick and the bind makes the start fail: try
    // another, as `RedisServer` does.
    let mut log = String::new();
    for _ in 0..5 {
        let dir = tempfile::Builder::new()
            .prefix("events-sentinel-")
            .tempdir()
            .expect("create a temporary directory for a sentinel");
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        let mut text = config(port, primary, dir.path());
        if let Some(password) = password {
            text.push_str(&format!("sentinel auth-pass {SERVICE} {password}\n"));
        }
        std::fs::write(&conf, text).expect("write sentinel.conf");
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server --sentinel (is redis-server on PATH?)");
        let mut sentinel = SentinelProcess { child, port, dir };
        if wait_ready(&mut sentinel) {
            return sentinel;
        }
        log = std::fs::read_to_string(sentinel.dir.path().join("sentinel.log")).unwrap_or_default();
    }
    panic!("no sentinel started in 5 attempts; the last one logged:\n{log}")
}

fn config(port: u16, primary: u16, dir: &Path) -> String {
    format!(
        "port {port}\n\
         bind 127.0.0.1\n\
         daemonize no\n\
         dir {dir}\n\
         logfile {dir}/sentinel.log\n\
         sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n\
         sentinel down-after-milliseconds {SERVICE} 1000\n\
         sentinel failover-timeout {SERVICE} 10000\n\
         sentinel parallel-syncs {SERVICE} 1\n",
        dir = dir.display()
    )
}

/// Whether the sentinel answers PING before it exits or a deadline.
fn wait_ready(sentinel: &mut SentinelProcess) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if sentinel.child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if try_sentinel_cli(sentinel.port, &["PING"]).as_deref() == Ok("PONG") {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

fn sentinel_cli(port: u16, args: &[&str]) -> String {
    try_sentinel_cli(port, args)
        .unwrap_or_else(|e| panic!("redis-cli {args:?} against the sentinel on {port}: {e}"))
}

fn try_sentinel_cli(port: u16, args: &[&str]) -> Result<String, String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--raw", "-e"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run redis-cli: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{stdout} {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The value after `name` in a flat name/value reply, one per line.
fn field<'a>(reply: &'a str, name: &str) -> Option<&'a str> {
    let mut lines = reply.lines();
    while let Some(line) = lines.next() {
        if line == name {
            return lines.next();
        }
    }
    None
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port on 127.0.0.1")
        .port()
}

/// How a [`FakeSentinel`] answers whatever it is asked.
#[derive(Clone, Debug)]
pub enum Trick {
    /// A bulk string announced at a megabyte, sent one byte a second.
    Trickle,
    /// An error line of `bytes` bytes, laced with terminal controls,
    /// generated as it is streamed.
    Huge(usize),
    /// These bytes, then the connection held open.
    Say(Vec<u8>),
    /// These bytes for each command received, as a server refusing them
    /// all: a fake Redis server rather than a sentinel.
    Refuse(Vec<u8>),
}

/// A TCP server on 127.0.0.1 posing as a sentinel (or, with
/// [`Trick::Refuse`], a Redis server): it reads a question
/// and answers it with a [`Trick`], on every connection, until dropped.
pub struct FakeSentinel {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl FakeSentinel {
    pub fn start(trick: Trick) -> FakeSentinel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for a fake sentinel");
        let port = listener.local_addr().expect("its address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let stopped = Arc::clone(&stopped);
                let trick = trick.clone();
                thread::spawn(move || answer(stream, &trick, &stopped));
            }
        });
        FakeSentinel { port, stop }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for FakeSentinel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Answers one connection with `trick` until the client or the test is gone.
fn answer(mut stream: TcpStream, trick: &Trick, stop: &AtomicBool) {
    let mut question = [0; 4096];
    let Ok(n @ 1..) = stream.read(&mut question) else {
        return;
    };
    if let Trick::Refuse(said) = trick {
        return refuse(stream, &question[..n], said);
    }
    let sent = match trick {
        Trick::Trickle => stream.write_all(b"$1048576\r\n").and_then(|()| {
            while !stop.load(Ordering::SeqCst) {
                stream.write_all(b"x")?;
                thread::sleep(Duration::from_secs(1));
            }
            Ok(())
        }),
        Trick::Huge(bytes) => stream.write_all(b"-ERR ").and_then(|()| {
            let chunk = b"\x1b[2K\x07forged line\x1b]0;title\x07 ".repeat(4096);
            let mut left = *bytes;
            while left > 0 && !stop.load(Ordering::SeqCst) {
                let n = left.min(chunk.len());
                stream.write_all(&chunk[..n])?;
                left -= n;
            }
            stream.write_all(b"\r\n")
        }),
        Trick::Say(bytes) => stream.write_all(bytes),
        Trick::Refuse(_) => Ok(()),
    };
    if sent.is_ok() {
        // Held open: the client decides when it has had enough.
        while !stop.load(Ordering::SeqCst) && matches!(stream.read(&mut question), Ok(n) if n > 0) {
        }
    }
}

/// Answers `said` to each command (an array, `*N` at the start of a line;
/// pipelined ones arrive together), read after `first`, until the client
/// hangs up.
fn refuse(mut stream: TcpStream, first: &[u8], said: &[u8]) {
    let commands = |bytes: &[u8]| {
        let starts = bytes
            .windows(3)
            .filter(|w| w[..2] == *b"\r\n" && w[2] == b'*')
            .count();
        starts + usize::from(bytes.first() == Some(&b'*'))
    };
    let mut read = first.to_vec();
    loop {
        // A command's last argument may be `*` (XADD's id): one too many
        // answers, at worst, never one too few.
        for _ in 0..commands(&read) {
            if stream.write_all(said).is_err() {
                return;
            }
        }
        let mut buf = [0; 4096];
        match stream.read(&mut buf) {
            Ok(n @ 1..) => read = buf[..n].to_vec(),
            _ => return,
        }
    }
}
