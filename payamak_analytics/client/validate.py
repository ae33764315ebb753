"""Input checks: everything a call sends is checked here first, so that bad input is refused
with an InputError saying what to write, and nothing leaves this machine.

Each check reads its value once (a generator is consumed once, into a list) and returns the
exact value to send.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime

from .. import phone
from .. import text as sms_text
from ..dates import TEHRAN
from ..errors import InputError
from ..i18n import latin_digits
from .columns import INT32, INT64

MAX_RECIPIENTS = 100
MAX_TEXT_PARTS = 10
MESSAGES_PAGE = 1000
DELIVERY_PAGE = 100
RECEIVED, SENT = 1, 2
MESSAGE_TYPES = {"received": RECEIVED, "in": RECEIVED, "inbox": RECEIVED, "sent": SENT, "out": SENT}
_SPLIT = re.compile(r"[,;\s]+")
_LINE = re.compile(r"[0-9]+(?:-[0-9]+)*")  # Latin digits only, after latin_digits
_ALLOWED_CONTROLS = frozenset("\n\r")
_XML_FORBIDDEN = frozenset("\ufffe\uffff")


def items(values, name: str) -> list:
    """`values` as a list, read once: a text is split on commas, semicolons and spaces; a whole number is one."""
    if isinstance(values, int) and not isinstance(values, bool):
        return [values]
    if isinstance(values, str):
        return [v for v in _SPLIT.split(values) if v]
    if isinstance(values, (bytes, bytearray, dict)) or not isinstance(values, Iterable):
        raise InputError(
            f"{name} must be a list (or a comma-separated text), not {type(values).__name__}.",
            f"{name} باید فهرست باشد",
        )
    return list(values)


def _shown(value, width: int = 60) -> str:
    """A value as an error message shows it: its repr, clipped; a number too long for Python to
    write out (over 4,300 digits) is described instead of failing the message itself."""
    if isinstance(value, int):
        return phone.written(value)
    text = repr(value)
    return text if len(text) <= width else f"{text[: width - 3]}..."


def line(value) -> str:
    """A sender line's digits: '10002188', 10002188 or '1000-2188'; never negative."""
    text = latin_digits(value).strip().replace(" ", "") if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**20:
        text = str(value)
    if text is None or not _LINE.fullmatch(text) or not 3 <= len(text.replace("-", "")) <= 20:
        raise InputError(
            f"{_shown(value)} is not a sender line: pass the line's digits, like '10002188'.",
            "شماره فرستنده معتبر نیست",
        )
    return text.replace("-", "")


def lines(values) -> dict | None:
    """Sender lines as the service's string array; None (every line) when none are given."""
    checked = [line(v) for v in items(values or (), "from_numbers")]
    return {"string": checked} if checked else None


def recipients(values) -> list[str]:
    """1..100 distinct Iranian mobile numbers, normalised; every bad one named at once."""
    raws = items(values, "to_numbers")
    if not raws:
        raise InputError("No recipients: pass at least one number.", "هیچ گیرنده ای وارد نشده است")
    if len(raws) > MAX_RECIPIENTS:
        raise InputError(
            f"{len(raws)} recipients; the service takes at most {MAX_RECIPIENTS} a call. "
            "Split the list into calls of at most 100 numbers.",
            "حداکثر ۱۰۰ گیرنده در هر ارسال",
        )
    numbers, invalid = [], []
    for raw in raws:
        try:
            numbers.append(phone.normalize(raw))
        except InputError:
            invalid.append(_shown(raw))
    if invalid:
        raise InputError(
            f"Not Iranian mobile numbers: {', '.join(invalid)}. Write them like 09121234567; nothing was sent.",
            "شماره های نامعتبر: " + "، ".join(invalid),
        )
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise InputError(
            f"These numbers appear more than once: {', '.join(duplicates)}. Nothing was sent.",
            "شماره های تکراری: " + "، ".join(duplicates),
        )
    return numbers


def message_text(value, name: str = "text") -> str:
    """A text the telecom can carry: a string, visible, no control characters or lone
    surrogates, at most MAX_TEXT_PARTS parts."""
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, not {type(value).__name__}.", "متن پیامک باید رشته باشد")
    bad = next((ch for ch in value if _unsendable(ch)), None)
    if bad is not None:
        raise InputError(
            f"{name} holds the character U+{ord(bad):04X}, which an SMS cannot carry (a control character "
            "or a broken surrogate); remove it.",
            f"متن پیامک نویسه غیرمجاز U+{ord(bad):04X} دارد",
        )
    if not any(ch.isprintable() and not ch.isspace() for ch in value):
        raise InputError(
            f"{name} is empty or invisible (only spaces or zero-width marks): write the message to send.",
            "متن پیامک خالی است",
        )
    info = sms_text.analyze(value)
    if info.parts > MAX_TEXT_PARTS:
        raise InputError(
            f"{name} takes {info.parts} parts ({info.characters} characters, {info.encoding}); "
            f"the limit here is {MAX_TEXT_PARTS}. Shorten it.",
            "متن پیامک بیش از حد طولانی است",
        )
    return value


def _unsendable(ch: str) -> bool:
    category = unicodedata.category(ch)
    return (category == "Cc" and ch not in _ALLOWED_CONTROLS) or category == "Cs" or ch in _XML_FORBIDDEN


def texts(values, count: int) -> list[str]:
    """One text per recipient, in order, each checked."""
    if isinstance(values, str):
        raise InputError("texts must be a list of texts, one per number.", "برای هر شماره یک متن لازم است")
    checked = [message_text(t, f"texts[{i}]") for i, t in enumerate(items(values, "texts"))]
    if len(checked) != count:
        raise InputError(
            f"texts must have one text per number, in the same order: {len(checked)} texts for {count} numbers.",
            "برای هر شماره یک متن لازم است",
        )
    return checked


def flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(
            f"{name} must be True or False, not {_shown(value)}.", f"مقدار {name} باید درست یا نادرست باشد"
        )
    return value


def whole(value, name: str, low: int, high: int) -> int:
    """A whole number from `low` to `high` (the contract's int or long range at most)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(
            f"{name} must be a whole number from {low} to {high}, not {_shown(value)}.", f"مقدار {name} نامعتبر است"
        )
    return value


def int_id(value, name: str) -> int:
    """An id the contract carries as an int (32 bits)."""
    return whole(value, name, 1, INT32[1])


def long_id(value, name: str) -> int:
    """An id the contract carries as a long (64 bits)."""
    return whole(value, name, 1, INT64[1])


def limit(value) -> int | None:
    """How many rows to read: None for all of them, else a whole number of 1 or more."""
    if value is None:
        return None
    return whole(value, "limit", 1, INT64[1])


def message_type(value) -> int:
    if isinstance(value, str) and value.strip().lower() in MESSAGE_TYPES:
        return MESSAGE_TYPES[value.strip().lower()]
    if value in (RECEIVED, SENT) and isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise InputError(
        f"message_type must be 'sent' (2) or 'received' (1), not {_shown(value)}.",
        "نوع پیام باید دریافتی (۱) یا ارسالی (۲) باشد",
    )


def service_time(value, name: str) -> datetime:
    """A datetime as the service reads it: Tehran wall-clock time, without an offset."""
    if not isinstance(value, datetime):
        raise InputError(f"{name} must be a datetime, not {_shown(value)}.", "تاریخ نامعتبر است")
    return value.astimezone(TEHRAN).replace(tzinfo=None) if value.tzinfo else value


def mobile(value) -> str:
    return phone.normalize(value)
