"""Request spans: off unless started, own time per name, nested spans not counted twice."""

from __future__ import annotations

import time

from warranty.core import timing


def test_spans_measure_nothing_unless_a_request_started_them():
    with timing.span("verify"):
        pass
    token = timing.start()
    assert timing.stop(token).totals == {}


def test_a_span_counts_its_own_time_and_nested_spans_are_not_counted_twice():
    token = timing.start()
    started = time.perf_counter()
    with timing.span("outer"):
        time.sleep(0.02)
        with timing.span("inner"):
            time.sleep(0.03)
    with timing.span("inner"):
        time.sleep(0.01)
    wall = time.perf_counter() - started
    spans = timing.stop(token)
    assert spans.totals["outer"] >= 0.02 and spans.totals["inner"] >= 0.04
    # Own times: together no more than the time that passed (the inner 30 ms are not
    # counted to the outer span as well).
    assert spans.totals["outer"] + spans.totals["inner"] <= wall
    value = timing.header(spans, 0.1)
    assert set(value.split(", ")) == {f"inner;dur={spans.totals['inner'] * 1000:.3f}",
                                      f"outer;dur={spans.totals['outer'] * 1000:.3f}",
                                      "total;dur=100.000"}
