"""The whole purchase flow under load: offers → checkout → payment → webhook → contract.

    python -m bench.bench_flow [--shoppers 16] [--purchases 200] [--postgres URL]

Concurrent simulated shoppers against gunicorn and PostgreSQL, first with one app process,
then with two. Each shopper asks for offers, opens a Checkout Session, pays it on the
local Stripe stand-in's hosted page (in this process), and waits until the stand-in's signed
payment_intent.succeeded webhook reached the app and the contract exists. Reports purchases
per second, p50/p99 of each step and of the whole flow, and errors. Rate limits are off
(every shopper comes from 127.0.0.1). Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.bench_webhooks import _database, _free_port, seed

SECRET = "whsec_bench_flow"
TOKEN = "bench-admin-token-0123456789"
KEY = "pk_bench"
PRODUCTS = 20


def _serve(url: str, stripe_url: str, workers: int) -> tuple[subprocess.Popen, str]:
    """gunicorn with ``workers`` app processes; returns it and its base URL once it answers."""
    port = _free_port()
    env = {**os.environ, "WARRANTY_ENV": "demo", "WARRANTY_DATABASE_URL": url,
           "WARRANTY_SECRET_KEY": "bench-secret-key-0123456789", "WARRANTY_API_TOKEN": TOKEN,
           "WARRANTY_PUBLIC_KEY": KEY, "WARRANTY_STRIPE_API_BASE": stripe_url,
           "WARRANTY_STRIPE_API_KEY": "sk_test_bench", "WARRANTY_STRIPE_WEBHOOK_SECRET": SECRET,
           "WARRANTY_RATE_LIMITS_ENABLED": "false", "WARRANTY_BIND": f"127.0.0.1:{port}",
           "WARRANTY_ALLOWED_ORIGINS": "https://shop.example",
           "WARRANTY_WORKERS": str(workers), "WARRANTY_THREADS": "4"}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config",
                               "python:warranty.gunicorn_conf", "--log-level", "warning",
                               "warranty.wsgi:app"], env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/livez", timeout=1).ok:
                return server, base
        except requests.RequestException:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not start")


def _shop(base: str, http: requests.Session, n: int) -> dict:
    """One shopper's purchase, timed step by step; raises on any failure."""
    store = {"X-Warranty-Key": KEY}
    sku, price = f"TV-{n % PRODUCTS}", 100000 + 1000 * (n % PRODUCTS)
    times = {}
    started = time.perf_counter()
    res = http.get(f"{base}/api/v1/offers", params={"sku": sku}, headers=store, timeout=30)
    res.raise_for_status()
    token = res.json()["offers"][0]["offer_token"]
    times["offers"] = time.perf_counter() - started
    mark = time.perf_counter()
    res = http.post(f"{base}/api/v1/checkout/sessions", headers=store, timeout=30, json={
        "order_ref": f"F-{n}", "customer_email": f"shopper{n}@example.com",
        "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no",
        "lines": [
            {"type": "product", "line_id": "p", "sku": sku, "quantity": 1, "unit_price": price},
            {"type": "plan", "for_line": "p", "quantity": 1, "offer_token": token}]})
    res.raise_for_status()
    order_id, pay_url = res.json()["order_id"], res.json()["checkout_url"]
    times["checkout"] = time.perf_counter() - mark
    mark = time.perf_counter()
    # The shopper on Stripe's hosted page: load it, pay with a test card.
    http.get(pay_url, timeout=30).raise_for_status()
    paid = http.post(pay_url, data={"payment_method": "pm_card_visa"}, allow_redirects=False,
                     timeout=30)
    if paid.status_code != 303:
        raise RuntimeError(f"payment page answered {paid.status_code}")
    times["payment"] = time.perf_counter() - mark
    mark = time.perf_counter()
    deadline = time.monotonic() + 60
    while True:  # the stand-in's webhook makes the contract
        res = http.get(f"{base}/api/v1/contracts", params={"order": order_id}, timeout=30,
                       headers={"Authorization": f"Bearer {TOKEN}"})
        res.raise_for_status()
        if res.json()["items"]:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"no contract for {order_id} within 60 s")
        time.sleep(0.05)
    times["webhook_to_contract"] = time.perf_counter() - mark
    times["flow"] = time.perf_counter() - started
    return times


def run(url: str, workers: int, shoppers: int, purchases: int, standin) -> dict:
    """Serve with ``workers`` processes and let ``shoppers`` buy ``purchases`` times."""
    server, base = _serve(url, standin.url, workers)
    standin.register_webhook(f"bench-{workers}", f"{base}/stripe/webhook", SECRET)
    http = requests.Session()
    http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=shoppers))
    offset = workers * 100000  # order refs of their own per run

    def one(n: int):
        try:
            return _shop(base, http, offset + n)
        except Exception as exc:  # counted and reported, never hidden
            return exc

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=shoppers) as pool:
            results = list(pool.map(one, range(purchases)))
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=15)
        standin.reset()
    done = [r for r in results if isinstance(r, dict)]
    errors = [r for r in results if not isinstance(r, dict)]
    row = {"workers": workers, "purchases": len(done), "errors": len(errors),
           "per_s": len(done) / elapsed, "seconds": elapsed,
           "first_error": repr(errors[0])[:200] if errors else ""}
    for step in ("offers", "checkout", "payment", "webhook_to_contract", "flow"):
        values = sorted(r[step] * 1000 for r in done) or [0.0]
        row[f"{step}_p50"] = statistics.median(values)
        row[f"{step}_p99"] = values[max(int(len(values) * 0.99) - 1, 0)]
    return row


def main(argv: list[str] | None = None) -> None:
    """Run with one app process, then two, on a fresh PostgreSQL database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=16)
    parser.add_argument("--purchases", type=int, default=200)
    parser.add_argument("--postgres", default=os.environ.get(
        "WARRANTY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args(argv)
    import stripe

    from devtools.stripe_standin import StripeStandin

    standin = StripeStandin()
    stripe.api_key, stripe.api_base = "sk_test_bench", standin.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url, drop = _database(args.postgres, Path(tmp))
            try:
                seed(url, {f"TV-{i}": 100000 + 1000 * i for i in range(PRODUCTS)})
                for workers in (1, 2):
                    rows.append(run(url, workers, args.shoppers, args.purchases, standin))
                engine = sa.create_engine(url)
                with engine.connect() as conn:
                    contracts = conn.exec_driver_sql("SELECT count(*) FROM contract").scalar()
                    paid = conn.exec_driver_sql(
                        "SELECT count(*) FROM orders WHERE status = 'paid'").scalar()
                engine.dispose()
            finally:
                drop()
    finally:
        standin.stop()
    print(f"\npurchase flow on PostgreSQL: {args.shoppers} concurrent shoppers, "
          f"{args.purchases} purchases per run, gunicorn app processes × 4 threads, "
          f"{os.cpu_count()} CPUs")
    print(f"{'procs':<6}{'buys/s':>8}{'errors':>8}{'flow p50':>10}{'flow p99':>10}"
          f"{'offers p50/p99':>16}{'checkout p50/p99':>18}{'pay p50/p99':>14}"
          f"{'webhook→contract p50/p99':>26}  (ms)")
    for r in rows:
        print(f"{r['workers']:<6}{r['per_s']:>8.1f}{r['errors']:>8}{r['flow_p50']:>10.0f}"
              f"{r['flow_p99']:>10.0f}{r['offers_p50']:>8.0f}/{r['offers_p99']:<7.0f}"
              f"{r['checkout_p50']:>9.0f}/{r['checkout_p99']:<8.0f}"
              f"{r['payment_p50']:>7.0f}/{r['payment_p99']:<6.0f}"
              f"{r['webhook_to_contract_p50']:>13.0f}/{r['webhook_to_contract_p99']:<12.0f}")
        if r["first_error"]:
            print(f"  first error: {r['first_error']}")
    if len(rows) == 2 and rows[0]["per_s"]:
        print(f"two processes / one: {rows[1]['per_s'] / rows[0]['per_s']:.2f}×")
    expected = sum(r["purchases"] for r in rows)
    print(f"paid orders {paid}, contracts {contracts} (expected {expected} each)")
    if paid != expected or contracts != expected:
        raise SystemExit("every completed purchase must have exactly one contract")


if __name__ == "__main__":
    main()
