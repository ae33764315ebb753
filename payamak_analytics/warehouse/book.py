"""Which delivery reports a load reads, and what changed in them: kept in the loader's own state.

A loader that writes to a warehouse cannot ask the warehouse what it stored, so the book keeps,
as a small JSON-able dict, every batch that still needs reading: new batches (read in full
once), and young batches (under the service's seven-day report window) with recipients still
in flight, with the last status of each of their rows. From that it plans the pages to read,
turns each page into rows and status changes (-3 freezes the last status seen, -1 keeps it),
and forgets a batch once every row is final or its report has expired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .. import codes, phone
from ..client.panel import DELIVERY_PAGE
from ..errors import PayamakError

REPORT_WINDOW = timedelta(days=7)
EXPIRED, PROVIDER_ERROR = -3, -1


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


class DeliveryBook:
    """The batches to read, as the dict `saved` (the loader's state, changed in place)."""

    def __init__(self, saved: dict):
        self.batches: dict[str, dict] = saved
        self._operators: dict[str, str] = {}
        self.unreadable = 0  # batches given up on: unknown to the service past the report window

    def add(self, batch_id: int, line: str, recipients: int, sent_at: datetime) -> None:
        """A batch seen for the first time: its report will be read in full."""
        self.batches.setdefault(
            str(batch_id),
            {"line": line, "recipients": int(recipients), "sent_at": sent_at.timestamp(), "pages": None},
        )

    def plan(self, now: datetime) -> dict[int, list[int]]:
        """{batch: page indexes}: every page of unread batches, the in-flight pages of young ones.

        A batch read before whose report has expired is forgotten (its last statuses stay);
        one never read is still asked once, and forgotten if the service no longer knows it.
        """
        young_after = (now - REPORT_WINDOW).timestamp()
        plan = {}
        for key, entry in list(self.batches.items()):
            if entry["pages"] is None:
                pages = max(math.ceil(entry["recipients"] / DELIVERY_PAGE), 1)
                plan[int(key)] = [1 + DELIVERY_PAGE * k for k in range(pages)]
            elif entry["sent_at"] <= young_after:
                del self.batches[key]
            else:
                plan[int(key)] = sorted(int(index) for index in entry["pages"])
        return plan

    def missing(self, batch_id: int, now: datetime) -> None:
        """The service said it has no such batch: ask again next time, until the window has passed."""
        entry = self.batches.get(str(batch_id))
        if entry is not None and entry["sent_at"] <= (now - REPORT_WINDOW).timestamp():
            del self.batches[str(batch_id)]
            self.unreadable += 1

    def page(self, batch_id: int, index: int, numbers: list[str], statuses: list[int]) -> PageRows:
        """The rows of one page, measured against the statuses this book last saw on it."""
        entry = self.batches[str(batch_id)]
        before = (entry["pages"] or {}).get(str(index))
        out = PageRows(batch_id, list(range(index, index + len(numbers))), numbers, [], [], [], [])
        for i, (number, code) in enumerate(zip(numbers, statuses)):
            previous = before[i] if before is not None and i < len(before) else None
            kept = previous if code in (EXPIRED, PROVIDER_ERROR) and previous is not None else code
            out.statuses.append(kept)
            out.expired.append(code == EXPIRED)
            out.final.append(code == EXPIRED or codes.delivery_status(kept).final)
            out.operators.append(self._operator(number))
            if code != PROVIDER_ERROR and (previous is None or (code != EXPIRED and code != previous)):
                out.changed.append(i)
        return out

    def close(self, batch_id: int, pages: list[PageRows], complete_pages: bool, now: datetime) -> BatchFacts:
        """Record what a read of the batch's planned pages showed; the batch is forgotten when
        nothing in it can change any more."""
        key = str(batch_id)
        entry = self.batches[key]
        remembered = {} if entry["pages"] is None else dict(entry["pages"])
        for page in pages:
            index = str(page.rows[0]) if page.rows else None
            if index is None:
                continue
            if all(page.final):
                remembered.pop(index, None)
            else:
                remembered[index] = page.statuses
        first_read = entry["pages"] is None
        complete = complete_pages and (not first_read or sum(len(p.rows) for p in pages) >= entry["recipients"])
        young = entry["sent_at"] > (now - REPORT_WINDOW).timestamp()
        pending = sum(not final for statuses in remembered.values() for final in self._finals(statuses))
        if not young or (complete and not remembered):
            del self.batches[key]  # nothing in it can change, or the service no longer tells
            self.unreadable += not complete
        elif complete or not first_read:
            entry["pages"] = remembered
        return BatchFacts(batch_id, entry["line"], entry["recipients"], entry["sent_at"], complete, pending)

    @staticmethod
    def _finals(statuses: list[int]) -> list[bool]:
        return [codes.delivery_status(s).final for s in statuses]

    def _operator(self, number: str) -> str:
        prefix = number[:6]
        if prefix not in self._operators:
            try:
                self._operators[prefix] = phone.operator(number)
            except PayamakError:
                self._operators[prefix] = "Unknown"
        return self._operators[prefix]
