"""Charts drawn on the server as inline SVG: no script, no third-party host."""

from __future__ import annotations

from markupsafe import Markup, escape

COLORS = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5"]


def bar_chart(labels: list[str], series: dict[str, list[int | float]], *, title: str,
              width: int = 720, height: int = 260) -> Markup:
    """Grouped bars, one group per label, one bar per series; negative values go below 0."""
    left, bottom, top = 70, 40, 30
    plot_w, plot_h = width - left - 10, height - bottom - top
    values = [v for vs in series.values() for v in vs] or [0]
    high, low = max(0, *values), min(0, *values)
    span = (high - low) or 1
    zero_y = top + plot_h * high / span
    group_w = plot_w / max(1, len(labels))
    bar_w = max(1.0, group_w * 0.8 / max(1, len(series)))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}">',
             f"<title>{escape(title)}</title>",
             f'<text x="{left}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{left}" y1="{zero_y:.1f}" x2="{width - 10}" y2="{zero_y:.1f}" '
             'stroke="#444"/>',
             f'<text x="{left - 6}" y="{top + 4}" font-size="10" text-anchor="end">'
             f"{high:,}</text>",
             f'<text x="{left - 6}" y="{zero_y + 4:.1f}" font-size="10" text-anchor="end">0'
             "</text>"]
    for i, label in enumerate(labels):
        x0 = left + i * group_w + group_w * 0.1
        for j, (name, vs) in enumerate(series.items()):
            value = vs[i]
            bar_h = plot_h * abs(value) / span
            y = zero_y - bar_h if value >= 0 else zero_y
            parts.append(f'<rect x="{x0 + j * bar_w:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                         f'height="{bar_h:.1f}" fill="{COLORS[j % len(COLORS)]}">'
                         f"<title>{escape(name)} {escape(label)}: {value:,}</title></rect>")
        if len(labels) <= 24 or i % max(1, len(labels) // 12) == 0:
            parts.append(f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 14}" '
                         f'font-size="10" text-anchor="middle">{escape(label)}</text>')
    for j, name in enumerate(series):
        x = left + j * 150
        parts.append(f'<rect x="{x}" y="{height - 16}" width="10" height="10" '
                     f'fill="{COLORS[j % len(COLORS)]}"/>'
                     f'<text x="{x + 14}" y="{height - 7}" font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
