"""Iranian mobile numbers: one canonical form (09xxxxxxxxx) and the operator that issued it.

People paste numbers as 0912..., 912..., +98912..., 0098912..., with spaces or dashes, in
Persian or Arabic-Indic digits. All of them become 09121234567; anything else is an InputError
that names the number, before a single message is sent.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Iterable

from .errors import InputError
from .i18n import latin_digits

_SEPARATORS = re.compile(r"[\s\-().\u200c\u200e\u200f]")
_MOBILE = re.compile(r"9\d{9}")


def normalize(raw: str | int) -> str:
    """The number as 09xxxxxxxxx, or InputError saying what is wrong with it."""
    text = _SEPARATORS.sub("", latin_digits(str(raw)))
    national = text
    for prefix in ("+98", "0098", "98", "0"):
        if text.startswith(prefix) and len(text) - len(prefix) == 10:
            national = text[len(prefix) :]
            break
    if not _MOBILE.fullmatch(national):
        raise InputError(
            f"{raw!r} is not an Iranian mobile number: write it like 09121234567 (+98, 0098 and Persian digits are fine).",
            f"«{raw}» شماره موبایل معتبر نیست؛ مانند ۰۹۱۲۱۲۳۴۵۶۷ وارد کنید",
        )
    return "0" + national


def normalize_many(raws: Iterable[str | int]) -> tuple[list[str], list[str]]:
    """(valid numbers in order with duplicates removed, the raw inputs that are not numbers)."""
    valid: dict[str, None] = {}
    invalid = []
    for raw in raws:
        try:
            valid[normalize(raw)] = None
        except InputError:
            invalid.append(str(raw))
    return list(valid), invalid


@cache
def operator_table() -> dict:
    """The versioned prefix table (`version`, `operators`), shipped as package data."""
    return json.loads(resources.files("payamak_analytics.data").joinpath("operators.json").read_text("utf-8"))


@cache
def _prefixes() -> list[tuple[str, str]]:
    pairs = [(p, op) for op, prefixes in operator_table()["operators"].items() for p in prefixes]
    return sorted(pairs, key=lambda pair: -len(pair[0]))  # the longest prefix wins


def operator(number: str) -> str:
    """The operator that issued `number` (by prefix; ported numbers keep theirs), or "Unknown"."""
    canonical = normalize(number)
    return next((op for prefix, op in _prefixes() if canonical.startswith(prefix)), "Unknown")
