"""Emit product events from Python, in-process, over the ``events`` Rust core.

The seed's call, unchanged::

    from product_events import Emitter, EventType

    events = Emitter.from_env()          # REDIS_URL, EVENTS_DB, events.toml…
    events.emit(EventType.USER_SIGNUP, {"email": user.email})

``emit`` validates the event exactly as ``events emit`` does and writes it to
the same queue, then returns its id. By default it never raises and never
blocks for long: an invalid event or an unavailable queue is one warning on
the ``product_events`` logger and ``None``, within ``EVENTS_EMIT_TIMEOUT_MS``
(100 ms unless set). ``Emitter.from_env(strict=True)`` raises
``InvalidEvent`` (a ``ValueError``) or ``QueueUnavailable`` (a
``ConnectionError``) instead, both ``EventsError``.

One ``Emitter`` is meant to be shared by every thread of the process; it
releases the GIL while it waits on the queue. From ``async`` code, ``await
events.emit_async(...)`` never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Mapping, Optional, Tuple, Union

from . import _core, _outbox
from ._errors import EventsError, InvalidEvent, QueueUnavailable

__all__ = [
    "Emitter",
    "EventType",
    "EventsError",
    "InvalidEvent",
    "QueueUnavailable",
]

logger = logging.getLogger("product_events")


class EventType(str, enum.Enum):
    """The built-in catalog's event types (DESIGN §2). Types a config file
    adds are passed by name, as a ``str``."""

    USER_SIGNUP = "user.signup"
    USER_FIRST_IMPORT = "user.first_import"
    SUBSCRIPTION_STARTED = "subscription.started"
    SUBSCRIPTION_CANCELLED = "subscription.cancelled"
    SUBSCRIPTION_PAYMENT_FAILED = "subscription.payment_failed"
    IMPORTER_CREATED = "importer.created"
    IMPORT_COMPLETED = "import.completed"
    IMPORT_FAILED = "import.failed"
    #: Raised by the worker itself when deliveries die.
    DEAD_LETTERS = "events.dead_letters"
    #: Raised by the worker itself when a destination's breaker opens.
    DESTINATION_DOWN = "events.destination_down"

    def __str__(self) -> str:
        return self.value


TypeLike = Union[EventType, str]
Payload = Mapping[str, Any]

#: Threads that run ``emit_async`` calls, per emitter.
_ASYNC_THREADS = 8


class Emitter:
    """Validates events against the catalog and writes them to the queue.

    Make one per process with :meth:`from_env` and share it.
    """

    __slots__ = ("_core", "_strict", "_broken", "_executor", "_lock", "_outbox_ready")

    def __init__(self, core: Optional[_core.Emitter], strict: bool, broken: str = "") -> None:
        self._core = core
        self._strict = strict
        self._broken = broken
        self._executor: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()
        self._outbox_ready = False

    @classmethod
    def from_env(cls, strict: bool = False) -> "Emitter":
        """The emitter the environment describes, with the same settings as
        the ``events`` command: ``REDIS_URL`` (else the SQLite file of
        ``EVENTS_DB``), ``EVENTS_CONFIG`` or ``./events.toml`` (custom event
        types), ``EVENTS_PREFIX``, ``EVENTS_DISABLED``,
        ``EVENTS_EMIT_TIMEOUT_MS``.

        Not strict, a bad setting is a warning and every later ``emit``
        returns ``None`` (with a warning each); strict, it raises
        ``EventsError``. Nothing connects until the first emit.
        """
        try:
            return cls(_core.Emitter.from_env(), strict)
        except EventsError as e:
            if strict:
                raise
            logger.warning("events are not emitted: %s", e)
            return cls(None, strict, str(e))

    @property
    def strict(self) -> bool:
        """Whether failures raise (``True``) or are logged (``False``)."""
        return self._strict

    @property
    def disabled(self) -> bool:
        """``EVENTS_DISABLED``: events are validated and never written."""
        return self._core is None or self._core.disabled

    @property
    def timeout_ms(self) -> int:
        """How long an emit may wait to connect and for each reply."""
        return self._core.timeout_ms if self._core is not None else 0

    @property
    def backend(self) -> str:
        """Where events go, without any password."""
        return self._core.backend if self._core is not None else "none"

    @property
    def types(self) -> list[str]:
        """Every event type accepted: built-in and the config file's."""
        return self._core.types if self._core is not None else []

    def emit(
        self,
        type: TypeLike,
        payload: Payload,
        *,
        idempotency_key: Optional[str] = None,
        connection: Any = None,
    ) -> Optional[str]:
        """Validates and writes one event; returns its id.

        ``events.emit(EventType.USER_SIGNUP, {"email": "ada@example.com"})``

        With ``idempotency_key``, a second emit with the same key within 24 h
        (from Python or ``events emit --idempotency-key``) writes nothing and
        returns the first event's id. Not strict, a failure is a warning on
        the ``product_events`` logger and ``None``.

        With ``connection`` (Postgres, ``EVENTS_POSTGRES_URL``): a psycopg 3
        or psycopg2 connection, or an SQLAlchemy ``Connection`` or
        ``Session``, whose open transaction writes the event, so it commits
        or rolls back with the caller's data; it is never committed here.
        A key is taken by that transaction: should it roll back, the key is
        free again. An invalid event, a wrong setting or a missing schema
        (run ``events migrate``) fail as above before anything is executed;
        an error the connection itself raises is raised as is, strict or
        not, since Postgres has aborted the caller's transaction.
        """
        core = self._core
        try:
            if core is None:
                raise EventsError(self._broken)
            if connection is None:
                return core.emit(type, payload, idempotency_key)
            id, sql, params, find, ready = core.outbox(type, payload, idempotency_key)
            if sql is None:
                return id
            run = _outbox.runner(connection)
        except Exception as e:
            if self._strict:
                raise
            return _dropped(type, e)
        if not self._outbox_ready and ready is not None:
            if not run(ready, {})[1]:
                return self._refused(type, _outbox.missing_schema(ready))
            self._outbox_ready = True
        return _outbox.write(run, sql, params, find) or id

    def _refused(self, type: TypeLike, error: EventsError) -> Optional[str]:
        if self._strict:
            raise error
        return _dropped(type, error)

    async def emit_async(
        self, type: TypeLike, payload: Payload, *, idempotency_key: Optional[str] = None
    ) -> Optional[str]:
        """``emit``, awaited on the emitter's own threads: the event loop goes
        on while the queue answers.

        ``await events.emit_async(EventType.IMPORT_COMPLETED, {...})``
        """
        loop = asyncio.get_running_loop()
        call = functools.partial(self.emit, type, payload, idempotency_key=idempotency_key)
        return await loop.run_in_executor(self._threads(), call)

    def emit_many(self, items: Iterable[Tuple[TypeLike, Payload]]) -> list[Optional[str]]:
        """Validates ``(type, payload)`` pairs and writes them in batches of
        1,000, one round trip each; returns their ids in order.

        Not strict, an invalid item is a warning and ``None`` in its place
        (the others are written), and an unavailable queue is a warning and
        ``None`` for every item. Strict, an invalid item raises
        ``InvalidEvent`` before anything is written.
        """
        core = self._core
        pairs: list[Tuple[TypeLike, Payload]] = []
        try:
            pairs = list(items)
            if core is None:
                raise EventsError(self._broken)
            ids, rejected = core.emit_many(pairs, self._strict)
        except Exception as e:
            if self._strict:
                raise
            _dropped(f"{len(pairs)} events", e)
            return [None] * len(pairs)
        for index, reason in rejected:
            logger.warning("item %d not emitted: %s", index, reason)
        return ids

    def render(self, type: TypeLike, payload: Payload) -> str:
        """The event's message, as ``events emit --dry-run`` prints it; raises
        ``InvalidEvent`` when the event is not valid (strict or not)."""
        if self._core is None:
            raise EventsError(self._broken)
        return self._core.render(type, payload)

    def close(self) -> None:
        """Stops the threads of ``emit_async``; the emitter still emits."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _threads(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        _ASYNC_THREADS, thread_name_prefix="product_events"
                    )
                executor = self._executor
        return executor

    def __repr__(self) -> str:
        mode = "strict" if self._strict else "lenient"
        return f"<product_events.Emitter {self.backend} {mode}>"


def _dropped(what: Any, error: BaseException) -> Optional[str]:
    """The one warning of an event not emitted; the id of one written all the
    same (too few replicas confirmed it), else ``None``."""
    name = what.value if isinstance(what, enum.Enum) else what
    id = getattr(error, "event_id", None)
    if id is not None:
        logger.warning("%s %s was written, but: %s", name, id, error)
        return id
    logger.warning("%s not emitted: %s", name, error)
    return None
