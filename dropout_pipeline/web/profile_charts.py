"""The plots of an uploaded file's profile (analytics.upload.profile), as inline SVG drawn on
the server like the app's other charts (web.charts: same frame, axes, ink and contrast):
a correlation heatmap, a histogram per numeric column, and box plots by outcome.

They are drawn from the profile's numbers (bin counts, quartiles, correlations), never
from the rows, so a file of 50,000 rows costs no more to plot than one of 50.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

from dropout_pipeline.web.charts import BOTTOM, HEIGHT, INK, LEFT, RIGHT, TOP, WIDTH, _axes, _frame, _number

BAR = "#0b57d0"
GROUP_COLOURS = ("#1b6b2f", "#b00020")  # outcome 0, outcome 1: both 4.5:1 or more on white
CELL, LABEL_SPACE = 16, 250  # the heatmap's cell and the room for its column names
SLANT_SPACE = 130  # right of the cells: the last column names, slanted at 60 degrees, run past them


@dataclass(frozen=True)
class Chart:
    kind: str  # heatmap, distribution, box_plot
    column: str | None
    svg: Markup


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    return [low + (high - low) * i / count for i in range(count + 1)]


def histogram(distribution: dict) -> Markup:
    """Counts per bin of one column's known values."""
    column, edges, counts = distribution["column"], distribution["edges"], distribution["counts"]
    title = f"Distribution of {column}"
    description = f"Learners per bin of {column}, {len(counts)} bins from {_number(edges[0])} to {_number(edges[-1])}; missing values left out."
    top = max(counts) or 1
    low, high = edges[0], edges[-1]
    x_of = lambda x: LEFT + (x - low) / (high - low) * (WIDTH - LEFT - RIGHT)  # noqa: E731
    y_of = lambda y: HEIGHT - BOTTOM - y / top * (HEIGHT - TOP - BOTTOM)  # noqa: E731
    body = _axes([(x, _number(x)) for x in _ticks(low, high)], [(y, _number(round(y))) for y in _ticks(0, top, 4)], x_of, y_of, column, "learners")
    for start, end, count in zip(edges, edges[1:], counts, strict=False):
        if count:
            body.append(
                f'<rect x="{x_of(start) + 0.5:.1f}" y="{y_of(count):.1f}" width="{max(x_of(end) - x_of(start) - 1, 1):.1f}" '
                f'height="{y_of(0) - y_of(count):.1f}" fill="{BAR}"><title>{_number(start)} to {_number(end)}: {count}</title></rect>'
            )
    return _frame(title, description, body)


def box_plot(column: dict, outcome: str) -> Markup:
    """One column's quartiles and whiskers (1.5 IQR) for each outcome."""
    name, boxes = column["column"], column["boxes"]
    low = min(box["low"] for box in boxes)
    high = max(box["high"] for box in boxes)
    if high == low:
        low, high = low - 1, high + 1
    title = f"{name} by {outcome}"
    description = "; ".join(
        f"{box['group']}: {box['n']} learners, median {_number(box['median'])}, quartiles {_number(box['q1'])} to {_number(box['q3'])}, "
        f"whiskers {_number(box['low'])} to {_number(box['high'])}, {box['outliers']} beyond" for box in boxes
    )
    slot = (WIDTH - LEFT - RIGHT) / len(boxes)
    y_of = lambda y: HEIGHT - BOTTOM - (y - low) / (high - low) * (HEIGHT - TOP - BOTTOM)  # noqa: E731
    body = _axes([], [(y, _number(y)) for y in _ticks(low, high)], lambda x: x, y_of, outcome, name)
    for index, box in enumerate(boxes):
        colour, centre = GROUP_COLOURS[index % 2], LEFT + slot * (index + 0.5)
        left, width = centre - slot * 0.2, slot * 0.4
        body += [
            f'<line x1="{centre:.1f}" x2="{centre:.1f}" y1="{y_of(box["low"]):.1f}" y2="{y_of(box["high"]):.1f}" stroke="{colour}" stroke-width="2"/>',
            f'<rect x="{left:.1f}" y="{y_of(box["q3"]):.1f}" width="{width:.1f}" height="{max(y_of(box["q1"]) - y_of(box["q3"]), 1):.1f}" '
            f'fill="#ffffff" stroke="{colour}" stroke-width="3"><title>{escape(box["group"])}: quartiles {_number(box["q1"])} to {_number(box["q3"])}</title></rect>',
            f'<line x1="{left:.1f}" x2="{left + width:.1f}" y1="{y_of(box["median"]):.1f}" y2="{y_of(box["median"]):.1f}" stroke="{colour}" stroke-width="4"/>',
            f'<text x="{centre:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" font-size="12" fill="{INK}">{escape(box["group"])} (n={box["n"]})</text>',
        ]
    return _frame(title, description, body)


def _heat(value: float | None) -> str:
    """Blue for negative, red for positive, white at 0 (grey where undefined)."""
    if value is None:
        return "#d0d7de"
    strength = min(abs(value), 1.0)
    fade = lambda full: round(255 - (255 - full) * strength)  # noqa: E731
    red, green, blue = (fade(0xb0), fade(0x00), fade(0x20)) if value > 0 else (fade(0x0b), fade(0x57), fade(0xd0))
    return f"#{red:02x}{green:02x}{blue:02x}"


def heatmap(correlations: dict) -> Markup:
    """Pearson correlation of every pair of numeric columns, a cell each."""
    names, matrix = correlations["columns"], correlations["matrix"]
    width, height = LABEL_SPACE + CELL * len(names) + SLANT_SPACE, LABEL_SPACE + CELL * len(names) + RIGHT
    title = "Correlations between the file's numeric columns"
    description = f"Pearson correlation of each pair of the {len(names)} numeric columns: red positive, blue negative, white none."
    body = []
    for i, name in enumerate(names):
        y = LABEL_SPACE + i * CELL
        body.append(f'<text x="{LABEL_SPACE - 6}" y="{y + CELL - 4}" text-anchor="end" font-size="11" fill="{INK}">{escape(name)}</text>')
        x = LABEL_SPACE + i * CELL + CELL / 2
        body.append(f'<text transform="translate({x:.1f} {LABEL_SPACE - 6}) rotate(-60)" font-size="11" fill="{INK}">{escape(name)}</text>')
        for j, value in enumerate(matrix[i]):
            shown = "undefined" if value is None else f"{value:.2f}"
            body.append(f'<rect x="{LABEL_SPACE + j * CELL}" y="{y}" width="{CELL}" height="{CELL}" fill="{_heat(value)}">'
                        f"<title>{escape(name)} and {escape(names[j])}: {shown}</title></rect>")
    return Markup(
        f'<svg class="chart heatmap" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title><desc>{escape(description)}</desc>' + "".join(body) + "</svg>"
    )


def strongest_pairs(correlations: dict, count: int = 10) -> list[dict]:
    """The most correlated pairs (either sign): what the heatmap shows, as a table can say it."""
    names, matrix = correlations["columns"], correlations["matrix"]
    pairs = [{"a": names[i], "b": names[j], "r": matrix[i][j]} for i in range(len(names)) for j in range(i + 1, len(names)) if matrix[i][j] is not None]
    return sorted(pairs, key=lambda pair: -abs(pair["r"]))[:count]


def profile_charts(profile: dict) -> list[Chart]:
    """Every plot of a profile: the heatmap (two numeric columns or more), then each numeric
    column's histogram and, when the file has an outcome, its box plot by outcome."""
    charts = []
    if len(profile["correlations"]["columns"]) >= 2:
        charts.append(Chart("heatmap", None, heatmap(profile["correlations"])))
    charts += [Chart("distribution", d["column"], histogram(d)) for d in profile["distributions"] if d["counts"]]
    boxes = profile["box_plots"]
    if boxes:
        charts += [Chart("box_plot", column["column"], box_plot(column, boxes["by"])) for column in boxes["columns"]]
    return charts
