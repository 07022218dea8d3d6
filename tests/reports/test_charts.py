"""Server-drawn charts: positions in percent of the width, text escaped, zero lines."""

from __future__ import annotations

import re

from warranty.reports import charts


def test_bars_take_the_width_in_percent_and_escape_labels():
    svg = str(charts.bar_chart(["<b>1</b>", "2026-02"], {"a & b": [100, -50], "c": [None, 20]},
                               fmt=lambda v: f"{v:,.0f}"))
    assert 'width="100%"' in svg and "viewBox" not in svg
    assert "<b>" not in svg and "&lt;b&gt;1&lt;/b&gt;" in svg and "a &amp; b" in svg
    xs = [float(x) for x in re.findall(r'<rect x="([\d.]+)%"', svg)]
    assert len(xs) == 3  # three bars (one is None)
    assert all(0 <= x < 100 for x in xs)
    assert svg.count('<rect x="0" ') == 2  # the legend's swatches
    # The zero line is darker than the gridlines, and a negative bar hangs below it.
    assert svg.count('stroke="#4a5568"') == 1
    assert 'text-anchor="start"' in svg and 'text-anchor="end"' in svg  # edge labels inside


def test_horizontal_bars_and_intervals():
    svg = str(charts.hbar_chart([("x", 0.25), ("y", None)], fmt=lambda v: f"{v:.0%}"))
    assert ">25%<" in svg and ">—<" in svg
    interval = str(charts.interval_chart([("diff", 0.02, -0.01, 0.05)],
                                         fmt=lambda v: f"{v:+.2f}"))
    assert ">+0.02<" in interval and ">-0.01 – +0.05<" in interval
    assert 'stroke-dasharray' in interval  # the zero line
    empty = str(charts.interval_chart([("diff", None, None, None)]))
    assert ">—<" in empty
