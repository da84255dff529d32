"""What Python writes is what the CLI writes, and what the Rust worker
delivers: the wire format, custom types from the config file, idempotency
keys shared with `events emit`, and the settings the CLI reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import product_events
from product_events import Emitter, EventType

from conftest import SECRET, Redis, Sink, run_events

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

IMPORT = {"email": "ada@example.com", "importer_name": "CRM contacts", "row_count": 1234567}


def test_the_enum_is_the_built_in_catalog() -> None:
    assert [t.value for t in EventType] == product_events._core.builtin_types()
    assert EventType.USER_SIGNUP == "user.signup"
    assert isinstance(EventType.USER_SIGNUP, str)


def test_python_writes_the_entry_the_cli_writes(
    redis_server: Redis, events_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    emitter = Emitter.from_env(strict=True)
    py_id = emitter.emit(EventType.IMPORT_COMPLETED, IMPORT)
    cli = run_events(events_bin, "emit", "import.completed", "--json", json.dumps(IMPORT))
    assert cli.returncode == 0, cli.stderr
    cli_id = cli.stdout.strip()

    py_entry, cli_entry = redis_server.entries()
    assert sorted(py_entry) == sorted(cli_entry) == ["id", "payload", "ts", "type"]
    assert (py_entry["id"], cli_entry["id"]) == (py_id, cli_id)
    for entry in (py_entry, cli_entry):
        assert ULID.match(entry["id"]), entry
        assert TS.match(entry["ts"]), entry
        assert entry["type"] == "import.completed"
    # The same payload is the same text on the wire, integer kept an integer.
    assert py_entry["payload"] == cli_entry["payload"]
    assert json.loads(py_entry["payload"]) == IMPORT
    assert py_id < cli_id, "ids are time-ordered across Python and the CLI"


def test_the_worker_delivers_what_python_emits_with_its_id_ts_and_payload(
    redis_server: Redis, events_bin: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch,
    clean_env: Path,
) -> None:
    (clean_env / "events.toml").write_text(
        "[[event]]\n"
        'type = "team.invited"\n'
        'fields = { email = "string", team = "string", seats = "integer" }\n'
        'template = "Invite: {email} joined {team} ({seats:,} seats)"\n'
    )
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    emitter = Emitter.from_env(strict=True)
    assert "team.invited" in emitter.types
    sent = {
        emitter.emit(EventType.USER_SIGNUP, {"email": "ada@example.com"}): "user.signup",
        emitter.emit("team.invited", {"email": "bo@example.com", "team": "Core", "seats": 12}):
            "team.invited",
        emitter.emit(EventType.IMPORT_COMPLETED, IMPORT): "import.completed",
    }
    assert emitter.render("team.invited", {"email": "b", "team": "Core", "seats": 1200}) == (
        "Invite: b joined Core (1,200 seats)"
    )
    stored = {e["id"]: e for e in redis_server.entries()}

    work = run_events(
        events_bin, "work", "--burst",
        env={"EVENTS_WEBHOOK_URL": sink.url, "EVENTS_WEBHOOK_SECRET": SECRET},
    )
    assert work.returncode == 0, work.stderr
    delivered = {body["id"]: body for body in sink.bodies}
    assert set(delivered) == set(sent)
    for id, kind in sent.items():
        body = delivered[id]
        assert body["type"] == kind
        assert body["ts"] == stored[id]["ts"]
        assert body["payload"] == json.loads(stored[id]["payload"])
    assert delivered[next(i for i, k in sent.items() if k == "import.completed")]["payload"] == IMPORT


def test_a_custom_type_is_validated_as_the_cli_validates_it(
    events_bin: Path, monkeypatch: pytest.MonkeyPatch, clean_env: Path, tmp_path: Path
) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text(
        '[[event]]\ntype = "team.invited"\nfields = { email = "string", seats = "integer" }\n'
        'template = "{email} ({seats})"\n'
    )
    monkeypatch.setenv("EVENTS_CONFIG", str(config))
    monkeypatch.setenv("EVENTS_DB", str(tmp_path / "events.db"))
    emitter = Emitter.from_env(strict=True)
    with pytest.raises(product_events.InvalidEvent) as raised:
        emitter.emit("team.invited", {"email": "a@b", "seats": -1})
    cli = run_events(events_bin, "emit", "team.invited", "--json", '{"email":"a@b","seats":-1}')
    assert cli.returncode == 2
    assert cli.stderr == f"events: error: {raised.value}\n"
    assert emitter.emit("team.invited", {"email": "a@b", "seats": 3})


def test_an_idempotency_key_is_shared_with_the_cli_both_ways(
    redis_server: Redis, events_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    emitter = Emitter.from_env(strict=True)
    payload = {"email": "ada@example.com"}

    first = emitter.emit(EventType.USER_SIGNUP, payload, idempotency_key="signup-ada")
    cli = run_events(events_bin, "emit", "user.signup", "--email", "ada@example.com",
                     "--idempotency-key", "signup-ada")
    assert (cli.returncode, cli.stdout) == (0, f"{first}\n")
    assert emitter.emit(EventType.USER_SIGNUP, payload, idempotency_key="signup-ada") == first

    cli = run_events(events_bin, "emit", "user.signup", "--email", "bo@example.com",
                     "--idempotency-key", "signup-bo")
    by_cli = cli.stdout.strip()
    again = emitter.emit(EventType.USER_SIGNUP, {"email": "bo@example.com"},
                         idempotency_key="signup-bo")
    assert again == by_cli
    assert [e["id"] for e in redis_server.entries()] == [first, by_cli]


def test_the_prefix_and_the_disabled_switch_are_the_clis(
    redis_server: Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("EVENTS_PREFIX", "{app}")
    id = Emitter.from_env(strict=True).emit(EventType.USER_SIGNUP, {"email": "a@b"})
    assert [e["id"] for e in redis_server.entries("{app}:stream")] == [id]
    assert redis_server.xlen() == 0

    monkeypatch.setenv("EVENTS_DISABLED", "1")
    emitter = Emitter.from_env()
    assert emitter.disabled
    assert ULID.match(emitter.emit(EventType.USER_SIGNUP, {"email": "a@b"}) or "")
    assert emitter.emit("user.sigup", {"email": "a@b"}) is None, "still validated"
    assert redis_server.xlen("{app}:stream") == 1
    assert [r.getMessage() for r in caplog.records] == [
        "user.sigup not emitted: unknown event type 'user.sigup'; did you mean 'user.signup'?"
    ]


def test_emit_many_writes_in_order_and_skips_what_is_invalid(
    redis_server: Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    items = [(EventType.USER_SIGNUP, {"email": f"u{i}@example.com"}) for i in range(2500)]
    items[7] = ("user.signup", {"mail": "typo@example.com"})
    ids = Emitter.from_env().emit_many(items)
    assert len(ids) == 2500 and ids[7] is None
    assert [e["id"] for e in redis_server.entries()] == [i for i in ids if i is not None]
    assert [r.getMessage() for r in caplog.records] == [
        "item 7 not emitted: event type 'user.signup' requires field 'email' (a string)"
    ]

    strict = Emitter.from_env(strict=True)
    with pytest.raises(product_events.InvalidEvent, match="^item 1: "):
        strict.emit_many([("user.signup", {"email": "a@b"}), ("nope", {})])
    assert redis_server.xlen() == 2499, "strict writes nothing when an item is invalid"
