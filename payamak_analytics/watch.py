"""Keep the store synced on a schedule and raise the alarm: `payamak watch` and `watch()`.

The service keeps delivery reports for seven days, so a store must be synced in time or lose
them. A watch cycle: read first the reports closest to day 7 (young batches whose recipients
may still change, oldest first), then sync everything else, count the recipients whose report
could no longer be read (expired unread, or of a batch the service forgot), run the alert rules
and tell the sinks what was raised or ended; one log line.

One watch per store, by construction: an OS lock (flock) on `<store>.watch.lock`, which names
its holder and dies with its process. A cycle that fails (the service dark, refusing, slow)
is logged and recorded, and the next cycle goes on where the sync stopped.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from .alerts import AlertRules, Context, evaluate, track
from .client.panel import DELIVERY_PAGE
from .client.rows import Rows
from .dates import TEHRAN, moment
from .errors import InputError, NotFoundError, PayamakError, TransportError
from .i18n import latin_digits
from .locks import HolderLock
from .patience import transient
from .recheck import REPORT_WINDOW
from .sinks import Dispatcher, LogSink, Sink
from .stopping import StopRequest
from .store import Store
from .sync import PAST_LIST_PAGES, REFUSED_BATCHES, delivery_rows, fingerprint, goes_on, refuse_repeat, sync

log = logging.getLogger("payamak_analytics.watch")
URGENT_AGE = timedelta(days=5)  # reports at least this old (or expiring within two cycles) are read first
URGENT_GROUP = 20  # report pages stored together
LATE = timedelta(hours=1)  # a report page due again (`recheck`) this long ago (or two cycles) counts as unread
SINK_BUDGET = 15.0  # seconds a cycle gives its sinks at most (half the cycle, if that is shorter)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([a-z]*)")
_UNITS = {
    "": 1, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip


@dataclass
class _Read:
    """What a cycle's reads did."""

    rows_new: int = 0
    rows_updated: int = 0
    urgent_pages: int = 0


class WatchLockedError(PayamakError):
    """Another watch holds this store."""


def duration(value) -> timedelta:
    """A duration as people write it: 15m, 1h, 90s, 2d (also 15 min, 2 hours, ۱۵m), a number of
    seconds, or a timedelta."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        found = _DURATION.fullmatch("".join(latin_digits(str(value)).lower().split()))
        unit = _UNITS.get(found[2]) if found else None
        seconds = float(found[1]) * unit if unit else math.nan
    if not math.isfinite(seconds) or seconds < 1 or seconds > 7 * 86400:
        raise InputError(
            f"{str(value)[:40]!r} is not a duration between 1 second and 7 days: write 15m, 1h, 90s or 2d.",
            "مدت را مانند 15m یا 1h بنویسید",
        )
    return timedelta(seconds=seconds)


class WatchLock(HolderLock):
    """An exclusive OS lock on `<store>.watch.lock` holding who took it (host, pid, start)."""

    def __init__(self, store: Store):
        super().__init__(  # one lock whatever path names the file
            f"{Path(store.path).resolve()}.watch.lock",
            lambda holder: WatchLockedError(
                f"Another watch is running on this store ({holder.strip() or 'another process'}). Stop it first, "
                "or watch another --db.",
                "این پایگاه داده را یک watch دیگر در دست دارد",
            ),
        )


@dataclass
class CycleReport:
    """What one cycle did, as recorded in `watch_cycles` and logged in one line."""

    number: int
    clock: datetime
    outcome: str  # ok, failed
    code: int | None
    error: str | None
    calls: int
    rows_new: int
    rows_updated: int
    urgent_pages: int
    unreadable: int
    at_risk: int
    raised: int
    ended: int
    active: int
    elapsed: float

    def line(self) -> str:
        head = f"cycle {self.number} {self.clock.astimezone(TEHRAN):%Y-%m-%d %H:%M} {self.outcome}"
        if self.error:
            head += f" ({self.error})"
        return (
            f"{head}: {self.calls} calls, {self.rows_new:,} new and {self.rows_updated:,} updated rows, "
            f"{self.urgent_pages} urgent report pages, {self.unreadable:,} recipients no longer readable, "
            f"{self.at_risk:,} at risk; alerts: {self.raised} raised, {self.ended} ended, {self.active} active; "
            f"{self.elapsed:.1f} s"
        )


class Watch:
    """The cycle and the loop around it, for one client and one store."""

    def __init__(
        self,
        client,
        store: Store,
        *,
        every="15m",
        sinks: Iterable[Sink] = (),
        rules: AlertRules | None = None,
        now: Callable[[], datetime] | None = None,
        workers: int = 4,
        give_up_after: float = 120.0,
        sink_budget: float | None = None,
    ):
        self.client, self.store = client, store
        self.give_up_after = give_up_after  # a cycle's sync ends after this long with no answer
        self.every = duration(every)
        self.log = LogSink()
        budget = sink_budget if sink_budget is not None else min(SINK_BUDGET, self.every.total_seconds() / 2)
        self.dispatcher = Dispatcher(store, sinks, budget=budget)
        self.stop = StopRequest()  # the running loop's: the sinks stop waiting when it is asked
        self.rules = rules or AlertRules()
        self.now = (lambda: moment(now())) if now else (lambda: datetime.now(TEHRAN))  # no offset: Tehran
        self.workers = workers

    # --- one cycle ------------------------------------------------------------------------
    def cycle(self) -> CycleReport:
        """Read, judge, tell: on one connection to the store for the whole cycle (opening the
        file costs tens of milliseconds, and a cycle reads it dozens of times); another process
        that waits for the file still gets it between two statements. The sync inside caps
        DuckDB's memory as it always does; judging weeks of history is left DuckDB's default."""
        with self.store.holding(memory_limit=None):
            return self._cycle()

    def _cycle(self) -> CycleReport:
        started, now = time.perf_counter(), self.now()
        calls_before = sum(self.client.calls.values())
        history = self.store.read_watch_cycles(last=50)
        previous = history["clock"].iloc[-1].to_pydatetime() if len(history) else now - self.every
        outcome, code, error, read = "ok", None, None, _Read()
        try:
            read = self._read(now)
        except PayamakError as failure:
            outcome, code, error = "failed", failure.code, _short(failure)
        except Exception as failure:
            log.exception("cycle failed")
            outcome, error = "failed", type(failure).__name__
        risk = self.store.report_risk(now, min(previous, now), self.rules.expiry_margin, max(self.every * 2, LATE))
        failing = _failing(history, now, outcome, code)
        # and the recipients of the batches retired as gone since the last cycle: by its syncs or
        # another process's, recorded or not (each batch counted once: see record_watch_cycle)
        gone = self.store.gone_untold()
        unreadable = risk["unreadable"] + sum(gone.values())
        context = Context(now, self.every, failing=failing, at_risk=risk["at_risk"], unreadable=unreadable)
        if outcome == "ok":
            context.credit = self._credit()
        notices = self._alerts(context)
        report = CycleReport(
            number=0,
            clock=now,
            outcome=outcome,
            code=code,
            error=error,
            calls=sum(self.client.calls.values()) - calls_before,
            rows_new=read.rows_new,
            rows_updated=read.rows_updated,
            urgent_pages=read.urgent_pages,
            unreadable=unreadable,
            at_risk=risk["at_risk"],
            raised=sum(n.event == "raised" for n in notices),
            ended=sum(n.event == "ended" for n in notices),
            active=len(self.store.read_alerts(active=True)),
            elapsed=time.perf_counter() - started,
        )
        fields = {k: v for k, v in vars(report).items() if k not in ("number", "active")}
        report.number = self.store.record_watch_cycle(fields, counted_gone=list(gone))
        log.info(report.line())
        return report

    def _read(self, now: datetime) -> _Read:
        """New messages, then the reports closest to expiry, then everything else the sync reads."""
        clock = self.now
        first = sync(
            self.client,
            self.store,
            deliveries=False,
            progress=False,
            workers=self.workers,
            now=clock,
            give_up_after=self.give_up_after,
        )
        urgent = self._urgent(now)
        rest = sync(
            self.client, self.store, progress=False, workers=self.workers, now=clock, give_up_after=self.give_up_after
        )
        return _Read(first.rows_new + rest.rows_new, first.rows_updated + rest.rows_updated, urgent)

    def _urgent(self, now: datetime) -> int:
        """Read the due pages of reports at least URGENT_AGE old (or that expire within two cycles),
        oldest first, before the sync reads the rest: the same pages the sync would read (`recheck`),
        in the order that loses least when the service fails mid-cycle. Stored every URGENT_GROUP
        pages (a stop or a failure keeps what was stored). A report answered out of contract is
        left to the sync, which names it once it has read every other (past REFUSED_BATCHES such
        batches the cycle stops, as the sync does). Returns the pages read."""
        pages, tables, done = 0, [], []
        seen: set[tuple[int, int]] = set()  # of each page read, as the sync refuses a page that repeats
        refused: list[TransportError] = []
        older_than = max(timedelta(0), min(URGENT_AGE, REPORT_WINDOW - 2 * self.every))
        urgent = self.store.urgent_batches(now, older_than)
        for batch in urgent.itertuples():
            recipients = None if pd.isna(batch.recipients) else int(batch.recipients)
            read = self._report(int(batch.batch_id), recipients, [int(index) for index in batch.pages], seen, refused)
            if len(refused) > REFUSED_BATCHES:
                raise refused[-1]
            if read is not None:
                tables += read
                done.append(int(batch.batch_id))
                pages += len(read)
            if len(tables) >= URGENT_GROUP:
                self._store_urgent(tables, done, now)
                tables, done = [], []
        if done:
            self._store_urgent(tables, done, now)
        return pages

    def _report(
        self, batch: int, recipients: int | None, indexes: list[int], seen: set, refused: list[TransportError]
    ) -> list[Rows] | None:
        """The pages `indexes` of a batch's report, and the pages past them while one says the
        report goes on past its list (`sync.goes_on`, the sync's rule); None (the sync asks again
        later) when the service does not know the batch (yet), answers a page out of contract
        (added to `refused`), or the report does not end within PAST_LIST_PAGES pages past the list."""
        tables, asked, past = [], set(indexes), 0
        pending = deque(indexes)
        while pending:
            index = pending.popleft()
            try:
                page = self.client.get_batch_delivery(batch, index, DELIVERY_PAGE)
            except NotFoundError:
                return None
            except TransportError as error:
                if transient(error):  # weather that outlasted the client's retries: the cycle fails
                    raise
                refused.append(error)
                return None
            refuse_repeat(self.client, batch, index, fingerprint(page), seen)
            tables.append(delivery_rows(page))
            if goes_on(recipients, index, len(page)) and index + DELIVERY_PAGE not in asked:
                past += 1
                if past > PAST_LIST_PAGES:
                    return None
                asked.add(index + DELIVERY_PAGE)
                pending.append(index + DELIVERY_PAGE)
        return tables

    def _store_urgent(self, pages: list[Rows], batches: list[int], now: datetime) -> None:
        self.store.save_delivery_pages(Rows.concat(pages) if pages else None, batches, [], now)

    def _credit(self):
        try:
            return self.client.get_credit()
        except PayamakError as failure:
            log.warning("credit not read: %s", _short(failure))
            return None

    def _alerts(self, context: Context) -> list:
        firing, clear = evaluate(self.store, context, self.rules)
        notices = track(self.store, firing, clear, context.now, self.rules)
        for notice in notices:
            self.log.send(notice)
        try:
            self.dispatcher.dispatch(notices, stop=self.stop.asked)
        except PayamakError as failure:  # the outbox not written (the store held): the alerts are stored
            log.error("alert notices not handed to the sinks: %s", _short(failure))
        return notices

    # --- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event | StopRequest | None = None, cycles: int | None = None) -> list[CycleReport]:
        """Cycles every `every` until a stop is asked or `cycles` are done; holds the store's watch lock.

        A stop asked between cycles ends the wait at once; one asked during a cycle ends the
        watch at the cycle's end (a sync stops at its next page and keeps what it read)."""
        stop = stop if isinstance(stop, StopRequest) else StopRequest(stop)
        self.stop = stop
        reports: list[CycleReport] = []
        with WatchLock(self.store):
            log.info("watching %s every %s (Ctrl-C stops)", self.store.path, _format(self.every))
            try:
                self._loop(stop, cycles, reports)
            except KeyboardInterrupt as interrupt:  # asked twice, or during a sync: what was read is kept
                log.info("stopped during cycle %d: %s", len(reports) + 1, interrupt)
        log.info("watch stopped after %d cycles", len(reports))
        return reports

    def _loop(self, stop: StopRequest, cycles: int | None, reports: list[CycleReport]) -> None:
        for attempt in itertools.count(1):
            began = time.monotonic()
            try:
                reports.append(self.cycle())
            except Exception:  # the store itself failed (held by another process, disk full): try next time
                log.exception("cycle could not be recorded")
            if cycles is not None and attempt >= cycles:
                return
            if stop.asked() or stop.wait(max(0.0, self.every.total_seconds() - (time.monotonic() - began))):
                log.info("stop asked: no further cycle starts")
                return


def _failing(history: pd.DataFrame, now: datetime, outcome: str, code: int | None) -> list:
    """The streak of failed cycles that ends with this one (empty when this one worked)."""
    if outcome == "ok":
        return []
    streak = [(now, code)]
    for row in history.iloc[::-1].itertuples():
        if row.outcome != "failed":
            break
        streak.insert(0, (row.clock.to_pydatetime(), None if pd.isna(row.code) else int(row.code)))
    return streak


def _short(error: PayamakError) -> str:
    cause = error.__cause__ if isinstance(error.__cause__, PayamakError) else error
    return str(cause).splitlines()[0][:200]


def _format(every: timedelta) -> str:
    seconds = int(every.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def watch(
    client,
    store: Store,
    *,
    every="15m",
    sinks: Iterable[Sink] = (),
    rules: AlertRules | None = None,
    once: bool = False,
    now: Callable[[], datetime] | None = None,
    stop: threading.Event | None = None,
) -> list[CycleReport]:
    """Sync `store` from `client` every `every` and alert through `sinks` until stopped.

    `once` runs one cycle (for cron or a systemd timer). From the main thread, SIGINT and SIGTERM
    stop the watch cleanly: between cycles at once, during a cycle at its end (a second signal
    interrupts it; the sync keeps what it committed). `now` is the clock (the service's, in tests).
    """
    runner = Watch(client, store, every=every, sinks=sinks, rules=rules, now=now)
    request = StopRequest(stop)
    with request.on_signals():
        return runner.run(request, cycles=1 if once else None)
