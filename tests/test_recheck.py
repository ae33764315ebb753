"""The re-read schedule says the same in Python (dlt's book) and in SQL (the store and the watch)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb

from payamak_analytics import recheck
from payamak_analytics.dates import TEHRAN


def test_the_python_and_sql_forms_of_the_schedule_agree_everywhere():
    now = datetime(2026, 3, 21, 12, 0, tzinfo=TEHRAN)
    cases = [
        (now - timedelta(minutes=age), now - timedelta(minutes=since))
        for age in range(0, 7 * 24 * 60 + 120, 37)
        for since in (0, 1, 14, 15, 16, 59, 60, 61, 119, 360, 361, 2000)
        if since <= age
    ]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Tehran'")
    con.execute("CREATE TABLE b (sent_at TIMESTAMPTZ, last_checked TIMESTAMPTZ)")
    con.executemany("INSERT INTO b VALUES (?, ?)", cases)
    in_sql = con.execute(
        f"SELECT sent_at, last_checked, {recheck.due_sql('b.sent_at', 'b.last_checked', '$now')} FROM b "
        "ORDER BY sent_at DESC, last_checked DESC",
        {"now": now},
    ).fetchall()
    in_python = [recheck.due(sent_at, last, now) for sent_at, last in sorted(cases, reverse=True)]
    assert [due for _, _, due in in_sql] == in_python
    assert 0 < sum(in_python) < len(in_python)


def test_a_page_waits_longer_as_its_batch_ages_and_less_as_its_report_nears_expiry():
    sent = datetime(2026, 3, 21, 12, 0, tzinfo=TEHRAN)
    waits = {hours: recheck.wait(sent, sent + timedelta(hours=hours)) for hours in (1, 6, 12, 24, 72, 160, 167.5)}
    assert waits[1] == timedelta(0)  # every run while most statuses change
    assert waits[6] == timedelta(hours=1.5) and waits[12] == timedelta(hours=3)
    assert waits[24] == waits[72] == recheck.LONGEST_WAIT
    assert waits[160] == timedelta(hours=4) and waits[167.5] == timedelta(minutes=15)


def test_the_schedule_counts_real_time_and_distrusts_a_read_stamped_in_the_future():
    new_york = ZoneInfo("America/New_York")  # clocks went forward at 02:00 on 2026-03-08
    sent, now = datetime(2026, 3, 8, 0, 30, tzinfo=new_york), datetime(2026, 3, 8, 7, 0, tzinfo=new_york)
    assert now - sent == timedelta(hours=6, minutes=30) and now.timestamp() - sent.timestamp() == 5.5 * 3600
    assert recheck.wait(sent, now) == timedelta(0)  # 5.5 real hours old: due at every run
    assert recheck.due(sent, now - timedelta(minutes=1), now)
    stamped = now + recheck.CLOCK_SLACK + timedelta(seconds=1)
    assert recheck.due(sent, stamped, now) and not recheck.due(sent, now, now)
    con = duckdb.connect()
    ahead = con.execute(
        f"SELECT {recheck.due_sql('$sent', '$read', '$now')}, {recheck.due_sql('$sent', 'NULL', '$now')}",
        {"sent": sent, "read": stamped, "now": now},
    ).fetchone()
    assert ahead == (True, True)
