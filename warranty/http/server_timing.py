"""Server-Timing on responses (``WARRANTY_SERVER_TIMING``): where each request's time went.

Off by default. On, every response carries ``Server-Timing: verify;dur=0.4, record;dur=1.1,
..., total;dur=9.8`` with the spans of warranty.core.timing (milliseconds of each span's own
time) and the request's total from the first hook to the last; ``python -m bench webhooks``
sums them into its breakdown. The figures say how long the service worked, nothing of the
data, but they are meant for measuring, not for a production deployment facing the internet.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g

from warranty.core import timing


def _started() -> None:
    """Measure this request's spans."""
    g.timing_started = time.perf_counter()
    g.timing_token = timing.start()


def _finished(response: Response) -> Response:
    """Write the spans measured into the response's Server-Timing header."""
    token = g.pop("timing_token", None)
    started = g.pop("timing_started", None)
    if token is not None:
        timings = timing.stop(token)
        if timings is not None and started is not None:
            response.headers["Server-Timing"] = timing.header(
                timings, time.perf_counter() - started)
    return response


def _ended(_exc: BaseException | None = None) -> None:
    """Stop measuring when no response was made (an error Flask answered on its own)."""
    token = g.pop("timing_token", None)
    if token is not None:
        timing.stop(token)


def install(app: Flask) -> None:
    """Add the Server-Timing hooks: the first ``before_request`` and the last
    ``after_request`` (Flask runs after-request hooks in reverse order of registration)."""
    app.before_request_funcs.setdefault(None, []).insert(0, _started)
    app.after_request_funcs.setdefault(None, []).insert(0, _finished)
    app.teardown_request(_ended)
