"""Tehran time, and moments as people write them.

The service writes local times without an offset (Tehran time), and an Iranian analyst types
dates in the Jalali calendar. Every `since` / `until` in the toolkit (sync, reports, Python API,
command line) goes through `moment()`, so they all accept the same forms.
"""

from __future__ import annotations

import re
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import jdatetime

from .errors import InputError
from .i18n import latin_digits

TEHRAN = ZoneInfo("Asia/Tehran")

ACCEPTED_FORMS = (
    "a date (2025-03-21), a datetime with or without an offset (2025-03-21T08:30, "
    "2025-03-21T08:30+03:30; without one it is Tehran time), a Jalali date (1404-01-01), "
    "or a relative form (today, yesterday, now, 7d, 12h, 30m, 7 days ago; in Persian امروز, دیروز, ۷ روز پیش)"
)
# a span back from now, as typed in English or Persian: 7d, 7 days, 7 days ago, ۷ روز, ۷ روز پیش
_UNITS = {
    **dict.fromkeys(("d", "day", "days", "روز"), "days"),
    **dict.fromkeys(("h", "hour", "hours", "ساعت"), "hours"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes", "دقیقه"), "minutes"),
}
_RELATIVE = re.compile(rf"(\d+)\s*({'|'.join(sorted(_UNITS, key=len, reverse=True))})(?:\s+(?:ago|پیش|قبل))?")
_MONTHS_OR_MINUTES = re.compile(r"\d+\s*M")  # "1M": a month to many, a minute to `m`; neither is guessed
_PERSIAN_NAMES = {"اکنون": "now", "الان": "now", "امروز": "today", "دیروز": "yesterday"}
# Arabic keyboards type these letters for Persian's yeh and keheh; a half-space or tatweel is not a
# letter, nor are the direction marks a text copied from a right-to-left page carries, unseen
_PERSIAN_LETTERS = str.maketrans(
    {"ي": "ی", "ى": "ی", "ك": "ک", "\u200c": " ", "\u0640": None}
    | dict.fromkeys(map(ord, "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
)
# a date (month and day with or without their zero: 1404/1/1 as often as 1404-01-01), then
# perhaps a time (its hour too: 8:30 as often as 08:30) and whatever follows it as ISO 8601 writes it
_DATE = re.compile(r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})(?:(?P<at>[t ])(?P<hour>\d{1,2})(?P<rest>.*))?")
_JALALI_YEARS = range(1300, 1500)  # a year in this range is Jalali: no send predates 1921 or is after 2121


def moment(value, *, now: datetime | None = None) -> datetime:
    """`value` as an aware Tehran datetime; InputError listing the accepted forms otherwise.

    A date means its first moment in Tehran. `now` is the clock for relative forms.
    """
    now = (now or datetime.now(TEHRAN)).astimezone(TEHRAN)
    pandas = sys.modules.get("pandas")  # a pandas time exists only where pandas was imported (not in `payamak sync`)
    if pandas is not None and isinstance(value, pandas.Timestamp):
        value = value.to_pydatetime()
    if pandas is not None and value is pandas.NaT:  # "not a time": a datetime and a date to isinstance, but no moment
        raise _unread(value)
    if isinstance(value, datetime):
        try:
            return value.astimezone(TEHRAN) if value.tzinfo else value.replace(tzinfo=TEHRAN)
        except OverflowError:  # its offset carries it past year 1 or 9999 in Tehran
            raise _unread(value) from None
    if isinstance(value, jdatetime.date):
        value = value.togregorian()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=TEHRAN)
    if isinstance(value, str) and _MONTHS_OR_MINUTES.fullmatch(value.strip()):
        raise InputError(
            f"{value!r}: M is minutes here, and months are read by no relative form. Write 30m for minutes, "
            "or a date for months back (1404-01-01, 2025-03-21).",
            "M دقیقه است یا ماه؟ برای دقیقه 30m و برای ماه تاریخ بنویسید",
        )
    if isinstance(value, str):
        found = _from_text(" ".join(latin_digits(value).translate(_PERSIAN_LETTERS).lower().split()), now)
        if found is not None:
            return found
    raise _unread(value)


def _unread(value) -> InputError:
    return InputError(
        f"{value!r} is not a moment this toolkit reads. Write {ACCEPTED_FORMS}.",
        "تاریخ خوانا نیست؛ مانند ۱۴۰۴-۰۱-۰۱ یا 2025-03-21 یا امروز یا ۷ روز پیش بنویسید",
    )


def _from_text(text: str, now: datetime) -> datetime | None:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    named = {"now": now, "today": midnight, "yesterday": midnight - timedelta(days=1)}
    text = _PERSIAN_NAMES.get(text, text)
    if text in named:
        return named[text]
    relative = _RELATIVE.fullmatch(text)
    if relative:
        try:
            return now - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        except (OverflowError, ValueError):  # a span past the calendar's first day, or past what int() reads
            return None
    dated = _DATE.fullmatch(text.replace("/", "-"))
    if not dated:
        return None
    try:
        day = _day(int(dated["year"]), int(dated["month"]), int(dated["day"]))
        time_of_day = f"T{int(dated['hour']):02d}{dated['rest'].upper()}" if dated["at"] else ""
        parsed = datetime.fromisoformat(f"{day.isoformat()}{time_of_day}")
        return parsed.astimezone(TEHRAN) if parsed.tzinfo else parsed.replace(tzinfo=TEHRAN)
    except (ValueError, OverflowError):  # no such day or time; an offset that carries it past year 1 or 9999
        return None


def _day(year: int, month: int, day: int) -> date:
    """The Gregorian day of a written date, read in the Jalali calendar when its year is one.

    The Jalali day is read as such before any Gregorian check: Ordibehesht 31 (1404-02-31) is
    a day, though February has no 31st."""
    if year in _JALALI_YEARS:
        return jdatetime.date(year, month, day).togregorian()
    return date(year, month, day)


def window(since=None, until=None, *, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """(since, until) read with `moment`; refuses a window that ends before it starts."""
    start = None if since is None else moment(since, now=now)
    end = None if until is None else moment(until, now=now)
    if start is not None and end is not None and end <= start:
        raise InputError(
            f"The window ends ({end:%Y-%m-%d %H:%M}) before it starts ({start:%Y-%m-%d %H:%M}): swap since and until.",
            "پایان بازه پیش از آغاز آن است",
        )
    return start, end
