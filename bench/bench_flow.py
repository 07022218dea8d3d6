"""The whole purchase flow under load: offers → checkout → payment → webhook → contract.

    python -m bench flow [--shoppers 32] [--purchases 300] [--postgres URL]
                         [--webhook-delay 0.05] [--client-procs 2] [--repeat 2]
                         [--before [LABEL=]DIR]

Concurrent simulated shoppers against gunicorn and PostgreSQL, first with one app process,
then with two. Each shopper asks for offers, opens a Checkout Session, pays it on the
local Stripe stand-in's hosted page, and waits until the stand-in's signed webhooks reached
the app and the contract exists. Reports purchases per second, p50/p99 of each step and of
the whole flow, errors, and the CPU the app, the stand-in and the shoppers used. Rate limits
are off (every shopper comes from 127.0.0.1). Loopback only; bounded in time.

The stand-in runs in a process of its own and waits ``--webhook-delay`` seconds before each
delivery (localstripe waits one second: with it, a second of every flow was the stand-in's
sleep, which hid how the service's own cost scales). The shoppers run in ``--client-procs``
processes, so the load generator's interpreter lock is not what caps the rate.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.bench_webhooks import _database, _free_port, _tree, seed
from bench.procs import StandinProcess, app_env, tree_cpu_seconds, wait_http

SECRET = "whsec_bench_flow"
TOKEN = "bench-admin-token-0123456789"
KEY = "pk_bench"
PRODUCTS = 20


def _serve(url: str, stripe_url: str, workers: int,
           tree: Path | None) -> tuple[subprocess.Popen, str]:
    """gunicorn with ``workers`` app processes; returns it and its base URL once it answers."""
    port = _free_port()
    env, cwd = app_env(tree)
    env.update({"WARRANTY_ENV": "demo", "WARRANTY_DATABASE_URL": url,
                "WARRANTY_SECRET_KEY": "bench-secret-key-0123456789", "WARRANTY_API_TOKEN": TOKEN,
                "WARRANTY_PUBLIC_KEY": KEY, "WARRANTY_STRIPE_API_BASE": stripe_url,
                "WARRANTY_STRIPE_API_KEY": "sk_test_bench",
                "WARRANTY_STRIPE_WEBHOOK_SECRET": SECRET,
                "WARRANTY_RATE_LIMITS_ENABLED": "false", "WARRANTY_BIND": f"127.0.0.1:{port}",
                "WARRANTY_ALLOWED_ORIGINS": "https://shop.example",
                "WARRANTY_WORKERS": str(workers), "WARRANTY_THREADS": "4"})
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # gunicorn_conf makes a fresh one per server
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config",
                               "python:warranty.gunicorn_conf", "--log-level", "warning",
                               "warranty.wsgi:app"], env=env, cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/livez")
    except SystemExit:
        server.terminate()
        raise
    return server, base


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


def _shoppers(base: str, numbers: list[int], threads: int) -> tuple[list, float]:
    """Shop once per number with ``threads`` concurrent shoppers (one client process);
    returns each purchase's step times (or its error, as text) and this process's CPU."""
    http = requests.Session()
    http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=threads))

    def one(n: int):
        try:
            return _shop(base, http, n)
        except Exception as exc:  # counted and reported, never hidden
            return repr(exc)[:300]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(one, numbers))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return results, usage.ru_utime + usage.ru_stime


def run(url: str, workers: int, shoppers: int, purchases: int, delay: float,
        client_procs: int, tree: Path | None, label: str, offset: int) -> dict:
    """Serve with ``workers`` processes and let ``shoppers`` buy ``purchases`` times."""
    standin = StandinProcess(webhook_delay=delay)
    stripe_url = standin.start()
    server = None
    try:
        server, base = _serve(url, stripe_url, workers, tree)
        standin.register_webhook("bench", f"{base}/stripe/webhook", SECRET)
        numbers = [offset + n for n in range(purchases)]
        parts = [numbers[i::client_procs] for i in range(client_procs)]
        per_proc = max(shoppers // client_procs, 1)
        app_cpu, standin_cpu = tree_cpu_seconds(server.pid), standin.cpu_seconds()
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=client_procs) as pool:
            answers = list(pool.map(_shoppers, [base] * client_procs, parts,
                                    [per_proc] * client_procs))
        elapsed = time.perf_counter() - started
        app_cpu = tree_cpu_seconds(server.pid) - app_cpu
        standin_cpu = standin.cpu_seconds() - standin_cpu
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        standin.stop()
    results = [r for part, _cpu in answers for r in part]
    client_cpu = sum(cpu for _part, cpu in answers)
    done = [r for r in results if isinstance(r, dict)]
    errors = [r for r in results if not isinstance(r, dict)]
    row = {"label": label, "workers": workers, "purchases": len(done), "errors": len(errors),
           "per_s": len(done) / elapsed, "seconds": elapsed,
           "first_error": errors[0] if errors else "",
           "app_cpu_per_s": app_cpu / elapsed, "standin_cpu_per_s": standin_cpu / elapsed,
           "client_cpu_per_s": client_cpu / elapsed,
           "app_cpu_ms": app_cpu * 1000 / max(len(done), 1)}
    for step in ("offers", "checkout", "payment", "webhook_to_contract", "flow"):
        values = sorted(r[step] * 1000 for r in done) or [0.0]
        row[f"{step}_p50"] = statistics.median(values)
        row[f"{step}_p99"] = values[max(int(len(values) * 0.99) - 1, 0)]
    return row


def main(argv: list[str] | None = None) -> int:
    """Run with one app process, then two, on a fresh PostgreSQL database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=32)
    parser.add_argument("--purchases", type=int, default=300)
    parser.add_argument("--postgres", default=os.environ.get(
        "WARRANTY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--webhook-delay", type=float, default=0.05,
                        help="seconds the stand-in waits before each webhook delivery "
                             "(localstripe's own is 1)")
    parser.add_argument("--client-procs", type=int, default=2,
                        help="processes the shoppers run in (threads split among them)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (spread)")
    parser.add_argument("--before", action="append", default=[], metavar="[LABEL=]DIR",
                        help="another checkout (e.g. main's) whose app runs too; repeatable")
    args = parser.parse_args(argv)
    import stripe

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up servers and databases
    stripe.api_key = "sk_test_bench"
    trees = [_tree(spec) for spec in args.before] + [("after", None)]
    rows = []
    offset = 0
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = _database(args.postgres, Path(tmp))
        try:
            seed(url, {f"TV-{i}": 100000 + 1000 * i for i in range(PRODUCTS)})
            for _ in range(args.repeat):
                for label, tree in trees:
                    for workers in (1, 2):
                        offset += 100000  # order refs of their own per run
                        rows.append(run(url, workers, args.shoppers, args.purchases,
                                        args.webhook_delay, args.client_procs, tree, label,
                                        offset))
                        r = rows[-1]
                        print(f"  {label} {workers} proc: {r['per_s']:.1f} purchases/s, "
                              f"{r['errors']} errors", flush=True)
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                contracts = conn.exec_driver_sql("SELECT count(*) FROM contract").scalar()
                paid = conn.exec_driver_sql(
                    "SELECT count(*) FROM orders WHERE status = 'paid'").scalar()
                mails = conn.exec_driver_sql(
                    "SELECT count(*) FROM mail_message WHERE kind = 'purchase'").scalar()
            engine.dispose()
        finally:
            drop()
    print(f"\npurchase flow on PostgreSQL: {args.shoppers} concurrent shoppers in "
          f"{args.client_procs} processes, {args.purchases} purchases per run, gunicorn app "
          f"processes × 4 threads, stand-in webhook delay {args.webhook_delay} s, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'run':<8}{'procs':<6}{'buys/s':>8}{'errors':>8}{'flow p50':>10}{'flow p99':>10}"
          f"{'offers p50/p99':>16}{'checkout p50/p99':>18}{'pay p50/p99':>14}"
          f"{'webhook→contract p50/p99':>26}  (ms)   CPU used (cores) app/stand-in/shoppers")
    for r in rows:
        print(f"{r['label']:<8}{r['workers']:<6}{r['per_s']:>8.1f}{r['errors']:>8}"
              f"{r['flow_p50']:>10.0f}{r['flow_p99']:>10.0f}{r['offers_p50']:>8.0f}/"
              f"{r['offers_p99']:<7.0f}{r['checkout_p50']:>9.0f}/{r['checkout_p99']:<8.0f}"
              f"{r['payment_p50']:>7.0f}/{r['payment_p99']:<6.0f}"
              f"{r['webhook_to_contract_p50']:>13.0f}/{r['webhook_to_contract_p99']:<12.0f}"
              f"       {r['app_cpu_per_s']:.2f}/{r['standin_cpu_per_s']:.2f}/"
              f"{r['client_cpu_per_s']:.2f} (app {r['app_cpu_ms']:.1f} ms/purchase)")
        if r["first_error"]:
            print(f"  first error: {r['first_error']}")
    print("\ntwo processes / one, per pair of runs")
    for label, _tree_dir in trees:
        mine = [r for r in rows if r["label"] == label]
        ratios = [two["per_s"] / one["per_s"] for one, two in zip(mine[::2], mine[1::2],
                                                                    strict=True)
                  if one["per_s"]]
        if ratios:
            print(f"  {label:<8}" + ", ".join(f"{x:.2f}×" for x in ratios)
                  + f"  (spread {min(ratios):.2f}–{max(ratios):.2f})")
    expected = sum(r["purchases"] for r in rows)
    print(f"paid orders {paid}, contracts {contracts}, purchase mails {mails} "
          f"(expected {expected} each)")
    if paid != expected or contracts != expected or mails != expected:
        print("every completed purchase must have exactly one contract", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
