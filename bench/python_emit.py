"""The Python package against the other ways to emit from Python, in one
process and one run, against one local Redis it starts itself:

- ``Emitter.emit`` (validated, id and ts assigned, written with XADD);
- redis-py's own ``xadd`` of the same entry (the same four fields, the
  payload serialised with ``json.dumps`` in the loop, as a caller must);
- RQ's ``enqueue`` (the seed's call before this package: a job on a queue);

alternated call by call, so each sees the same machine at the same moment.
Then ``emit_many`` throughput beside a redis-py pipeline of the same XADDs.

A harness, not a test: it prints the figures and fails only when something
is broken (an emit that returned no id, entries missing).

    python3 -m venv target/bench-py
    target/bench-py/bin/pip install redis rq ./python      # a release build
    target/bench-py/bin/python bench/python_emit.py         # N=20000 BATCH=100000

Knobs (environment): N (calls of each kind, 20000), BATCH (events for
the throughput figures, 100000).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis
from rq import Queue

from product_events import Emitter, EventType

N = int(os.environ.get("N", "20000"))
BATCH = int(os.environ.get("BATCH", "100000"))
PAYLOAD = {"email": "ada@example.com"}


#: The job an RQ worker would run (never run here), named as the seed names
#: its own: RQ refuses functions of `__main__`.
JOB = "app.events.process_event"


def start_redis(tmp: str) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tmp],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(500):
        try:
            client.ping()
            return server, port
        except redis.ConnectionError:
            time.sleep(0.01)
    raise SystemExit("redis-server did not start")


def percentiles(ns: list[int]) -> str:
    q = statistics.quantiles(ns, n=100)
    return f"p50 {q[49] / 1000:7.1f} µs   p90 {q[89] / 1000:7.1f} µs   p99 {q[98] / 1000:7.1f} µs"


def single_calls(emitter: Emitter, r: redis.Redis, rq: Queue) -> dict[str, list[int]]:
    stream = "{events}:stream"
    # Same-length stand-ins for the id and ts the emitter makes itself.
    fake_id, fake_ts = "01JDX3M7Q7G5N8W4K2B9C1T6ZR", "2026-11-27T09:00:00.123Z"

    def emit() -> None:
        if emitter.emit(EventType.USER_SIGNUP, PAYLOAD) is None:
            raise SystemExit("emit returned no id")

    def xadd() -> None:
        r.xadd(stream, {"type": "user.signup", "payload": json.dumps(PAYLOAD),
                        "id": fake_id, "ts": fake_ts})

    def enqueue() -> None:
        rq.enqueue(JOB, "user.signup", PAYLOAD)

    calls = {"Emitter.emit": emit, "redis-py xadd": xadd, "RQ enqueue": enqueue}
    for call in calls.values():  # warm up: connections, scripts, caches
        for _ in range(500):
            call()
    times: dict[str, list[int]] = {name: [] for name in calls}
    clock = time.perf_counter_ns
    for _ in range(N):
        for name, call in calls.items():
            began = clock()
            call()
            times[name].append(clock() - began)
    return times


def throughput(emitter: Emitter, r: redis.Redis) -> tuple[float, float]:
    items = [(EventType.USER_SIGNUP, {"email": f"u{i}@example.com"}) for i in range(BATCH)]
    began = time.perf_counter()
    ids = emitter.emit_many(items)
    many = BATCH / (time.perf_counter() - began)
    if None in ids:
        raise SystemExit("emit_many dropped events")

    began = time.perf_counter()
    for start in range(0, BATCH, 1000):
        pipe = r.pipeline(transaction=False)
        for kind, payload in items[start:start + 1000]:
            pipe.xadd("{bench}:stream", {"type": kind.value, "payload": json.dumps(payload)})
        pipe.execute()
    piped = BATCH / (time.perf_counter() - began)
    return many, piped


def main() -> None:
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed (Debian: apt-get install redis-server)")
    with tempfile.TemporaryDirectory() as tmp:
        server, port = start_redis(tmp)
        try:
            os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}"
            emitter = Emitter.from_env(strict=True)
            r = redis.Redis(port=port)
            rq = Queue("events", connection=redis.Redis(port=port))
            times = single_calls(emitter, r, rq)
            emitted = r.xlen("{events}:stream")
            if emitted != 2 * (N + 500):
                raise SystemExit(f"{emitted} entries, {2 * (N + 500)} expected")
            many, piped = throughput(emitter, r)
        finally:
            server.kill()
            server.wait()
    print(f"python {sys.version.split()[0]}, redis-py {redis.__version__}, "
          f"N={N} alternated calls of each, one local redis-server")
    for name, ns in times.items():
        print(f"  {name:14} {percentiles(ns)}")
    ratio = statistics.median(times["Emitter.emit"]) / statistics.median(times["redis-py xadd"])
    print(f"  emit p50 / xadd p50 = {ratio:.2f}×")
    print(f"BATCH={BATCH}: emit_many {many:,.0f} events/s; "
          f"redis-py pipelined xadd (1000 a round trip) {piped:,.0f} events/s")


if __name__ == "__main__":
    main()
