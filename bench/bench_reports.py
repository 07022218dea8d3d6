"""Reports and exports on a synthetic store: 1,000,000 orders and 200,000 plans.

    python -m bench.bench_reports [--orders 1000000] [--plans 200000]
                                  [--backends sqlite,postgresql] [--postgres URL]
                                  [--keep DIR] [--no-xlsx] [--reports-only] [--reuse URL]

For each backend: a fresh database, ``python -m devtools.cli synth`` (bulk COPY / executemany,
timed), then each report in a child process of its own (time from the call to the last row, the
child's peak RSS and its RSS before the report), and the exports of the 1M-row orders ledger
and the movements ledger in a child process each (time and the child's peak RSS, from
``resource.getrusage(RUSAGE_CHILDREN)``). Targets: each report under 300 ms on PostgreSQL
and under 2 s on SQLite, cold (a fresh process and connection) and warm (run again); every
export under 150 MB; the orders CSV under 5 s on PostgreSQL.

The PostgreSQL database is dropped at the end unless ``--keep`` is given.
``--reuse URL`` times a store generated before (by this benchmark with ``--keep``, or by
``python -m devtools.cli synth`` with the same dates) instead of generating one: it is migrated to
the newest revision first, and nothing is dropped. Handy while tuning a report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

START = date(2023, 1, 1)
DAYS = 3 * 365
DEFAULT_PG = os.environ.get("WARRANTY_BENCH_POSTGRES_URL",
                            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REPORT_TARGET_S = {"postgresql": 0.3, "sqlite": 2.0}  # each report, cold and warm
EXPORT_TARGET_MB = 150
CSV_TARGET_S = 5.0  # the 1M-row orders CSV on PostgreSQL


def _database(backend: str, postgres: str, workdir: Path) -> str:
    """A fresh, empty database URL for the backend."""
    if backend == "sqlite":
        path = workdir / "bench_reports.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    name = "warranty_bench_reports"
    _drop(postgres, name)
    _on_server(postgres, f'CREATE DATABASE "{name}"')
    return sa.make_url(postgres).set(database=name).render_as_string(hide_password=False)


def _on_server(postgres: str, sql: str) -> None:
    """Run one statement outside any transaction (CREATE/DROP DATABASE)."""
    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(sql)
    admin.dispose()


def _drop(postgres: str, name: str) -> None:
    """Drop a benchmark database, closing whatever still holds it."""
    _on_server(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(url: str) -> dict:
    """Environment for warranty commands on ``url``."""
    return {**os.environ, "WARRANTY_ENV": "test", "WARRANTY_DATABASE_URL": url}


# Runs one command and prints its peak RSS: a fresh parent per export, so RUSAGE_CHILDREN
# measures that export alone (not the generator or an earlier export).
_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _child_export(url: str, name: str, start: date, end: date, fmt: str,
                  out: Path) -> dict:
    """Run one export in a child process: seconds, peak RSS (MB), size, rows."""
    began = time.perf_counter()
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "warranty.cli", "report", name,
         "--from", start.isoformat(), "--to", end.isoformat(), "--format", fmt, "--output",
         str(out)], env=_env(url), check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    peak_kb = int(measured.stdout.strip().splitlines()[-1])
    rows = None
    if fmt == "csv":
        with out.open("rb") as handle:
            rows = sum(1 for _ in handle) - 1
    return {"export": name, "format": fmt, "seconds": round(seconds, 1),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "size_mb": round(out.stat().st_size / 1e6, 1), "rows": rows}


def report_once(url: str, name: str, start: str, end: str) -> dict:
    """One report in this (fresh) process, twice: cold (the process's first run, on a new
    connection: nothing cached in the process or the connection) and warm (right after).
    Seconds from the call to its last row, rows, the process's resident memory before and at
    its peak (MB), and a digest of the figures (the same before and after a change that must
    not move them)."""
    from devtools.settings import demo_settings
    from warranty import reports
    from warranty.db.engine import Session, get_engine
    from warranty.reports import export

    settings = demo_settings(env="test", database_url=url)
    period = reports.parse_period(start, end)
    reports.names()  # import every report module before the clock starts
    times, digest, rows = [], None, 0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(2):
        with Session(get_engine(url)) as session:
            session.execute(sa.text("SELECT 1"))  # connected before the clock starts
            began = time.perf_counter()
            result = reports.run_report(name, reports.Context(session=session,
                                                              settings=settings, period=period))
            body = list(result.rows)
            times.append(time.perf_counter() - began)
        rows = len(body)
        result.rows = body
        text = "".join(export.json_chunks(result))
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": round(times[0], 3), "warm_seconds": round(times[1], 3), "rows": rows,
            "rss_before_mb": round(before / 1024, 1), "peak_rss_mb": round(peak / 1024, 1),
            "digest": digest}


_ONE = ("import json, sys; from bench.bench_reports import report_once; "
        "print(json.dumps(report_once(*sys.argv[1:])))")


def _time_reports(url: str) -> list[dict]:
    """Each report in a child process of its own, so that its peak memory is its own."""
    end = START + timedelta(days=DAYS - 1)
    year, whole = (end - timedelta(days=364), end), (START, end)
    cases = [("finance", year), ("finance", whole), ("journal", year), ("retention", year),
             ("retention", whole), ("conversion", year), ("attach", year), ("nps", year)]
    out = []
    for name, (first, last) in cases:
        child = subprocess.run([sys.executable, "-c", _ONE, url, name, first.isoformat(),
                                last.isoformat()], env=_env(url), check=True,
                               capture_output=True, text=True)
        figure = json.loads(child.stdout.strip().splitlines()[-1])
        target = REPORT_TARGET_S[sa.make_url(url).get_backend_name()]
        out.append({"report": name, "days": (last - first).days + 1, **figure,
                    "target_s": target,
                    "target_met": max(figure["seconds"], figure["warm_seconds"]) < target})
        print(f"  report {name:10s} {out[-1]['days']:5d} days: cold {figure['seconds']:6.3f} s, "
              f"warm {figure['warm_seconds']:6.3f} s (target {target} s), "
              f"peak RSS {figure['peak_rss_mb']} MB, figures {figure['digest']}", flush=True)
    return out


def _generate(url: str, backend: str, args) -> dict:
    """``python -m devtools.cli synth`` into the migrated database at ``url``; its figures."""
    print(f"[{backend}] generating {args.orders:,} orders, {args.plans:,} plans", flush=True)
    began = time.perf_counter()
    synth = subprocess.run([sys.executable, "-m", "devtools.cli", "synth", "--orders",
                            str(args.orders), "--plans", str(args.plans), "--start",
                            START.isoformat(), "--days", str(DAYS)], env=_env(url),
                           check=True, capture_output=True, text=True)
    figures = json.loads(synth.stdout)
    figures["wall_seconds"] = round(time.perf_counter() - began, 1)
    print(f"  synth: {figures['seconds_orders']} s for orders, "
          f"{figures['wall_seconds']} s in all", flush=True)
    return figures


def run_backend(backend: str, args, workdir: Path) -> dict:
    """Generate (or reuse), then time reports and exports, on one backend."""
    from warranty.db.engine import dispose_engines, migrate

    url = args.reuse or _database(backend, args.postgres, workdir)
    migrate(url)
    if args.reuse:
        print(f"[{backend}] reusing {sa.make_url(url).render_as_string()}", flush=True)
    figures = None if args.reuse else _generate(url, backend, args)
    result = {"backend": backend, "synth": figures, "reports": _time_reports(url),
              "exports": []}
    end = START + timedelta(days=DAYS - 1)
    formats = ["csv"] + ([] if args.no_xlsx else ["xlsx"])
    for name in () if args.reports_only else ("orders", "movements"):
        for fmt in formats:
            figure = _child_export(url, name, START, end, fmt, workdir / f"{name}.{fmt}")
            figure["target_met"] = figure["peak_rss_mb"] < EXPORT_TARGET_MB and not (
                backend == "postgresql" and (name, fmt) == ("orders", "csv")
                and figure["seconds"] >= CSV_TARGET_S)
            result["exports"].append(figure)
            print(f"  export {name} {fmt}: {figure['rows'] or ''} rows, {figure['seconds']} s, "
                  f"peak RSS {figure['peak_rss_mb']} MB, {figure['size_mb']} MB", flush=True)
    dispose_engines()
    if backend == "postgresql" and not (args.keep or args.reuse):
        _drop(args.postgres, sa.make_url(url).database)  # SQLite's file goes with workdir
    return result



def main(argv: list[str]) -> int:
    """Run the benchmark; prints figures and a JSON summary; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_reports",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--plans", type=int, default=200_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=DEFAULT_PG)
    parser.add_argument("--keep", type=Path, help="keep databases and files in this folder")
    parser.add_argument("--no-xlsx", action="store_true", help="skip the XLSX exports")
    parser.add_argument("--reports-only", action="store_true", help="skip every export")
    parser.add_argument("--reuse", metavar="URL",
                        help="time this already generated store instead (one backend)")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",")]
    if args.reuse:
        backends = [sa.make_url(args.reuse).get_backend_name()]
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = [run_backend(b, args, workdir) for b in backends]
    print(json.dumps(results, indent=2))
    missed = [r for res in results for r in res["reports"] + res["exports"]
              if not r["target_met"]]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
