"""Fault tests: the app under gunicorn in a subprocess, killed, cut off, or left waiting."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import POLL_SECONDS
from tests.notify.test_store_webhooks import hook_settings, receiver  # noqa: F401  (fixtures)
from warranty.db.engine import get_engine

ROOT = Path(__file__).resolve().parents[2]
# Settings the subprocess reads from the environment, by field name.
PASSED = ("env", "database_url", "secret_key", "api_token", "public_key", "stripe_api_key",
          "stripe_api_base", "stripe_webhook_secret", "upload_dir", "base_url", "smtp_port",
          "store_webhook_url", "store_webhook_secret", "retry_base_seconds",
          "worker_interval_seconds", "rate_limits_enabled", "ratelimit_storage_uri",
          "allowed_origins")


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


@contextlib.contextmanager
def worker_process(settings, **env: str):
    """``warranty worker`` in a process of its own; stopped as an operator would (SIGTERM)."""
    process = subprocess.Popen([str(Path(sys.executable).with_name("warranty")), "worker"],
                               env=settings_env(settings, **env), cwd=ROOT,
                               stdout=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)  # it finishes the pass it is in
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def postgres_only(database_url):
    """Skip the SQLite pass: the test needs PostgreSQL (terminating backends, several
    processes on one server); it runs in the PostgreSQL pass (WARRANTY_TEST_POSTGRES_URL)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: runs in the PostgreSQL pass (set "
                    "WARRANTY_TEST_POSTGRES_URL)")
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
    forwarded and answered. ``delay`` makes every request that much slower (a slow Stripe).
    """

    def __init__(self, upstream: str, delay: float = 0.0):
        self.upstream = upstream.rstrip("/")
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self.received = 0
        self.answered = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self):
                proxy.received += 1
                proxy.gate.wait(timeout=60)
                time.sleep(proxy.delay)
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
        threading.Thread(target=self._server.serve_forever, args=(POLL_SECONDS,),
                         daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries installed (Debian's layout), if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda path: int(Path(path).parts[-3]) if
                   Path(path).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found and Path(found[-1]).with_name("initdb").exists() \
        else None


class PrivatePostgres:
    """A PostgreSQL server of the test's own, in a temporary directory on a free port.

    It may be stopped (as a crash would: ``-m immediate``) and started again; the shared
    server on 5432 is never touched. As root, the server runs as the ``postgres`` user, the
    only one PostgreSQL agrees to run as.
    """

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="warranty-pg-"))
        self.data = self.home / "data"
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.home, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            # fsync off: a stopped (killed) server loses nothing the OS already holds, and
            # this machine does not crash under the test.
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.home}'\nfsync = off\n")
        self.starts = 0

    def _run(self, tool: str, *args: str) -> None:
        """Run one of the server's tools as its owner; fail with its output."""
        done = subprocess.run([*self.as_owner, str(self.bindir / tool), *args],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{tool} failed: {done.stdout}{done.stderr}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.home / "server.log"),
                  "-w", "-t", "60", "start")
        self.starts += 1

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; ``immediate`` drops every connection at once, like a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        """Whether the server is up."""
        return subprocess.run([*self.as_owner, str(self.bindir / "pg_ctl"), "-D",
                               str(self.data), "status"], capture_output=True).returncode == 0

    def new_database(self) -> str:
        """A new, empty database on this server; returns its SQLAlchemy URL."""
        name = f"warranty_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT",
                                 poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, database: str) -> str:
        """The URL of one of the server's databases."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        """Stop the server if it runs and delete its files."""
        if self.running():
            self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="module")
def private_postgres():
    """A PostgreSQL server the test may restart (skipped only without the server binaries)."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("needs PostgreSQL's server binaries (initdb, pg_ctl) under "
                    "/usr/lib/postgresql/*/bin: apt-get install postgresql")
    server = PrivatePostgres(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()
