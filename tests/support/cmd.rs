//! The fluent builder every test uses to run the `events` binary: a clean environment and a
//! private home directory (so nothing from the developer's machine leaks in), captured output, a
//! timeout so a hung command fails the test instead of hanging CI, and background processes for
//! `events work`.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The binary under test. The only place that names it.
pub fn bin() -> PathBuf {
    env!("CARGO_BIN_EXE_events").into()
}

/// How long `run` lets a command take before killing it and failing the test.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds one invocation of `events`.
pub struct Events {
    command: Command,
    shown: Vec<String>,
    stdin: Option<Vec<u8>>,
    home: PathBuf,
    owned_home: Option<TempDir>,
    timeout: Duration,
}

impl Default for Events {
    fn default() -> Events {
        Events::new()
    }
}

impl Events {
    /// An empty environment except `PATH` (and `LLVM_PROFILE_FILE`, for coverage runs), with
    /// `HOME` = a fresh temporary directory owned by the builder, `XDG_STATE_HOME` = `HOME/state`
    /// (not created), `NO_COLOR=1`, and `HOME` as the current directory so no stray `.env` or
    /// `events.toml` is read.
    pub fn new() -> Events {
        let owned = tempfile::Builder::new()
            .prefix("events-home-")
            .tempdir()
            .expect("create a temporary HOME");
        let mut command = Command::new(bin());
        command.env_clear();
        for name in ["PATH", "LLVM_PROFILE_FILE"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.env("NO_COLOR", "1");
        // Dead-letter alerts add events of their own to the stream: tests that
        // count events and deliveries exactly would count them too. The
        // alert tests remove this to run with the default.
        command.env("EVENTS_ALERTS", "0");
        let events = Events {
            command,
            shown: Vec::new(),
            stdin: None,
            home: PathBuf::new(),
            owned_home: None,
            timeout: RUN_TIMEOUT,
        };
        let mut events = events.home(owned.path());
        events.owned_home = Some(owned);
        events
    }

    /// Uses `dir` as `HOME` and current directory, and `dir/state` as `XDG_STATE_HOME`, instead of
    /// the builder's own temporary directory: for several commands that share a store or config.
    /// Call `current_dir` after this, not before, to run elsewhere.
    pub fn home(mut self, dir: impl AsRef<Path>) -> Events {
        let dir = dir.as_ref();
        self.command
            .env("HOME", dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .current_dir(dir);
        self.home = dir.to_owned();
        self.owned_home = None;
        self
    }

    /// The `HOME` the command will get (the builder's temporary directory unless `home` was
    /// called), e.g. to write an `events.toml` into it before running.
    pub fn home_dir(&self) -> &Path {
        &self.home
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Events {
        self.shown.push(arg.as_ref().to_string_lossy().into_owned());
        self.command.arg(arg);
        self
    }

    pub fn args<I>(self, args: I) -> Events
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        args.into_iter().fold(self, Events::arg)
    }

    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Events {
        self.command.env(name, value);
        self
    }

    /// Removes a variable the builder set (e.g. `NO_COLOR`).
    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Events {
        self.command.env_remove(name);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Events {
        self.command.current_dir(dir);
        self
    }

    /// Feeds this to the command's standard input, then closes it. Without it, stdin is empty
    /// (`/dev/null`).
    pub fn stdin(self, input: impl Into<String>) -> Events {
        self.stdin_bytes(input.into())
    }

    /// Like `stdin`, for input that need not be UTF-8.
    pub fn stdin_bytes(mut self, input: impl Into<Vec<u8>>) -> Events {
        self.stdin = Some(input.into());
        self
    }

    /// Changes `run`'s timeout from 60 s.
    pub fn timeout(mut self, timeout: Duration) -> Events {
        self.timeout = timeout;
        self
    }

    /// Runs the command to completion and captures its output; kills it and panics if it takes
    /// longer than the timeout (60 s unless changed).
    pub fn run(self) -> Outcome {
        let timeout = self.timeout;
        self.spawn().wait(timeout)
    }

    /// Starts the command in the background, e.g. `events work`. Its output is collected as it
    /// comes; it is killed when the `Running` is dropped.
    pub fn spawn(mut self) -> Running {
        let description = describe(&self.shown);
        self.command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .command
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {description}: {err}"));
        if let (Some(input), Some(mut pipe)) = (self.stdin, child.stdin.take()) {
            // A command that exits without reading all of it is not our concern here.
            thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let stdout = Pipe::collect(child.stdout.take().expect("piped stdout"));
        let stderr = Pipe::collect(child.stderr.take().expect("piped stderr"));
        Running {
            pid: child.id(),
            child: Some(child),
            status: None,
            stdout,
            stderr,
            description,
            _home: self.owned_home,
        }
    }
}

fn describe(args: &[String]) -> String {
    let mut shown = String::from("events");
    for arg in args {
        shown.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            shown.push_str(&format!("{arg:?}"));
        } else {
            shown.push_str(arg);
        }
    }
    shown
}

/// Output of a child process collected by a reader thread.
struct Pipe {
    state: Mutex<(Vec<u8>, bool)>,
    grew: Condvar,
}

impl Pipe {
    fn collect(mut source: impl Read + Send + 'static) -> Arc<Pipe> {
        let pipe = Arc::new(Pipe {
            state: Mutex::new((Vec::new(), false)),
            grew: Condvar::new(),
        });
        let writer = Arc::clone(&pipe);
        thread::spawn(move || {
            let mut chunk = [0; 8192];
            loop {
                let read = source.read(&mut chunk).unwrap_or(0);
                let mut state = writer.lock();
                if read == 0 {
                    state.1 = true;
                } else {
                    state.0.extend_from_slice(&chunk[..read]);
                }
                drop(state);
                writer.grew.notify_all();
                if read == 0 {
                    return;
                }
            }
        });
        pipe
    }

    fn lock(&self) -> MutexGuard<'_, (Vec<u8>, bool)> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().0).into_owned()
    }

    /// Waits until the text contains `needle` (true), or the pipe closes or the deadline passes
    /// (false).
    fn wait_for(&self, needle: &str, deadline: Instant) -> bool {
        let mut state = self.lock();
        loop {
            if String::from_utf8_lossy(&state.0).contains(needle) {
                return true;
            }
            let now = Instant::now();
            if state.1 || now >= deadline {
                return false;
            }
            state = self
                .grew
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Waits until the writing end is closed, or the deadline passes (a grandchild may hold it).
    fn wait_closed(&self, deadline: Instant) {
        let mut state = self.lock();
        while !state.1 {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            state = self
                .grew
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// A command running in the background; SIGKILLed (and reaped) when dropped.
pub struct Running {
    pid: u32,
    child: Option<Child>,
    status: Option<ExitStatus>,
    stdout: Arc<Pipe>,
    stderr: Arc<Pipe>,
    description: String,
    _home: Option<TempDir>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process is still running (it has not exited, nor been reaped).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().expect("poll the child process").is_none(),
            None => false,
        }
    }

    /// Sends a signal by name (`"TERM"`, `"INT"`, `"HUP"`, `"KILL"`, …) with the shell's `kill`.
    /// Panics if the process has already been reaped (after `kill` or `wait`).
    pub fn signal(&self, name: &str) {
        assert!(
            self.child.is_some(),
            "cannot send SIG{name} to {}: it has already exited",
            self.description
        );
        let output = Command::new("sh")
            .args(["-c", "kill -s \"$0\" \"$1\"", name, &self.pid.to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("run sh -c kill");
        assert!(
            output.status.success(),
            "kill -s {name} {} failed: {}",
            self.pid,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }

    /// SIGKILLs the process (if still running) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            self.status = Some(child.wait().expect("wait for the killed process"));
        }
    }

    /// Waits for the process to exit and returns its outcome; if it is still running after
    /// `timeout`, kills it and panics showing its output.
    pub fn wait(mut self, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        while let Some(child) = &mut self.child {
            if let Some(status) = child.try_wait().expect("poll the child process") {
                self.status = Some(status);
                self.child = None;
                break;
            }
            if Instant::now() >= deadline {
                self.kill();
                let outcome = self.outcome();
                outcome.fail(&format!("timed out after {timeout:?} and was killed"));
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        self.outcome()
    }

    /// Everything the process has written to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout.text()
    }

    /// Everything the process has written to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.text()
    }

    /// Waits until stderr contains `needle`; false if the timeout passes or the process closes
    /// stderr (exits) first.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        self.stderr.wait_for(needle, Instant::now() + timeout)
    }

    /// Like `wait_for_stderr`, for stdout.
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> bool {
        self.stdout.wait_for(needle, Instant::now() + timeout)
    }

    /// Collects the output of the exited process.
    fn outcome(&self) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(5);
        self.stdout.wait_closed(deadline);
        self.stderr.wait_closed(deadline);
        let status = self.status.expect("outcome of an exited process");
        Outcome {
            status: status.code(),
            stdout: self.stdout.text(),
            stderr: self.stderr.text(),
            signal: status.signal(),
            description: self.description.clone(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a finished command did. The assertion methods panic with the command line, its exit
/// status and both outputs.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code; `None` if a signal ended the process.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    signal: Option<i32>,
    description: String,
}

impl Outcome {
    /// The signal that ended the process, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }

    /// Asserts exit code 0.
    pub fn success(self) -> Outcome {
        if self.status != Some(0) {
            self.fail("expected success");
        }
        self
    }

    /// Asserts a non-zero exit code (not death by a signal).
    pub fn failure(self) -> Outcome {
        if !matches!(self.status, Some(code) if code != 0) {
            self.fail("expected a non-zero exit code");
        }
        self
    }

    /// Asserts this exit code.
    pub fn code(self, code: i32) -> Outcome {
        if self.status != Some(code) {
            self.fail(&format!("expected exit code {code}"));
        }
        self
    }

    /// Asserts stdout is exactly this (trailing newline included).
    pub fn stdout_is(self, expected: &str) -> Outcome {
        if self.stdout != expected {
            self.fail(&format!("expected stdout to be exactly:\n{expected}"));
        }
        self
    }

    pub fn stdout_has(self, needle: &str) -> Outcome {
        if !self.stdout.contains(needle) {
            self.fail(&format!("expected stdout to contain {needle:?}"));
        }
        self
    }

    pub fn stdout_lacks(self, needle: &str) -> Outcome {
        if self.stdout.contains(needle) {
            self.fail(&format!("expected stdout not to contain {needle:?}"));
        }
        self
    }

    pub fn stderr_has(self, needle: &str) -> Outcome {
        if !self.stderr.contains(needle) {
            self.fail(&format!("expected stderr to contain {needle:?}"));
        }
        self
    }

    pub fn stderr_lacks(self, needle: &str) -> Outcome {
        if self.stderr.contains(needle) {
            self.fail(&format!("expected stderr not to contain {needle:?}"));
        }
        self
    }

    /// Stdout parsed as JSON; panics showing the output if it is not.
    pub fn stdout_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| self.fail(&format!("stdout is not JSON: {err}")))
    }

    /// Stdout as one JSON value per non-empty line (JSON Lines).
    pub fn stdout_json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|err| {
                    self.fail(&format!("stdout line is not JSON ({err}): {line}"))
                })
            })
            .collect()
    }

    fn fail(&self, what: &str) -> ! {
        let status = match (self.status, self.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "unknown".to_owned(),
        };
        panic!(
            "`{}`: {what}\nstatus: {status}\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
            self.description, self.stdout, self.stderr
        );
    }
}
