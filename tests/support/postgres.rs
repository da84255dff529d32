//! A real, throw-away PostgreSQL server for the tests that need one: ONE
//! per test process, started on first use on a free port of 127.0.0.1 in a
//! temporary directory, and stopped when the process exits (an `atexit`
//! handler: a static is never dropped). Each test takes its own schema
//! (`EVENTS_PG_SCHEMA`), which costs nothing; the cluster is made by
//! `initdb` once per machine into a template that each server starts from
//! a copy of, since `initdb` takes a second or two and copying a few ms.
//! As root, the server runs as the `postgres` user, which owns its files.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const MISSING: &str = "initdb and postgres were not found (on PATH, by pg_config --bindir, or in \
     /usr/lib/postgresql/*/bin); install them (Debian: sudo apt-get install postgresql) — \
     these tests need a real PostgreSQL";

/// How long a new server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The server of this process.
pub struct PostgresServer {
    port: u16,
}

/// What the exit handler stops and removes.
struct Running {
    child: Child,
    dir: PathBuf,
}

static SERVER: OnceLock<PostgresServer> = OnceLock::new();
static RUNNING: Mutex<Option<Running>> = Mutex::new(None);
static SCHEMAS: AtomicU32 = AtomicU32::new(0);

impl PostgresServer {
    /// The server of this process, started on first use.
    pub fn shared() -> &'static PostgresServer {
        SERVER.get_or_init(start)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A schema name no other test of this process has had.
    pub fn fresh_schema(&self) -> String {
        format!(
            "t{}_{}",
            std::process::id(),
            SCHEMAS.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A plain connection, for writing rows as another program would.
    /// Runs `sql` with `psql`, as a team's own tooling would, stopping at
    /// the first error.
    pub fn psql(&self, sql: &str) {
        let mut child = Command::new(bindir().join("psql"))
            .args([&self.url(), "-q", "-v", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}; {MISSING}"));
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), sql.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn client(&self, schema: &str) -> postgres::Client {
        let mut client = postgres::Client::connect(&self.url(), postgres::NoTls)
            .expect("connect to the test Postgres");
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .unwrap();
        client
    }
}

fn bindir() -> PathBuf {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has(&dir) {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|dir| has(dir))
        .collect();
    found.sort();
    if let Some(dir) = found.pop() {
        return dir;
    }
    for dir in std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
    {
        if has(&dir) {
            return dir;
        }
    }
    panic!("{MISSING}");
}

/// The `postgres` user's ids when running as root (the server refuses root).
fn server_user() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = c"postgres";
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "running as root but there is no postgres user to run the server as; {MISSING}"
    );
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn as_server_user(command: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = server_user() {
        command.uid(uid).gid(gid);
    }
    command
}

fn chown(path: &Path) {
    if let Some((uid, gid)) = server_user() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// The cluster `initdb` made, once per machine and version, reused by copy.
fn template(bin: &Path) -> PathBuf {
    let version = bin
        .parent()
        .and_then(Path::file_name)
        .map_or("pg".into(), |v| v.to_string_lossy().into_owned());
    let root = std::env::temp_dir();
    let done = root.join(format!("events-pg-template-{version}-{}", unsafe {
        libc::geteuid()
    }));
    if done.join("PG_VERSION").is_file() {
        return done;
    }
    let building = tempfile::Builder::new()
        .prefix("events-pg-initdb-")
        .tempdir_in(&root)
        .unwrap()
        .keep();
    std::fs::set_permissions(
        &building,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    chown(&building);
    let out = as_server_user(&mut Command::new(bin.join("initdb")))
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
        .arg("-D")
        .arg(&building)
        .output()
        .unwrap_or_else(|e| panic!("cannot run initdb: {e}; {MISSING}"));
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another process may have finished first: either copy will do.
    if std::fs::rename(&building, &done).is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    done
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start() -> PostgresServer {
    let (dir, data) = new_data_dir();
    let port = free_port();
    let child = spawn(&dir, &data, port, &[]);
    *RUNNING.lock().unwrap() = Some(Running {
        child,
        dir: dir.clone(),
    });
    unsafe { libc::atexit(stop_at_exit) };
    let server = PostgresServer { port };
    let deadline = Instant::now() + READY_TIMEOUT;
    while postgres::Client::connect(&server.url(), postgres::NoTls).is_err() {
        let exited = RUNNING
            .lock()
            .unwrap()
            .as_mut()
            .is_some_and(|r| r.child.try_wait().ok().flatten().is_some());
        if exited || Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
            panic!("the test postgres on port {port} did not start:\n{log}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    server
}

/// A new directory holding a copy of the template cluster in `data/`.
fn new_data_dir() -> (PathBuf, PathBuf) {
    let template = template(&bindir());
    let dir = tempfile::Builder::new()
        .prefix("events-pg-")
        .tempdir()
        .unwrap()
        .keep();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    chown(&dir);
    let data = dir.join("data");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&template)
        .arg(&data)
        .status()
        .unwrap();
    assert!(copied.success(), "cannot copy {}", template.display());
    (dir, data)
}

/// Starts the server on `data`, logging into `dir/postgres.log`, with
/// `settings` (`name=value`) on top of the test ones.
fn spawn(dir: &Path, data: &Path, port: u16, settings: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("postgres.log"))
        .unwrap();
    chown(&dir.join("postgres.log"));
    let mut command = Command::new(bindir().join("postgres"));
    as_server_user(&mut command)
        .arg("-D")
        .arg(data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.display()))
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=50"]);
    for setting in settings {
        command.arg("-c").arg(setting);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start postgres: {e}; {MISSING}"))
}

/// A server of one test's own, for what the shared one must not do: be
/// restarted, or speak only TLS. Stopped and removed when dropped.
pub struct OwnPostgres {
    port: u16,
    dir: PathBuf,
    settings: Vec<String>,
    child: Option<Child>,
}

impl OwnPostgres {
    /// A new server; `setup` may write into its data directory first
    /// (certificates, `pg_hba.conf`), and `settings` are `name=value`.
    pub fn start(setup: impl FnOnce(&Path), settings: &[&str]) -> OwnPostgres {
        let (dir, data) = new_data_dir();
        setup(&data);
        if server_user().is_some() {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .status()
                .unwrap();
            assert!(owned.success(), "cannot chown {}", data.display());
        }
        let mut server = OwnPostgres {
            port: free_port(),
            dir,
            settings: settings.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        server.start_again();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    /// Starts the stopped server again, on the same port and data, and
    /// waits until it accepts connections (TLS or not).
    pub fn start_again(&mut self) {
        let data = self.dir.join("data");
        let _ = std::fs::remove_file(data.join("postmaster.pid"));
        let mut child = spawn(&self.dir, &data, self.port, &self.settings);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let pid = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
            if pid.lines().any(|line| line.trim() == "ready") {
                break;
            }
            if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("postgres.log"));
                panic!(
                    "the test postgres did not start:\n{}",
                    log.unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Stops the server at once (SIGQUIT), cutting every connection.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
            let _ = child.wait();
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops the server at once (SIGQUIT: immediate shutdown, its backends
/// with it) and removes its directory.
extern "C" fn stop_at_exit() {
    let Ok(mut running) = RUNNING.lock() else {
        return;
    };
    if let Some(mut r) = running.take() {
        unsafe { libc::kill(r.child.id() as i32, libc::SIGQUIT) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while r.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let _ = r.child.kill();
        let _ = r.child.wait();
        let _ = std::fs::remove_dir_all(&r.dir);
    }
}
