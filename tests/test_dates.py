"""Dates as people write them: every form `dates.moment` promises, and nothing else."""

from datetime import datetime, timedelta, timezone

import pytest

from payamak_analytics.dates import TEHRAN, moment
from payamak_analytics.errors import InputError


@pytest.mark.parametrize(
    "written, day",
    [
        ("1404-02-31", "2025-05-21"),  # Ordibehesht 31: February has no 31st
        ("1404-04-30", "2025-07-21"),
        ("1404-04-31", "2025-07-22"),  # Tir 31: April has no 31st
        ("1404-06-31", "2025-09-22"),  # Shahrivar 31: June has no 31st
        ("1405-02-29", "2026-05-19"),  # 1405 is no Gregorian leap year
        ("1403-12-30", "2025-03-20"),  # the Jalali leap day
        ("۱۴۰۴-۰۲-۳۱", "2025-05-21"),
        ("1404/1/1", "2025-03-21"),  # month and day without their zero, as often written
        ("2025-3-9", "2025-03-09"),
    ],
)
def test_every_jalali_day_is_read_whatever_gregorian_month_shares_its_number(written, day):
    assert moment(written) == datetime.fromisoformat(day).replace(tzinfo=TEHRAN)


def test_a_jalali_day_keeps_its_time_and_offset():
    assert moment("1404/02/31 08:30") == datetime(2025, 5, 21, 8, 30, tzinfo=TEHRAN)
    assert moment("1404-02-31T08:30+00:00") == datetime(2025, 5, 21, 12, 0, tzinfo=TEHRAN)
    assert moment("1404/2/31 8:30") == moment("2025-05-21 8:30") == datetime(2025, 5, 21, 8, 30, tzinfo=TEHRAN)


@pytest.mark.parametrize(
    "written",
    [
        "1404-12-30",  # 1404 has no leap day
        "1404-13-01",
        "2025-02-29",
        "2025-03-21T",
        "2025-03-21x",
        "2025-03-21T25:00",
        "9999-12-31T23:59-05:00",  # past year 9999 in Tehran
        "0001-01-01T00:00+05:00",  # before year 1 in Tehran
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
    ],
)
def test_a_day_that_is_not_or_a_moment_past_the_calendar_is_an_input_error(written):
    with pytest.raises(InputError, match="Jalali"):
        moment(written)


NOW = datetime(2026, 11, 27, 8, 30, tzinfo=TEHRAN)
MIDNIGHT = datetime(2026, 11, 27, tzinfo=TEHRAN)


@pytest.mark.parametrize(
    "written, expected",
    [
        ("امروز", MIDNIGHT),
        ("دیروز", MIDNIGHT - timedelta(days=1)),
        ("ديروز", MIDNIGHT - timedelta(days=1)),  # typed with the Arabic yeh
        ("الان", NOW),
        ("۷ روز پیش", NOW - timedelta(days=7)),
        ("۷ روز\u200cپیش", NOW - timedelta(days=7)),  # a half-space between the words
        ("\u200f۷ روز پیش", NOW - timedelta(days=7)),  # copied from a right-to-left page: its mark, unseen
        ("\u202bامروز\u202c", MIDNIGHT),
        ("۱۲ ساعت قبل", NOW - timedelta(hours=12)),
        ("۳۰ دقیقه", NOW - timedelta(minutes=30)),
        ("7 days ago", NOW - timedelta(days=7)),
        ("1 Day", NOW - timedelta(days=1)),
        ("12 hours", NOW - timedelta(hours=12)),
        ("7d", NOW - timedelta(days=7)),
        (" Yesterday ", MIDNIGHT - timedelta(days=1)),
    ],
)
def test_relative_forms_in_english_and_persian(written, expected):
    assert moment(written, now=NOW) == expected


@pytest.mark.parametrize("written", ["7 ago", "7 dayss", "-7d", "1.5d", "2w", "پیش", "۷ هفته"])
def test_a_relative_form_not_promised_is_an_input_error(written):
    with pytest.raises(InputError, match="7 days ago"):
        moment(written, now=NOW)


@pytest.mark.parametrize("written", ["1M", "3 M"])
def test_a_capital_m_is_neither_minutes_nor_months_but_an_input_error(written):
    """`1M` reads as a month to many and as a minute to the lower-case form: read as minutes, a
    sync or a report meant to reach a month back reached one minute back, and said nothing."""
    with pytest.raises(InputError, match="30m for minutes"):
        moment(written, now=NOW)
    assert moment("30m", now=NOW) == NOW - timedelta(minutes=30)
