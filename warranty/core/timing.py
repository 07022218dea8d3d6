"""Where a request's time goes: named spans, summed per request, for a Server-Timing header.

Off unless a request turned it on (``WARRANTY_SERVER_TIMING``, warranty/http/server_timing.py):
then :func:`span` costs one context-variable read. Spans nest; each records its *own* time
(its duration less that of the spans inside it), so the figures of one request never overlap
and add up to the time spent inside spans.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token


class Timings:
    """One request's spans: seconds of own time by name, and the spans open now."""

    def __init__(self) -> None:
        """Nothing measured yet."""
        self.totals: dict[str, float] = {}
        self._open: list[list[float]] = []  # [started, seconds of the spans inside it]

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` to ``name``."""
        self.totals[name] = self.totals.get(name, 0.0) + seconds


_current: ContextVar[Timings | None] = ContextVar("warranty_timings", default=None)


def start() -> Token:
    """Begin measuring spans in this context (a request); returns what :func:`stop` takes."""
    return _current.set(Timings())


def stop(token: Token) -> Timings | None:
    """End measuring; the spans measured since :func:`start`."""
    timings = _current.get()
    _current.reset(token)
    return timings


@contextmanager
def span(name: str) -> Iterator[None]:
    """Time the block as ``name`` when this context measures; nothing otherwise."""
    timings = _current.get()
    if timings is None:
        yield
        return
    frame = [time.perf_counter(), 0.0]
    timings._open.append(frame)
    try:
        yield
    finally:
        timings._open.pop()
        elapsed = time.perf_counter() - frame[0]
        timings.add(name, elapsed - frame[1])
        if timings._open:
            timings._open[-1][1] += elapsed


def header(timings: Timings, total_seconds: float | None = None) -> str:
    """The ``Server-Timing`` value: ``name;dur=<ms>`` per span (and ``total`` when given)."""
    parts = [f"{name};dur={seconds * 1000:.3f}" for name, seconds in timings.totals.items()]
    if total_seconds is not None:
        parts.append(f"total;dur={total_seconds * 1000:.3f}")
    return ", ".join(parts)
