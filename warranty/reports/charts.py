"""Charts drawn on the server as inline SVG: no script, no third-party host.

Every chart takes the page's width: the SVG is ``width="100%"`` with no ``viewBox``, and its
horizontal positions are percentages, so nothing is scaled and its text stays at the page's
text size (the stylesheet's ``.chart text``) on a phone and on a desktop alike. Heights are
fixed pixels. Where labels would crowd a narrow screen the stylesheet hides every other one
(classes ``x-odd``, ``x-not4``). The title is the page's ``<figcaption>`` and each chart sits
next to the table of its figures, which is what a screen reader reads (the SVG is
``aria-hidden``).

``fmt`` turns a value into its text (money, a percentage, a count); values are whatever the
report gave (minor units, rates, points), never rounded here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from markupsafe import Markup, escape

COLORS = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#c53030"]
Fmt = Callable[[float], str]
TEXT = 'fill="#1a202c"'
HALO = 'stroke="#fff" stroke-width="4" paint-order="stroke"'  # text readable over bars


def _plain(value: float) -> str:
    """Default value text: a number with thousands separators."""
    return f"{value:,}"


def _nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 × 10^n) giving about ``ticks`` gridlines over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _domain(values: list[float]) -> tuple[float, float, float]:
    """(low, high, step): a range holding 0 and every value, on round gridlines."""
    low, high = min(0.0, *values), max(0.0, *values)
    if low == high:
        high = 1.0
    step = _nice_step(high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _svg(height: int, body: list[str]) -> Markup:
    """The SVG element around ``body``."""
    return Markup(f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="100%" '
                  f'height="{height}" aria-hidden="true" focusable="false">'
                  + "".join(body) + "</svg>")


def _legend(series: list[str], y: int) -> tuple[list[str], int]:
    """One line per series (swatch and name) from ``y``; returns the parts and the next y."""
    parts = []
    for j, name in enumerate(series):
        parts.append(f'<rect x="0" y="{y - 12}" width="14" height="14" '
                     f'fill="{COLORS[j % len(COLORS)]}"/>'
                     f'<text x="22" y="{y}" {TEXT}>{escape(name)}</text>')
        y += 22
    return parts, y


def bar_chart(labels: list[str], series: dict[str, list[float | int | None]], *,
              fmt: Fmt = _plain, height: int = 300) -> Markup:
    """Grouped vertical bars: one group per label (months, windows), one bar per series;
    negative values go below the zero line. ``None`` draws no bar."""
    names = list(series)
    legend, top = _legend(names, 18) if len(names) > 1 else ([], 0)
    top += 22  # room for the highest gridline's label
    bottom = 30  # the x labels
    values = [float(v) for vs in series.values() for v in vs if v is not None] or [0.0]
    low, high, step = _domain(values)
    plot_h = height - top - bottom
    y_of = lambda v: top + plot_h * (high - v) / (high - low)  # noqa: E731
    parts = list(legend)
    count = max(1, len(labels))
    group = 100.0 / count
    bar = group * 0.8 / max(1, len(names))
    for i, label in enumerate(labels):
        x0 = i * group + group * 0.1
        for j, name in enumerate(names):
            value = series[name][i]
            if value is None:
                continue
            y1, y2 = sorted((y_of(0), y_of(float(value))))
            parts.append(f'<rect x="{x0 + j * bar:.3f}%" y="{y1:.1f}" width="{bar * 0.92:.3f}%" '
                         f'height="{max(y2 - y1, 0.5):.1f}" fill="{COLORS[j % len(COLORS)]}">'
                         f"<title>{escape(name)}, {escape(label)}: {escape(fmt(value))}</title>"
                         "</rect>")
    # Gridlines and their labels over the bars (with a halo), then the x labels.
    tick = low
    while tick <= high + step / 2:
        y = y_of(tick)
        parts.append(f'<line x1="0" x2="100%" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{"#4a5568" if tick == 0 else "#cbd5e0"}" stroke-width="1"/>'
                     f'<text x="2" y="{y - 5:.1f}" {TEXT} {HALO}>{escape(fmt(tick))}</text>')
        tick += step
    every = max(1, math.ceil(count / 12))
    for i, label in enumerate(labels):
        if i % every:
            continue
        shown = i // every
        classes = " ".join(c for c, hide in (("x-odd", shown % 2 == 1),
                                              ("x-not4", shown % 4 != 0)) if hide)
        # The first and last labels keep inside the chart's edges.
        x, anchor = (i + 0.5) * group, "middle"
        if i == 0 and count > 1:
            x, anchor = 0.0, "start"
        elif i == count - 1 and count > 1:
            x, anchor = 100.0, "end"
        parts.append(f'<text class="{classes}" x="{x:.3f}%" y="{height - 8}" '
                     f'text-anchor="{anchor}" {TEXT}>{escape(label)}</text>')
    return _svg(height, parts)


def hbar_chart(rows: list[tuple[str, float | int | None]], *, fmt: Fmt = _plain,
               series: list[str] | None = None,
               values: list[list[float | int | None]] | None = None) -> Markup:
    """Horizontal bars, one row per label (its name on a line above its bar, the value at the
    bar's end): categories, placements, arms. With ``series`` and ``values`` (one list per
    row), each row has one bar per series."""
    names = series or [""]
    per_row = values or [[value] for _, value in rows]
    flat = [float(v) for vs in per_row for v in vs if v is not None] or [0.0]
    low, high, _ = _domain(flat)
    width = 80.0  # percent of the width the longest bar takes; the rest holds its text
    x_of = lambda v: width * (v - low) / (high - low)  # noqa: E731
    parts, y = _legend(names, 18) if series and len(names) > 1 else ([], 0)
    bar_h, gap = 18, 6
    for (label, _), vs in zip(rows, per_row, strict=True):
        y += 22
        parts.append(f'<text x="0" y="{y}" {TEXT}>{escape(label)}</text>')
        y += 6
        for j, value in enumerate(vs):
            if value is not None:
                x1, x2 = sorted((x_of(0), x_of(float(value))))
                parts.append(f'<rect x="{x1:.3f}%" y="{y}" width="{max(x2 - x1, 0.2):.3f}%" '
                             f'height="{bar_h}" fill="{COLORS[j % len(COLORS)]}">'
                             f"<title>{escape(label)} {escape(names[j])}: "
                             f"{escape(fmt(value))}</title></rect>")
                text_x = x_of(max(float(value), 0.0)) + 1
            else:
                text_x = x_of(0) + 1
            parts.append(f'<text x="{text_x:.3f}%" y="{y + bar_h - 4}" {TEXT}>'
                         f'{escape("—" if value is None else fmt(value))}</text>')
            y += bar_h + 2
        y += gap
    if low < 0:
        parts.append(f'<line x1="{x_of(0):.3f}%" x2="{x_of(0):.3f}%" y1="0" y2="{y}" '
                     'stroke="#4a5568" stroke-width="1"/>')
    return _svg(y + 4, parts)


def interval_chart(rows: list[tuple[str, float | None, float | None, float | None]], *,
                   fmt: Fmt = _plain, interval_label: str = "95%:") -> Markup:
    """Estimates with their confidence intervals against a dashed zero line: one row per
    (label, estimate, low, high). An interval that does not cross zero is a difference the
    data shows at that confidence."""
    known = [v for _, *vs in rows for v in vs if v is not None]
    low, high, step = _domain([float(v) for v in known] or [0.0])
    pad = (high - low) * 0.05
    low, high = low - pad, high + pad
    x_of = lambda v: 4 + 92 * (float(v) - low) / (high - low)  # noqa: E731
    parts, y = [], 0
    for label, estimate, lo, hi in rows:
        y += 22
        parts.append(f'<text x="0" y="{y}" {TEXT}>{escape(label)}</text>')
        y += 22
        if estimate is None or lo is None or hi is None:
            parts.append(f'<text x="0" y="{y}" {TEXT}>—</text>')
            y += 10
            continue
        # The estimate, then its interval's name and ends, each on a line of its own: each
        # fits a phone's width.
        parts.append(f'<text x="0" y="{y}" {TEXT} font-weight="bold">'
                     f'{escape(fmt(estimate))}</text>')
        y += 22
        parts.append(f'<text x="0" y="{y}" {TEXT}>{escape(interval_label)}</text>')
        y += 22
        parts.append(f'<text x="0" y="{y}" {TEXT}>{escape(fmt(lo))} – {escape(fmt(hi))}</text>')
        y += 22
        zero = x_of(0)
        parts.append(f'<line x1="{zero:.3f}%" x2="{zero:.3f}%" y1="{y - 14}" y2="{y + 14}" '
                     'stroke="#4a5568" stroke-width="1.5" stroke-dasharray="3 3"/>'
                     f'<line x1="{x_of(lo):.3f}%" x2="{x_of(hi):.3f}%" y1="{y}" y2="{y}" '
                     f'stroke="{COLORS[0]}" stroke-width="4"/>'
                     f'<circle cx="{x_of(estimate):.3f}%" cy="{y}" r="7" fill="{COLORS[1]}">'
                     f"<title>{escape(label)}: {escape(fmt(estimate))} ({escape(fmt(lo))} – "
                     f"{escape(fmt(hi))})</title></circle>"
                     f'<text x="{zero:.3f}%" y="{y + 30}" {TEXT} text-anchor='
                     f'"{"start" if zero < 15 else "end" if zero > 85 else "middle"}">0</text>')
        y += 34
    return _svg(y + 6, parts)
