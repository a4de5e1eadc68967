"""Repairing mis-decoded text, value by value, without guessing.

V1 databases hold UTF-8 text that some client once read as cp1252 or Latin-1 and wrote
back ("mÃ´n há»c"), sometimes twice. A value is repaired by ftfy's `fix_encoding` (made for
exactly this; its other fixes, such as straightening quotes, are not applied), then, layer
by layer, only where the value is *exactly* the cp1252 or Latin-1 reading of valid UTF-8
bytes: a reversible, lossless step that ftfy's heuristic leaves out on short names with a
single damaged letter ("Nguyá»…n Minh Anh"). Correct Vietnamese never qualifies: its letters
(ễ, ạ, ơ, ...) are outside cp1252 and Latin-1. A value whose damage lost bytes (a letter
dropped by a conversion) cannot be restored: it is kept as it is and counted as suspect.
"""

from __future__ import annotations

from dataclasses import dataclass

import ftfy
import ftfy.bad_codecs  # noqa: F401 - registers sloppy-windows-1252, MySQL's "latin1"
from ftfy.badness import is_bad

MAX_LAYERS = 3
_CODECS = ("sloppy-windows-1252", "latin-1")


@dataclass(frozen=True)
class TextRepair:
    value: str
    repaired: bool  # the value changed
    suspect: bool  # still looks mis-decoded after repair: kept as it is, reported


_cache: dict[str, TextRepair] = {}
_UNCHANGED = None


def _strict_layer(text: str) -> str | None:
    for codec in _CODECS:
        try:
            decoded = text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if decoded != text:
            return decoded
    return None


def repair_text(value: str) -> TextRepair:
    """The value's true text where it can be known, and whether it was repaired."""
    if value.isascii():
        return TextRepair(value, False, False)
    known = _cache.get(value)
    if known is not None:
        return known
    fixed = ftfy.fix_encoding(value)
    for _ in range(MAX_LAYERS):
        layer = _strict_layer(fixed)
        if layer is None:
            break
        fixed = layer
    result = TextRepair(fixed, fixed != value, is_bad(fixed))
    if len(_cache) < 200_000:
        _cache[value] = result
    return result
