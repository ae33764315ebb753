"""Iranian mobile numbers: one canonical form (09xxxxxxxxx), the operator that issued it, and
whether the number plan allocates it.

People paste numbers as 0912..., 912..., +98912..., 0098912..., with spaces or dashes, in
Persian or Arabic-Indic digits. All of them become 09121234567; anything else is an InputError
that names the number, before a single message is sent. The operator and validity come from
Google's libphonenumber (the `phonenumbers` package, whose carrier data is updated monthly),
read after this normalisation. A number it calls invalid is flagged, not refused: allocations
change faster than any table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

import phonenumbers

from .errors import InputError
from .i18n import latin_digits

_SEPARATORS = re.compile(r"[\s\-().\u200c\u200e\u200f]")
_MOBILE = re.compile(r"9[0-9]{9}")  # Latin digits only: another script's would be sent as written
_CANONICAL = re.compile(r"09[0-9]{9}")


def normalize(raw: str | int) -> str:
    """The number as 09xxxxxxxxx, or InputError saying what is wrong with it."""
    text = "" if _too_long(raw) else _SEPARATORS.sub("", latin_digits(str(raw)))
    national = text
    for prefix in ("+98", "0098", "98", "0"):
        if text.startswith(prefix) and len(text) - len(prefix) == 10:
            national = text[len(prefix) :]
            break
    if not _MOBILE.fullmatch(national):
        shown = written(raw)
        raise InputError(
            f"{shown if _too_long(raw) else repr(raw)} is not an Iranian mobile number: write it like 09121234567 "
            "(+98, 0098 and Persian digits are fine).",
            f"«{shown}» شماره موبایل معتبر نیست؛ مانند ۰۹۱۲۱۲۳۴۵۶۷ وارد کنید",
        )
    return "0" + national


def _too_long(raw) -> bool:
    """A whole number no phone number is near (Python will not even write one of over 4,300 digits)."""
    return isinstance(raw, int) and raw.bit_length() > 64


def written(raw) -> str:
    """`raw` as a message shows it: a whole number too long to write out is described instead."""
    return f"a number of about {raw.bit_length() * 3 // 10:,} digits" if _too_long(raw) else str(raw)


def normalize_many(raws: Iterable[str | int]) -> tuple[list[str], list[str]]:
    """(valid numbers in order with duplicates removed, the raw inputs that are not numbers)."""
    valid: dict[str, None] = {}
    invalid = []
    for raw in raws:
        try:
            valid[normalize(raw)] = None
        except InputError:
            invalid.append(written(raw))
    return list(valid), invalid


def same_recipient(a: str | None, b: str | None) -> bool:
    """Whether two numbers of a report name one recipient however each is written (0912...,
    +98912..., Persian digits): a service may write a batch's numbers otherwise from one read to
    the next, and the same recipient is not a stranger."""
    return _recipient(a) == _recipient(b)


def _recipient(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        return normalize(raw)
    except InputError:  # not a mobile number: as written, but for digits and separators
        return _SEPARATORS.sub("", latin_digits(raw))


# libphonenumber's carrier names -> the operator keys the store keeps (labels in i18n.OPERATORS).
CARRIERS = {
    "IR-MCI": "MCI",
    "Irancell": "Irancell",
    "Rightel": "Rightel",
    "TeleKish": "TeleKish",
    "MTCE": "MTCE",
    "Aptel": "Aptel",
}


def source() -> str:
    """Where operators and validity come from, for a report's footnote."""
    return f"libphonenumber (phonenumbers {phonenumbers.__version__})"


# libphonenumber's Iranian mobile patterns and carrier prefixes look at most at the first five
# national digits, so "0" and those five decide a number's operator (a test checks every prefix).
DECIDING_PREFIX = 6


def operator(number: str) -> str:
    """The operator that issued `number` (ported numbers keep theirs), or "Unknown"."""
    return _operator_of_prefix(normalize(number)[:DECIDING_PREFIX])


def operators(numbers: Iterable[str]) -> list[str]:
    """The operator of each number, "Unknown" for anything that is not a mobile number: for
    reports read from the service, where a malformed number must not stop the read."""
    found = []
    for number in numbers:
        if isinstance(number, str) and _CANONICAL.fullmatch(number):  # as the service writes them
            found.append(_operator_of_prefix(number[:DECIDING_PREFIX]))
            continue
        try:
            found.append(operator(number))
        except InputError:
            found.append("Unknown")
    return found


@cache
def _operator_of_prefix(prefix: str) -> str:
    # imported at the first report read: the carrier data takes 9 MB, which a sync of messages
    # alone, a send or a report never needs
    from phonenumbers import carrier

    name = carrier.name_for_number(_parsed(prefix.ljust(11, "0")), "en")
    return CARRIERS.get(name, name or "Unknown")


def _parsed(canonical: str) -> phonenumbers.PhoneNumber:
    """A number already in the canonical form, as libphonenumber's object (no parsing needed)."""
    return phonenumbers.PhoneNumber(country_code=98, national_number=int(canonical[1:]))


def is_allocated(number: str) -> bool:
    """Whether libphonenumber knows `number` as a valid Iranian number (after normalisation)."""
    return phonenumbers.is_valid_number(_parsed(normalize(number)))


def unallocated(numbers: Iterable[str]) -> list[str]:
    """The numbers libphonenumber calls invalid or unallocated, in order: a warning for plans and
    widgets, never a refusal. Each is normalised first (InputError for a non-number)."""
    return [n for n in numbers if not phonenumbers.is_valid_number(_parsed(normalize(n)))]


def unallocated_note(numbers: list[str], shown: int = 10) -> str:
    """One line naming the numbers outside the number plan as libphonenumber knows it, or ""."""
    if not numbers:
        return ""
    more = f" and {len(numbers) - shown:,} more" if len(numbers) > shown else ""
    return (
        f"{len(numbers):,} number(s) are not in the number plan as libphonenumber knows it "
        f"({', '.join(numbers[:shown])}{more}): they will still be sent; check them for typos."
    )
