"""Load generators for the HTTP benchmarks: wrk (closed loop) and a paced Python client.

wrk is C and event-driven, so one thread of it saturates a Python server without taking a
core away from it. wrk cannot pace a run at a fixed rate (wrk2 is not packaged in Debian,
and wrk's ``delay()`` waits *after* connecting, which would park a gunicorn sync worker on
an idle socket), so fixed-rate runs use ``paced()``: an open-loop client on non-blocking
sockets that connects only when a request is due and measures latency from the moment it
was due, so a slow client or server cannot hide queueing (no coordinated omission).
"""

from __future__ import annotations

import json
import random
import selectors
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

WRK_SCRIPT = Path(__file__).with_name("paths.lua")
REQUEST_TIMEOUT = 5.0
_TO_EOF = 1 << 62  # a response without Content-Length ends when the server closes


@dataclass
class RunResult:
    """What one load run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    late: int = 0  # paced runs: requests the client sent more than 1 ms after they were due
    server_cpu_seconds: float = 0.0  # CPU the server used during the run, when measured

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        """Server CPU microseconds per request (0 when not measured)."""
        return self.server_cpu_seconds / self.requests * 1e6 if self.requests else 0.0


def combine(runs: list[RunResult]) -> RunResult:
    """Several runs of one endpoint as one: totals, the mean p50 and the worst p99."""
    return RunResult(requests=sum(r.requests for r in runs),
                     seconds=sum(r.seconds for r in runs),
                     p50_ms=sum(r.p50_ms for r in runs) / len(runs),
                     p99_ms=max(r.p99_ms for r in runs),
                     errors=sum(r.errors for r in runs), late=sum(r.late for r in runs),
                     server_cpu_seconds=sum(r.server_cpu_seconds for r in runs))


def ensure_wrk() -> str | None:
    """Path of wrk, installing Debian's package when missing and allowed; None if unavailable."""
    found = shutil.which("wrk")
    if found or not shutil.which("apt-get"):
        return found
    print("wrk is missing; trying `apt-get install -y wrk` ...", flush=True)
    try:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, timeout=180,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        print("could not install wrk; falling back to the Python client", flush=True)
        return None
    return shutil.which("wrk")


def wrk_version(wrk: str) -> str:
    """wrk's version line, e.g. ``wrk debian/4.1.0-3``."""
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].split(" [")[0]


def run_wrk(wrk: str, *, base_url: str, path: str, connections: int, seconds: float,
            sku_count: int = 0) -> RunResult:
    """Saturate ``path`` with ``connections`` closed-loop connections from one wrk thread.

    ``{sku}`` in ``path`` is replaced per request by a random ``bench_sku(i)``, i < sku_count.
    """
    prefix, _, suffix = path.partition("{sku}")
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
           "-s", str(WRK_SCRIPT), base_url, "--", prefix, suffix, str(sku_count)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}{out.stderr}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    return RunResult(requests=data["requests"], seconds=data["duration_us"] / 1e6,
                     p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000,
                     errors=sum(data["errors"].values()))


def bench_sku(index: int) -> str:
    """The sku of the benchmark catalog's product number ``index`` (same format as paths.lua)."""
    return f"BENCH-{index:06d}"


# --- the Python client ------------------------------------------------------------------


class _Exchange:
    """One GET on a connection of its own (gunicorn's sync workers close after each)."""

    __slots__ = ("sock", "since", "buf", "need")

    def __init__(self, sock: socket.socket, since: float):
        self.sock, self.since, self.buf, self.need = sock, since, b"", -1


class _Driver:
    """Non-blocking sockets on one selector: far cheaper per request than asyncio streams,
    so the client keeps its schedule on a machine whose cores the server needs."""

    def __init__(self, host: str, port: int, next_path):
        self.addr, self.next_path = (host, port), next_path
        self.host = f"{host}:{port}".encode()
        self.sel = selectors.DefaultSelector()
        self.latencies: list[float] = []
        self.errors = 0

    def start(self, since: float) -> None:
        """Open a connection for a request counted from ``since`` (perf_counter seconds)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(self.addr)
        self.sel.register(sock, selectors.EVENT_WRITE, _Exchange(sock, since))

    def _finish(self, ex: _Exchange, ok: bool) -> None:
        """Record an exchange and close its connection."""
        self.sel.unregister(ex.sock)
        ex.sock.close()
        if ok and ex.buf[9:12].isdigit() and int(ex.buf[9:12]) < 400:
            self.latencies.append(time.perf_counter() - ex.since)
        else:
            self.errors += 1

    def poll(self, timeout: float) -> int:
        """Handle ready sockets; returns how many exchanges finished."""
        finished = 0
        for key, events in self.sel.select(timeout):
            ex: _Exchange = key.data
            try:
                if events & selectors.EVENT_WRITE:
                    if ex.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        raise OSError("connect failed")
                    ex.sock.send(b"GET " + self.next_path().encode() + b" HTTP/1.1\r\nHost: "
                                 + self.host + b"\r\nConnection: close\r\n\r\n")
                    self.sel.modify(ex.sock, selectors.EVENT_READ, ex)
                    continue
                chunk = ex.sock.recv(65536)
                ex.buf += chunk
                if ex.need < 0 and b"\r\n\r\n" in ex.buf:
                    head, _, _ = ex.buf.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), None)
                    ex.need = len(head) + 4 + length if length is not None else _TO_EOF
                complete = ex.need >= 0 and len(ex.buf) >= ex.need
                if chunk and not complete:
                    continue
                self._finish(ex, ok=complete or (ex.need == _TO_EOF and not chunk))
            except OSError:
                self._finish(ex, ok=False)
            finished += 1
        return finished

    def expire(self, now: float) -> int:
        """Give up on exchanges older than the request timeout; how many were dropped."""
        old = [key.data for key in self.sel.get_map().values()
               if now - key.data.since > REQUEST_TIMEOUT]
        for ex in old:
            self._finish(ex, ok=False)
        return len(old)

    def in_flight(self) -> int:
        """Exchanges not finished yet."""
        return len(self.sel.get_map())

    def close(self) -> None:
        """Drop whatever is still open."""
        for ex in [key.data for key in self.sel.get_map().values()]:
            self._finish(ex, ok=False)
        self.sel.close()


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


def _result(driver: _Driver, seconds: float, late: int = 0) -> RunResult:
    """A RunResult from what the driver recorded (latencies in seconds)."""
    latencies = sorted(driver.latencies)
    return RunResult(requests=len(latencies), seconds=seconds,
                     p50_ms=_percentile(latencies, 50) * 1000,
                     p99_ms=_percentile(latencies, 99) * 1000, errors=driver.errors, late=late)


def _path_maker(path: str, sku_count: int, seed: int):
    """A function giving the next request path, with a random sku when ``{sku}`` is in it."""
    if "{sku}" not in path:
        return lambda: path
    rng = random.Random(seed)
    prefix, _, suffix = path.partition("{sku}")
    return lambda: prefix + bench_sku(rng.randrange(sku_count)) + suffix


def python_peak(*, host: str, port: int, path: str, connections: int, seconds: float,
                sku_count: int = 0, seed: int = 1) -> RunResult:
    """Closed-loop saturation run: ``connections`` requests always in flight (no wrk)."""
    driver = _Driver(host, port, _path_maker(path, sku_count, seed))
    started = time.perf_counter()
    stop_at = started + seconds
    for _ in range(connections):
        driver.start(time.perf_counter())
    while driver.in_flight():
        now = time.perf_counter()
        done = driver.poll(0.05) + driver.expire(now)
        for _ in range(done if now < stop_at else 0):
            driver.start(time.perf_counter())
    driver.close()
    return _result(driver, time.perf_counter() - started)


def paced(*, host: str, port: int, path: str, rate: float, seconds: float,
          sku_count: int = 0, seed: int = 2) -> RunResult:
    """Open-loop run: a request every 1/``rate`` s whatever the responses are doing, each
    timed from when it was due (a late client or a queue in the server both count)."""
    driver = _Driver(host, port, _path_maker(path, sku_count, seed))
    start = time.perf_counter() + 0.05
    total, sent, late = int(rate * seconds), 0, 0
    while sent < total or driver.in_flight():
        now = time.perf_counter()
        while sent < total and start + sent / rate <= now:
            due = start + sent / rate
            late += now - due > 0.001
            driver.start(due)
            sent += 1
        wait = max(0.0, start + sent / rate - time.perf_counter()) if sent < total else 0.05
        driver.poll(wait)
        driver.expire(time.perf_counter())
    driver.close()
    return _result(driver, time.perf_counter() - start, late)


def warm_every_sku(*, host: str, port: int, path: str, sku_count: int, connections: int,
                   rounds: int, seed: int = 3) -> RunResult:
    """Ask ``path`` for every sku below ``sku_count``, ``rounds`` times in shuffled orders,
    ``connections`` at a time (so each of several workers sees about every sku)."""
    rng = random.Random(seed)
    order: list[int] = []
    for _ in range(rounds):
        batch = list(range(sku_count))
        rng.shuffle(batch)
        order += batch
    prefix, _, suffix = path.partition("{sku}")
    paths = iter(prefix + bench_sku(i) + suffix for i in order)
    driver = _Driver(host, port, lambda: next(paths))
    left = len(order)
    started = time.perf_counter()
    for _ in range(min(connections, left)):
        driver.start(time.perf_counter())
        left -= 1
    while driver.in_flight():
        done = driver.poll(0.05) + driver.expire(time.perf_counter())
        for _ in range(min(done, left)):
            driver.start(time.perf_counter())
            left -= 1
    driver.close()
    return _result(driver, time.perf_counter() - started)


def wait_until_up(host: str, port: int, path: str, deadline_seconds: float, alive) -> None:
    """Poll ``path`` until it answers 200; ``alive()`` false means the server died."""
    stop = time.monotonic() + deadline_seconds
    while time.monotonic() < stop:
        if not alive():
            raise RuntimeError("the server exited during start-up")
        driver = _Driver(host, port, lambda: path)
        driver.start(time.perf_counter())
        while driver.in_flight():
            driver.poll(0.5)
            driver.expire(time.perf_counter())
        driver.close()
        if driver.latencies:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer {path} within {deadline_seconds:.0f} s")
