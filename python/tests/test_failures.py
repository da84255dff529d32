"""Every way an emit can fail, lenient (the default: one warning on the
`product_events` logger and `None`) and strict (the typed exception), with
the CLI's own messages and within the emit timeout, even when Redis
accepts the connection and never answers."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

from product_events import (
    Emitter,
    EventsError,
    EventType,
    InvalidEvent,
    QueueUnavailable,
)

from conftest import Redis, free_port, run_events

PASSWORD = "hunter2-secret"

#: Far more than any emit takes with the default 100 ms timeout, far less
#: than the 3 s connect and 5 s reply timeouts of the CLI's defaults: a call
#: that did not honour its timeout is caught, a slow machine is not.
HANG = 2.0


def lenient_and_strict(
    call: Callable[[Emitter], object], caplog: pytest.LogCaptureFixture
) -> tuple[str, BaseException]:
    """Runs `call` on a lenient emitter (it must return None with one
    warning) and a strict one (it must raise); returns the warning and the
    exception."""
    caplog.clear()
    started = time.monotonic()
    assert call(Emitter.from_env()) is None
    took = time.monotonic() - started
    assert took < HANG, f"the lenient call took {took:.2f} s"
    records = [r for r in caplog.records if r.name == "product_events"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING, caplog.text
    started = time.monotonic()
    with pytest.raises(EventsError) as raised:
        call(Emitter.from_env(strict=True))
    took = time.monotonic() - started
    assert took < HANG, f"the strict call took {took:.2f} s"
    return records[0].getMessage(), raised.value


@pytest.fixture
def sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    db = tmp_path / "events.db"
    monkeypatch.setenv("EVENTS_DB", str(db))
    return db


@pytest.mark.parametrize(
    "kind, payload, cli_args",
    [
        ("user.sigup", {"email": "a@b"}, ["--email", "a@b"]),
        ("import.completed", {"email": "a@b", "importer_name": "CRM"},
         ["--email", "a@b", "--importer-name", "CRM"]),
        ("import.completed", {"email": "a@b", "importer_name": "CRM", "row_count": "12"},
         ["--email", "a@b", "--importer-name", "CRM", "--json", '{"row_count":"12"}']),
        ("import.completed", {"email": "a@b", "importer_name": "CRM", "row_count": -1},
         ["--email", "a@b", "--importer-name", "CRM", "--json", '{"row_count":-1}']),
        ("user.signup", {"email": None}, ["--json", '{"email":null}']),
    ],
    ids=["unknown type", "missing field", "ill-typed field", "negative count", "null field"],
)
def test_an_invalid_event_is_the_clis_message_and_writes_nothing(
    kind: str, payload: dict, cli_args: list, sqlite: Path, events_bin: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cli = run_events(events_bin, "emit", kind, *cli_args)
    assert cli.returncode == 2
    message = cli.stderr.removeprefix("events: error: ").rstrip("\n")
    warning, error = lenient_and_strict(lambda e: e.emit(kind, payload), caplog)
    assert warning == f"{kind} not emitted: {message}"
    assert isinstance(error, InvalidEvent) and isinstance(error, ValueError)
    assert str(error) == message
    assert not sqlite.exists(), "nothing written, the store not even opened"


def test_an_unknown_type_suggests_the_nearest(sqlite: Path, caplog) -> None:
    warning, error = lenient_and_strict(lambda e: e.emit("user.sigup", {"email": "a"}), caplog)
    assert "did you mean 'user.signup'?" in warning
    assert str(error) == "unknown event type 'user.sigup'; did you mean 'user.signup'?"


@pytest.mark.parametrize(
    "payload, says",
    [
        ({"email": "a", "at": object()}, "holds a value of type object, which is not JSON"),
        ({"email": "a", "ratio": float("nan")}, "holds NaN, which is not a JSON number"),
        ({"email": "a", 1: "x"}, "payload keys must be strings, not int"),
        (["email", "a"], "the payload must be a dict, not list"),
    ],
)
def test_a_payload_that_is_not_json_is_invalid(payload, says, sqlite: Path, caplog) -> None:
    warning, error = lenient_and_strict(lambda e: e.emit(EventType.USER_SIGNUP, payload), caplog)
    assert isinstance(error, InvalidEvent)
    assert says in str(error) and says in warning


def test_a_refused_connection_is_queue_unavailable_without_the_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    monkeypatch.setenv("REDIS_URL", f"redis://:{PASSWORD}@127.0.0.1:{port}")
    warning, error = lenient_and_strict(
        lambda e: e.emit(EventType.USER_SIGNUP, {"email": "a@b"}), caplog
    )
    assert isinstance(error, QueueUnavailable) and isinstance(error, ConnectionError)
    assert f"cannot reach Redis at redis://***@127.0.0.1:{port}" in str(error)
    assert warning == f"user.signup not emitted: {error}"
    assert PASSWORD not in warning and PASSWORD not in repr(error)
    assert PASSWORD not in repr(Emitter.from_env())


@pytest.fixture
def silent_redis() -> Iterator[int]:
    """A port whose listener accepts connections (the kernel completes the
    handshake) and never answers: a hung server, a black-holed network."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def test_a_silent_redis_returns_within_the_emit_timeout(
    silent_redis: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://:{PASSWORD}@127.0.0.1:{silent_redis}")
    assert Emitter.from_env().timeout_ms == 100
    warning, error = lenient_and_strict(
        lambda e: e.emit(EventType.USER_SIGNUP, {"email": "a@b"}), caplog
    )
    assert isinstance(error, QueueUnavailable)
    assert str(error).endswith(f"127.0.0.1:{silent_redis}: no answer within 100 ms"), error
    assert PASSWORD not in warning and PASSWORD not in str(error)


def test_the_emit_timeout_is_the_variables(
    silent_redis: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{silent_redis}")
    monkeypatch.setenv("EVENTS_EMIT_TIMEOUT_MS", "400")
    emitter = Emitter.from_env()
    assert emitter.timeout_ms == 400
    started = time.monotonic()
    assert emitter.emit(EventType.USER_SIGNUP, {"email": "a@b"}) is None
    assert 0.4 <= time.monotonic() - started < HANG


def test_a_redis_that_comes_back_is_used_again(
    redis_server: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    emitter = Emitter.from_env()
    assert emitter.emit(EventType.USER_SIGNUP, {"email": "a@b"})
    redis_server.cli("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    ids = [emitter.emit(EventType.USER_SIGNUP, {"email": f"{i}@b"}) for i in range(3)]
    assert ids[1] and ids[2], "a dropped connection costs at most the call that found it"
    assert redis_server.xlen() == 1 + sum(1 for i in ids if i)


def make_read_only(path: Path) -> Callable[[], None]:
    """Makes `path` unwritable for this process, root included (`chattr +i`);
    returns how to undo it."""
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    immutable = False
    if os.access(path, os.W_OK):
        if shutil.which("chattr") is None:
            pytest.fail("as root a file mode does not stop writes: chattr is needed "
                        "(Debian: apt-get install e2fsprogs)")
        subprocess.run(["chattr", "+i", str(path)], check=True)
        immutable = True

    def undo() -> None:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)

    return undo


def test_a_read_only_sqlite_file_is_queue_unavailable(
    sqlite: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert Emitter.from_env(strict=True).emit(EventType.USER_SIGNUP, {"email": "first@b"})
    undo = make_read_only(sqlite)
    try:
        warning, error = lenient_and_strict(
            lambda e: e.emit(EventType.USER_SIGNUP, {"email": "a@b"}), caplog
        )
    finally:
        undo()
    assert isinstance(error, QueueUnavailable)
    assert str(error).startswith(f"the store {sqlite} cannot be written"), error
    assert warning == f"user.signup not emitted: {error}"


def test_a_bad_setting_never_raises_unless_strict(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("EVENTS_PREFIX", "myapp:events")
    emitter = Emitter.from_env()
    assert caplog.records[0].getMessage().startswith("events are not emitted: EVENTS_PREFIX")
    assert emitter.emit(EventType.USER_SIGNUP, {"email": "a@b"}) is None
    assert emitter.emit_many([(EventType.USER_SIGNUP, {"email": "a@b"})]) == [None]
    with pytest.raises(EventsError) as raised:
        Emitter.from_env(strict=True)
    assert not isinstance(raised.value, (InvalidEvent, QueueUnavailable))
    assert 'use "{myapp:events}"' in str(raised.value)


def test_emit_many_against_a_queue_that_is_down_is_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}")
    items = [(EventType.USER_SIGNUP, {"email": f"{i}@b"}) for i in range(10)]
    assert Emitter.from_env().emit_many(items) == [None] * 10
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith("10 events not emitted: cannot reach Redis")
    with pytest.raises(QueueUnavailable):
        Emitter.from_env(strict=True).emit_many(items)


def test_wrong_arguments_never_raise_unless_strict(sqlite: Path, caplog) -> None:
    warning, error = lenient_and_strict(lambda e: e.emit(42, {"email": "a"}), caplog)  # type: ignore[arg-type]
    assert str(error) == "the event type must be a str or an EventType, not int"
    emitter: Optional[Emitter] = Emitter.from_env()
    assert emitter is not None
    assert emitter.emit_many(None) == []  # type: ignore[arg-type]
