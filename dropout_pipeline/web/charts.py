"""Charts drawn on the server as inline SVG: no script, no network, nothing to vendor.

Each chart is an <svg role="img"> with a <title> and a <desc> saying what it shows; the
pages put the same numbers in a table beside it. Lines differ by dash pattern as well as
colour, and every colour has at least 4.5:1 contrast on white.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 16, 56
INK, GRID = "#1f2328", "#d0d7de"
COLOURS = {"HIGH": "#b00020", "MEDIUM": "#8a5300", "LOW": "#1b6b2f"}


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float | None]]  # (x, y); a None y leaves a gap
    colour: str
    dash: str = ""  # an SVG stroke-dasharray


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _frame(title: str, description: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title><desc>{escape(description)}</desc>'
        + "".join(body) + "</svg>"
    )


def _axes(x_ticks: Sequence[tuple[float, str]], y_ticks: Sequence[tuple[float, str]], x_of, y_of, x_label: str, y_label: str) -> list[str]:
    parts = []
    for value, text in y_ticks:
        y = y_of(value)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" fill="{INK}">{escape(text)}</text>')
    for value, text in x_ticks:
        x = x_of(value)
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" font-size="12" fill="{INK}">{escape(text)}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}" stroke="{INK}" stroke-width="1"/>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="{INK}" stroke-width="1"/>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" y="{HEIGHT - BOTTOM + 36}" text-anchor="middle" font-size="12" fill="{INK}">{escape(x_label)}</text>')
    parts.append(f'<text transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2:.1f}) rotate(-90)" text-anchor="middle" font-size="12" fill="{INK}">{escape(y_label)}</text>')
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], LEFT
    for item in series:
        y = HEIGHT - 8
        dash = f' stroke-dasharray="{item.dash}"' if item.dash else ""
        parts.append(f'<line x1="{x}" x2="{x + 24}" y1="{y - 4}" y2="{y - 4}" stroke="{item.colour}" stroke-width="3"{dash}/>')
        parts.append(f'<text x="{x + 30}" y="{y}" font-size="12" fill="{INK}">{escape(item.label)}</text>')
        x += 40 + 7 * len(item.label)
    return parts


def line_chart(
    series: Sequence[Series], title: str, description: str, x_label: str, y_label: str,
    x_range: tuple[float, float] | None = None, y_range: tuple[float, float] = (0, 100), x_format=lambda x: _number(x),
    y_ticks: Sequence[float] | None = None, diagonal: bool = False,
) -> Markup:
    """Lines over a shared x axis (weeks, versions, predicted risk), a dot per point."""
    xs = [x for item in series for x, y in item.points if y is not None]
    low_x, high_x = x_range or ((min(xs), max(xs)) if xs else (0, 1))
    if high_x == low_x:
        low_x, high_x = low_x - 1, high_x + 1
    low_y, high_y = y_range
    x_of = lambda x: LEFT + (x - low_x) / (high_x - low_x) * (WIDTH - LEFT - RIGHT)  # noqa: E731
    y_of = lambda y: HEIGHT - BOTTOM - (y - low_y) / (high_y - low_y) * (HEIGHT - TOP - BOTTOM)  # noqa: E731
    ticks_y = y_ticks if y_ticks is not None else [low_y + (high_y - low_y) * i / 5 for i in range(6)]
    ticks_x = sorted({x for x in xs}) if x_range is None and len(set(xs)) <= 20 else [low_x + (high_x - low_x) * i / 5 for i in range(6)]
    body = _axes([(x, x_format(x)) for x in ticks_x], [(y, _number(y)) for y in ticks_y], x_of, y_of, x_label, y_label)
    if diagonal:
        body.append(f'<line x1="{x_of(low_x):.1f}" y1="{y_of(low_y):.1f}" x2="{x_of(high_x):.1f}" y2="{y_of(high_y):.1f}" stroke="{GRID}" stroke-width="2" stroke-dasharray="4 4"/>')
    for item in series:
        dash = f' stroke-dasharray="{item.dash}"' if item.dash else ""
        run: list[str] = []
        segments: list[list[str]] = [run]
        for x, y in item.points:
            if y is None:
                run = []
                segments.append(run)
                continue
            run.append(f"{x_of(x):.1f},{y_of(y):.1f}")
        for segment in segments:
            if len(segment) > 1:
                body.append(f'<polyline fill="none" stroke="{item.colour}" stroke-width="3"{dash} points="{" ".join(segment)}"/>')
        for x, y in item.points:
            if y is not None:
                body.append(
                    f'<circle cx="{x_of(x):.1f}" cy="{y_of(y):.1f}" r="4" fill="{item.colour}">'
                    f"<title>{escape(item.label)}: {escape(x_format(x))}, {_number(y)}</title></circle>"
                )
    return _frame(title, description, body + _legend(series))


def stacked_bars(weeks: Sequence[dict], title: str, description: str) -> Markup:
    """Learners per risk level, one bar per course week (statistics' weeks)."""
    if not weeks:
        return Markup("")
    top = max(sum(week["risk_levels"].values()) for week in weeks) or 1
    slot = (WIDTH - LEFT - RIGHT) / len(weeks)
    y_of = lambda y: HEIGHT - BOTTOM - y / top * (HEIGHT - TOP - BOTTOM)  # noqa: E731
    body = _axes([], [(top * i / 4, _number(round(top * i / 4))) for i in range(5)], lambda x: x, y_of, "course week", "learners")
    for index, week in enumerate(weeks):
        x, base = LEFT + index * slot + slot * 0.15, 0
        for level in ("LOW", "MEDIUM", "HIGH"):
            count = week["risk_levels"][level]
            if count:
                body.append(
                    f'<rect x="{x:.1f}" y="{y_of(base + count):.1f}" width="{slot * 0.7:.1f}" height="{y_of(base) - y_of(base + count):.1f}" '
                    f'fill="{COLOURS[level]}"><title>week {week["week"]}: {count} {level}</title></rect>'
                )
                base += count
        body.append(f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" font-size="12" fill="{INK}">{week["week"]}</text>')
    legend = [Series(level, [], COLOURS[level]) for level in ("HIGH", "MEDIUM", "LOW")]
    return _frame(title, description, body + _legend(legend))
