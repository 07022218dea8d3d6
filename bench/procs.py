"""Processes the benchmarks start: the Stripe stand-in in a process of its own, gunicorn from
a chosen checkout, and the CPU time each of them used.

The stand-in used to run in the benchmark's own process, on a thread beside the load
generator's: both then shared one interpreter lock, so the load generator's work was the
stand-in's latency (and capped what the service could be shown to do). In its own process
(``python -m devtools.stripe_standin --quiet``) it has its own interpreter and its CPU time
can be read apart from the service's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def children(pid: int) -> list[int]:
    """The direct children of a process (gunicorn's workers under its master)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its live children (gunicorn: master and workers)."""
    return cpu_seconds(pid) + sum(cpu_seconds(child) for child in children(pid))


class StandinProcess:
    """The Stripe stand-in in a process of its own, on a free loopback port."""

    def __init__(self, webhook_delay: float = 1.0):
        """Remember the delivery delay (seconds from an event to its webhook)."""
        self.webhook_delay = webhook_delay
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> str:
        """Start it; returns its base URL once it answers."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.stripe_standin", "--port", "0", "--quiet",
             "--webhook-delay", str(self.webhook_delay)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            raise SystemExit(f"the Stripe stand-in did not start ({self.url!r})")
        return self.url

    def register_webhook(self, id: str, url: str, secret: str) -> None:
        """Deliver every event to ``url``, signed with ``secret``."""
        request = urllib.request.Request(
            f"{self.url}/_config/webhooks/{id}", method="POST",
            data=json.dumps({"url": url, "secret": secret}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10):
            pass

    def cpu_seconds(self) -> float:
        """CPU seconds the stand-in used so far."""
        return cpu_seconds(self.process.pid) if self.process else 0.0

    def stop(self) -> None:
        """Stop it (deliveries not sent yet are dropped)."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process.stdout.close()
            self.process = None


def app_env(tree: Path | None) -> tuple[dict, Path]:
    """Environment and working directory that make a child import ``warranty`` from
    ``tree`` (another checkout, e.g. main's, for a before/after run); this one by default."""
    tree = (tree or ROOT).resolve()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return env, tree


def wait_http(url: str, seconds: float = 30) -> None:
    """Wait until ``url`` answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as res:
                if res.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")
