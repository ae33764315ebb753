"""Pages from the service into the store: incremental, resumable, concurrent.

Messages are walked newest first, 1000 a page; the walk's cursor is committed with each page,
so a run killed at any point resumes at the page it had reached. A later run stops at the first
page that reaches what is already stored. Every new batch's delivery report is read page by
page (100 a page); after that only batches that still have recipients in flight and are
younger than a week (the service forgets reports after seven days) are read again.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import pandas as pd
from tqdm.auto import tqdm

from . import codes, phone
from .client import RECEIVED, SENT, PanelClient
from .client.panel import DELIVERY_PAGE, MESSAGES_PAGE
from .dates import TEHRAN
from .errors import NotFoundError, PayamakError
from .store import (
    Store,
    Writer,
    add_batches_from_messages,
    close_batches,
    read_state,
    upsert_deliveries,
    upsert_messages,
    write_state,
)

REPORT_WINDOW = timedelta(days=7)
BATCH_CHUNK = 2000  # batches planned at a time, so a million of them never sit in memory at once
PAGE_STEP = MESSAGES_PAGE - 1  # message pages overlap by one row
MAX_REREADS = 3  # a row that never comes back was deleted, not pushed


class SyncError(PayamakError):
    """A sync stopped; everything committed before the failure is kept, and the next run resumes."""


class RateLimiter:
    """At most `per_second` calls a second across all workers (None: no limit)."""

    def __init__(self, per_second: float | None):
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        time.sleep(max(0.0, slot - now))


@dataclass
class SyncSummary:
    calls: int = 0
    pages: int = 0
    rows_new: int = 0
    rows_updated: int = 0
    retries: int = 0
    elapsed: float = 0.0
    by_stream: dict[str, int] = field(default_factory=dict)  # pages per stream

    @property
    def rows_per_second(self) -> float:
        return (self.rows_new + self.rows_updated) / self.elapsed if self.elapsed else 0.0

    def __str__(self) -> str:
        return (
            f"{self.calls} calls, {self.pages} pages, {self.rows_new:,} new rows, {self.rows_updated:,} updated, "
            f"{self.retries} retries, {self.elapsed:.1f} s ({self.rows_per_second:,.0f} rows/s)"
        )


class _Run:
    """One sync's moving parts: the client, the store's writer, the pool, the counters."""

    def __init__(
        self,
        client: PanelClient,
        store: Store,
        workers: int,
        rate: float | None,
        progress: bool,
        now: Callable[[], datetime],
    ):
        self.client = client
        self.writer = Writer(store)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="payamak-sync")
        self.workers = workers
        self.limiter = RateLimiter(rate)
        self.progress = progress
        self.now = now
        self.summary = SyncSummary()

    def fetch(self, call: Callable, *args) -> Future:
        def limited():
            self.limiter.wait()
            return call(*args)

        return self.pool.submit(limited)

    def counted(self, stream: str, new: int, updated: int, pages: int = 1) -> None:
        self.summary.pages += pages
        self.summary.rows_new += new
        self.summary.rows_updated += updated
        self.summary.by_stream[stream] = self.summary.by_stream.get(stream, 0) + pages

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.writer.close()


def sync(
    client: PanelClient,
    store: Store,
    *,
    lines: tuple[str, ...] = (),
    workers: int = 8,
    since: datetime | None = None,
    rate: float | None = None,
    deliveries: bool = True,
    progress: bool = True,
    now: Callable[[], datetime] | None = None,
) -> SyncSummary:
    """Bring the store up to date with the account; returns what it took.

    `lines` limits the messages to those lines; `since` limits how far back the first sync
    reaches; `rate` caps calls a second across the `workers`; `now` is the clock that decides
    which reports are younger than a week (the local one by default).
    """
    run = _Run(client, store, workers, rate, progress, now or (lambda: datetime.now(TEHRAN)))
    calls_before, retries_before = sum(client.calls.values()), sum(client.retries.values())
    started = time.perf_counter()
    with run.writer.transaction() as con:
        run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM sync_runs").fetchone()[0]
        con.execute("INSERT INTO sync_runs (run_id, started_at, outcome) VALUES (?, ?, 'running')", [run_id, run.now()])
    outcome, error_text = "failed", None
    try:
        for direction in (SENT, RECEIVED):
            _sync_messages(run, direction, tuple(lines), since)
        if deliveries:
            _sync_deliveries(run)
        outcome = "ok"
    except KeyboardInterrupt:
        outcome, error_text = "interrupted", "interrupted"
        raise
    except Exception as error:
        error_text = f"{type(error).__name__}: {error}"
        if not isinstance(error, PayamakError):
            raise
        raise SyncError(
            f"The sync stopped: {error}. The {run.summary.pages} pages read before it are kept; run the "
            "sync again to go on from there.",
            f"همگام سازی متوقف شد: {error.message_fa}",
            operation=error.operation,
            code=error.code,
        ) from error
    finally:
        run.close()
        summary = run.summary
        summary.calls = sum(client.calls.values()) - calls_before
        summary.retries = sum(client.retries.values()) - retries_before
        summary.elapsed = time.perf_counter() - started
        with store.connect() as con:
            con.execute(
                """UPDATE sync_runs SET finished_at = ?, outcome = ?, calls = ?, pages = ?, rows_new = ?,
                           rows_updated = ?, retries = ?, error = ? WHERE run_id = ?""",
                [
                    run.now(),
                    outcome,
                    summary.calls,
                    summary.pages,
                    summary.rows_new,
                    summary.rows_updated,
                    summary.retries,
                    error_text,
                    run_id,
                ],
            )
    return summary


# --- messages ---------------------------------------------------------------------------------
def _sync_messages(run: _Run, direction: int, lines: tuple[str, ...], since: datetime | None) -> None:
    """Walk one stream newest first until a short page, a page that reaches the stored top, or `since`.

    Pages are read ahead concurrently, so a deeper page may be read before a shallower one; a
    message arriving in between pushes a row past both. Pages therefore overlap by one row: a
    page that does not hold the previous page's last row is read again.
    """
    name = "sent" if direction == SENT else "received"
    key = f"messages/{name}/{','.join(lines) or '*'}"
    with run.writer.transaction() as con:
        state = read_state(con, key) or {"top_id": None, "walk": None}
    walk = state["walk"] or {"next_index": 1, "stop_at": state["top_id"], "walk_top": None, "last_id": None}
    # A later sync starts with one page, which is usually all it needs; every walk widens its
    # read-ahead only while pages keep coming back full of new rows.
    window = 2 if walk["stop_at"] is None else 1
    in_flight: dict[int, Future] = {}
    next_index, rereads = walk["next_index"], 0

    def read(index: int) -> Future:
        return run.fetch(run.client.messages_page, direction, lines, index, MESSAGES_PAGE)

    bar = tqdm(desc=f"{name} messages", unit=" pages", disable=not run.progress, leave=False)
    try:
        while True:
            while len(in_flight) < window:
                in_flight[next_index] = read(next_index)
                next_index += PAGE_STEP
            # this page and every later one that has already arrived go into one transaction
            batch, done, index, last_id = [], False, walk["next_index"], walk.get("last_id")
            while not done and (not batch or (index in in_flight and in_flight[index].done())):
                rows = in_flight.pop(index).result().rows
                ids = rows["message_id"]
                if last_id is not None and len(rows) and not (ids == last_id).any() and rereads < MAX_REREADS:
                    in_flight[index], rereads = read(index), rereads + 1  # rows slipped past: read it again
                    continue
                rereads, full = 0, len(rows) == MESSAGES_PAGE
                index += PAGE_STEP if full else len(rows)
                if len(rows) and ids.iloc[0] == last_id:  # the overlapping row, stored with the page before
                    rows, ids = rows.iloc[1:], ids.iloc[1:]
                last_id = int(ids.iloc[-1]) if len(rows) else last_id
                too_old = rows["action_datetime"] < pd.Timestamp(since) if since is not None else None
                done = (
                    not full
                    or (walk["stop_at"] is not None and bool((ids <= walk["stop_at"]).any()))
                    or (too_old is not None and bool(too_old.any()))
                )
                batch.append(rows if too_old is None else rows[~too_old])
            rows = pd.concat(batch, ignore_index=True) if len(batch) > 1 else batch[0]
            with run.writer.transaction() as con:
                new, updated = upsert_messages(con, rows, run.now())
                walk["next_index"], walk["last_id"] = index, last_id
                if len(rows):
                    walk["walk_top"] = max(walk["walk_top"] or 0, int(rows["message_id"].max()))
                if done:
                    tops = [t for t in (state["top_id"], walk["walk_top"]) if t is not None]
                    state = {"top_id": max(tops) if tops else None, "walk": None}
                else:
                    state["walk"] = walk
                write_state(con, key, state)
            run.counted(key, new, updated, pages=len(batch))
            bar.update(len(batch))
            if done:
                return
            window = min(window * 2, run.workers)
    finally:
        for future in in_flight.values():
            future.cancel()
        bar.close()


# --- deliveries -------------------------------------------------------------------------------
def _delivery_rows(page) -> pd.DataFrame:
    codes_seen = [s.code for s in page.statuses]
    operators = {}
    for number in page.numbers:
        prefix = number[:6]
        if prefix not in operators:
            try:
                operators[prefix] = phone.operator(number)
            except PayamakError:
                operators[prefix] = "Unknown"
    return pd.DataFrame(
        {
            "batch_id": [page.batch_sms_id] * len(page),
            "row": range(page.index, page.index + len(page)),
            "number": page.numbers,
            "operator": [operators[n[:6]] for n in page.numbers],
            "status": codes_seen,
            "final": [codes.delivery_status(c).final for c in codes_seen],
        }
    )


def _fetch_delivery_page(client: PanelClient, batch_id: int, index: int):
    try:
        return client.get_batch_delivery(batch_id, index, DELIVERY_PAGE)
    except NotFoundError:
        return None  # the service no longer knows the batch: nothing to read


def _sync_deliveries(run: _Run) -> None:
    """Read every page of each new batch, then the pages of young batches that still have
    recipients in flight."""
    started = run.now()
    young_after = started - REPORT_WINDOW
    refresh = """FROM deliveries d JOIN batches b USING (batch_id)
                 WHERE b.complete AND NOT d.final AND b.sent_at > ? AND b.last_checked < ?"""
    with run.writer.transaction() as con:
        add_batches_from_messages(con)
        total = con.execute(
            f"""
            SELECT (SELECT coalesce(sum(greatest(ceil(recipients / 100.0), 1)), 0) FROM batches WHERE NOT complete)
                 + (SELECT count(DISTINCT (d.batch_id, (d."row" - 1) // 100)) {refresh})""",
            [young_after, started],
        ).fetchone()[0]
    bar = tqdm(total=int(total), desc="delivery reports", unit=" pages", disable=not run.progress, leave=False)
    try:
        for plan in _delivery_plans(run, refresh, [young_after, started]):
            _read_pages(run, plan, bar)
    finally:
        bar.close()


def _delivery_plans(run: _Run, refresh: str, refresh_params: list):
    """Chunks of {batch_id: [page indexes]}: first the batches not read in full, then the young
    batches (read before this run) that still have recipients in flight."""
    queries = (
        ("SELECT batch_id, recipients FROM batches WHERE NOT complete AND batch_id > ? ORDER BY batch_id LIMIT ?", []),
        (
            f"""SELECT d.batch_id, list(DISTINCT ((d."row" - 1) // 100) * 100 + 1 ORDER BY 1) {refresh}
             AND d.batch_id > ? GROUP BY d.batch_id ORDER BY d.batch_id LIMIT ?""",
            refresh_params,
        ),
    )
    for kind, (query, params) in enumerate(queries):
        after = 0
        while True:
            with run.writer.transaction() as con:
                rows = con.execute(query, params + [after, BATCH_CHUNK]).fetchall()
            if not rows:
                break
            if kind == 0:
                yield {batch: [1 + 100 * k for k in range(max(math.ceil(count / 100), 1))] for batch, count in rows}
            else:
                yield {batch: list(indexes) for batch, indexes in rows}
            after = rows[-1][0]


def _read_pages(run: _Run, plan: dict[int, list[int]], bar) -> None:
    """Fetch the planned pages concurrently; commit each as it arrives, closing its batch with
    its last page."""
    outstanding = {batch: len(indexes) for batch, indexes in plan.items()}
    jobs = iter([(batch, index) for batch, indexes in plan.items() for index in indexes])
    in_flight: dict[Future, int] = {}
    try:
        while True:
            for batch, index in jobs:
                in_flight[run.fetch(_fetch_delivery_page, run.client, batch, index)] = batch
                if len(in_flight) >= run.workers * 2:
                    break
            if not in_flight:
                return
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            pages, closed = [], []
            for future in finished:  # every page that has arrived goes into one transaction
                batch = in_flight.pop(future)
                page = future.result()
                if page is not None and len(page):
                    pages.append(_delivery_rows(page))
                outstanding[batch] -= 1
                if outstanding[batch] == 0:
                    closed.append(batch)
            with run.writer.transaction() as con:
                new = updated = 0
                if pages:
                    new, updated = upsert_deliveries(con, pd.concat(pages, ignore_index=True), run.now())
                close_batches(con, closed, run.now())
            run.counted("deliveries", new, updated, pages=len(finished))
            bar.update(len(finished))
    finally:
        for future in in_flight:
            future.cancel()
