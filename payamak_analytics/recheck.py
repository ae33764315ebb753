"""When a delivery report page is asked again: one rule for the store's sync, the watch and dlt's book.

The service keeps a batch's report for REPORT_WINDOW (seven days). A recipient still in flight
may change status until then, and some never do (no report comes back from the telecom): asked
at every run, a week of them would cost thousands of calls a run. So a page with a recipient in
flight waits between two reads:
- nothing while its batch is younger than EVERY_RUN (when most statuses change, and the time to
  a final status is measured);
- after that a quarter of the batch's age, at most LONGEST_WAIT, and at most half the time its
  report has left, so a day-old batch is read four times a day and one in its last hours at
  nearly every run.

A read stamped more than CLOCK_SLACK after `now` (a clock that was ahead, then set right) is
not trusted: the page is due. The rule in two forms, `wait` (Python, for the dlt loader's book)
and `wait_sql` (the store's queries), both in whole seconds of real time; a test holds them equal.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

REPORT_WINDOW = timedelta(days=7)
EVERY_RUN = timedelta(hours=6)
SHARE_OF_AGE = 0.25
LONGEST_WAIT = timedelta(hours=6)
CLOCK_SLACK = timedelta(minutes=10)


def wait(sent_at: datetime, at: datetime) -> timedelta:
    """How long a page of a batch sent at `sent_at` waits between two reads, at time `at`."""
    age = at.timestamp() - sent_at.timestamp()  # real seconds, across a change of daylight time too
    if age < _seconds(EVERY_RUN):
        return timedelta(0)
    seconds = min(age * SHARE_OF_AGE, _seconds(LONGEST_WAIT), (_seconds(REPORT_WINDOW) - age) / 2)
    return timedelta(seconds=math.floor(seconds))


def due(sent_at: datetime, last_read: datetime | None, now: datetime) -> bool:
    """Whether a page last read at `last_read` (None: never) is to be asked again at `now`."""
    if last_read is None or last_read > now + CLOCK_SLACK:
        return True
    return last_read < now and now - last_read >= wait(sent_at, now)


def wait_sql(sent_at: str, at: str) -> str:
    """`wait` as a DuckDB expression in whole seconds, over SQL expressions for the two times."""
    age = f"(epoch({at}) - epoch({sent_at}))"
    return f"""(CASE WHEN {age} < {_seconds(EVERY_RUN)} THEN 0
                ELSE floor(least({age} * {SHARE_OF_AGE}, {_seconds(LONGEST_WAIT)},
                                 ({_seconds(REPORT_WINDOW)} - {age}) / 2)) END)"""


def due_sql(sent_at: str, last_read: str, now: str) -> str:
    """`due` as a DuckDB condition."""
    return f"""({last_read} IS NULL OR {last_read} > {now} + INTERVAL {_seconds(CLOCK_SLACK)} SECOND
                OR ({last_read} < {now} AND {last_read} <= {now} - to_seconds({wait_sql(sent_at, now)})))"""


def _seconds(span: timedelta) -> int:
    return int(span.total_seconds())
