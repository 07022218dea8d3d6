"""Webhook-to-contract throughput: signed Stripe events → paid orders → contracts.

    python -m bench webhooks [--orders 300] [--concurrency 8] [--postgres URL]
                             [--repeat 2] [--before ../main] [--backends sqlite,postgresql]

Prepares N pending orders, each with a real succeeded PaymentIntent on the local Stripe
stand-in (a process of its own), starts the app under gunicorn, then delivers one signed
payment_intent.succeeded per order (plus a duplicate of each, as Stripe retries do) from
concurrent clients. Every delivery is verified and stored; a new event's PaymentIntent is
fetched again from the stand-in and applied. The figure is deliveries per second end to end,
with p50/p99, and every contract, purchase mail and store webhook checked to exist exactly
once.

Where the time goes: the app runs with ``WARRANTY_SERVER_TIMING`` on, and the benchmark sums
each answer's Server-Timing spans (verify, record, stripe_fetch, transaction, contracts,
outbox, customer_facts, commit, ...; "other" is Flask, routing and the answer) per outcome.
In the same run it measures the stand-in's own ceiling for the fetch the service makes (the
same SDK call, from this process, at the same concurrency) and the CPU the app and the
stand-in used per delivery. ``--before [LABEL=]DIR`` runs another checkout's app (main's) in
the same way, alternating with this one, so both sets of figures come from one run.
Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.procs import StandinProcess, app_env, tree_cpu_seconds, wait_http

SECRET = "whsec_bench"


def _free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database(postgres: str | None, workdir: Path) -> tuple[str, callable]:
    """A fresh database URL and a function that drops it."""
    if not postgres:
        return f"sqlite:///{workdir / 'bench.db'}", lambda: None
    name = f"warranty_bench_{os.getpid()}"
    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return sa.make_url(postgres).set(database=name).render_as_string(hide_password=False), drop


def seed(url: str, tvs: dict[str, int]) -> None:
    """Migrate, load the default JPY rules and add TVs (sku → price)."""
    from warranty.catalog import services as catalog
    from warranty.db.engine import migrate, session_scope
    from warranty.pricing import rules

    migrate(url)
    with session_scope(url) as session:
        rules.save_rule_set(session=session,
                              document=rules.load_text(rules.builtin_rules("default-jpy")),
                              store_currency="jpy", created_by="bench")
        catalog.upsert_products(session=session, currency="jpy", products=[
            catalog.ProductIn(sku=sku, title=sku, category="tv", price=price)
            for sku, price in tvs.items()])


def _prepare(url: str, orders: int) -> list[str]:
    """Pending orders with one TV and one plan each, and a paid PaymentIntent per order."""
    import stripe

    from devtools.settings import demo_settings
    from warranty.catalog import services as catalog
    from warranty.db.engine import session_scope
    from warranty.offers.services import make_offers, ref_for_product
    from warranty.orders import cart as cart_mod

    settings = demo_settings(database_url=url, stripe_webhook_secret=SECRET)
    seed(url, {"TV": 120000})
    intents = []
    with session_scope(url) as session:
        product = catalog.get_product(session, "TV")
        token = make_offers(session=session, ref=ref_for_product(product), currency="jpy",
                            secret=settings.secret_key, today=__import__("datetime").date.today(),
                            ttl_seconds=3600).offers[0]["offer_token"]
        for i in range(orders):
            cart = cart_mod.CartIn(order_ref=f"B-{i}", customer_email=f"b{i}@example.com", lines=[
                {"type": "product", "line_id": "p", "sku": "TV", "quantity": 2,
                 "unit_price": 120000},
                {"type": "plan", "for_line": "p", "quantity": 2, "offer_token": token}])
            order = cart_mod.save_pending(session=session, priced=cart_mod.price_cart(
                session=session, cart=cart, settings=settings, channel="payment_intent"))
            intent = stripe.PaymentIntent.create(
                amount=order.total_amount, currency="jpy", payment_method="pm_card_visa",
                confirm=True, metadata={"order_id": order.public_id})
            order.stripe_payment_intent_id = intent.id
            intents.append(intent.id)
    return intents


def _signed(intent_id: str, index: int) -> tuple[str, dict]:
    """A signed payment_intent.succeeded delivery for one intent."""
    body = json.dumps({"id": f"evt_bench_{index}", "object": "event",
                       "type": "payment_intent.succeeded", "created": int(time.time()),
                       "data": {"object": {"id": intent_id, "object": "payment_intent"}}})
    stamp = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={stamp},v1={mac}",
                  "Content-Type": "application/json"}



def _timings(header: str) -> dict[str, float]:
    """A Server-Timing header as {name: milliseconds}."""
    spans = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";dur=")
        if name and rest:
            spans[name] = spans.get(name, 0.0) + float(rest)
    return spans


def _percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile of sorted values (nearest rank)."""
    return values[max(int(len(values) * pct / 100) - 1, 0)] if values else 0.0


def _fetch_ceiling(stripe_url: str, intents: list[str], concurrency: int) -> dict:
    """The stand-in's own rate for the service's fetch (the same SDK call, same concurrency)."""
    import stripe

    client = stripe.StripeClient("sk_test_bench", base_addresses={"api": stripe_url},
                                 http_client=stripe.RequestsClient(timeout=30))

    def one(intent_id):
        started = time.perf_counter()
        client.v1.payment_intents.retrieve(intent_id, params={"expand": ["latest_charge"]})
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = sorted(t * 1000 for t in pool.map(one, intents))
    elapsed = time.perf_counter() - started
    return {"fetch_per_s": len(intents) / elapsed, "fetch_p50_ms": statistics.median(latencies),
            "fetch_p99_ms": _percentile(latencies, 99)}


def _counts(url: str) -> dict:
    """What the run left in the database: orders paid, contracts and their notices."""
    queries = {
        "paid": "SELECT count(*) FROM orders WHERE status = 'paid'",
        "contracts": "SELECT count(*) FROM contract",
        "distinct_units": "SELECT count(*) FROM (SELECT DISTINCT plan_line_id, unit_index "
                          "FROM contract) AS units",
        "created_events": "SELECT count(*) FROM contract_event WHERE action = 'created'",
        "mails": "SELECT count(*) FROM mail_message WHERE kind = 'purchase'",
        "store_webhooks": "SELECT count(*) FROM outbound_webhook WHERE type = 'contract.created'",
        "events_processed": "SELECT count(*) FROM stripe_event WHERE processed_at IS NOT NULL",
    }
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = {name: conn.exec_driver_sql(sql).scalar() for name, sql in queries.items()}
    engine.dispose()
    return found


def run(backend: str, url: str, orders: int, concurrency: int, standin: StandinProcess,
        tree: Path | None, label: str) -> dict:
    """Serve under gunicorn and deliver every event twice; returns the figures."""
    stripe_url = standin.url
    port = _free_port()
    env, cwd = app_env(tree)
    env.update({"WARRANTY_ENV": "demo", "WARRANTY_DATABASE_URL": url,
                "WARRANTY_SECRET_KEY": "demo-secret", "WARRANTY_STRIPE_API_BASE": stripe_url,
                "WARRANTY_STRIPE_API_KEY": "sk_test_bench",
                "WARRANTY_STRIPE_WEBHOOK_SECRET": SECRET, "WARRANTY_SERVER_TIMING": "true"})
    workers = str(os.cpu_count() or 2)
    intents = _prepare(url, orders)
    log = open(Path(tempfile.gettempdir()) / f"bench-webhooks-{port}.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", workers,
         "--threads", "4", "--log-level", "warning", "warranty.wsgi:app"], env=env, cwd=cwd,
        stdout=log, stderr=subprocess.STDOUT)  # the app's INFO lines, out of the report
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/livez")
        deliveries = [(pi, i) for i, pi in enumerate(intents)] * 2  # every event twice
        http = requests.Session()
        http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=concurrency))

        def deliver(item):
            body, headers = _signed(*item)
            started = time.perf_counter()
            res = http.post(f"{base}/stripe/webhook", data=body, headers=headers, timeout=30)
            seconds = time.perf_counter() - started
            outcome = res.json().get("outcome", "error") if res.ok else f"http_{res.status_code}"
            return res.status_code, seconds, outcome, _timings(
                res.headers.get("Server-Timing", ""))

        app_cpu, standin_cpu = tree_cpu_seconds(server.pid), standin.cpu_seconds()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(deliver, deliveries))
        elapsed = time.perf_counter() - started
        app_cpu = tree_cpu_seconds(server.pid) - app_cpu
        standin_cpu = standin.cpu_seconds() - standin_cpu
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
        Path(log.name).unlink(missing_ok=True)
    fetch_cpu = standin.cpu_seconds()
    ceiling = _fetch_ceiling(stripe_url, intents, concurrency)
    fetch_cpu = standin.cpu_seconds() - fetch_cpu
    latencies = sorted(r[1] * 1000 for r in results)
    fetches = sum(1 for r in results if "stripe_fetch" in r[3])
    if not any(r[3] for r in results):  # no Server-Timing (main): every delivery fetched
        fetches = len(results)
    breakdown = {}
    for outcome in sorted({r[2] for r in results}):
        mine = [r for r in results if r[2] == outcome]
        spans: dict[str, float] = {}
        for r in mine:
            for name, ms in r[3].items():
                spans[name] = spans.get(name, 0.0) + ms
        row = {name: ms / len(mine) for name, ms in spans.items()}
        if "total" in row:
            row["other"] = row["total"] - sum(v for k, v in row.items() if k != "total")
        row["client"] = sum(r[1] for r in mine) * 1000 / len(mine)
        breakdown[outcome] = {"count": len(mine), "ms": row}
    return {"label": label, "backend": backend, "orders": orders, "deliveries": len(results),
            "errors": sum(1 for r in results if r[0] != 200), **_counts(url),
            "seconds": elapsed, "events_per_s": len(results) / elapsed,
            "orders_per_s": orders / elapsed, "p50_ms": statistics.median(latencies),
            "p99_ms": _percentile(latencies, 99), "app_cpu_ms": app_cpu * 1000 / len(results),
            "standin_cpu_ms_per_fetch": standin_cpu * 1000 / fetches if fetches else 0.0,
            "fetches": fetches, "ceiling_cpu_ms_per_fetch": fetch_cpu * 1000 / len(intents),
            **ceiling, "breakdown": breakdown}


SPAN_ORDER = ("verify", "record", "stripe_fetch", "transaction", "contracts", "outbox",
              "customer_facts", "commit", "refunds", "other", "total", "client")


def _print(rows: list[dict], args, header: bool = True) -> None:
    """The table, each run's breakdown, and the spread per checkout and backend (one run's
    line and breakdown as it ends, without the header)."""
    if not header:
        r = rows[0]
        print(f"  {r['label']} {r['backend']}: {r['events_per_s']:.1f} events/s, p99 "
              f"{r['p99_ms']:.0f} ms, app CPU {r['app_cpu_ms']:.2f} ms/delivery, stand-in "
              f"{r['standin_cpu_ms_per_fetch']:.2f} ms/fetch, ceiling {r['fetch_per_s']:.0f} "
              f"fetches/s, load {os.getloadavg()[0]:.1f}", flush=True)
        for outcome, part in r["breakdown"].items():
            print(f"    {outcome} ×{part['count']}: " + "  ".join(
                f"{n} {part['ms'][n]:.2f}" for n in SPAN_ORDER if n in part["ms"]), flush=True)
        return
    print(f"\nwebhook → contract ({args.orders} orders × 2 plan units, every event delivered "
          f"twice, {args.concurrency} concurrent clients, gunicorn {os.cpu_count()} workers × "
          f"4 threads, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    print(f"{'run':<8}{'backend':<11}{'events/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
          f"{'paid':>6}{'contr.':>7}{'app CPU ms/ev':>14}{'stand-in ms/fetch':>18}"
          f"{'ceiling fetch/s':>16}{'p50/p99 ms':>12}")
    for r in rows:
        print(f"{r['label']:<8}{r['backend']:<11}{r['events_per_s']:>9.1f}{r['p50_ms']:>8.1f}"
              f"{r['p99_ms']:>8.1f}{r['errors']:>7}{r['paid']:>6}{r['contracts']:>7}"
              f"{r['app_cpu_ms']:>14.2f}{r['standin_cpu_ms_per_fetch']:>18.2f}"
              f"{r['fetch_per_s']:>16.0f}{r['fetch_p50_ms']:>6.1f}/{r['fetch_p99_ms']:<5.1f}")
    print("\nwhere one delivery's time goes (mean ms per delivery, Server-Timing spans of own "
          "time; `other` = Flask, routing, hooks and the answer; `client` = as the sender saw "
          "it)")
    for r in rows:
        for outcome, part in r["breakdown"].items():
            ms = part["ms"]
            if set(ms) == {"client"}:
                spans = "no Server-Timing from this checkout"
            else:
                spans = "  ".join(f"{name} {ms[name]:.2f}" for name in SPAN_ORDER if name in ms)
            print(f"  {r['label']:<7}{r['backend']:<11}{outcome:<10}×{part['count']:<5}{spans}")
    print("\nspread of events/s over the repeats")
    for key in sorted({(r["label"], r["backend"]) for r in rows}):
        rates = [r["events_per_s"] for r in rows if (r["label"], r["backend"]) == key]
        p99s = [r["p99_ms"] for r in rows if (r["label"], r["backend"]) == key]
        print(f"  {key[0]:<8}{key[1]:<11}events/s {min(rates):.1f}–{max(rates):.1f} "
              f"(median {statistics.median(rates):.1f}), p99 {min(p99s):.0f}–{max(p99s):.0f} ms")


def _tree(spec: str) -> tuple[str, Path]:
    """``label=dir`` or ``dir`` (labelled "before") for --before."""
    label, _, path = spec.rpartition("=")
    return label or "before", Path(path)


def main(argv: list[str] | None = None) -> int:
    """Run on SQLite, and on PostgreSQL when a URL is given; before and after when asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--postgres", default=os.environ.get("WARRANTY_BENCH_POSTGRES_URL"))
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated; postgresql only with --postgres")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (spread)")
    parser.add_argument("--before", action="append", default=[], metavar="[LABEL=]DIR",
                        help="another checkout (e.g. main's) whose app runs too, alternating "
                             "with this one; repeatable")
    args = parser.parse_args(argv)
    import stripe

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up servers and databases
    wanted = args.backends.split(",")
    backends = [(b, None) for b in wanted if b == "sqlite"] + (
        [("postgresql", args.postgres)] if args.postgres and "postgresql" in wanted else [])
    trees = [_tree(spec) for spec in args.before] + [("after", None)]
    rows = []
    for _ in range(args.repeat):
        for backend, pg in backends:
            for label, tree in trees:
                standin = StandinProcess()
                stripe.api_key, stripe.api_base = "sk_test_bench", standin.start()
                try:
                    with tempfile.TemporaryDirectory() as tmp:
                        url, drop = _database(pg, Path(tmp))
                        try:
                            rows.append(run(backend, url, args.orders, args.concurrency,
                                            standin, tree, label))
                        finally:
                            drop()
                finally:
                    standin.stop()
                _print([rows[-1]], args, header=False)
    _print(rows, args)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"webhooks-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps(rows, indent=2))
    status = 0
    for r in rows:
        n = r["orders"]
        expected = {"paid": n, "contracts": 2 * n, "distinct_units": 2 * n,
                    "created_events": 2 * n, "mails": n, "store_webhooks": 2 * n,
                    "events_processed": n}
        wrong = {k: (r[k], v) for k, v in expected.items() if r[k] != v}
        if wrong or r["errors"]:
            print(f"{r['label']} {r['backend']}: not exactly once: {wrong}, "
                  f"{r['errors']} errors", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
