"""Slow clients under the shipped gunicorn configuration: connections that trickle their
request a byte at a time do not stall everyone else."""

from __future__ import annotations

import socket
import threading
import time

import requests

from tests.faults.conftest import gunicorn

TRICKLERS = 4


def _trickle(port: int, stop: threading.Event) -> None:
    """A client that sends a request's headers, then its body one byte every 0.3 s."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n")
        for _ in range(200):
            if stop.wait(0.3):
                return
            sock.sendall(b" ")


def test_trickling_connections_do_not_stall_other_callers(settings):
    with gunicorn(settings, workers=2) as (base, _master):
        port = int(base.rsplit(":", 1)[1])
        stop = threading.Event()
        clients = [threading.Thread(target=_trickle, args=(port, stop), daemon=True)
                   for _ in range(TRICKLERS)]
        for client in clients:
            client.start()
        try:
            time.sleep(1.0)  # every trickler is connected and has a worker's attention
            for _ in range(5):
                started = time.monotonic()
                res = requests.get(f"{base}/livez", timeout=5)
                assert res.status_code == 200
                assert time.monotonic() - started < 2.0
            health = requests.get(f"{base}/healthz", timeout=5)
            assert health.json()["database"] == "ok"
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=5)
