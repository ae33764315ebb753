"""Pages from the service into the store: incremental, resumable, concurrent, patient.

Messages are walked newest first (see `walk.MessageWalk`), each page committed with the
walk's state. Once the sent walk is done, every new batch's delivery report is read page by
page (the received walk goes on meanwhile), and afterwards only young batches (under a week:
the service forgets reports after seven days) with recipients still in flight. A page that
fails after the client's retries goes back into the queue with a longer wait; a shared circuit
breaker pauses every worker while most calls fail; the run gives up only on an answer that will
not change by waiting, or after `give_up_after` seconds with no successful answer at all.
Ctrl-C (or SIGTERM) stops at the next page boundary, keeping everything committed.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from tqdm.auto import tqdm

from . import phone
from .client import DELIVERY_PAGE, RECEIVED, SENT, DeliveryPage, PanelClient, validate
from .client.rows import Rows
from .dates import TEHRAN, moment
from .errors import (
    AnswerError,
    InputError,
    NotFoundError,
    PayamakError,
    StoreError,
    StoreLockedError,
    SyncError,
    TransportError,
)
from .patience import MAX_WORKERS, PAGE_ATTEMPTS, Breaker, OutageError, RateLimiter, patiently, transient
from .recheck import REPORT_WINDOW
from .stopping import StopRequest
from .store import Store
from .walk import MessageWalk

UNKNOWN_GRACE = timedelta(days=1)  # a batch the service calls unknown for this long is gone
BATCH_CHUNK = 2000  # batches planned at a time, so a million of them never sit in memory at once
UNKNOWN_REASKS = 2  # within one run, a batch answering "no such batch" is asked this many times more
WAVE_PAGES = 64  # pages a transaction at most: a reader waiting for the file waits for one of these
GROUP_PAGES = 64  # a wave is committed once this many pages have arrived...
GROUP_WINDOW = 0.2  # ...or this many seconds after the first of them: a commit costs as much as pages
IN_FLIGHT_PER_WORKER = 8  # pages queued a worker: they keep arriving while the last wave commits
SHORT_REREADS = 2  # a page shorter than its batch says is read again this many times
PAST_LIST_PAGES = 100  # pages read past a batch's listed recipients in one run, at most
# batches whose report page was answered out of contract (waiting will not change it), at most,
# before the run stops: one batch's odd answer must not keep every other report unread until they
# expire, and more of them is the service (or a proxy), whose other answers are not to be trusted
REFUSED_BATCHES = 8
PROBE_INDEX = 2_000_000_001  # a row no report reaches (a page from it still fits an int): asked when a page repeats

__all__ = ["RateLimiter", "SyncError", "SyncSummary", "sync"]


@dataclass
class SyncSummary:
    calls: int = 0
    pages: int = 0
    rows_new: int = 0
    rows_updated: int = 0
    retries: int = 0  # the client's own retries of a call
    requeued: int = 0  # pages that failed after those retries and were asked again later
    rereads: int = 0  # message pages read again because rows slipped past them
    pauses: int = 0  # times the circuit breaker paused every worker
    paused_seconds: float = 0.0
    batches_unreadable: int = 0  # closed as gone: "no such batch" past the grace period
    recipients_unreadable: int = 0
    batches_unknown: int = 0  # answered "no such batch" this run: asked again next run
    batches_open: int = 0  # not read in full this run (a page failed or came back short)
    elapsed: float = 0.0
    by_stream: dict[str, int] = field(default_factory=dict)  # pages per stream

    @property
    def rows_per_second(self) -> float:
        return (self.rows_new + self.rows_updated) / self.elapsed if self.elapsed else 0.0

    def __str__(self) -> str:
        text = (
            f"{self.calls} calls, {self.pages} pages, {self.rows_new:,} new rows, {self.rows_updated:,} updated, "
            f"{self.retries} retries, {self.requeued} pages requeued, {self.pauses} pauses "
            f"({self.paused_seconds:.0f} s), {self.elapsed:.1f} s ({self.rows_per_second:,.0f} rows/s)"
        )
        if self.batches_unknown or self.batches_open:
            text += (
                f"; {self.batches_unknown} batches not found by the service and {self.batches_open} not read in "
                "full: the next sync asks again"
            )
        if self.batches_unreadable:
            text += (
                f"; {self.batches_unreadable} batches ({self.recipients_unreadable:,} recipients) unreadable: "
                f"unknown to the service for over {UNKNOWN_GRACE.days} day(s), closed as gone"
            )
        return text


class _Run:
    """One sync's moving parts: the client, the store, the pool, the breaker, the counters."""

    def __init__(
        self,
        client: PanelClient,
        store: Store,
        workers: int,
        limiter: RateLimiter,
        give_up_after: float,
        progress: bool,
        new_address: bool = False,
    ):
        self.client = client
        self.store = store
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="payamak-sync")
        self.workers = workers
        self.limiter = limiter
        self.breaker = Breaker(give_up_after)
        self.stop = StopRequest()  # its event is what waiting workers watch
        self.progress = progress
        self.summary = SyncSummary()
        self.new_address = new_address
        self.bound = False
        self.refused: dict[int, PayamakError] = {}  # batch: its report's answer out of contract
        self._lock = threading.Lock()

    def refuse(self, batch: int, error: TransportError) -> None:
        """Note a batch whose report was answered out of contract: it stays open, and the run ends
        failed naming it once every other report is read; past REFUSED_BATCHES such batches it is
        the service (or a proxy), and the run stops now."""
        self.refused.setdefault(batch, error)
        if len(self.refused) > REFUSED_BATCHES:
            raise error

    def bind_account(self) -> None:
        """Record whose store this is once the service has answered a page for the account, not
        before: a first sync with a mistyped user name or address, which the service refuses,
        would otherwise give the store to an account that does not exist."""
        if not self.bound:
            self.store.bind_account(self.client.username, self.client.endpoint, new_address=self.new_address)
            self.bound = True

    def now(self) -> datetime:
        return datetime.now(TEHRAN)

    def fetch(self, call: Callable, *args) -> Future:
        """`call(*args)` on a worker, patiently (see patience.patiently)."""
        return self.pool.submit(patiently, call, args, self.breaker, self.limiter, self.stop.event, self.requeued)

    def requeued(self) -> None:
        with self._lock:
            self.summary.requeued += 1

    def counted(self, stream: str, new: int, updated: int, pages: int = 1) -> None:
        self.summary.pages += pages
        self.summary.rows_new += new
        self.summary.rows_updated += updated
        self.summary.by_stream[stream] = self.summary.by_stream.get(stream, 0) + pages

    def check_stop(self) -> None:
        """Between pages: a stop asked by a signal is passed on to the workers, and ends the run."""
        if self.stop.asked():
            self.stop.event.set()
            raise KeyboardInterrupt(f"interrupted; {self.summary.pages} pages kept; run the sync again to resume")

    def wait_first(self, futures: list[Future]) -> None:
        """Until one of `futures` is done, waking up to notice Ctrl-C."""
        while True:
            self.check_stop()
            if wait(futures, timeout=0.2, return_when=FIRST_COMPLETED).done:
                return

    def close(self) -> None:
        """Stop the workers without waiting for the calls they are in: those end at their own
        deadline, their answers unwanted. Waiting for them held a Ctrl-C back for up to a call's
        budget (a minute), and a second Ctrl-C meanwhile left the run recorded as running."""
        self.stop.event.set()  # workers waiting in the breaker return at once
        self.pool.shutdown(wait=False, cancel_futures=True)


def sync(
    client: PanelClient,
    store: Store,
    *,
    lines: str | Sequence[str] = (),
    workers: int = 8,
    since=None,
    rate: float | None = None,
    deliveries: bool = True,
    progress: bool = True,
    give_up_after: float = 120.0,
    new_address: bool = False,
    now: Callable[[], datetime] | None = None,
) -> SyncSummary:
    """Bring the store up to date with the account; returns what it took.

    `lines` limits the messages to those lines (a list, or a text: "10002188,50001234");
    `since` (any form `dates.moment` reads) limits how far back the first sync reaches; `rate`
    caps calls a second across the `workers`; `give_up_after` is the outage budget in seconds;
    `now` is the clock that decides which reports are younger than a week. The store must be
    this account's (`new_address` accepts a new address of the same account).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise InputError(
            f"workers must be a whole number from 1 to {MAX_WORKERS}, not {workers!r}.", "تعداد کارگرها نامعتبر است"
        )
    if isinstance(give_up_after, bool) or not isinstance(give_up_after, (int, float)) or not give_up_after > 0:
        raise InputError(
            f"give_up_after is the outage budget in seconds, above 0 (120 by default), not {give_up_after!r}.",
            "مدت مجاز قطعی باید عددی بزرگ تر از صفر باشد",
        )
    limiter = RateLimiter(rate)  # a bad rate is refused here, before anything is asked or written
    lines = tuple(validate.line(line) for line in validate.items(lines or (), "lines"))  # a text is its lines
    since = None if since is None else moment(since)
    started = time.perf_counter()
    with store.holding():  # one open for the run (each costs tens of milliseconds), let go when a reader waits
        store.check_account(client.username, client.endpoint, new_address=new_address)  # before any call
        run = _Run(client, store, workers, limiter, give_up_after, progress, new_address)
        if now is not None:
            run.now = lambda: moment(now())  # without an offset: Tehran time
        calls_before, retries_before = sum(client.calls.values()), sum(client.retries.values())
        run_id = store.start_sync_run(run.now())
        outcome, error_text, ended_by = "failed", None, None
        try:
            with run.stop.on_signals():
                _sync_all(run, lines, since, deliveries)
            outcome = "ok"
        except KeyboardInterrupt as interrupt:
            outcome, error_text, ended_by = "interrupted", "interrupted", interrupt
            raise KeyboardInterrupt(
                f"interrupted; {run.summary.pages} pages kept; run the sync again to resume"
            ) from interrupt.__cause__
        except (StoreError, StoreLockedError) as error:  # the store's answer, not the service's: as it is
            error_text, ended_by = f"{type(error).__name__}: {error}", error
            raise
        except PayamakError as error:
            error_text, ended_by = f"{type(error).__name__}: {error}", error
            raise _stopped(error, run.summary, run.refused) from error
        finally:
            run.close()
            # another program holds the file: written now, the record would wait as long again
            later = isinstance(ended_by, StoreLockedError)
            try:
                _finish(run, run_id, outcome, error_text, client, calls_before, retries_before, started, later)
            except (StoreError, StoreLockedError):
                if ended_by is None:  # the record never replaces the error that ended the run
                    raise
    return run.summary


def _sync_all(run: _Run, lines: tuple[str, ...], since, deliveries: bool) -> None:
    """Walk the sent messages; then read the reports of their batches while the received walk
    goes on beside them (the reports wait only for the sent walk); then finish that walk."""
    sent, received = (_stream(run, direction, lines, since) for direction in (SENT, RECEIVED))
    reports = None
    try:
        if not deliveries:
            _walk(run, [sent, received])
            return
        last = _walk(run, [sent, received], until_done=sent)
        sent.bar.close()  # the reports' bar takes its line
        reports = tqdm(desc="delivery reports", unit=" pages", disable=not run.progress, leave=False)
        _sync_deliveries(run, last, [received], reports)
        _walk(run, [received])
        if run.refused:  # every other report read: now the run says which it could not take
            raise next(iter(run.refused.values()))
    finally:
        for stream in (sent, received):
            run.summary.rereads += stream.walk.rereads_total
            for future in stream.in_flight.values():
                future.cancel()
        # the lowest bar first: the cursor ends on the top line, where what follows is written
        bars = [sent.bar, received.bar] + ([] if reports is None else [reports])
        for bar in sorted(bars, key=lambda bar: -getattr(bar, "pos", 0)):
            bar.close()


def _stopped(error: PayamakError, summary: SyncSummary, refused: dict[int, PayamakError]) -> SyncError:
    """The one error a sync ends with: what stopped it, and that the next run resumes; `refused`
    holds the batches whose report was answered out of contract, and how."""
    if isinstance(error, OutageError):
        reason = str(error)
    elif transient(error):  # weather that outlasted one page's attempts: a later run may pass
        reason = f"a page failed {PAGE_ATTEMPTS} times over, as the network or the service may for a while: {error}"
    elif error in refused.values() and len(refused) > REFUSED_BATCHES:
        reason = f"the service answered {len(refused)} batches' reports with something waiting will not change: {error}"
    elif error in refused.values():
        reason = (
            f"the service answered the report of {len(refused)} batch(es) with something waiting will not change "
            f"(batch {next(iter(refused))} first), and they stay open; every other report was read: {error}"
        )
    else:
        reason = f"the service answered something waiting will not change: {error}"
    return SyncError(
        f"The sync stopped: {reason}. The {summary.pages} pages read before it are kept; run the sync "
        "again to go on from there.",
        f"همگام سازی متوقف شد: {error.message_fa}",
        operation=error.operation,
        code=error.code,
    )


def _finish(
    run: _Run, run_id: int, outcome: str, error_text, client, calls_before, retries_before, started, later: bool
) -> None:
    summary = run.summary
    summary.calls = sum(client.calls.values()) - calls_before
    summary.retries = sum(client.retries.values()) - retries_before
    summary.pauses, summary.paused_seconds = run.breaker.pauses, run.breaker.paused_seconds
    summary.elapsed = time.perf_counter() - started
    counters = {name: getattr(summary, name) for name in vars(summary) if name not in ("elapsed", "by_stream")}
    run.store.finish_sync_run(run_id, run.now(), outcome, counters, error_text, later=later)


# --- messages ---------------------------------------------------------------------------------
@dataclass
class _Stream:
    """One stream's walk as the sync drives it: its pages in flight, and how many to keep there."""

    key: str  # its walk state's name in the store
    walk: MessageWalk
    read: Callable[[int], Future]
    bar: tqdm
    in_flight: dict[int, Future] = field(default_factory=dict)
    window: int = 1


def _stream(run: _Run, direction: int, lines: tuple[str, ...], since: datetime | None) -> _Stream:
    name = "sent" if direction == SENT else "received"
    key = f"messages/{name}/{','.join(lines) or '*'}"
    walk = MessageWalk(run.store.walk_state(key), since=since)
    return _Stream(
        key,
        walk,
        lambda index: run.fetch(_page_rows, run.client, direction, lines, index),
        tqdm(desc=f"{name} messages", unit=" pages", disable=not run.progress, leave=False),
        window=1 if walk.incremental else 2,  # widened while pages keep coming back full
    )


def _page_rows(client: PanelClient, direction: int, lines: tuple[str, ...], index: int) -> Rows:
    """A page's rows only: its raw answer (about 700 KB) is not kept while it waits its turn."""
    return client.messages_page(direction, lines, index).arrays


@dataclass
class _Arrived:
    """A stream's pages accepted in one pass, with the walk's state to commit beside them."""

    stream: _Stream
    rows: Rows
    pages: int
    state: dict

    def save(self, run: _Run) -> None:
        run.bind_account()
        new, updated = run.store.save_message_page(self.stream.key, self.rows, self.state, run.now())
        run.counted(self.stream.key, new, updated, pages=self.pages)
        self.stream.bar.update(self.pages)
        self.stream.window = min(self.stream.window * 2, run.workers)  # pages keep coming back: ask further ahead
        if self.stream.walk.done:
            self.stream.bar.close()


def _walk(run: _Run, streams: list[_Stream], until_done: _Stream | None = None) -> _Arrived | None:
    """Drive the walks side by side (a sync waits for the service's first pages once, not
    twice): keep each walk's next pages in flight, accept them in order, and store each arrived
    run of pages with the walk's state. With `until_done`, only that stream's pages are taken,
    and its last ones are returned unstored, once its walk is done."""
    taken = streams if until_done is None else [until_done]
    while walking := [stream for stream in taken if not stream.walk.done]:
        for stream in streams:
            _request(stream)
        run.wait_first([stream.in_flight[stream.walk.awaited] for stream in walking])
        for stream in walking:
            arrived = _accept_arrived(stream)
            if arrived and stream is until_done and stream.walk.done:
                return arrived
            if arrived:
                arrived.save(run)
    return None


def _request(stream: _Stream) -> None:
    for index in stream.walk.to_read(stream.in_flight, stream.window):
        stream.in_flight[index] = stream.read(index)


def _accept_arrived(stream: _Stream) -> _Arrived | None:
    """The pages arrived by now, from the awaited one on, as accepted by the walk; a page to
    read again is requested again."""
    walk, in_flight = stream.walk, stream.in_flight
    kept = []
    while not walk.done and walk.awaited in in_flight and in_flight[walk.awaited].done():
        index = walk.awaited
        accepted = walk.accept(index, in_flight.pop(index).result())
        if accepted is None:  # rows slipped past: ask again, for that page or one further up
            if walk.awaited not in in_flight:
                in_flight[walk.awaited] = stream.read(walk.awaited)
            continue
        kept.append(accepted)
    if not kept:
        return None
    return _Arrived(stream, Rows.concat(kept), len(kept), walk.saved())


class _Beside:
    """What the report reader does between its waits: `first` once (after the first pages are
    asked for), then move the other walks on, without waiting for them."""

    def __init__(self, run: _Run, streams: list[_Stream], first: Callable[[], None]):
        self.run = run
        self.streams = streams
        self.first: Callable[[], None] | None = first

    def __call__(self) -> None:
        if self.first is not None:
            first, self.first = self.first, None
            first()
        for stream in self.streams:
            arrived = None if stream.walk.done else _accept_arrived(stream)
            if arrived:
                arrived.save(self.run)
            _request(stream)


# --- deliveries -------------------------------------------------------------------------------
@dataclass
class _PageAnswer:
    batch: int
    rows: Rows | None  # None: the service does not know the batch (-2)
    short: bool = False  # fewer rows than the batch's recipients say, after its rereads
    longer: bool = False  # a full page where fewer rows were due: the report goes on past the plan
    fingerprint: int | None = None  # of its numbers, in order (None: no rows)


def delivery_rows(page: DeliveryPage) -> Rows:
    """The rows of one report page as the store takes them (numpy arrays, which DuckDB reads
    without a copy), with each recipient's operator and whether its status is final."""
    return Rows(
        {
            "batch_id": np.full(len(page), page.batch_sms_id, dtype=np.int64),
            "row": np.arange(page.index, page.index + len(page), dtype=np.int64),
            "number": np.array(page.numbers, dtype=object),
            "operator": np.array(phone.operators(page.numbers), dtype=object),
            "status": np.array([status.code for status in page.statuses], dtype=np.int32),
            "final": np.array([status.final for status in page.statuses], dtype=np.bool_),
        }
    )


def rows_due(recipients: int | None, index: int) -> int:
    """How many rows the page at `index` of a report of `recipients` should hold (0 or less past them)."""
    return min(DELIVERY_PAGE, (recipients or 0) - index + 1)


def goes_on(recipients: int | None, index: int, rows: int) -> bool:
    """Whether a report holds more than its list says: its page at `index` came back full where
    fewer rows were due. The one rule of every reader of reports (the sync, the watch's urgent
    reads), so that none closes a batch on a Count that is short of its report."""
    return rows == DELIVERY_PAGE and rows_due(recipients, index) < DELIVERY_PAGE


def _read_delivery_page(client: PanelClient, batch: int, index: int, recipients: int | None) -> _PageAnswer:
    """One page of a batch's report, read again (a little later) while it is shorter than the
    rows due of its `recipients`; -2 is an answer too ("not now"), not a failure."""
    expected = rows_due(recipients, index)
    for attempt in range(SHORT_REREADS + 1):
        try:
            page = client.get_batch_delivery(batch, index, DELIVERY_PAGE)
        except NotFoundError:
            return _PageAnswer(batch, None)
        if len(page) >= expected:
            break
        time.sleep(0.2 * (attempt + 1))
    longer = goes_on(recipients, index, len(page))
    return _PageAnswer(batch, delivery_rows(page), len(page) < expected, longer, fingerprint(page))


def _sync_deliveries(run: _Run, last: _Arrived | None, walks: list[_Stream], bar: tqdm) -> None:
    """Read every page of each new batch, then the pages of young batches that still have
    recipients in flight; then close as gone the batches unknown past the grace period.

    The batches of the sent walk's `last` pages are asked for before those pages are stored:
    the store writes them while the first answers are on their way."""
    started = run.now()
    young_after = started - REPORT_WINDOW
    early = _new_batches(run.store, last)

    def store_sent() -> None:
        if last is not None:
            last.save(run)
        run.store.add_batches_from_messages()
        if run.progress:
            bar.total = int(run.store.delivery_pages_due(young_after, started))
            bar.refresh()

    beside = _Beside(run, walks, first=store_sent)
    plans = _delivery_plans(run.store, young_after, started, skip=early, clock=run.now)
    for plan in itertools.chain([early], plans):
        run.summary.batches_unknown += len(_read_asking_again(run, plan, bar, beside))
    gone, recipients = run.store.retire_unknown_batches(started - UNKNOWN_GRACE, started)
    run.summary.batches_unreadable += gone
    run.summary.recipients_unreadable += recipients


def _read_asking_again(run: _Run, plan: dict, bar, beside: _Beside) -> dict:
    """Read a plan; ask again, a little later, for the batches the service did not know.
    Returns the plan of those still unknown (the next run asks again)."""
    for _ in range(UNKNOWN_REASKS + 1):
        plan = _read_pages(run, plan, bar, beside)
        if not plan:
            break
    return plan


def _pages_of(recipients: int | None) -> range:
    """The offsets of a report's pages (one, for a batch of no recipients); a range, not a list:
    a Count of two billion from a hostile service would otherwise take gigabytes to plan."""
    return range(1, max(recipients or 0, 1) + 1, DELIVERY_PAGE)


def _new_batches(store: Store, last: _Arrived | None) -> dict:
    """The plan of the batches in the sent walk's last pages whose report is not read in full.

    A batch the store holds already is planned from its stored recipients, as `_delivery_plans`
    would (batches are closed against them, and the page's Count may have changed since); a new
    one from the page, as `add_batches_from_messages` will store it."""
    if last is None:
        return {}
    sent = last.rows.take((last.rows["message_type"] == "Out") & (np.ma.filled(last.rows["count"], 0) > 0))
    batches = dict(zip(sent["message_id"].tolist(), sent["count"].tolist()))
    if not batches:
        return {}
    known = store.known_batches(min(batches), max(batches))
    plan = {}
    for batch, count in batches.items():
        recipients, settled = known.get(batch, (count, False))
        if not settled:
            plan[batch] = (recipients, _pages_of(recipients))
    return plan


def _delivery_plans(
    store: Store, young_after: datetime, started: datetime, skip: dict, clock: Callable[[], datetime]
) -> Iterator[dict]:
    """Chunks of {batch_id: (recipients, [page indexes])}: first the batches not read in full
    (but those in `skip`, planned already), then the young batches (read before this run) that
    still have recipients in flight. A run's own reads may be stamped more than CLOCK_SLACK after
    `started` (reports that take long): they are told from a clock that was ahead by `clock`."""
    after = 0
    while rows := store.unread_batches(after, BATCH_CHUNK):
        yield {batch: (count, _pages_of(count)) for batch, count in rows if batch not in skip}
        after = rows[-1][0]
    after = 0
    while rows := store.pending_pages(young_after, started, after, BATCH_CHUNK, read_between=(started, clock())):
        yield {batch: (count, list(indexes)) for batch, count, indexes in rows}
        after = rows[-1][0]


@dataclass
class _Doubts:
    """The batches of one reading that are not read in full, by why."""

    unknown: set[int]  # a page answered -2: asked again a little later, counted by that reading
    failed: set[int]  # a page failed however often it was asked
    cut: set[int]  # a page came back short: the pages after it were not asked

    def settled(self, batch: int) -> bool:
        return batch not in self.unknown and batch not in self.failed and batch not in self.cut


def _read_pages(run: _Run, plan: dict[int, tuple[int, Sequence[int]]], bar, beside: _Beside) -> dict:
    """Fetch the planned pages concurrently and commit each arrived wave in one transaction,
    closing a batch with its last page; between waits, `beside` moves the other walks on.
    Returns the plan of the batches the service did not know (-2), to ask again a little later."""
    outstanding = {batch: len(indexes) for batch, (_, indexes) in plan.items()}
    jobs = _Jobs(plan)
    doubts = _Doubts(set(), set(), jobs.cut)
    seen: set[tuple[int, int]] = set()  # (batch, fingerprint) of each page with rows read
    in_flight: dict[Future, int] = {}
    finished: queue.SimpleQueue[Future] = queue.SimpleQueue()  # each future puts itself here when done
    arrived: dict[Future, None] = {}  # in order of arrival, not yet committed
    first_arrival = 0.0

    def commit(limit: int) -> None:
        wave = list(arrived)[:limit]
        _commit_wave(run, wave, in_flight, outstanding, doubts)
        bar.update(len(wave))
        for future in wave:
            del arrived[future]

    try:
        while True:
            try:
                run.check_stop()
            except KeyboardInterrupt:  # what has arrived was read: it is kept
                while arrived:
                    commit(WAVE_PAGES)
                raise
            _submit(run, jobs, in_flight, len(in_flight) - len(arrived), finished.put)
            beside()
            if not in_flight:
                break
            window = GROUP_WINDOW - (time.monotonic() - first_arrival) if arrived else 0.2
            timeout = max(window, 0.0) if len(arrived) < GROUP_PAGES else 0.0  # a full group: at once
            now_done = _arrivals(finished, timeout)
            _refuse(run, now_done, in_flight)
            _refuse_repeats(run.client, now_done, seen)
            for answer in _answers(now_done):
                if answer.short and answer.batch not in jobs.cut:
                    outstanding[answer.batch] -= jobs.stop(answer.batch)  # it ends with its pages in flight
                elif answer.longer and jobs.go_on(answer):
                    outstanding[answer.batch] += 1
            if now_done and not arrived:
                first_arrival = time.monotonic()
            arrived.update(dict.fromkeys(now_done))
            late = time.monotonic() - first_arrival >= GROUP_WINDOW
            if arrived and (len(arrived) >= GROUP_PAGES or late or len(arrived) == len(in_flight)):
                commit(WAVE_PAGES)
                first_arrival = time.monotonic()
    finally:
        for future in in_flight:
            future.cancel()
    if doubts.unknown:
        time.sleep(1.0)  # the service may have been slow to know a batch it had just sent
    return {batch: plan[batch] for batch in doubts.unknown}


class _Jobs:
    """The pages to ask, as (batch, index, recipients listed): the planned ones in order, and
    before them any page found past a batch's plan. A batch one of whose pages came back short is
    asked no further this run (`stop`): whatever Count a service claims, a batch costs the pages
    it holds and the pages in flight when the short one arrived. One whose last planned page came
    back full where fewer rows were due holds more than its Count says: its next page is asked
    (`go_on`), until one comes back short of a full page, or PAST_LIST_PAGES pages on (a report
    without end is a hostile answer: the batch stays open)."""

    def __init__(self, plan: dict[int, tuple[int, Sequence[int]]]):
        self.plan = plan
        self.left = {batch: len(indexes) for batch, (_, indexes) in plan.items()}  # planned, not yet asked
        self.cut: set[int] = set()
        self.found: deque[tuple[int, int, int | None]] = deque()
        self.past: dict[int, int] = {}  # pages asked past a batch's plan
        self._planned = self._in_plan()

    def _in_plan(self) -> Iterator[tuple[int, int, int | None]]:
        for batch, (count, indexes) in self.plan.items():
            for index in indexes:
                if batch in self.cut:
                    break
                self.left[batch] -= 1
                yield batch, index, count

    def __iter__(self) -> _Jobs:
        return self

    def __next__(self) -> tuple[int, int, int | None]:
        return self.found.popleft() if self.found else next(self._planned)

    def stop(self, batch: int) -> int:
        """Ask no further page of `batch`; returns how many of its planned pages that leaves unasked."""
        self.cut.add(batch)
        left, self.left[batch] = self.left[batch], 0
        return left

    def go_on(self, answer: _PageAnswer) -> bool:
        """Ask the page after `answer`'s (no rows are due on it: it is not short), unless it is planned."""
        after = int(answer.rows["row"][0]) + DELIVERY_PAGE
        if answer.batch in self.cut or after in self.plan[answer.batch][1]:
            return False
        self.past[answer.batch] = self.past.get(answer.batch, 0) + 1
        if self.past[answer.batch] > PAST_LIST_PAGES:
            self.cut.add(answer.batch)
            return False
        self.found.append((answer.batch, after, self.plan[answer.batch][0]))
        return True


def _answers(futures: list[Future]) -> Iterator[_PageAnswer]:
    """The answers of the `futures` that did not fail."""
    return (future.result() for future in futures if future.exception() is None)


def _refuse(run: _Run, futures: list[Future], batches: dict[Future, int]) -> None:
    """Note each batch whose page failed with an answer waiting will not change: the run ends
    failed, naming them, once every other report is read; past REFUSED_BATCHES of them it stops
    at once. Taken for weather, such an answer was met at every run, each recorded `ok`."""
    for future in futures:
        error = future.exception()
        if isinstance(error, TransportError) and not transient(error):  # not the account's state: that ends it
            run.refuse(batches[future], error)


def _stranger(batch: int) -> AnswerError:
    return AnswerError(
        f"The report of batch {batch} named other recipients than those stored for its rows: not this "
        "batch's answer (a stale or misrouted page, as a caching proxy may serve); none of it was taken",
        "گزارش این ارسال گیرندگانی جز گیرندگان ذخیره‌شده را نام برد؛ پذیرفته نشد",
        operation="GetBatchDelivery",
        retryable=False,
    )


def _refuse_repeats(client: PanelClient, futures: list[Future], seen: set[tuple[int, int]]) -> None:
    for answer in _answers(futures):
        if answer.fingerprint is not None:
            refuse_repeat(client, answer.batch, int(answer.rows["row"][0]), answer.fingerprint, seen)


def fingerprint(page: DeliveryPage) -> int | None:
    """Of a report page's numbers, in order (None: no rows), for `refuse_repeat`."""
    return hash(tuple(page.numbers)) if len(page) else None


def refuse_repeat(
    client: PanelClient, batch: int, index: int, page_fingerprint: int | None, seen: set[tuple[int, int]]
) -> None:
    """Refuse, before it is stored, a page holding the same numbers as another page of its batch
    in this reading (`seen`) when the service ignores `index`. Stored, each such page would add the
    same recipients at new rows, and a batch listed with billions would be read for hours. A batch
    sent to the same numbers twice repeats a page too, and is read: refused, it stopped every sync."""
    if page_fingerprint is None:
        return
    if (batch, page_fingerprint) in seen and _ignores_index(client, batch):
        raise AnswerError(
            f"The report page of batch {batch} at row {index} repeats another page of it: the service "
            "seems to ignore the index; stopped so as not to store the same recipients twice.",
            "سرویس همان صفحه گزارش تحویل را دوباره برگرداند",
            operation="GetBatchDelivery",
            field="index",
            value=str(index),
            retryable=False,
        )
    seen.add((batch, page_fingerprint))


def _ignores_index(client: PanelClient, batch: int) -> bool:
    """Whether the service answers rows at PROBE_INDEX, a row no report reaches. "No such batch"
    there heeds the index too (a service may say so past the end); one that ignores it answers
    the same rows at every index."""
    try:
        return len(client.get_batch_delivery(batch, PROBE_INDEX, DELIVERY_PAGE)) > 0
    except NotFoundError:
        return False


def _arrivals(finished: queue.SimpleQueue, timeout: float) -> list[Future]:
    """The futures done by now, waiting up to `timeout` seconds for the first one."""
    try:
        done = [finished.get(timeout=timeout) if timeout > 0 else finished.get_nowait()]
    except queue.Empty:
        return []
    while not finished.empty():
        done.append(finished.get_nowait())
    return done


def _submit(run: _Run, jobs, in_flight: dict[Future, int], waiting_for: int, when_done: Callable) -> None:
    """Queue the next jobs until every worker has IN_FLIGHT_PER_WORKER pages to fetch (pages
    arrived and not yet committed do not count: the workers keep fetching while they wait);
    each job calls `when_done` with its future when it ends."""
    if waiting_for >= run.workers * IN_FLIGHT_PER_WORKER:
        return
    for batch, index, recipients in jobs:
        future = run.fetch(_read_delivery_page, run.client, batch, index, recipients)
        in_flight[future] = batch
        future.add_done_callback(when_done)
        waiting_for += 1
        if waiting_for >= run.workers * IN_FLIGHT_PER_WORKER:
            return


def _commit_wave(run: _Run, finished, in_flight: dict, outstanding: dict, doubts: _Doubts) -> None:
    """Store one wave of arrived pages; a batch is finished when its last page asked has arrived,
    and closed if none of its pages was unknown, failed or short. An unknown or short one starts
    its grace period (closed as gone after it); one still unknown is counted when asked again."""
    frames, ended = [], []
    for future in finished:
        batch = in_flight.pop(future)
        try:
            answer = future.result()
        except TransportError:  # the batch stays open: the next run asks again (see _refuse)
            doubts.failed.add(batch)
            answer = _PageAnswer(batch, Rows({}))
        if answer.rows is None:
            doubts.unknown.add(batch)
        elif len(answer.rows):
            frames.append(answer.rows)
        outstanding[batch] -= 1
        if outstanding[batch] == 0:
            ended.append(batch)
    done = [b for b in ended if doubts.settled(b) and b not in run.refused]
    doubtful = [b for b in ended if b in doubts.unknown or b in doubts.cut]
    rows = Rows.concat(frames) if frames else None
    new, updated, short, strangers = run.store.save_delivery_pages(rows, done, doubtful, run.now())
    for batch in strangers:
        doubts.failed.add(batch)
        run.refuse(batch, _stranger(batch))
    run.summary.batches_open += len(short) + sum(1 for b in ended if not doubts.settled(b) and b not in doubts.unknown)
    run.counted("deliveries", new, updated, pages=len(finished))
