"""Cells a spreadsheet would run as a formula (CSV injection): the one rule the risk list's
CSV export (which neutralises them) and the upload check (which refuses them) share."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value) -> object:
    """A cell a spreadsheet will not run: text starting with = + - @ (or a tab or carriage
    return) gets a leading apostrophe. Numbers the app computed stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
