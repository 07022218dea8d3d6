"""Offers throughput and latency beside the trivial /livez, under gunicorn, 100,000 products.

For each backend (SQLite in a temporary file; PostgreSQL too with ``--postgres URL`` or
WARRANTY_BENCH_POSTGRES_URL, in a temporary database on that server): migrate, load the
default JPY rules and the catalog, start gunicorn with one sync worker per CPU on a free
127.0.0.1 port, then

1. saturate ``GET /livez`` and ``GET /api/v1/offers?sku=<random>&key=...`` with wrk, in
   alternating rounds (closed loop: peak req/s, and latencies at saturation: the mean p50
   and the worst p99 of the rounds);
2. send offers requests at a fixed half of the offers peak with the paced Python client
   (open loop: p50/p99 from when each request was due).

Offers are served from each worker's cache of rendered answers (warranty/offers/cache.py);
a store's traffic keeps them warm. So the runs ask random skus of ``--hot`` products whose
offers every worker has answered before (a warm-up pass asks each of them ``--warm-rounds``
times), and, for comparison, random skus of the whole catalog in a cold run (mostly first
asks: the database read, pricing and signing the cache saves).
The cache's memory for the whole catalog is measured in this process (tracemalloc) on
``--memory-sample`` products and scaled to ``--products``.

Targets (issue 18): offers ≥ 80% of /livez's throughput; p99 < 5 ms at half load.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import sqlalchemy as sa

from bench import loadgen
from bench.bench_webhooks import _database, _free_port
from warranty.catalog import services as catalog
from warranty.db.engine import dispose_engines, migrate, session_scope
from warranty.pricing import rules

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_RATIO = 0.80
TARGET_P99_MS = 5.0
PUBLIC_KEY = "pk_bench_store"
HOST = "127.0.0.1"
TRIVIAL = "/livez"
OFFERS = "/api/v1/offers?sku={sku}&key=" + PUBLIC_KEY


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options (defaults keep a two-backend run under about two minutes)."""
    parser = argparse.ArgumentParser(prog="python -m bench offers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL",
                        default=os.environ.get("WARRANTY_BENCH_POSTGRES_URL"),
                        help="also run on PostgreSQL (a temporary database on this server)")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="gunicorn workers (default: CPU count)")
    parser.add_argument("--connections", type=int, default=8,
                        help="concurrent connections of the saturation runs")
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="saturation time per endpoint, split over the rounds")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating saturation runs per endpoint")
    parser.add_argument("--paced-seconds", type=float, default=8.0,
                        help="length of the half-load run")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="saturation load generator (auto: wrk, else the Python client)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"),
                        help="run one backend only")
    parser.add_argument("--memory-sample", type=int, default=5_000,
                        help="products whose cached answers are measured for the memory figure")
    parser.add_argument("--hot", type=int, default=10_000,
                        help="products the warm runs ask (every worker's cache holds them)")
    parser.add_argument("--warm-rounds", type=int, default=3,
                        help="times the warm-up asks each hot product (spread over workers)")
    return parser.parse_args(argv)


# --- database --------------------------------------------------------------------------


@contextmanager
def temporary_database(backend: str, tmp: Path, postgres_url: str | None):
    """A fresh database URL for one run, removed afterwards."""
    url, drop = _database(postgres_url if backend == "postgresql" else None, tmp)
    try:
        yield url
    finally:
        dispose_engines()
        drop()


def catalog_batch(start: int, stop: int, categories: list[str],
                  rng: random.Random) -> list[catalog.ProductIn]:
    """Products ``start``..``stop`` with prices spread log-uniformly over the rules' bands."""
    low, high = math.log(1_000), math.log(2_999_999)
    return [catalog.ProductIn(sku=loadgen.bench_sku(i), title=f"Bench product {i}",
                              category=rng.choice(categories),
                              price=int(math.exp(rng.uniform(low, high))),
                              manufacturer_warranty_months=rng.choice((12, 12, 12, 24)))
            for i in range(start, stop)]


def load_catalog(url: str, count: int) -> float:
    """Migrate, load the default JPY rules and ``count`` products; seconds taken."""
    started = time.monotonic()
    migrate(url)
    document = rules.load_text(rules.builtin_rules("default-jpy"))
    with session_scope(url) as session:
        rules.save_rule_set(session=session, document=document, store_currency="jpy",
                              created_by="bench")
    categories = sorted(document.category_map)
    rng = random.Random(20240601)
    for start in range(0, count, catalog.MAX_BATCH):
        batch = catalog_batch(start, min(count, start + catalog.MAX_BATCH), categories, rng)
        with session_scope(url) as session:
            catalog.upsert_products(session=session, products=batch, currency="jpy")
    dispose_engines()
    if url.startswith("postgresql"):
        # A live store's catalog was vacuumed and analysed long ago; don't time autovacuum
        # catching up with the bulk load.
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        engine.dispose()
    return time.monotonic() - started


# --- server ----------------------------------------------------------------------------


@contextmanager
def gunicorn(url: str, workers: int, log_path: Path):
    """gunicorn serving warranty.wsgi:app with the project's config; yields (port, pid)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WARRANTY_") and k != "GUNICORN_CMD_ARGS"}
    env.update(WARRANTY_ENV="production", WARRANTY_DATABASE_URL=url,
               WARRANTY_SECRET_KEY=secrets.token_urlsafe(32),
               WARRANTY_API_TOKEN=secrets.token_urlsafe(32), WARRANTY_PUBLIC_KEY=PUBLIC_KEY,
               WARRANTY_BIND=f"{HOST}:{port}", WARRANTY_WORKERS=str(workers),
               # Every request comes from one address here: keep the limiter running (its
               # cost is part of each request) with a limit the load never reaches.
               WARRANTY_RATE_LIMIT_OFFERS="100000000/minute")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:warranty.gunicorn_conf",
             "warranty.wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        loadgen.wait_until_up(HOST, port, TRIVIAL, 30, alive=lambda: proc.poll() is None)
        yield port, proc.pid
    except BaseException:
        print(log_path.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def server_cpu_seconds(master: int) -> float:
    """User + system CPU seconds used so far by gunicorn's master and its live workers."""
    pids = [master]
    try:
        pids += [int(p) for p in
                 Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    except OSError:
        return 0.0
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


# --- the offers cache's memory ---------------------------------------------------------


def cache_memory(url: str, products: int, sample: int) -> dict:
    """The offers cache's memory for ``sample`` products, measured by tracemalloc in an app
    of this process, and scaled to ``products``; with the cache's own count of its bytes
    (what its bound, WARRANTY_OFFER_CACHE_MB, limits)."""
    from devtools.settings import demo_settings
    from warranty.http.api.offers import offers_cache
    from warranty.http.app import create_app

    sample = min(sample, products)
    settings = demo_settings(env="test", database_url=url, public_key=PUBLIC_KEY,
                             rate_limit_offers="100000000/minute", offer_cache_mb=4096)
    app = create_app(settings)
    logging.getLogger().setLevel(logging.WARNING)  # create_app's INFO would show Alembic's
    client = app.test_client()
    skus = [loadgen.bench_sku(i) for i in range(sample)]
    client.get(OFFERS.format(sku=skus[-1]))  # first-request work outside the measure
    offers_cache(app).revisions()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for sku in skus:
        assert client.get(OFFERS.format(sku=sku)).status_code == 200
    measured = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    stats = offers_cache(app).stats()
    dispose_engines()
    per_entry = measured / max(1, stats["entries"])
    return {"sample": stats["entries"], "measured_bytes_per_product": round(per_entry),
            "counted_bytes_per_product": round(stats["bytes"] / max(1, stats["entries"])),
            "projected_mb": round(per_entry * products / 2**20, 1),
            "default_bound_mb": 256}


def worker_rss_mb(master: int) -> list[float]:
    """Resident memory of each gunicorn worker, in MB."""
    try:
        pids = [int(p) for p in
                Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    except OSError:
        return []
    sizes = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kb = next(int(line.split()[1]) for line in status.splitlines()
                  if line.startswith("VmRSS:"))
        sizes.append(round(kb / 1024, 1))
    return sizes


def warm_caches(server: tuple[int, int], products: int, rounds: int) -> float:
    """Ask offers for each of ``products`` ``rounds`` times; seconds taken."""
    started = time.monotonic()
    loadgen.warm_every_sku(host=HOST, port=server[0], path=OFFERS, sku_count=products,
                           connections=8, rounds=rounds)
    return time.monotonic() - started


# --- runs ------------------------------------------------------------------------------


def saturate(wrk: str | None, server: tuple[int, int], path: str, args, sku_count: int,
             seconds: float) -> loadgen.RunResult:
    """A closed-loop run at saturation with wrk, or the Python client without it."""
    port, pid = server
    cpu_before = server_cpu_seconds(pid)
    if wrk:
        result = loadgen.run_wrk(wrk, base_url=f"http://{HOST}:{port}", path=path,
                                 connections=args.connections, seconds=seconds,
                                 sku_count=sku_count)
    else:
        result = loadgen.python_peak(host=HOST, port=port, path=path,
                                     connections=args.connections, seconds=seconds,
                                     sku_count=sku_count)
    result.server_cpu_seconds = server_cpu_seconds(pid) - cpu_before
    return result


def bench_backend(backend: str, args, wrk: str | None) -> dict:
    """Every run on one backend; returns the figures."""
    with tempfile.TemporaryDirectory(prefix="warranty-bench-") as tmpdir:
        tmp = Path(tmpdir)
        with temporary_database(backend, tmp, args.postgres) as url:
            print(f"[{backend}] loading rules and {args.products:,} products ...", flush=True)
            load_seconds = load_catalog(url, args.products)
            print(f"[{backend}] loaded in {load_seconds:.1f} s; starting gunicorn "
                  f"({args.workers} workers)", flush=True)
            memory = cache_memory(url, args.products, args.memory_sample)
            print(f"[{backend}] cache memory: {memory['measured_bytes_per_product']:,} bytes "
                  f"per product ({memory['sample']:,} measured) -> "
                  f"{memory['projected_mb']:,} MB for {args.products:,}", flush=True)
            hot = min(args.hot, args.products)
            with gunicorn(url, args.workers, tmp / "gunicorn.log") as server:
                warm_seconds = warm_caches(server, hot, args.warm_rounds)
                print(f"[{backend}] {hot:,} products' offers warmed in {warm_seconds:.1f} s",
                      flush=True)
                saturate(wrk, server, OFFERS, args, hot, seconds=2)  # warm workers
                # Alternate the endpoints so drifting load from other processes on a
                # shared machine weighs on all alike.
                runs = ((TRIVIAL, 0), ("warm", hot), ("cold", args.products))
                rounds: dict[str, list[loadgen.RunResult]] = {name: [] for name, _ in runs}
                for _ in range(args.rounds):
                    for name, skus in runs:
                        rounds[name].append(saturate(
                            wrk, server, TRIVIAL if name == TRIVIAL else OFFERS, args, skus,
                            seconds=args.seconds / args.rounds))
                trivial, offers, cold = (loadgen.combine(rounds[name]) for name, _ in runs)
                print(f"[{backend}] peaks: /livez {trivial.rate:,.0f} req/s, offers (warm) "
                      f"{offers.rate:,.0f} req/s, offers (cold) {cold.rate:,.0f} req/s",
                      flush=True)
                rate = offers.rate / 2
                half = loadgen.paced(host=HOST, port=server[0], path=OFFERS, rate=rate,
                                     seconds=args.paced_seconds, sku_count=hot)
                rss = worker_rss_mb(server[1])
    memory.update(worker_rss_mb=rss, warm_seconds=round(warm_seconds, 1))
    return {"backend": backend, "products": args.products, "workers": args.workers,
            "memory": memory, "hot": hot, "cold": cold,
            "load_seconds": round(load_seconds, 1), "trivial": trivial, "offers": offers,
            "half": half, "half_target_rate": rate}


def targets(figures: dict) -> tuple[float, float, float]:
    """(throughput ratio, CPU-per-request ratio, p99 at half load) of one backend's runs."""
    trivial, offers = figures["trivial"], figures["offers"]
    ratio = offers.rate / trivial.rate if trivial.rate else 0.0
    cpu_ratio = trivial.cpu_us / offers.cpu_us if offers.cpu_us else 0.0
    return ratio, cpu_ratio, figures["half"].p99_ms


def print_table(figures: dict, generator: str, connections: int) -> None:
    """The figures of one backend as a table, with the targets."""
    hot = f"{figures['hot'] // 1000}k"
    runs = [("GET /livez", f"saturation, {connections} conns", figures["trivial"]),
            (f"offers, warm ({hot} skus)", f"saturation, {connections} conns",
             figures["offers"]),
            (f"offers, warm ({hot} skus)", f"paced at {figures['half_target_rate']:,.0f} req/s",
             figures["half"]),
            (f"offers, cold ({figures['products'] // 1000}k)", f"saturation, {connections} conns",
             figures["cold"])]
    print(f"\noffers benchmark: {figures['backend']}, {figures['products']:,} products, "
          f"gunicorn {figures['workers']} sync workers, {os.cpu_count()} CPUs, "
          f"load average before/after: {figures['loadavg']}")
    print(f"load: {generator} for saturation; paced Python client (open loop) for half load")
    print(f"{'endpoint':<27}{'load':<24}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
          f"{'server CPU µs/req':>19}")
    for name, load, run in runs:
        cpu = f"{run.cpu_us:,.0f}" if run.server_cpu_seconds else "-"
        print(f"{name:<27}{load:<24}{run.rate:>8,.0f}{run.p50_ms:>8.2f}{run.p99_ms:>8.2f}"
              f"{run.errors:>7}{cpu:>19}")
    memory = figures["memory"]
    print(f"offers cache: {memory['measured_bytes_per_product']:,} bytes per product "
          f"(tracemalloc, {memory['sample']:,} products; the cache counts "
          f"{memory['counted_bytes_per_product']:,}) -> {memory['projected_mb']:,} MB per "
          f"worker for {figures['products']:,} products (bound WARRANTY_OFFER_CACHE_MB, "
          f"default {memory['default_bound_mb']}); workers' RSS after the runs: "
          f"{', '.join(f'{mb:,.0f} MB' for mb in memory['worker_rss_mb'])}")
    ratio, cpu_ratio, p99 = targets(figures)
    print(f"offers/trivial throughput: {ratio:.2f}  target >= {TARGET_RATIO:.2f}: "
          f"{'MET' if ratio >= TARGET_RATIO else 'NOT MET'}  (by server CPU per request: "
          f"{cpu_ratio:.2f})")
    print(f"p99 at half of the offers peak: {p99:.2f} ms  target < {TARGET_P99_MS:.0f} ms: "
          f"{'MET' if p99 < TARGET_P99_MS else 'NOT MET'}  (client sent "
          f"{figures['half'].late} of {figures['half'].requests} requests over 1 ms late)")


def _loadavg() -> str:
    """The 1-minute load average: other work on a shared machine skews every figure."""
    return f"{os.getloadavg()[0]:.2f}"


def main(argv: list[str]) -> int:
    """Run the offers benchmark on each backend and print the figures."""
    args = parse_args(argv)
    wrk = None
    if args.client != "python":
        wrk = loadgen.ensure_wrk()
        if wrk is None and args.client == "wrk":
            print("wrk is not available", file=sys.stderr)
            return 2
    generator = (f"{loadgen.wrk_version(wrk)}, 1 thread" if wrk
                 else "Python client (closed loop)")
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    if args.only:
        if args.only == "postgresql" and not args.postgres:
            print("--only postgresql needs --postgres URL", file=sys.stderr)
            return 2
        backends = [args.only]
    all_figures = []
    for backend in backends:
        before = _loadavg()
        figures = bench_backend(backend, args, wrk)
        figures["loadavg"] = f"{before}/{_loadavg()}"
        print_table(figures, generator, args.connections)
        ratio, cpu_ratio, p99 = targets(figures)
        all_figures.append({
            **{k: v for k, v in figures.items()
               if k not in ("trivial", "offers", "half", "cold")},
            **{k: {**asdict(figures[k]), "rate": figures[k].rate, "cpu_us": figures[k].cpu_us}
               for k in ("trivial", "offers", "half", "cold")},
            "generator": generator, "ratio": ratio, "cpu_ratio": cpu_ratio, "half_p99_ms": p99})
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "offers.json"
    out.write_text(json.dumps(all_figures, indent=2))
    print(f"\nfigures saved to {out.relative_to(ROOT)}")
    return 0
