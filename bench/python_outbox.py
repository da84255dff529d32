"""What ``emit(…, connection=)`` adds to the application's own transaction,
with psycopg 3: the same transaction (one ``INSERT`` into an app table, then
``COMMIT``) timed with and without the emit in it, alternated iteration by
iteration. Run by ``bench/run outbox`` against the Postgres it starts:

    EVENTS_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
      target/bench-py/bin/python bench/python_outbox.py

The schema (``EVENTS_PG_SCHEMA``) must exist (``events migrate``). Knob: N
(iterations, 20000). A harness, not a test: it fails only when an emit
returns no id.
"""

from __future__ import annotations

import os
import time

import psycopg

from product_events import Emitter, EventType

N = int(os.environ.get("N", "20000"))


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    at = lambda q: samples[int((len(samples) - 1) * q)] * 1e3  # noqa: E731
    return at(0.50), at(0.99)


def main() -> None:
    url = os.environ["EVENTS_POSTGRES_URL"]
    events = Emitter.from_env(strict=True)
    conn = psycopg.connect(url)
    conn.execute("DROP TABLE IF EXISTS public.bench_py_users")
    conn.execute("CREATE TABLE public.bench_py_users (id BIGSERIAL PRIMARY KEY, email TEXT)")
    conn.commit()
    plain: list[float] = []
    with_emit: list[float] = []
    for i in range(N + N // 10):
        email = f"user{i}@example.com"
        started = time.perf_counter()
        conn.execute("INSERT INTO public.bench_py_users (email) VALUES (%s)", (email,))
        conn.commit()
        plain_took = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("INSERT INTO public.bench_py_users (email) VALUES (%s)", (email,))
        if events.emit(EventType.USER_SIGNUP, {"email": email}, connection=conn) is None:
            raise SystemExit("an emit returned no id")
        conn.commit()
        with_took = time.perf_counter() - started
        if i >= N // 10:
            plain.append(plain_took)
            with_emit.append(with_took)
    p50, p99 = percentiles(plain)
    w50, w99 = percentiles(with_emit)
    print(f"iterations {N}")
    print(f"insert+commit                 p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    print(f"insert+emit(connection=)+commit p50 {w50:.3f} ms  p99 {w99:.3f} ms")
    print(f"emit(connection=) adds        p50 {w50 - p50:.3f} ms  p99 {w99 - p99:.3f} ms")


if __name__ == "__main__":
    main()
