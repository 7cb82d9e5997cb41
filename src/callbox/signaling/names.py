"""User names: what a name may contain, and when two names count as the same.

A name is display text: it is shown as typed. Two names in a room may not *look* alike, so
uniqueness compares a key: NFKC (fullwidth and mathematical letters fold to plain ones),
case folded, and every character mapped to one representative of its Unicode confusable
class (UTS #39 data, from the confusable-homoglyphs package), so "аlice" with a Cyrillic "а"
cannot sit beside "alice", nor "Ian" beside "lan" (see :func:`keys`).

Refused outright: control and format characters (zero-width joiners, bidi overrides),
Unicode's *default ignorable* code points (the Hangul fillers U+3164 and U+115F look like
nothing at all), the braille blank, overlay marks (U+0334-U+0338 and the like draw through
the letter before them) and more than two combining marks on one letter.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from importlib.resources import files
from typing import cast

MAX_NAME = 64
_MAX_MARKS = 2

# DerivedCoreProperties.txt, Default_Ignorable_Code_Point (Unicode 15), plus U+2800
# BRAILLE PATTERN BLANK, which renders as nothing and is used the same way.
_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


class NameProblem(ValueError):
    """Why a name is refused (one readable line)."""


def _ignorable(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in _IGNORABLE)


def clean(value: str) -> str | None:
    """The name to display: whitespace collapsed and trimmed; None when nothing is left.
    Raises :class:`NameProblem` for a name that is too long or could deceive."""
    name = " ".join(value.split())
    if not name:
        return None
    if len(name) > MAX_NAME:
        raise NameProblem(f"userName is longer than {MAX_NAME} characters")
    marks = 0
    visible = False
    for ch in name:
        category = unicodedata.category(ch)
        if category.startswith("C") or _ignorable(ch):
            raise NameProblem("userName must be printable text without invisible characters")
        if category.startswith("M"):
            marks += 1
            if unicodedata.combining(ch) == 1 or marks > _MAX_MARKS:
                raise NameProblem("userName has marks drawn over its letters")
        else:
            marks = 0
            visible = visible or not category.startswith("Z")
    if not visible:
        raise NameProblem("userName needs a letter, digit or symbol")
    return name


def prepare() -> None:
    """Build the confusables table now (a server calls this at start, so the first user to
    join does not wait for it)."""
    _representatives()


@functools.cache
def _representatives() -> dict[str, str]:
    """One character per confusable class (the smallest code point), for every character
    the confusables data pairs with another. Built once; the package's data file (5 MB of
    JSON) is read for it and not kept."""
    raw = files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    data = cast(dict[str, list[dict[str, str]]], json.loads(raw))
    del raw
    parent: dict[str, str] = {}

    def find(ch: str) -> str:
        root = ch
        while parent.get(root, root) != root:
            root = parent[root]
        while ch != root:  # path compression
            up = parent[ch]
            parent[ch] = root
            ch = up
        return root

    for source, glyphs in data.items():
        if len(source) != 1:
            continue
        for glyph in glyphs:
            target = glyph["c"].strip("\u200e")  # RTL glyphs come wrapped in LRM marks
            if len(target) == 1:
                a, b = find(source), find(target)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {ch: find(ch) for ch in list(parent)}


def _skeleton(text: str) -> str:
    table = _representatives()
    mapped = "".join(table.get(ch, ch) for ch in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", mapped)


def keys(name: str) -> tuple[str, str]:
    """What a name must differ from another name in, in both of these, to sit beside it in
    a room: the case-folded skeleton ("Bob" = "BOB" = "bоb") and the case-sensitive one
    ("Ian" = "lan", "O" = "0": capital I and small L look alike, i and l do not)."""
    plain = unicodedata.normalize("NFKC", name)
    return _skeleton(plain.casefold()), _skeleton(plain)
