//! A real, throw-away `redis-server` for each test that needs one: its own free port on
//! 127.0.0.1 and its own temporary directory, killed when dropped. Tests talk to a real Redis
//! rather than a fake so stream semantics (XADD, consumer groups, XAUTOCLAIM, AOF restarts) are the
//! real ones.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const REDIS_SERVER_MISSING: &str = "redis-server is not on PATH; install it (Debian: sudo apt-get install redis-server) — these tests need a real Redis";
const REDIS_CLI_MISSING: &str = "redis-cli is not on PATH; install it (Debian: sudo apt-get install redis-server) — these tests need a real Redis";

/// How long `start`, `start_persistent` and `restart` wait for the server to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `stop` waits for a clean exit before killing the server.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server`; dropping it kills the server and removes its directory.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    persistent: bool,
    /// More `redis-server` options, kept across restarts.
    extra: Vec<String>,
    // Declared last so it is removed only after the server is gone.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// An in-memory server: no RDB snapshots, no AOF.
    pub fn start() -> RedisServer {
        RedisServer::launch(false, &[])
    }

    /// An in-memory server started with more options (`--requirepass`, ...).
    /// With `--requirepass`, it counts as ready once it asks for the password.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        RedisServer::launch(false, extra)
    }

    /// A server that persists every write to its AOF before replying (`--appendonly yes
    /// --appendfsync always`), so data survives `stop`/`restart` and even `crash`.
    pub fn start_persistent() -> RedisServer {
        RedisServer::launch(true, &[])
    }

    /// An in-memory server that starts from a copy of the RDB snapshot
    /// `rdb` (a queue written by an earlier release, say); the file itself
    /// is never written.
    pub fn start_from_snapshot(rdb: &Path) -> RedisServer {
        let name = rdb.file_name().expect("a snapshot file name");
        let name = name.to_str().expect("a UTF-8 snapshot file name");
        RedisServer::launch_seeded(false, &["--dbfilename", name], Some(rdb))
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory (holds `redis.log` and, when persistent, the AOF).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server process is up (false after `stop` or `crash`, until `restart`).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server cleanly (SHUTDOWN, which flushes the AOF) and waits for it to exit; kills
    /// it if it has not exited within 10 s. Does nothing if it is not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // The server closes the connection instead of replying, so the reply is an error.
        let _ = query(self.port, &["SHUTDOWN"]);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if child.try_wait().expect("poll redis-server").is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server with SIGKILL, without any chance to flush, and waits for it to exit:
    /// what a crash or an OOM kill looks like to the clients.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server with SIGSTOP: its socket stays open and accepts,
    /// but nothing is answered, as with a server stuck in a long command or
    /// a host that stopped scheduling it. `resume` (or dropping) thaws it.
    pub fn pause(&self) {
        assert!(self.signal(libc::SIGSTOP), "kill -STOP redis-server");
    }

    /// Thaws a server frozen by `pause` (SIGCONT).
    pub fn resume(&self) {
        assert!(self.signal(libc::SIGCONT), "kill -CONT redis-server");
    }

    /// Sends `signal` to the server; false when it is not running.
    fn signal(&self, signal: libc::c_int) -> bool {
        let Some(child) = &self.child else {
            return false;
        };
        let Ok(pid) = libc::pid_t::try_from(child.id()) else {
            return false;
        };
        // SAFETY: kill(2) on our own child's pid; it touches no memory.
        unsafe { libc::kill(pid, signal) == 0 }
    }

    /// Stops the server if it is running, then starts it again on the same port, in the same
    /// directory, with the same options; returns once it answers PING (after loading its AOF).
    pub fn restart(&mut self) {
        self.stop();
        let mut child = spawn_server(self.port, self.dir.path(), self.persistent, &self.extra);
        if let Err(problem) = wait_ready(&mut child, self.port, false) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "redis-server did not come back on port {} after a restart: {problem}\n--- redis.log (tail) ---\n{}",
                self.port,
                log_tail(self.dir.path())
            );
        }
        self.child = Some(child);
    }

    /// Saves a snapshot (`SAVE`), stops the server and starts it again with
    /// `extra` options added, returning as soon as it answers, which may be
    /// with `-LOADING` while it reads the snapshot back.
    pub fn restart_loading(&mut self, extra: &[&str]) {
        self.cli(&["SAVE"]);
        self.stop();
        self.extra.extend(extra.iter().map(|a| a.to_string()));
        let mut child = spawn_server(self.port, self.dir.path(), self.persistent, &self.extra);
        if let Err(problem) = wait_ready(&mut child, self.port, true) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "redis-server did not come back on port {}: {problem}\n--- redis.log (tail) ---\n{}",
                self.port,
                log_tail(self.dir.path())
            );
        }
        self.child = Some(child);
    }

    /// Whether the server still answers `-LOADING`.
    pub fn is_loading(&self) -> bool {
        query(self.port, &["PING"]).is_err_and(|e| e.starts_with("LOADING"))
    }

    /// Entries of the events stream claimed and not yet settled, by any
    /// worker (`XPENDING {events}:stream workers`).
    pub fn pending(&self) -> usize {
        let summary = self.cli(&["XPENDING", "{events}:stream", "workers"]);
        summary
            .lines()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("an XPENDING count")
    }

    /// Runs `redis-cli -h 127.0.0.1 -p PORT --raw -e ARGS...` and returns its trimmed stdout.
    /// Panics, showing stderr, if redis-cli fails or Redis answers with an error.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args).unwrap_or_else(|stderr| {
            panic!(
                "redis-cli {args:?} against port {} failed: {stderr}",
                self.port
            )
        })
    }

    /// Like `cli`, but an error reply (or a failed connection) is returned as `Err(stderr)`.
    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let port = self.port.to_string();
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port, "--raw", "-e"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| match err.kind() {
                std::io::ErrorKind::NotFound => panic!("{REDIS_CLI_MISSING}"),
                _ => panic!("could not run redis-cli: {err}"),
            });
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            Err(if stderr.is_empty() { stdout } else { stderr })
        }
    }

    fn launch(persistent: bool, extra: &[&str]) -> RedisServer {
        RedisServer::launch_seeded(persistent, extra, None)
    }

    /// Like `launch`, with `seed` copied into the server's directory first.
    fn launch_seeded(persistent: bool, extra: &[&str], seed: Option<&Path>) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let dir = tempfile::Builder::new()
            .prefix("events-redis-")
            .tempdir()
            .expect("create a temporary directory for redis-server");
        if let Some(seed) = seed {
            let to = dir.path().join(seed.file_name().expect("a file name"));
            std::fs::copy(seed, to).expect("copy the seed file for redis-server");
        }
        // The port is free when picked but could be taken before redis-server binds it, so a
        // start that fails on "Address already in use" is retried with another port.
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let port = free_port();
            let mut child = spawn_server(port, dir.path(), persistent, &extra);
            match wait_ready(&mut child, port, false) {
                Ok(()) => {
                    return RedisServer {
                        child: Some(child),
                        port,
                        persistent,
                        extra,
                        dir,
                    };
                }
                Err(problem) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = log_tail(dir.path());
                    if attempt < ATTEMPTS && log.contains("Address already in use") {
                        let _ = std::fs::remove_file(log_path(dir.path()));
                        continue;
                    }
                    panic!(
                        "redis-server did not start on port {port}: {problem}\n--- redis.log (tail) ---\n{log}"
                    );
                }
            }
        }
        unreachable!("the last attempt either returns or panics")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server is thawed first, so nothing is left stopped.
        self.signal(libc::SIGCONT);
        self.crash();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port on 127.0.0.1")
        .port()
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("redis.log")
}

fn log_tail(dir: &Path) -> String {
    match std::fs::read_to_string(log_path(dir)) {
        Ok(log) => {
            let lines: Vec<&str> = log.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        }
        Err(err) => format!("(no log: {err})"),
    }
}

fn spawn_server(port: u16, dir: &Path, persistent: bool, extra: &[String]) -> Child {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--daemonize", "no", "--save", ""])
        .arg("--logfile")
        .arg(log_path(dir));
    if persistent {
        command.args(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        command.args(["--appendonly", "no"]);
    }
    command.args(extra);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| match err.kind() {
            std::io::ErrorKind::NotFound => panic!("{REDIS_SERVER_MISSING}"),
            _ => panic!("could not start redis-server: {err}"),
        })
}

/// Waits until *this* child answers PING with PONG (not LOADING, unless `loading` is enough),
/// checking through INFO that the server on the port is ours and not one another test started on
/// the same port. A server that asks for a password (`NOAUTH`) counts as ready.
fn wait_ready(child: &mut Child, port: u16, loading: bool) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let ours = format!("process_id:{}\r\n", child.id());
    loop {
        if let Some(status) = child.try_wait().expect("poll redis-server") {
            return Err(format!("it exited with {status}"));
        }
        let last = match query(port, &["PING"]) {
            Ok(pong) if pong == "PONG" => match query(port, &["INFO", "server"]) {
                Ok(info) if info.contains(&ours) => return Ok(()),
                Ok(_) => "another redis-server answered on its port".to_owned(),
                Err(err) => err,
            },
            Ok(other) => format!("PING answered {other:?}"),
            Err(err) if err.starts_with("NOAUTH") => return Ok(()),
            Err(err) if loading && err.starts_with("LOADING") => return Ok(()),
            Err(err) => err,
        };
        if Instant::now() >= deadline {
            return Err(format!("no PONG within {READY_TIMEOUT:?} (last: {last})"));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Sends one command over RESP and returns a simple-string or bulk reply; an error reply,
/// a closed connection or a timeout is `Err`. Just enough protocol for PING, INFO and SHUTDOWN.
fn query(port: u16, args: &[&str]) -> Result<String, String> {
    let timeout = Duration::from_secs(1);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|err| err.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|err| err.to_string())?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    (&stream)
        .write_all(request.as_bytes())
        .map_err(|err| err.to_string())?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|err| err.to_string())?;
    let line = line.trim_end_matches("\r\n");
    match line.split_at_checked(1) {
        Some(("+", text)) => Ok(text.to_owned()),
        Some(("-", text)) => Err(text.to_owned()),
        Some(("$", len)) => {
            let len: usize = len
                .parse()
                .map_err(|_| format!("bad bulk length {len:?}"))?;
            let mut body = vec![0; len + 2];
            reader
                .read_exact(&mut body)
                .map_err(|err| err.to_string())?;
            body.truncate(len);
            Ok(String::from_utf8_lossy(&body).into_owned())
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}
