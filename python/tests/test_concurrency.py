"""One `Emitter` shared by a thread pool (FastAPI's), and by asyncio code
that must never block its event loop."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from product_events import Emitter, EventType

from conftest import Redis


def test_eight_threads_share_one_emitter(
    redis_server: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    emitter = Emitter.from_env(strict=True)
    start = threading.Barrier(8)

    def work(thread: int) -> list:
        start.wait()
        return [
            emitter.emit(EventType.USER_SIGNUP, {"email": f"t{thread}-{i}@example.com"})
            for i in range(500)
        ]

    with ThreadPoolExecutor(8) as pool:
        ids = [id for batch in pool.map(work, range(8)) for id in batch]
    assert len(ids) == 4000 and len(set(ids)) == 4000
    stored = redis_server.entries()
    assert {e["id"] for e in stored} == set(ids)
    emails = {e["payload"] for e in stored}
    assert len(emails) == 4000, "every payload went with its own event"
    # Threads ran their round trips side by side, each on a connection of its own.
    assert 1 < emitter._core.idle_connections <= 8


def test_the_gil_is_released_while_the_queue_is_waited_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("EVENTS_EMIT_TIMEOUT_MS", "600")
        emitter = Emitter.from_env()
        stamps: list = []
        done = threading.Event()

        def beat() -> None:
            while not done.is_set():
                stamps.append(time.monotonic())
                time.sleep(0.001)

        beater = threading.Thread(target=beat)
        beater.start()
        try:
            began = time.monotonic()
            assert emitter.emit(EventType.USER_SIGNUP, {"email": "a@b"}) is None
            ended = time.monotonic()
        finally:
            done.set()
            beater.join()
    # Python ran on the other thread in the middle of the emit's wait: with
    # the GIL held for the call it could run only before and after.
    middle = [t for t in stamps if began + 0.2 < t < ended - 0.2]
    assert ended - began >= 0.6 and middle, (ended - began, len(stamps))


def test_two_hundred_emit_async_never_stop_the_loop(
    redis_server: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    emitter = Emitter.from_env(strict=True)

    async def main() -> tuple[list, int]:
        ticks_while_pending = 0
        tasks = [
            asyncio.ensure_future(
                emitter.emit_async(EventType.USER_SIGNUP, {"email": f"{i}@example.com"})
            )
            for i in range(200)
        ]
        while not all(t.done() for t in tasks):
            ticks_while_pending += 1
            await asyncio.sleep(0)
        return [t.result() for t in tasks], ticks_while_pending

    ids, ticks = asyncio.run(main())
    emitter.close()
    assert len(set(ids)) == 200
    assert {e["id"] for e in redis_server.entries()} == set(ids)
    # The loop ran other work while the emits were under way: an emit_async
    # that blocked would finish every emit before the loop's next turn.
    assert ticks > 1, ticks


def test_emit_async_with_redis_silent_returns_none_and_the_loop_ticks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{silent.getsockname()[1]}")
        emitter = Emitter.from_env()

        async def main() -> tuple[list, float]:
            gaps = []
            tasks = [
                asyncio.ensure_future(emitter.emit_async(EventType.USER_SIGNUP, {"email": "a"}))
                for _ in range(16)
            ]
            last = time.monotonic()
            while not all(t.done() for t in tasks):
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
            return [t.result() for t in tasks], max(gaps)

        results, widest = asyncio.run(main())
        emitter.close()
    assert results == [None] * 16
    # Each emit waited its 100 ms off the loop: the loop kept turning. (Run
    # on the loop, the 16 waits would hold one turn for 1.6 s.)
    assert widest < 1.0, widest
