"""Inline SVG charts (no scripts, no fonts to fetch): rates with 95% intervals against a number, and
stacked outcome bars. Every text is escaped; the SVG lives inside the page, so it works from ``file://``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

#: Series colours (colour-blind friendly, Okabe–Ito), in order.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
#: Outcome colours: success green, then the failure outcomes.
OUTCOME_COLOURS = {
    "success": "#2e9d55",
    "timeout": "#9aa0a6",
    "never_picked_up": "#e69f00",
    "dropped_during_transport": "#d55e00",
    "missed_goal": "#cc79a7",
    "contract_violation": "#7b3294",
}


def outcome_colour(name: str, index: int) -> str:
    return OUTCOME_COLOURS.get(name, PALETTE[index % len(PALETTE)])


@dataclass(frozen=True)
class Point:
    x: float
    rate: float
    low: float
    high: float
    #: what the point's tooltip says
    label: str


@dataclass(frozen=True)
class _PlotArea:
    """Where the plot sits in the SVG (pixels) and the x range it shows, in ``transform``'s units."""

    left: float
    top: float
    width: float
    height: float
    low_x: float
    high_x: float
    transform: Callable[[float], float]

    def px(self, v: float) -> float:
        return self.left + (self.transform(v) - self.low_x) / (self.high_x - self.low_x) * self.width

    def py(self, rate: float) -> float:
        return self.top + (1 - rate) * self.height


def interval_chart(
    series: Sequence[tuple[str, Sequence[Point]]],
    x_title: str,
    y_title: str = "success (%) with 95% interval",
    log_x: bool = False,
    x_labels: dict[float, str] | None = None,
    width: int = 720,
    height: int = 300,
) -> str:
    """Each series' rates joined by a line, each point with its interval as a vertical bar. With
    ``x_labels`` the x axis is categories (the labels at those positions), and no line joins the points."""
    left, right, top, bottom = 56, 150 if len(series) > 1 else 20, 16, 44
    xs = [p.x for _, points in series for p in points]
    if not xs:
        return '<p class="muted">No scored checkpoints yet.</p>'
    transform = (lambda v: math.log2(max(v, 1e-9))) if log_x else (lambda v: float(v))
    low_x, high_x = min(map(transform, xs)), max(map(transform, xs))
    if high_x == low_x:
        low_x, high_x = low_x - 1, high_x + 1
    if x_labels:  # categories: half a step of room at each end
        low_x, high_x = low_x - 0.5, high_x + 0.5
    area = _PlotArea(left, top, width - left - right, height - top - bottom, low_x, high_x, transform)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(y_title)} against {escape(x_title)}">',
        *_interval_axes(area, xs, x_labels, x_title, y_title, height),
    ]
    for index, (name, points) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        parts.extend(_interval_series(area, points, colour, joined=not x_labels))
        if len(series) > 1:
            y = top + 14 + 18 * index
            parts.append(
                f'<rect x="{width - right + 12}" y="{y - 9}" width="12" height="12" fill="{colour}"/>'
                f'<text x="{width - right + 30}" y="{y + 1}">{escape(_short(name))}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _interval_axes(
    area: _PlotArea,
    xs: Sequence[float],
    x_labels: dict[float, str] | None,
    x_title: str,
    y_title: str,
    chart_height: int,
) -> list[str]:
    """Grid lines and labels every 25%, up to 12 x ticks (numbers, or the category labels), both titles."""
    left, top, plot_w, plot_h = area.left, area.top, area.width, area.height
    parts = []
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = area.py(tick)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{100 * tick:.0f}</text>')
    ticks = sorted(set(xs))
    if len(ticks) > 12:
        ticks = ticks[:: math.ceil(len(ticks) / 12)]
    for tick in ticks:
        text = _short(x_labels.get(tick, ""), 18) if x_labels else _number(tick)
        x = area.px(tick)
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{escape(text)}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{chart_height - 6}" text-anchor="middle">'
        f"{escape(x_title)}</text>"
    )
    parts.append(
        f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_title)}</text>"
    )
    return parts


def _interval_series(area: _PlotArea, points: Sequence[Point], colour: str, joined: bool) -> list[str]:
    """One series: its points in x order, joined by a line when ``joined`` and there are several."""
    px, py = area.px, area.py
    ordered = sorted(points, key=lambda p: p.x)
    parts = []
    if len(ordered) > 1 and joined:
        path = " ".join(f"{px(p.x):.1f},{py(p.rate):.1f}" for p in ordered)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for p in ordered:
        x = px(p.x)
        parts.append(
            f'<g class="point"><title>{escape(p.label)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{py(p.low):.1f}" y2="{py(p.high):.1f}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<line x1="{x - 5:.1f}" x2="{x + 5:.1f}" y1="{py(p.low):.1f}" y2="{py(p.low):.1f}" '
            f'stroke="{colour}"/><line x1="{x - 5:.1f}" x2="{x + 5:.1f}" y1="{py(p.high):.1f}" '
            f'y2="{py(p.high):.1f}" stroke="{colour}"/>'
            f'<circle cx="{x:.1f}" cy="{py(p.rate):.1f}" r="4" fill="{colour}"/></g>'
        )
    return parts


def outcome_bars(rows: Sequence[tuple[str, dict[str, int]]], width: int = 720) -> str:
    """One stacked bar per checkpoint: its episodes by outcome, with a legend."""
    names: list[str] = []
    for _, counts in rows:
        names.extend(name for name, count in counts.items() if count and name not in names)
    if "success" in names:
        names.insert(0, names.pop(names.index("success")))
    label_w, bar_h, gap = 170, 20, 8
    height = 30 + len(rows) * (bar_h + gap)
    plot_w = width - label_w - 60
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        'aria-label="episodes by outcome per checkpoint">'
    ]
    x = label_w
    for index, name in enumerate(names):
        parts.append(
            f'<rect x="{x}" y="4" width="10" height="10" fill="{outcome_colour(name, index)}"/>'
            f'<text x="{x + 14}" y="13">{escape(name)}</text>'
        )
        x += 22 + 7 * len(name)
    for row, (checkpoint, counts) in enumerate(rows):
        total = sum(counts.values()) or 1
        y = 26 + row * (bar_h + gap)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{escape(_short(checkpoint))}</text>'
        )
        x = float(label_w)
        for index, name in enumerate(names):
            count = counts.get(name, 0)
            if not count:
                continue
            w = plot_w * count / total
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                f'fill="{outcome_colour(name, index)}"><title>{escape(checkpoint)}: {escape(name)} '
                f"{count}/{total}</title></rect>"
            )
            if w > 18:
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 14}" text-anchor="middle" class="on-bar">'
                    f"{count}</text>"
                )
            x += w
        parts.append(f'<text x="{label_w + plot_w + 6}" y="{y + 14}">{total}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
