"""The pages' Jinja2 environment: templates beside this module, autoescaped, with the
filters the pages share."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote

from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def segment(value) -> str:
    """A value as one URL path segment: `course-v1:UEL+PY101+2026_S2` -> `course-v1%3AUEL%2BPY101%2B2026_S2`."""
    return quote(str(value), safe="")


def score(value) -> str:
    """A risk as people read it; no prediction yet is said, never shown as a number."""
    if value is None:
        return "not predicted yet"
    return ">99.9" if value >= 99.95 else "<0.1" if value < 0.05 else f"{value:.1f}"


def change(value) -> str:
    if value is None:
        return "no prediction a week earlier"
    if abs(value) < 0.05:
        return "no change"
    return f"{'▲ up' if value > 0 else '▼ down'} {abs(value):.1f}"


def moment(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M} UTC"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def number(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def feature_value(value) -> str:
    """A feature as stored, rounded for reading (82.4814... days -> 82.48)."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) >= 0.01 or value == 0 else f"{value:.2g}"
    return str(value)


templates.env.filters.update(segment=segment, score=score, change=change, moment=moment, number=number, feature_value=feature_value)
