"""The exceptions a strict emitter raises (``Emitter.from_env(strict=True)``)."""

from __future__ import annotations

from typing import Optional


class EventsError(Exception):
    """Any failure to emit: a bad setting, an invalid event, an unavailable queue.

    ``event_id`` is the id of an event that was written all the same (too few
    replicas confirmed it within ``EVENTS_EMIT_REPLICAS_TIMEOUT_MS``), else
    ``None``.
    """

    event_id: Optional[str] = None


class InvalidEvent(EventsError, ValueError):
    """The event does not fit the catalog: an unknown type (with the nearest
    known one suggested), a missing or ill-typed field, a payload that is not
    JSON. Nothing was written."""


class QueueUnavailable(EventsError, ConnectionError):
    """The queue did not take the event in time: Redis refused the
    connection or did not answer within ``EVENTS_EMIT_TIMEOUT_MS``, the SQLite
    file is read-only or stayed locked, the password was refused."""
