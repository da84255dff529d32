"""``emit(…, connection=)``: the event written by the application's own
Postgres connection, inside its transaction, with psycopg 3, psycopg2 and
SQLAlchemy (``Connection`` and ``Session``). A rolled-back transaction
delivers nothing; a committed one is delivered once by the Rust worker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from product_events import Emitter, EventsError, EventType, InvalidEvent

from conftest import SECRET, Postgres, Sink, run_events

KINDS = ["psycopg", "psycopg2", "sqlalchemy-connection", "sqlalchemy-session"]


@dataclass
class Db:
    """One connection of the application, with what the tests ask of it."""

    connection: Any
    execute: Callable[[str], None]
    commit: Callable[[], None]
    rollback: Callable[[], None]
    #: Whether no transaction is open: nothing was executed since the last end.
    idle: Callable[[], bool]
    close: Callable[[], None]


def open_db(kind: str, url: str) -> Db:
    if kind == "psycopg":
        import psycopg

        conn = psycopg.connect(url)
        return Db(conn, lambda sql: conn.execute(sql), conn.commit, conn.rollback,
                  lambda: conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE,
                  conn.close)
    if kind == "psycopg2":
        import psycopg2
        import psycopg2.extensions

        conn = psycopg2.connect(url)

        def execute(sql: str) -> None:
            with conn.cursor() as cursor:
                cursor.execute(sql)

        return Db(conn, execute, conn.commit, conn.rollback,
                  lambda: conn.get_transaction_status()
                  == psycopg2.extensions.TRANSACTION_STATUS_IDLE,
                  conn.close)
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    if kind == "sqlalchemy-connection":
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        conn = engine.connect()
    else:
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
        conn = Session(engine)

    def close() -> None:
        conn.close()
        engine.dispose()

    return Db(conn, lambda sql: conn.execute(text(sql)), conn.commit, conn.rollback,
              lambda: not conn.in_transaction(), close)


@dataclass
class App:
    postgres: Postgres
    schema: str
    users: str
    events_bin: Path

    def work(self, sink: Sink) -> None:
        out = run_events(self.events_bin, "work", "--burst", env={
            "EVENTS_WEBHOOK_URL": sink.url, "EVENTS_WEBHOOK_SECRET": SECRET,
        })
        assert out.returncode == 0, out.stderr

    def count(self, table: str) -> int:
        return int(self.postgres.psql(f"SELECT count(*) FROM {table}"))


@pytest.fixture
def app(postgres_server: Postgres, events_bin: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    schema = postgres_server.fresh_schema()
    monkeypatch.setenv("EVENTS_POSTGRES_URL", postgres_server.url)
    monkeypatch.setenv("EVENTS_PG_SCHEMA", schema)
    out = run_events(events_bin, "migrate")
    assert out.returncode == 0, out.stderr
    users = f"public.{schema}_users"
    postgres_server.psql(f"CREATE TABLE {users} (email TEXT NOT NULL)")
    return App(postgres_server, schema, users, events_bin)


@pytest.fixture(params=KINDS)
def db(request: pytest.FixtureRequest, postgres_server: Postgres) -> Iterator[Db]:
    db = open_db(request.param, postgres_server.url)
    try:
        yield db
    finally:
        db.close()


def signup(app: App, db: Db, emitter: Emitter, email: str, **kwargs: Any) -> Any:
    db.execute(f"INSERT INTO {app.users} VALUES ('{email}')")
    return emitter.emit(EventType.USER_SIGNUP, {"email": email}, connection=db.connection,
                        **kwargs)


def test_a_rolled_back_transaction_delivers_nothing(app: App, db: Db, sink: Sink) -> None:
    emitter = Emitter.from_env(strict=True)
    assert signup(app, db, emitter, "ada@example.com") is not None
    db.rollback()
    app.work(sink)
    assert sink.bodies == []
    assert app.count(f"{app.schema}.stream") == 0
    assert app.count(app.users) == 0


def test_a_committed_transaction_is_delivered_once(app: App, db: Db, sink: Sink) -> None:
    emitter = Emitter.from_env(strict=True)
    id = signup(app, db, emitter, "ada@example.com")
    db.commit()
    app.work(sink)
    app.work(sink)
    assert [(b["id"], b["payload"]) for b in sink.bodies] == [(id, {"email": "ada@example.com"})]
    assert app.count(app.users) == 1


def test_an_invalid_event_raises_before_anything_is_executed(
    app: App, db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    strict = Emitter.from_env(strict=True)
    with pytest.raises(InvalidEvent):
        strict.emit(EventType.USER_SIGNUP, {"email": 5}, connection=db.connection)
    assert db.idle()
    lenient = Emitter.from_env()
    assert lenient.emit("no.such_type", {}, connection=db.connection) is None
    assert "not emitted" in caplog.text
    assert db.idle()
    # The connection goes on as if nothing happened.
    signup(app, db, strict, "ada@example.com")
    db.commit()
    assert app.count(app.users) == 1
    assert app.count(f"{app.schema}.stream") == 1


def test_an_idempotency_key_is_taken_only_by_a_committed_transaction(
    app: App, db: Db, sink: Sink
) -> None:
    emitter = Emitter.from_env(strict=True)
    key = "evt_1NvStripe"
    rolled_back = signup(app, db, emitter, "ada@example.com", idempotency_key=key)
    db.rollback()
    first = signup(app, db, emitter, "ada@example.com", idempotency_key=key)
    assert first != rolled_back
    db.commit()
    # Stripe's retry of the same webhook: the data again, the event not.
    assert signup(app, db, emitter, "ada@example.com", idempotency_key=key) == first
    db.commit()
    app.work(sink)
    assert [b["id"] for b in sink.bodies] == [first]


def test_a_missing_schema_says_to_run_migrate(
    app: App, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTS_PG_SCHEMA", "never_migrated")
    emitter = Emitter.from_env(strict=True)
    with pytest.raises(EventsError, match="never_migrated .*run `events migrate`"):
        emitter.emit(EventType.USER_SIGNUP, {"email": "a@b.c"}, connection=db.connection)
    # Only a catalog lookup ran: the transaction is still usable.
    db.execute(f"INSERT INTO {app.users} VALUES ('ada@example.com')")
    db.commit()
    assert app.count(app.users) == 1


def test_disabled_writes_nothing(app: App, db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTS_DISABLED", "1")
    emitter = Emitter.from_env(strict=True)
    assert emitter.emit(EventType.USER_SIGNUP, {"email": "a@b.c"}, connection=db.connection)
    assert db.idle()


def test_another_kind_of_connection_is_refused(app: App) -> None:
    with pytest.raises(EventsError, match="psycopg 3 or psycopg2 connection"):
        Emitter.from_env(strict=True).emit(
            EventType.USER_SIGNUP, {"email": "a@b.c"}, connection=object()
        )
