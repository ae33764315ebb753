"""Which delivery reports a load reads, and what changed in them: kept in the loader's own state.

A loader that writes to a warehouse cannot ask the warehouse what it stored, so the book keeps,
as a small JSON-able dict, every batch that still needs reading: new batches (read in full
once), and young batches (under the service's seven-day report window) with recipients still
in flight, with the last status of each of their rows. From that it plans the pages to read,
turns each page into rows and status changes (-3 freezes the last status seen, -1 keeps it, and
so does a status in flight after a final one), and forgets a batch once every row is final or
its report has expired.
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from .. import codes, phone, recheck
from ..client import DELIVERY_PAGE
from ..recheck import REPORT_WINDOW

MAX_REPORT_PAGES = 10_000  # a million recipients: no record of a panel claims more
BATCH_CHUNK = 2000  # new batches planned at a time, so a million of them never sit in memory as dicts
SEGMENT = 100_000  # unread batches packed together: at most what a load unpacks to add to them
EXPIRED, PROVIDER_ERROR = -3, -1


def _all_pages(recipients: int) -> range:
    """The page indexes of a whole report, at most MAX_REPORT_PAGES of them whatever a record claims."""
    pages = min(max(math.ceil(recipients / DELIVERY_PAGE), 1), MAX_REPORT_PAGES)
    return range(1, 1 + DELIVERY_PAGE * pages, DELIVERY_PAGE)


def _due(entry: dict, now: datetime) -> bool:
    """Whether a young batch read before is to be asked again (a book from before "checked" was kept: yes)."""
    checked = entry.get("checked")
    return checked is None or recheck.due(
        datetime.fromtimestamp(entry["sent_at"], now.tzinfo), datetime.fromtimestamp(checked, now.tzinfo), now
    )


def _keeps(previous: int, code: int) -> bool:
    """Whether a row keeps the status it had over `code`, as the store's merge does: -3 freezes it,
    -1 tells nothing, and a final status does not change (a status in flight after it is not taken:
    taken back, a delivery would be lost for good once the report expires)."""
    return code in (EXPIRED, PROVIDER_ERROR) or (
        codes.delivery_status(previous).final and not codes.delivery_status(code).final
    )


@dataclass
class PageRows:
    """One page as columns: the rows to merge and the status changes it showed."""

    batch_id: int
    rows: list[int]
    numbers: list[str]
    operators: list[str]
    statuses: list[int]
    final: list[bool]
    expired: list[bool]
    changed: list[int] = field(default_factory=list)  # positions whose status is a new event


@dataclass
class BatchFacts:
    """What a load records about a batch after reading it."""

    batch_id: int
    line: str
    recipients: int
    sent_at: float
    complete: bool
    pending: int


class Unread:
    """Batches seen but not read yet, oldest first, as columns: a first load can find a million
    of them, which as dicts would take hundreds of megabytes; packed, they go into the state as a
    few strings. The state holds them in segments of at most SEGMENT batches, and a load unpacks
    only the segments it takes from and the last one, which it adds to: the rest stay packed as
    they were, so a load's time and memory for the book do not grow with the batches waiting."""

    def __init__(self, packed: list[dict] | dict | None = None):
        if isinstance(packed, dict):  # a book saved before segments: one segment, without its size
            packed = [packed]
        # each segment is either packed (as in the state) or open: (lines, columns)
        self.segments: list[dict | tuple[list[str], tuple[np.ndarray, ...]]] = [
            segment if "n" in segment else _open(segment) for segment in packed or []
        ]

    def __len__(self) -> int:
        return sum(_size(segment) for segment in self.segments)

    def extend(self, batch_ids, lines, recipients, sent_at) -> None:
        last = self.segments[-1] if self.segments else None
        if last is not None and _size(last) < SEGMENT:  # added to the last segment, opened if packed
            known, columns = last if isinstance(last, tuple) else _open(last)
        else:
            known, columns = [], None
        codes_of = {line: code for code, line in enumerate(known)}
        codes_ = np.array([codes_of.setdefault(line, len(codes_of)) for line in lines], dtype=np.int32)
        added = (
            np.asarray(batch_ids, np.int64),
            codes_,
            np.asarray(recipients, np.int64),
            np.asarray(sent_at, np.float64),
        )
        if columns is not None:
            added = tuple(np.concatenate(pair) for pair in zip(columns, added))
            self.segments[-1] = (list(codes_of), added)
        else:
            self.segments.append((list(codes_of), added))

    def take(self, n: int) -> list[tuple[int, str, int, float]]:
        """The first `n` batches (batch, line, recipients, sent_at), removed from the columns."""
        taken: list[tuple[int, str, int, float]] = []
        while self.segments and len(taken) < n:
            first = self.segments[0]
            lines, columns = first if isinstance(first, tuple) else _open(first)
            k = n - len(taken)
            ids, codes_, recipients, sent_at = (column[:k] for column in columns)
            taken += [(int(b), lines[c], int(r), float(t)) for b, c, r, t in zip(ids, codes_, recipients, sent_at)]
            if len(columns[0]) > k:
                self.segments[0] = (lines, tuple(column[k:] for column in columns))
            else:
                self.segments.pop(0)
        return taken

    def pack(self) -> list[dict] | None:
        packed = [segment if isinstance(segment, dict) else _packed(*segment) for segment in self.segments]
        return [segment for segment in packed if segment["n"]] or None


def _size(segment) -> int:
    return segment["n"] if isinstance(segment, dict) else len(segment[1][0])


def _open(packed: dict) -> tuple[list[str], tuple[np.ndarray, ...]]:
    return list(packed["lines"]), tuple(_unpack(packed[name], dtype) for name, dtype in _COLUMNS)


def _packed(lines: list[str], columns: tuple[np.ndarray, ...]) -> dict:
    return {
        "n": len(columns[0]),
        "lines": lines,
        **{name: _pack(column) for (name, _), column in zip(_COLUMNS, columns)},
    }


_COLUMNS = (("batch_id", np.int64), ("line", np.int32), ("recipients", np.int64), ("sent_at", np.float64))


def _pack(column: np.ndarray) -> str:
    """Whole numbers as compressed differences: ids and times of a walk are nearly sorted, so a
    million batches take a few megabytes of state instead of tens."""
    steps = np.diff(np.rint(column).astype(np.int64), prepend=0)
    return base64.b64encode(zlib.compress(steps.tobytes(), 6)).decode("ascii")


def _unpack(text: str, dtype) -> np.ndarray:
    steps = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.int64)
    return np.cumsum(steps).astype(dtype)


class DeliveryBook:
    """The batches to read, kept in `saved` (the loader's state): `known` holds the batches read
    before that may still change, `unread` the batches seen and not read yet."""

    def __init__(self, saved: dict, chunk: int = BATCH_CHUNK):
        self.saved = saved
        self.batches: dict[str, dict] = saved.setdefault("known", {})
        self.unread = Unread(saved.get("unread"))
        self.chunk = chunk
        self.unreadable = 0  # batches given up on: unknown to the service past the report window

    def add(self, batch_ids, lines, recipients, sent_at) -> None:
        """Batches seen for the first time (columns; `sent_at` in epoch seconds): each will be read in full."""
        self.unread.extend(batch_ids, lines, recipients, sent_at)

    def save(self) -> None:
        """Write the unread batches into the state (the known ones are changed there in place)."""
        packed = self.unread.pack()
        if packed is None:
            self.saved.pop("unread", None)
        else:
            self.saved["unread"] = packed

    @property
    def waiting(self) -> int:
        return len(self.batches) + len(self.unread)

    def begun(self, batch_id: int, round_id: str) -> None:
        """Mark a batch as read in this round of bounded loads (`plans` passes it over in the round)."""
        entry = self.batches.get(str(batch_id))
        if entry is not None:
            entry["round"] = round_id

    def plans(self, now: datetime, round_id: str | None = None) -> Iterator[dict[int, list[int]]]:
        """{batch: page indexes} a chunk at a time: first the in-flight pages of young batches
        read before that are due again (`recheck`), and every page of those not read in full,
        then every page of new batches.

        A batch read before whose report has expired is forgotten (its last statuses stay);
        one never read is still asked once, and forgotten if the service no longer knows it.
        """
        young_after = (now - REPORT_WINDOW).timestamp()
        plan = {}
        for key, entry in list(self.batches.items()):
            if round_id is not None and entry.pop("round", None) == round_id:
                entry["round"] = round_id  # read earlier in this round: not again until it ends
            elif entry["pages"] is None:
                plan[int(key)] = _all_pages(entry["recipients"])
            elif entry["sent_at"] <= young_after:
                del self.batches[key]
            elif _due(entry, now):
                plan[int(key)] = sorted(int(index) for index in entry["pages"])
        if plan:
            yield plan
        while True:
            taken = self.unread.take(self.chunk)
            if not taken:
                return
            for batch, line, recipients, sent_at in taken:
                self.batches[str(batch)] = {"line": line, "recipients": recipients, "sent_at": sent_at, "pages": None}
            yield {batch: _all_pages(recipients) for batch, _, recipients, _ in taken}

    def missing(self, batch_id: int, now: datetime) -> None:
        """The service said it has no such batch: ask again next time, until the window has passed."""
        entry = self.batches.get(str(batch_id))
        if entry is not None and entry["sent_at"] <= (now - REPORT_WINDOW).timestamp():
            del self.batches[str(batch_id)]
            self.unreadable += 1

    def recipients(self, batch_id: int) -> int:
        """The recipients the list gave for a batch being read."""
        return self.batches[str(batch_id)]["recipients"]

    def page(self, batch_id: int, index: int, numbers: list[str], statuses: list[int]) -> PageRows:
        """The rows of one page, measured against the statuses this book last saw on it: a status
        kept (`_keeps`) is no change of status."""
        entry = self.batches[str(batch_id)]
        before = (entry["pages"] or {}).get(str(index))
        out = PageRows(batch_id, list(range(index, index + len(numbers))), numbers, [], [], [], [])
        for i, (number, code) in enumerate(zip(numbers, statuses)):
            previous = before[i] if before is not None and i < len(before) else None
            kept = previous is not None and _keeps(previous, code)
            status = previous if kept else code
            out.statuses.append(status)
            out.expired.append(code == EXPIRED)
            out.final.append(code == EXPIRED or codes.delivery_status(status).final)
            if code != PROVIDER_ERROR and (previous is None or (not kept and code != previous)):
                out.changed.append(i)
        out.operators = phone.operators(numbers)
        return out

    def close(self, batch_id: int, pages: list[PageRows], now: datetime, cut: bool = False) -> BatchFacts:
        """Record what a read of the batch's planned pages (and of those past them) showed; the
        batch is forgotten when nothing in it can change any more (every row final, or its report
        expired). A batch `cut` (its report read only so far past its list) is not read in full."""
        key = str(batch_id)
        entry = self.batches[key]
        read_now = {str(page.rows[0]): page for page in pages if page.rows}
        remembered = {i: s for i, s in (entry["pages"] or {}).items() if i not in read_now}
        pending = sum(not final for statuses in remembered.values() for final in self._finals(statuses))
        pending += sum(not final for page in read_now.values() for final in page.final)
        remembered.update({i: page.statuses for i, page in read_now.items() if not all(page.final)})
        first_read = entry["pages"] is None
        complete = not cut and (not first_read or sum(len(p.rows) for p in pages) >= entry["recipients"])
        expired = any(any(page.expired) for page in pages)  # -3: the service keeps no more of this batch
        young = entry["sent_at"] > (now - REPORT_WINDOW).timestamp() and not expired
        if not young or (complete and not remembered):
            del self.batches[key]
            self.unreadable += not complete
        elif complete or not first_read:
            entry["pages"] = remembered
            entry["checked"] = now.timestamp()
        return BatchFacts(batch_id, entry["line"], entry["recipients"], entry["sent_at"], complete, pending)

    @staticmethod
    def _finals(statuses: list[int]) -> list[bool]:
        return [codes.delivery_status(s).final for s in statuses]
