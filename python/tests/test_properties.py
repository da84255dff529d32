"""Any payload the CLI accepts, Python accepts, and the reverse; and what is
accepted is the same event, value for value."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from product_events import Emitter, InvalidEvent

from conftest import run_events

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    # Lone surrogates: a str Python holds, never valid JSON text.
    st.sampled_from(["\ud800", "a\udfffb"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)
# `user.signup` requires `email`, a string: sometimes it is one, sometimes
# anything else, sometimes missing.
PAYLOADS = st.builds(
    lambda email, extra: {**extra, **email},
    st.one_of(
        st.just({"email": "ada@example.com"}),
        st.builds(lambda v: {"email": v}, VALUES),
        st.just({}),
    ),
    st.dictionaries(st.text(max_size=8).filter(lambda k: k != "email"), VALUES, max_size=4),
)


def cli_dry_run(events_bin: Path, payload_json: str) -> subprocess.CompletedProcess:
    return run_events(events_bin, "emit", "user.signup", "--dry-run", "--json", payload_json)


@pytest.fixture
def emitter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Emitter:
    monkeypatch.setenv("EVENTS_DB", str(tmp_path / "events.db"))
    monkeypatch.setenv("EVENTS_DISABLED", "1")
    return Emitter.from_env(strict=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=PAYLOADS)
def test_python_and_the_cli_accept_the_same_payloads(
    payload: dict, emitter: Emitter, events_bin: Path
) -> None:
    try:
        text = json.dumps(payload, allow_nan=True)
        encodable = True
    except (UnicodeEncodeError, ValueError):
        encodable = False
    try:
        rendered = emitter.render("user.signup", payload)
        python_error = None
    except InvalidEvent as e:
        rendered, python_error = None, str(e)
    if not encodable:
        assert python_error is not None
        return
    cli = cli_dry_run(events_bin, text)
    assert cli.returncode in (0, 2), cli.stderr
    if cli.returncode == 2:
        assert python_error is not None, f"the CLI refused {text}: {cli.stderr}"
        return
    assert python_error is None, f"the CLI accepted {text}; Python said {python_error}"
    line, message = cli.stdout.split("\n", 1)
    assert message == f"{rendered}\n"
    # What the CLI would write is what Python would: the payload, parsed the
    # way the CLI parses `--json` (an integer beyond 64 bits as a float).
    assert emitter.emit("user.signup", payload) is not None
    assert json.loads(line)["payload"] == json.loads(text, parse_int=_as_the_cli_parses)


def _as_the_cli_parses(digits: str) -> object:
    n = int(digits)
    return n if -(2**63) <= n < 2**64 else float(n)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=PAYLOADS)
def test_what_python_writes_is_the_payload_given(
    payload: dict, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    db = tmp_path_factory.mktemp("db") / "events.db"
    monkeypatch.setenv("EVENTS_DB", str(db))
    try:
        id = Emitter.from_env(strict=True).emit("user.signup", payload)
    except InvalidEvent:
        return
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT payload FROM stream WHERE id = ?", (id,)).fetchone()
    text = json.dumps(payload)
    assert json.loads(stored[0]) == json.loads(text, parse_int=_as_the_cli_parses)
