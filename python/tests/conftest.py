"""Real servers for the tests: each test that needs Redis starts its own
``redis-server`` (a free port, a temporary directory, killed at teardown),
the Rust worker and CLI are the ``events`` binary built by cargo, and
webhooks go to an HTTP server in this process. Nothing is mocked."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
STREAM = "{events}:stream"
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()

REDIS_MISSING = (
    "redis-server is not installed: the tests need a real Redis "
    "(Debian/Ubuntu: sudo apt-get install redis-server redis-tools; macOS: brew install redis)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Redis:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True, text=True, check=True, timeout=30,
        )
        return out.stdout.strip()

    def entries(self, stream: str = STREAM) -> list[dict[str, str]]:
        """Every entry of the stream, oldest first, each as its fields."""
        text = self.cli(
            "EVAL", "return cjson.encode(redis.call('XRANGE', KEYS[1], '-', '+'))", "1", stream
        )
        # cjson encodes an empty table (no entries) as an object.
        rows = json.loads(text) if text.startswith("[") else []
        return [dict(zip(flat[0::2], flat[1::2])) for _, flat in rows]

    def xlen(self, stream: str = STREAM) -> int:
        return int(self.cli("XLEN", stream))


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Redis]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail(REDIS_MISSING)
    data = tmp_path / "redis"
    data.mkdir()
    for _ in range(5):
        port = free_port()
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(data)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        server = Redis(port, process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if server.cli("PING") == "PONG":
                    break
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.02)
        if process.poll() is None:
            break
    else:
        pytest.fail("redis-server did not start on any free port")
    try:
        yield server
    finally:
        process.kill()
        process.wait()


POSTGRES_MISSING = (
    "initdb and postgres were not found (on PATH, by pg_config --bindir, or in "
    "/usr/lib/postgresql/*/bin): the tests need a real PostgreSQL "
    "(Debian/Ubuntu: sudo apt-get install postgresql; macOS: brew install postgresql)"
)


def postgres_bindir() -> Path:
    def has(d: Path) -> bool:
        return (d / "initdb").is_file() and (d / "postgres").is_file()

    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if has(Path(out.stdout.strip())):
            return Path(out.stdout.strip())
    found = sorted(d for d in Path("/usr/lib/postgresql").glob("*/bin") if has(d))
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb and has(Path(initdb).parent):
        return Path(initdb).parent
    pytest.fail(POSTGRES_MISSING)


@dataclass
class Postgres:
    """One throw-away server for the session; each test takes a schema."""

    port: int
    bindir: Path
    schemas: int = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def fresh_schema(self) -> str:
        self.schemas += 1
        return f"py{os.getpid()}_{self.schemas}"

    def psql(self, sql: str) -> str:
        out = subprocess.run(
            [str(self.bindir / "psql"), self.url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            capture_output=True, text=True, timeout=30,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A PostgreSQL server on a free port, run as the ``postgres`` user when
    the tests run as root (the server refuses root), killed at the end."""
    bindir = postgres_bindir()
    # Under /tmp itself: pytest's own directories are closed to other users.
    root = Path(tempfile.mkdtemp(prefix="events-py-pg-"))
    data = root / "data"
    user: dict = {}
    if os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root but there is no postgres user; " + POSTGRES_MISSING)
        user = {"user": pw.pw_uid, "group": pw.pw_gid}
        os.chmod(root, 0o755)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    initdb = subprocess.run(
        [str(bindir / "initdb"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync",
         "-D", str(data)],
        capture_output=True, text=True, **user,
    )
    assert initdb.returncode == 0, initdb.stderr
    port = free_port()
    process = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port),
         "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
         "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **user,
    )
    server = Postgres(port, bindir)
    deadline = time.monotonic() + 20
    while True:
        ping = subprocess.run(
            [str(bindir / "psql"), server.url, "-qAt", "-c", "SELECT 1"], capture_output=True
        )
        if ping.returncode == 0:
            break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"postgres did not start on port {port}")
        time.sleep(0.05)
    try:
        yield server
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def events_bin() -> Path:
    """The `events` command built by cargo: `EVENTS_BIN`, else target/debug/events,
    built once when missing."""
    given = os.environ.get("EVENTS_BIN")
    if given:
        return Path(given)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / "events"
    if not path.exists():
        subprocess.run(["cargo", "build", "--bin", "events"], cwd=ROOT, check=True)
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting of the developer's leaks in: no REDIS_URL, no EVENTS_*, no
    events.toml or .env, a state directory of the test's own."""
    for name in list(os.environ):
        if name.startswith("EVENTS_") or name in ("REDIS_URL", "RUST_LOG", "NO_COLOR"):
            if name != "EVENTS_BIN":
                monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return work


def run_events(events_bin: Path, *args: str, env: Optional[dict] = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs the `events` command with the test's environment plus `env`."""
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(
        [str(events_bin), *args], capture_output=True, text=True, env=full, timeout=timeout,
    )


@dataclass
class Sink:
    """An HTTP server that records every request and answers 200."""

    server: ThreadingHTTPServer
    bodies: list = field(default_factory=list)
    headers: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def sink() -> Iterator[Sink]:
    received: list = []
    headers: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            headers.append(dict(self.headers))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Sink(server, received, headers)
    finally:
        server.shutdown()
        server.server_close()
