"""Fault tests: the app under gunicorn in a subprocess, killed, cut off, or left waiting."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.test_store_webhooks import hook_settings, receiver  # noqa: F401  (fixtures)
from warranty.db import get_engine

ROOT = Path(__file__).resolve().parents[2]
# Settings the subprocess reads from the environment, by field name.
PASSED = ("env", "database_url", "secret_key", "api_token", "public_key", "stripe_api_key",
          "stripe_api_base", "stripe_webhook_secret", "upload_dir", "base_url")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_env(settings, **extra: str) -> dict[str, str]:
    """The environment that gives a subprocess these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARRANTY_")}
    for name in PASSED:
        value = getattr(settings, name)
        if value is not None:
            env[f"WARRANTY_{name.upper()}"] = str(value)
    env.update(extra)
    return env


def wait_up(base: str, timeout: float = 30.0) -> None:
    """Wait until the server answers /livez."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/livez", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} did not come up within {timeout}s")


def worker_pids(master: subprocess.Popen) -> list[int]:
    """The gunicorn master's worker processes."""
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    return [int(pid) for pid in children]


@contextlib.contextmanager
def gunicorn(settings, workers: int = 1, **env: str):
    """The app under gunicorn (our gunicorn_conf) on a free port; yields (url, master)."""
    port = free_port()
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "python:warranty.gunicorn_conf",
         "--workers", str(workers), "--log-level", "warning", "warranty.wsgi:app"],
        env=settings_env(settings, WARRANTY_BIND=f"127.0.0.1:{port}", **env), cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base)
        yield base, master
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=15)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait(timeout=5)


@pytest.fixture
def postgres_only(database_url):
    """Skip unless the test database is PostgreSQL (row locks, terminating backends)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (row locks and pg_terminate_backend)")
    return get_engine(database_url)


def terminate_backends(engine: sa.Engine) -> int:
    """Kill every other connection to the test database, as a database restart does."""
    with engine.connect() as conn:
        killed = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").scalar()
        conn.commit()
    return killed


class GatedStripe:
    """A pass-through HTTP proxy in front of the Stripe stand-in that can hold requests.

    While the gate is closed, requests wait before they are forwarded: an app that fetches
    from Stripe then stops at a known point of its work. ``answered`` counts the requests
    forwarded and answered.
    """

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.gate = threading.Event()
        self.gate.set()
        self.received = 0
        self.answered = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self):
                proxy.received += 1
                proxy.gate.wait(timeout=60)
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                upstream = requests.request(self.command, proxy.upstream + self.path,
                                            headers=headers, timeout=30,
                                            data=self.rfile.read(length) if length else None)
                self.send_response(upstream.status_code)
                for key in ("Content-Type", "Request-Id", "Idempotency-Key"):
                    if key in upstream.headers:
                        self.send_header(key, upstream.headers[key])
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)
                proxy.answered += 1

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, *_args):
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> GatedStripe:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()
