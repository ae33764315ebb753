"""The walk over one stream of messages (sent or received), newest first, as plain steps.

The service pages by row offset, newest first, and new messages push every row down while a
walk reads. So pages are requested overlapping by one row: a page must show again the last
row of the page before it; one that does not has lost sight of it (rows slipped past) and is
read again. One that still starts below that row was moved up by rows deleted above it (or the
service skipped rows): the walk reads from further up until a page reaches back to it. A walk
ends at a short page, at the first page that reaches what an earlier walk stored, or at `since`.
Its state is a small dict, committed with the rows it describes, so a walk stopped anywhere
resumes at the page it reached. No I/O here: any loader can drive it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np

from .client import MESSAGES_PAGE
from .client.rows import Rows
from .dates import moment
from .errors import AnswerError

MAX_REREADS = 3  # a row that never comes back was deleted, not pushed
# Times a walk reads from half a page further up: rows deleted above it while it reads (a few
# times in a walk at most); a service that keeps answering from further down is refused.
STEPS_BACK = 16


@dataclass
class WalkState:
    top_id: int | None = None  # the newest id stored by the last walk that finished
    next_index: int = 1  # the offset of the next page to accept
    stop_at: int | None = None  # top_id when this walk began: a page reaching it ends the walk
    walk_top: int | None = None  # the newest id this walk has stored
    last_id: int | None = None  # the last row of the page accepted last: the next page shows it again
    walking: bool = False

    @classmethod
    def load(cls, saved: dict | None) -> WalkState:
        """From the stored form {"top_id": ..., "walk": {...} or None}."""
        saved = saved or {}
        walk = saved.get("walk")
        if not walk:
            return cls(top_id=saved.get("top_id"))
        known = {k: walk.get(k) for k in ("next_index", "stop_at", "walk_top", "last_id")}
        return cls(top_id=saved.get("top_id"), walking=True, **known)

    def dump(self) -> dict:
        walk = {k: v for k, v in asdict(self).items() if k not in ("top_id", "walking")} if self.walking else None
        return {"top_id": self.top_id, "walk": walk}


class MessageWalk:
    """One walk: which pages to read next, what to keep of each page, what to commit."""

    def __init__(
        self,
        saved: dict | None = None,
        *,
        since: datetime | str | None = None,
        page_size: int = MESSAGES_PAGE,
        max_rereads: int = MAX_REREADS,
    ):
        self.state = WalkState.load(saved)
        if not self.state.walking:  # a new walk, down to what the last one stored
            self.state = WalkState(top_id=self.state.top_id, stop_at=self.state.top_id, walking=True)
        # as the rows' times are held: UTC, to the microsecond
        self.since = None if since is None else np.datetime64(moment(since).astimezone(UTC).replace(tzinfo=None), "us")
        self.page_size = page_size
        self.max_rereads = max_rereads
        self.rereads = 0  # in a row, for the page awaited now
        self.rereads_total = 0
        self.steps_back = 0
        self.stuck = 0  # full pages in a row that went no deeper than the one before
        self.done = False

    @property
    def incremental(self) -> bool:
        """Whether an earlier walk stored this stream (then one page is usually all it takes)."""
        return self.state.stop_at is not None

    @property
    def step(self) -> int:
        return self.page_size - 1  # pages overlap by one row

    def to_read(self, in_flight, ahead: int) -> list[int]:
        """Offsets to request now: the page awaited and up to `ahead` - 1 after it, minus those
        already requested."""
        if self.done:
            return []
        wanted = (self.state.next_index + k * self.step for k in range(max(ahead, 1)))
        return [index for index in wanted if index not in in_flight]

    @property
    def awaited(self) -> int:
        """The offset of the page to accept next (pages are accepted in order)."""
        return self.state.next_index

    def accept(self, index: int, rows: Rows) -> Rows | None:
        """The rows of the page at `index` to store, or None: read that page again."""
        if self.done or index != self.state.next_index:
            raise RuntimeError(f"page {index} accepted out of order (awaiting {self.state.next_index})")
        if missing_ids := np.ma.count_masked(rows["message_id"]):
            raise _refused(
                index,
                f"holds {missing_ids} record(s) without a MessageId, which can be neither stored nor paged past",
                "MessageId",
            )
        ids = np.ma.getdata(rows["message_id"])
        last = self.state.last_id
        overlap = (ids == last).nonzero()[0] if last is not None else []
        # The page before was full, so an empty page after it (anywhere but at the top) was emptied
        # by rows deleted above: it starts below that row as much as one whose first row is older.
        missing = last is not None and not len(overlap) and (len(rows) or index > 1)
        if missing and self.rereads < self.max_rereads:
            self.rereads += 1
            self.rereads_total += 1
            return None
        if missing and index > 1 and (not len(rows) or int(ids[0]) < last):
            return self._step_back(index)  # (a page at the top has nothing above it to miss)
        full = len(rows) >= self.page_size
        # A full page that ends on the row the page before ended on goes no deeper. Once, that is a
        # page of new messages pushed between two reads; page after page, it is a service (or a
        # proxy) that ignores `index`, which would otherwise be paged for ever.
        self.stuck = self.stuck + 1 if full and len(overlap) and int(overlap[0]) == len(rows) - 1 else 0
        if self.stuck > self.max_rereads:
            raise _refused(
                index,
                f"ends on the row the page before ended on, as did the {self.stuck - 1} pages before it: the "
                "service (or a proxy on the way) seems to ignore the index; stopped so as not to read for ever",
                "index",
            )
        self.rereads = 0
        page_last = int(ids[-1]) if len(rows) else last
        if len(overlap):  # rows up to the overlapping one were kept with the pages before
            rows = rows.take(slice(int(overlap[0]) + 1, None))
        too_old = rows["action_datetime"] < self.since if self.since is not None else None
        reached = self.state.stop_at is not None and bool((rows["message_id"] <= self.state.stop_at).any())
        if too_old is not None:
            rows = rows.take(~too_old)
        self._advance(page_last, rows)
        if not full or reached or (too_old is not None and bool(too_old.any())):
            self._finish()
        return rows

    def _step_back(self, index: int) -> None:
        """The page at `index` starts below the row the page before ended on: the rows between
        were moved up past it. Read from half a page further up (None: nothing to keep yet)."""
        self.steps_back += 1
        if self.steps_back > STEPS_BACK:
            raise _refused(
                index,
                f"starts below the row the page before ended on, after {STEPS_BACK} reads from further up in "
                "this walk: rows between would be lost",
                "index",
            )
        self.rereads = 0
        self.state.next_index = max(1, index - self.step // 2)

    def _advance(self, page_last: int | None, rows: Rows) -> None:
        self.state.next_index += self.step
        self.state.last_id = page_last
        if len(rows):
            top = int(rows["message_id"].max())
            self.state.walk_top = max(self.state.walk_top or top, top)

    def _finish(self) -> None:
        tops = [t for t in (self.state.top_id, self.state.walk_top) if t is not None]
        self.state = WalkState(top_id=max(tops) if tops else None)
        self.done = True

    def saved(self) -> dict:
        """The state to commit together with every row accepted so far."""
        return self.state.dump()


def _refused(index: int, what: str, field: str) -> AnswerError:
    """A page the walk cannot go on from, as the typed error a loader ends with."""
    return AnswerError(
        f"The GetMessages page at row {index} {what}. The service answered out of contract; report it with "
        "this message.",
        "صفحه پیام ها از سرویس نامعتبر بود و پیمایش متوقف شد",
        operation="GetMessages",
        field=field,
        value=str(index),
        retryable=False,
    )
