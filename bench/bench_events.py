"""Event intake throughput: the embed's batched POST /api/v1/events under gunicorn.

    python -m bench.bench_events [--seconds 10] [--batch 20] [--concurrency 8] [--postgres URL]

Starts the app under gunicorn on a fresh database (SQLite; PostgreSQL too when
WARRANTY_BENCH_POSTGRES_URL or --postgres is set), then for a fixed time sends batches of
events from concurrent keep-alive clients, each batch from one of many visitors, as the embed
does. Rate limits are raised for the run (one loopback address sends everything). Figures:
requests/s and events/s accepted, latency percentiles, and a check that every accepted event
is stored once. Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from bench.bench_webhooks import _database, _free_port
from warranty.experiment import arms

KEY = "pk_bench"


def _batch(visitor: int, size: int) -> bytes:
    """A batch of ``size`` typical events from one visitor."""
    now = int(time.time() * 1000)
    kinds = ["exposure", "offer_viewed", "offer_viewed", "offer_selected", "checkout_started"]
    events = [{"type": kinds[i % len(kinds)], "placement": "product_page", "sku": f"SKU-{i % 7}",
               "category": "tv", "price": 120000, "plan_code": "standard-36", "plan_price": 6000,
               "at": now - i} for i in range(size)]
    # Signed with the server's secret, as the embed gets its ids (others are refused).
    vid = arms.sign_visitor_id("demo-secret", f"vbench{visitor:016d}")
    return json.dumps({"visitor_id": vid, "events": events}).encode()


def _serve(url: str, port: int) -> subprocess.Popen:
    """gunicorn with the production config, on loopback, limits raised for one client."""
    env = {**os.environ, "WARRANTY_ENV": "demo", "WARRANTY_DATABASE_URL": url,
           "WARRANTY_SECRET_KEY": "demo-secret", "WARRANTY_API_TOKEN": "demo-token",
           "WARRANTY_PUBLIC_KEY": KEY, "WARRANTY_DEMO_STORE": "false",
           "WARRANTY_EVENTS_RATE_PER_IP": "1e9", "WARRANTY_EVENTS_BURST_PER_IP": "1000000000",
           "WARRANTY_EVENTS_RATE_PER_VISITOR": "1e9",
           "WARRANTY_EVENTS_BURST_PER_VISITOR": "1000000000",
           "WARRANTY_BIND": f"127.0.0.1:{port}", "WARRANTY_WORKERS": str(os.cpu_count() or 2),
           "WARRANTY_THREADS": "4"}
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "-c",
                             "python:warranty.gunicorn_conf", "--log-level", "warning",
                             "warranty.wsgi:app"], env=env)


def _wait_live(port: int, timeout: float = 30) -> None:
    """Until /livez answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/livez")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def run(backend: str, url: str, seconds: float, batch: int, concurrency: int) -> dict:
    """Send batches for ``seconds`` from ``concurrency`` clients; returns the figures."""
    from warranty.db.engine import migrate

    migrate(url)
    port = _free_port()
    server = _serve(url, port)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    try:
        _wait_live(port)
        bodies = [_batch(v, batch) for v in range(500)]
        stop_at = time.monotonic() + seconds

        def client(worker: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine, codes, n = [], {}, worker
            while time.monotonic() < stop_at:
                body = bodies[n % len(bodies)]
                n += concurrency
                started = time.perf_counter()
                conn.request("POST", f"/api/v1/events?key={KEY}", body=body,
                             headers={"Content-Type": "text/plain"})
                res = conn.getresponse()
                res.read()
                mine.append(time.perf_counter() - started)
                codes[res.status] = codes.get(res.status, 0) + 1
            conn.close()
            with lock:
                latencies.extend(mine)
                for code, count in codes.items():
                    statuses[code] = statuses.get(code, 0) + count

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT count(*) FROM visitor_event").scalar()
    engine.dispose()
    accepted = statuses.get(202, 0)
    ms = sorted(x * 1000 for x in latencies)
    return {"backend": backend, "requests": len(ms), "accepted": accepted,
            "errors": len(ms) - accepted, "stored": stored, "expected": accepted * batch,
            "seconds": elapsed, "requests_per_s": accepted / elapsed,
            "events_per_s": accepted * batch / elapsed, "p50_ms": statistics.median(ms),
            "p99_ms": ms[max(0, int(len(ms) * 0.99) - 1)]}


def main(argv: list[str] | None = None) -> None:
    """Run on SQLite, and on PostgreSQL when a URL is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--postgres", default=os.environ.get("WARRANTY_BENCH_POSTGRES_URL"))
    args = parser.parse_args(argv)
    rows = []
    backends = [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else [])
    for backend, pg in backends:
        with tempfile.TemporaryDirectory() as tmp:
            url, drop = _database(pg, Path(tmp))
            try:
                rows.append(run(backend, url, args.seconds, args.batch, args.concurrency))
            finally:
                drop()
    print(f"\nevent intake ({args.batch} events per request, {args.concurrency} keep-alive "
          f"clients, {args.seconds:.0f} s, gunicorn {os.cpu_count()} workers × 4 threads)")
    print(f"{'backend':<11}{'requests/s':>11}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}{'stored':>9}")
    for r in rows:
        print(f"{r['backend']:<11}{r['requests_per_s']:>11.1f}{r['events_per_s']:>10.0f}"
              f"{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['errors']:>8}{r['stored']:>9}")
        if r["stored"] != r["expected"]:
            raise SystemExit(f"{r['backend']}: {r['expected']} events accepted but "
                             f"{r['stored']} stored")


if __name__ == "__main__":
    main()
