"""A dlt source: the panel's messages and delivery reports into any destination dlt loads.

Each account is one resource, so several accounts are read at once (dlt runs parallelized
resources on its own threads) and each keeps its own state. A resource writes five tables,
every row carrying its account:

- `messages` (merge on account, message_id) from the same message walk as the DuckDB sync;
- `deliveries` (merge on account, batch_id, row): every new batch read in full, then only the
  pages of young batches with recipients still in flight; a report is read past its listed
  recipients and a page repeating another of its batch is refused as the sync does (its rules,
  `sync.goes_on` and `sync.refuse_repeat`);
- `delivery_events` (one row per observed change of a recipient's status; keyed by account,
  batch_id, row, status, so that a package loaded twice after a crash is still stored once);
- `batches` (merge on account, batch_id) and `sync_runs` (one row per account and run).

The walk positions and the book of reports to read again live in dlt's resource state, which
dlt commits together with the load package that holds the rows they describe: a load killed at
any point is extracted again from the last committed state, and the merges keep every row once.
Pages go to dlt as Arrow tables built from the page reader's columns.

With `rows_per_load`, an account's load stops walking once it has handed over that many
messages (each stream still takes a page, so every load moves on) and begins no report once it
has handed over that many delivery rows; its walks are saved where they stopped, and its state
is marked "more": the next load goes on from there (`loading.finish_and_run` runs loads until
none is marked). dlt stages and merges a whole package at once, so this bound is what bounds the
merge's memory, whatever the history's size.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

import dlt
import pandas as pd
import pyarrow as pa

from ..accounts import Account, load_accounts
from ..client import DELIVERY_PAGE, MESSAGES_PAGE, RECEIVED, SENT, PanelClient
from ..client.rows import message_frame
from ..dates import TEHRAN, moment
from ..errors import InputError, NotFoundError, PayamakError, SyncError
from ..patience import MAX_WORKERS
from ..sync import PAST_LIST_PAGES, fingerprint, goes_on, refuse_repeat
from ..walk import MessageWalk
from .book import BatchFacts, DeliveryBook, PageRows

TABLES = {
    "messages": ("merge", ["account", "message_id"]),
    "deliveries": ("merge", ["account", "batch_id", "row"]),
    "delivery_events": ("merge", ["account", "batch_id", "row", "status"]),
    "batches": ("merge", ["account", "batch_id"]),
    "sync_runs": ("merge", ["account", "run_id"]),
}
EPOCH = pd.Timestamp(0, tz="UTC")
FLUSH_ROWS = 20_000  # delivery rows handed to dlt at a time
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


@dataclass
class LoadOptions:
    workers: int = 4
    since: datetime | None = None
    deliveries: bool = True
    rows_per_load: int | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(TEHRAN))


def payamak_source(
    client: PanelClient | None = None,
    *,
    accounts: Sequence[Account] | str | None = None,
    account: str | None = None,
    lines: Sequence[str] = (),
    workers: int = 4,
    since=None,
    deliveries: bool = True,
    rows_per_load: int | None = None,
    now: Callable[[], datetime] | None = None,
):
    """The source for one client (its account named `account`, by default its user name; `lines`
    limits its messages to those lines) or for the accounts of a TOML file (a path) or a list of
    `Account`s. `since` limits how far back a first load reaches; `rows_per_load` bounds the
    messages and the delivery rows of each account in one load (the rest waits for the next
    load); `now` is the clock that decides which reports are younger than a week."""
    if (client is None) == (accounts is None):
        raise InputError(
            "Give either a PanelClient (one account) or accounts= (a TOML file or a list of Account).",
            "یا یک کلاینت یا فهرست حساب ها را بدهید",
        )
    if not _whole(workers) or workers > MAX_WORKERS:
        raise InputError(
            f"workers must be a whole number from 1 to {MAX_WORKERS}, not {workers!r}.", "تعداد کارگرها نامعتبر"
        )
    if rows_per_load is not None and not _whole(rows_per_load):
        raise InputError(
            f"rows_per_load must be None or a whole number of at least 1, not {rows_per_load!r}.",
            "حد ردیف های هر بار بارگذاری نامعتبر",
        )
    options = LoadOptions(workers, None if since is None else moment(since), deliveries, rows_per_load)
    if now is not None:
        options.now = now
    if client is not None:
        readers = [(_checked_name(account or client.username), lambda: client, tuple(str(x) for x in lines))]
    else:
        listed = load_accounts(accounts) if isinstance(accounts, (str, os.PathLike)) else list(accounts)
        if not all(isinstance(a, Account) for a in listed):
            raise InputError(
                "accounts= takes the path of a TOML file or a list of payamak_analytics.accounts.Account.",
                "فهرست حساب ها نامعتبر است",
            )
        readers = [(_checked_name(a.name), a.client, a.lines) for a in listed]
    names = [name for name, _, _ in readers]
    if not names or len(set(names)) != len(names):
        raise InputError(f"Give at least one account, each with its own name, not {names}.", "نام حساب ها تکراری است")
    return _source([_account_resource(name, make, lines, options) for name, make, lines in readers])


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def more_to_load(pipeline, source) -> list[str]:
    """The selected accounts (resources) of `source` whose last load stopped at `rows_per_load`."""
    resources = pipeline.state.get("sources", {}).get(source.name, {}).get("resources", {})
    return [name for name in source.selected_resources if resources.get(name, {}).get("more", False)]


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not _ACCOUNT_NAME.fullmatch(name):
        raise InputError(
            f"The account name {name!r} must be letters, digits, '-' or '_' (at most 63); pass account=.",
            "نام حساب نامعتبر است",
        )
    return name


@dlt.source(name="payamak", max_table_nesting=0)
def _source(resources: list):
    return resources


def _account_resource(name: str, make_client: Callable[[], PanelClient], lines: tuple[str, ...], options: LoadOptions):
    def read_account() -> Iterator:
        state = dlt.current.resource_state()
        try:
            load = AccountLoad(name, make_client(), lines, state, options)
        except PayamakError as error:
            raise SyncError(
                f"Account {name!r}: {error}", error.message_fa, operation=error.operation, code=error.code
            ) from error
        try:
            yield from load.items()
        except PayamakError as error:
            raise SyncError(
                f"Account {name!r}: {error}. Nothing of this load was committed; run it again.",
                error.message_fa,
                operation=error.operation,
                code=error.code,
            ) from error
        finally:
            load.close()

    resource = dlt.resource(read_account, name=f"account_{name}", parallelized=True)
    for table, (disposition, key) in TABLES.items():
        resource.apply_hints(
            table_name=table, write_disposition=disposition, primary_key=key, create_table_variant=True
        )
    return resource


def _item(table: pa.Table, name: str):
    """`table` bound for the table `name`, its key columns marked as never null (as dlt marks them)."""
    keys = TABLES[name][1]
    schema = pa.schema([f.with_nullable(False) if f.name in keys else f for f in table.schema])
    return dlt.mark.with_table_name(table.cast(schema), name)


class AccountLoad:
    """One account's part of one load: its message walks, then its delivery reports."""

    def __init__(self, name: str, client: PanelClient, lines: tuple[str, ...], state: dict, options: LoadOptions):
        self.name, self.client, self.lines, self.state, self.options = name, client, lines, state, options
        self.pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix=f"payamak-{name}")
        self.book = DeliveryBook(state.setdefault("reports", {}))
        self.cut = False  # whether this load stopped at its bound with something left
        # the bounded loads that follow one another until nothing is left share a round: a batch
        # read in the round is not planned again in it (young ones are due at every load)
        self.round = (state.get("round") if state.get("more") else None) or uuid.uuid4().hex[:12]
        self.facts = {"message_pages": 0, "rereads": 0, "messages": 0, "delivery_pages": 0, "deliveries": 0}
        self.calls_before = sum(client.calls.values())
        self.retries_before = sum(client.retries.values())
        self.started = options.now()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def full(self, rows: str) -> bool:
        """Whether this load has handed over `rows_per_load` rows of `rows` ("messages", "deliveries")."""
        bound = self.options.rows_per_load
        return bound is not None and self.facts[rows] >= bound

    def items(self) -> Iterator:
        walks = self.state.setdefault("walks", {})
        for direction, stream in ((SENT, "sent"), (RECEIVED, "received")):
            yield from self._messages(direction, walks, f"{stream}/{','.join(self.lines) or '*'}")
        if self.options.deliveries:
            now = self.options.now()
            bounded = self.options.rows_per_load is not None
            for plan in self.book.plans(now, self.round if bounded else None):
                yield from self._deliveries(plan, now)
                if self.cut:  # batches of plans not handed out stay unread in the book
                    break
        self.book.save()
        self.state["more"] = self.cut
        if self.cut:
            self.state["round"] = self.round
        else:
            self.state.pop("round", None)
        yield _item(self._run_row(), "sync_runs")

    # --- messages -----------------------------------------------------------------------------
    def _messages(self, direction: int, walks: dict, stream: str) -> Iterator:
        """Walk one stream with pages read ahead, until it ends or the load is full (after one
        page at least); the walk decides what each page contributes, and its saved state resumes
        it in the next load."""
        walk = MessageWalk(walks.get(stream), since=self.options.since)
        resumed = bool((walks.get(stream) or {}).get("walk"))  # begun by an earlier load
        known_top = walk.state.stop_at
        in_flight: dict[int, Future] = {}
        ahead, accepted = (1 if walk.incremental else 2), 0
        try:
            while not walk.done and not (accepted and self.full("messages")):
                for index in walk.to_read(in_flight, ahead):
                    in_flight[index] = self.pool.submit(
                        self.client.messages_page, direction, self.lines, index, MESSAGES_PAGE
                    )
                index = walk.awaited
                accepted_rows = walk.accept(index, in_flight.pop(index).result().arrays)
                self.facts["message_pages"] += 1
                if accepted_rows is None:
                    self.facts["rereads"] += 1
                    continue
                accepted += 1
                rows = message_frame(accepted_rows)
                if direction == SENT:
                    self._new_batches(rows, known_top)
                if len(rows):
                    self.facts["messages"] += len(rows)
                    yield _item(self._arrow(rows), "messages")
                ahead = min(ahead * 2, self.options.workers)
        finally:
            for future in in_flight.values():
                future.cancel()
        walks[stream] = walk.saved()
        # a walk begun by an earlier load ended below what was sent since it began: one more
        # load walks from the top, so a round ends caught up with what was sent before it ended
        self.cut |= not walk.done or resumed

    def _new_batches(self, rows: pd.DataFrame, known_top: int | None) -> None:
        """Every sent record with recipients is a batch (its MessageId is its batchSmsId)."""
        fresh = (rows["count"].fillna(0) > 0).to_numpy(bool)
        if known_top is not None:
            fresh &= (rows["message_id"] > known_top).to_numpy(bool)
        if fresh.any():
            chosen = rows[fresh]
            sent_at = ((chosen["action_datetime"] - EPOCH) / pd.Timedelta(seconds=1)).to_numpy("float64", na_value=0.0)
            self.book.add(
                chosen["message_id"].to_numpy("int64"),
                chosen["sender"].fillna("").tolist(),
                chosen["count"].to_numpy("int64"),
                sent_at,
            )

    def _arrow(self, rows: pd.DataFrame) -> pa.Table:
        table = pa.Table.from_pandas(rows, preserve_index=False)
        for i, column in enumerate(table.schema):
            if pa.types.is_dictionary(column.type):  # enum names as plain text in every warehouse
                table = table.set_column(i, column.name, table.column(i).cast(pa.string()))
        return table.add_column(0, "account", pa.array([self.name] * len(table), pa.string()))

    # --- delivery reports ---------------------------------------------------------------------
    def _deliveries(self, plan: dict[int, list[int]], now: datetime) -> Iterator:
        """Read the planned pages concurrently, and before them any page found past a batch's
        plan; a batch is closed in the book with its last page (batches the load had no room for
        are not, and are planned again)."""
        reading = ReportReading(plan, DeliveryBuffer(self.name, now))
        jobs = self._jobs(plan)
        in_flight: dict[Future, tuple[int, int]] = {}
        try:
            while True:
                room = max(self.options.workers * 2 - len(in_flight), 0)
                for job in itertools.islice(itertools.chain(reading.found_jobs(), jobs), room):
                    in_flight[self.pool.submit(self._page, *job)] = job
                if not in_flight:
                    break
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    self._take(*in_flight.pop(future), future.result(), reading, now)
                if reading.buffer.size >= FLUSH_ROWS:
                    yield from reading.buffer.flush()
        finally:
            for future in in_flight:
                future.cancel()
        yield from reading.buffer.flush()

    def _jobs(self, plan: dict[int, list[int]]) -> Iterator[tuple[int, int]]:
        """(batch, page) to read, batch by batch; no batch is begun once the load is full (one begun
        is read to its end: a batch stays in the book until a load has read all its planned pages)."""
        for batch, indexes in plan.items():
            if self.full("deliveries"):
                self.cut = True
                return
            if self.options.rows_per_load is not None:
                self.book.begun(batch, self.round)
            for index in indexes:
                yield batch, index

    def _page(self, batch: int, index: int):
        try:
            return self.client.get_batch_delivery(batch, index, DELIVERY_PAGE)
        except NotFoundError:
            return None  # asked again in a later load, until the report window has passed

    def _take(self, batch: int, index: int, page, reading: ReportReading, now: datetime) -> None:
        self.facts["delivery_pages"] += 1
        if page is None:
            reading.missing.add(batch)
        else:
            refuse_repeat(self.client, batch, index, fingerprint(page), reading.seen)
            rows = self.book.page(batch, index, page.numbers, [s.code for s in page.statuses])
            reading.read[batch].append(rows)
            reading.buffer.page(rows)
            self.facts["deliveries"] += len(rows.rows)
            if goes_on(self.book.recipients(batch), index, len(page)):
                reading.go_on(batch, index)
        reading.outstanding[batch] -= 1
        if reading.outstanding[batch]:
            return
        pages = reading.read.pop(batch)
        if batch in reading.missing:
            self.book.missing(batch, now)
        else:
            reading.buffer.batch(self.book.close(batch, pages, now, cut=batch in reading.cut))

    def _run_row(self) -> pa.Table:
        finished = self.options.now()
        row = {
            "account": self.name,
            "run_id": uuid.uuid4().hex,
            "started_at": self.started,
            "finished_at": finished,
            "calls": sum(self.client.calls.values()) - self.calls_before,
            "retries": sum(self.client.retries.values()) - self.retries_before,
            **self.facts,
            "batches_to_read": self.book.waiting,
            "batches_unreadable": self.book.unreadable,
        }
        return pa.Table.from_pylist([row])


@dataclass
class ReportReading:
    """The pages planned for this load, the pages found past a batch's plan (`go_on`), and what
    has come back of them; `seen` holds each page's numbers for `sync.refuse_repeat`."""

    plan: dict[int, list[int]]
    buffer: DeliveryBuffer
    read: dict[int, list[PageRows]] = field(init=False)
    outstanding: dict[int, int] = field(init=False)
    missing: set[int] = field(default_factory=set)
    seen: set[tuple[int, int]] = field(default_factory=set)
    found: deque[tuple[int, int]] = field(default_factory=deque)
    past: dict[int, int] = field(default_factory=dict)  # pages asked past a batch's plan
    cut: set[int] = field(default_factory=set)  # batches whose report went on too far past their plan

    def __post_init__(self) -> None:
        self.read = {batch: [] for batch in self.plan}
        self.outstanding = {batch: len(indexes) for batch, indexes in self.plan.items()}

    def go_on(self, batch: int, index: int) -> None:
        """Ask the page after `index`, unless it is planned; a report that has not ended
        PAST_LIST_PAGES pages past its plan is a hostile answer: the batch is cut, not read in full."""
        after = index + DELIVERY_PAGE
        if batch in self.cut or after in self.plan[batch]:
            return
        self.past[batch] = self.past.get(batch, 0) + 1
        if self.past[batch] > PAST_LIST_PAGES:
            self.cut.add(batch)
            return
        self.found.append((batch, after))
        self.outstanding[batch] += 1

    def found_jobs(self) -> Iterator[tuple[int, int]]:
        while self.found:
            yield self.found.popleft()


class DeliveryBuffer:
    """Delivery rows, events and batch facts gathered as columns, handed over as Arrow tables."""

    def __init__(self, account: str, observed_at: datetime):
        self.account, self.observed_at = account, observed_at
        self._reset()

    def _reset(self) -> None:
        self.columns: dict[str, list] = {
            k: [] for k in ("batch_id", "row", "number", "operator", "status", "final", "expired")
        }
        self.events: dict[str, list] = {k: [] for k in ("batch_id", "row", "status")}
        self.batches: list[BatchFacts] = []
        self.size = 0

    def page(self, rows: PageRows) -> None:
        c = self.columns
        c["batch_id"] += [rows.batch_id] * len(rows.rows)
        c["row"] += rows.rows
        c["number"] += rows.numbers
        c["operator"] += rows.operators
        c["status"] += rows.statuses
        c["final"] += rows.final
        c["expired"] += rows.expired
        self.events["batch_id"] += [rows.batch_id] * len(rows.changed)
        self.events["row"] += [rows.rows[i] for i in rows.changed]
        self.events["status"] += [rows.statuses[i] for i in rows.changed]
        self.size += len(rows.rows)

    def batch(self, facts: BatchFacts) -> None:
        self.batches.append(facts)

    def flush(self) -> Iterator:
        if self.columns["batch_id"]:
            yield _item(self._table(self.columns, "last_checked"), "deliveries")
        if self.events["batch_id"]:
            yield _item(self._table(self.events, "observed_at"), "delivery_events")
        if self.batches:
            facts = {
                "batch_id": [b.batch_id for b in self.batches],
                "line": [b.line for b in self.batches],
                "recipients": [b.recipients for b in self.batches],
                "sent_at": [datetime.fromtimestamp(b.sent_at, TEHRAN) for b in self.batches],
                "complete": [b.complete for b in self.batches],
                "pending": [b.pending for b in self.batches],
            }
            yield _item(self._table(facts, "last_checked"), "batches")
        self._reset()

    def _table(self, columns: dict[str, list], stamp: str) -> pa.Table:
        n = len(next(iter(columns.values())))
        arrays = {"account": pa.array([self.account] * n, pa.string())}
        arrays.update({name: values for name, values in columns.items()})
        arrays[stamp] = pa.array([self.observed_at] * n, pa.timestamp("us", tz="UTC"))
        return pa.table(arrays)
