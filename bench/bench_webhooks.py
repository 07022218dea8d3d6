"""Webhook-to-contract throughput: signed Stripe events → paid orders → contracts.

    python -m bench.bench_webhooks [--orders 300] [--concurrency 8] [--postgres URL]

Prepares N pending orders, each with a real succeeded PaymentIntent on the local Stripe
stand-in, starts the app under gunicorn, then delivers one signed payment_intent.succeeded
per order (plus a duplicate of each, as Stripe retries do) from concurrent clients. Every
delivery is verified, stored, refetched from the stand-in and applied; the figure is paid
orders (and contracts) per second end to end. Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
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


def run(backend: str, url: str, orders: int, concurrency: int, stripe_url: str) -> dict:
    """Serve under gunicorn and deliver every event twice; returns the figures."""
    port = _free_port()
    env = {**os.environ, "WARRANTY_ENV": "demo", "WARRANTY_DATABASE_URL": url,
           "WARRANTY_SECRET_KEY": "demo-secret", "WARRANTY_STRIPE_API_BASE": stripe_url,
           "WARRANTY_STRIPE_API_KEY": "sk_test_bench", "WARRANTY_STRIPE_WEBHOOK_SECRET": SECRET}
    workers = str(os.cpu_count() or 2)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", workers,
         "--threads", "4", "--log-level", "warning", "warranty.wsgi:app"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/livez", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        intents = _prepare(url, orders)
        deliveries = [(pi, i) for i, pi in enumerate(intents)] * 2  # every event twice
        http = requests.Session()
        http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=concurrency))

        def deliver(item):
            body, headers = _signed(*item)
            started = time.perf_counter()
            res = http.post(f"{base}/stripe/webhook", data=body, headers=headers, timeout=30)
            return res.status_code, time.perf_counter() - started

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(deliver, deliveries))
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        contracts = conn.exec_driver_sql("SELECT count(*) FROM contract").scalar()
        paid = conn.exec_driver_sql("SELECT count(*) FROM orders WHERE status='paid'").scalar()
    engine.dispose()
    latencies = sorted(r[1] * 1000 for r in results)
    return {"backend": backend, "orders": orders, "deliveries": len(results),
            "errors": sum(1 for r in results if r[0] != 200), "paid": paid,
            "contracts": contracts, "seconds": elapsed,
            "events_per_s": len(results) / elapsed, "orders_per_s": paid / elapsed,
            "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1]}


def main(argv: list[str] | None = None) -> None:
    """Run on SQLite, and on PostgreSQL when a URL is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--postgres", default=os.environ.get("WARRANTY_BENCH_POSTGRES_URL"))
    args = parser.parse_args(argv)
    import stripe

    from devtools.stripe_standin import StripeStandin

    standin = StripeStandin()
    stripe_url = standin.start()
    stripe.api_key, stripe.api_base = "sk_test_bench", stripe_url
    rows = []
    try:
        backends = [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else [])
        for backend, pg in backends:
            with tempfile.TemporaryDirectory() as tmp:
                url, drop = _database(pg, Path(tmp))
                try:
                    rows.append(run(backend, url, args.orders, args.concurrency, stripe_url))
                finally:
                    drop()
    finally:
        standin.stop()
    print(f"\nwebhook → contract ({args.orders} orders × 2 plan units, every event delivered "
          f"twice, {args.concurrency} concurrent clients, gunicorn {os.cpu_count()} workers × "
          "4 threads)")
    print(f"{'backend':<11}{'events/s':>10}{'orders/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}{'paid':>7}{'contracts':>11}")
    for r in rows:
        print(f"{r['backend']:<11}{r['events_per_s']:>10.1f}{r['orders_per_s']:>10.1f}"
              f"{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['errors']:>8}{r['paid']:>7}"
              f"{r['contracts']:>11}")
        if r["contracts"] != 2 * r["orders"] or r["paid"] != r["orders"]:
            raise SystemExit(f"{r['backend']}: expected {2 * r['orders']} contracts exactly once")


if __name__ == "__main__":
    main()
