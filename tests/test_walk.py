"""The message walk on synthetic page sequences: no HTTP, no database."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from payamak_analytics.client.rows import Rows, message_rows
from payamak_analytics.dates import TEHRAN
from payamak_analytics.errors import AnswerError
from payamak_analytics.walk import MessageWalk

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=TEHRAN)
PAGE = 10  # small pages keep the sequences readable; the walk is the same at 1000


class Service:
    """A stream of message ids, newest first, paged by 1-based offset like GetMessages."""

    def __init__(self, count: int):
        self.ids = list(range(count, 0, -1))  # id n was sent n minutes after the oldest

    def push(self, n: int) -> None:
        """n new messages arrive: every row moves n places down."""
        top = self.ids[0] if self.ids else 0
        self.ids = list(range(top + n, top, -1)) + self.ids

    def page(self, index: int) -> Rows:
        """The page as the client reads it from the service's texts (Tehran time, no offset)."""
        ids = self.ids[index - 1 : index - 1 + PAGE]
        times = [NOW - timedelta(minutes=len(self.ids) - i) for i in ids]
        return message_rows(
            {"message_id": [str(i) for i in ids], "action_datetime": [t.strftime("%Y-%m-%dT%H:%M:%S") for t in times]}
        )


def walk_all(service: Service, walk: MessageWalk, *, between=lambda reads: None) -> list[int]:
    """Drive the walk one page at a time, as a loader would; returns every id kept."""
    kept, reads = [], 0
    while not walk.done:
        [index] = walk.to_read({}, 1)
        reads += 1
        between(reads)
        rows = walk.accept(index, service.page(index))
        if rows is not None:
            kept += rows["message_id"].tolist()
    return kept


def test_a_first_walk_keeps_every_row_once_and_ends_at_the_short_page():
    service = Service(35)
    walk = MessageWalk(page_size=PAGE)
    kept = walk_all(service, walk)
    assert sorted(kept) == list(range(1, 36)) and len(kept) == 35
    assert walk.saved() == {"top_id": 35, "walk": None}


@pytest.mark.parametrize("count", [0, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE])
def test_edges_of_a_page(count):
    kept = walk_all(Service(count), MessageWalk(page_size=PAGE))
    assert sorted(kept) == list(range(1, count + 1))


def test_rows_pushed_while_paging_are_neither_lost_nor_doubled():
    service = Service(50)
    walk = MessageWalk(page_size=PAGE)
    kept = walk_all(service, walk, between=lambda reads: service.push(3) if reads in (2, 4) else None)
    assert sorted(set(kept)) == list(range(1, 51))  # the 6 new ones are the next walk's
    assert walk.rereads_total == 0  # a push before a read only moves the overlap further down


def test_a_page_that_lost_sight_of_the_previous_one_is_read_again():
    service = Service(40)
    walk = MessageWalk(page_size=PAGE)
    first = walk.accept(1, service.page(1))
    [ahead] = [i for i in walk.to_read({}, 2) if i != walk.awaited]
    early = service.page(ahead)  # read ahead, before the messages below arrive
    service.push(4)
    assert walk.accept(walk.awaited, early) is None  # the overlap row is not on it: read again
    kept = first["message_id"].tolist()
    rows = walk.accept(walk.awaited, service.page(walk.awaited))
    kept += rows["message_id"].tolist()
    kept += walk_all(service, walk)
    assert sorted(kept) == list(range(1, 41)) and len(kept) == len(set(kept))


@pytest.mark.parametrize(
    "deleted",
    [[PAGE - 1], [PAGE - 3, PAGE - 2, PAGE - 1], [2, 5], list(range(PAGE + 3))],
    ids=["the overlap row", "it and two above it", "two rows above it", "more than a page"],
)
def test_rows_deleted_above_the_walk_between_two_reads_take_no_other_row_with_them(deleted):
    """Rows deleted above the row a page ended on move every row below them up: the next page
    starts below that row, and the rows between would be lost. The walk reads from further up."""
    service = Service(30)
    walk = MessageWalk(page_size=PAGE, max_rereads=2)
    kept = walk.accept(1, service.page(1))["message_id"].tolist()
    gone = [service.ids[i] for i in deleted]
    for row in gone:
        service.ids.remove(row)
    kept += walk_all(service, walk)
    assert set(range(1, 31)) - set(gone) <= set(kept)


class Skipping(Service):
    """A service (or a proxy) that answers one offset with the page further down, every time."""

    def __init__(self, count: int, skipped: int, answered: int):
        super().__init__(count)
        self.skipped, self.answered = skipped, answered

    def page(self, index: int) -> Rows:
        return super().page(self.answered if index == self.skipped else index)


def test_a_page_the_service_skips_every_time_loses_no_row():
    service = Skipping(40, skipped=PAGE, answered=2 * PAGE - 1)
    kept = walk_all(service, MessageWalk(page_size=PAGE, max_rereads=2))
    assert sorted(set(kept)) == list(range(1, 41))


class FromFurtherDown(Service):
    """A service that answers every page but the first from five pages further down."""

    def page(self, index: int) -> Rows:
        return super().page(index if index == 1 else index + 5 * PAGE)


def test_a_service_that_answers_every_page_from_further_down_is_refused_not_taken():
    """Read from further up, it answers from further down again: the walk ends with a typed
    error (its state still at the last page it took), never taking a page past a gap."""
    service = FromFurtherDown(2000)
    walk = MessageWalk(page_size=PAGE, max_rereads=1)
    kept = []
    with pytest.raises(AnswerError):
        for _ in range(200):
            rows = walk.accept(walk.awaited, service.page(walk.awaited))
            kept += [] if rows is None else rows["message_id"].tolist()
    assert kept == list(range(2000, 2000 - len(kept), -1))  # no row taken past a gap


def test_a_page_of_new_messages_between_two_reads_is_paged_past():
    """The next page then ends on the row the first one ended on: it brings nothing, and the
    walk goes on below it."""
    service = Service(40)
    walk = MessageWalk(page_size=PAGE)
    kept = walk.accept(1, service.page(1))["message_id"].tolist()
    service.push(PAGE - 1)
    rows = walk.accept(walk.awaited, service.page(walk.awaited))
    assert rows is not None and len(rows) == 0
    kept += walk_all(service, walk)
    assert sorted(kept) == list(range(1, 41))


def test_a_service_that_ignores_the_index_is_refused_not_paged_for_ever():
    service = Service(40)
    walk = MessageWalk(page_size=PAGE, max_rereads=2)
    same = service.page(1)
    walk.accept(1, same)
    for _ in range(2):
        assert len(walk.accept(walk.awaited, same)) == 0  # as a page of new messages would be
    with pytest.raises(AnswerError, match="ignore the index"):
        walk.accept(walk.awaited, same)


def test_a_record_without_an_id_is_refused():
    page = message_rows({"message_id": ["5", "4", None, "2", "1"], "action_datetime": ["2026-03-01T12:00:00"] * 5})
    with pytest.raises(AnswerError, match="without a MessageId"):
        MessageWalk(page_size=PAGE).accept(1, page)


def test_since_ends_the_walk_and_keeps_only_newer_rows():
    service = Service(100)
    since = NOW - timedelta(minutes=25)
    walk = MessageWalk(page_size=PAGE, since=since)
    kept = walk_all(service, walk)
    assert sorted(kept) == list(range(75, 101))  # id 75 was sent exactly at `since`: kept


def test_since_reads_every_form_people_write():
    service = Service(20)
    naive = (NOW - timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    kept = walk_all(service, MessageWalk(page_size=PAGE, since=naive))  # Tehran time
    assert sorted(kept) == list(range(15, 21))


def test_a_later_walk_stops_at_what_the_last_one_stored():
    service = Service(45)
    first = MessageWalk(page_size=PAGE)
    walk_all(service, first)
    service.push(12)
    second = MessageWalk(first.saved(), page_size=PAGE)
    assert second.incremental
    kept = walk_all(service, second)
    assert set(range(46, 58)) <= set(kept) and max(kept) == 57 and min(kept) > 45 - PAGE
    assert second.saved()["top_id"] == 57


def test_a_walk_stopped_partway_resumes_at_the_page_it_reached():
    service = Service(60)
    walk = MessageWalk(page_size=PAGE)
    kept = []
    for _ in range(3):
        kept += walk.accept(walk.awaited, service.page(walk.awaited))["message_id"].tolist()
    saved = walk.saved()  # what a loader commits with those rows; then the process dies
    service.push(5)
    resumed = MessageWalk(saved, page_size=PAGE)
    assert resumed.awaited == walk.awaited
    kept += walk_all(service, resumed)
    assert set(range(1, 61)) <= set(kept)


def test_pages_are_accepted_in_order():
    walk = MessageWalk(page_size=PAGE)
    with pytest.raises(RuntimeError):
        walk.accept(1 + walk.step, Service(30).page(1 + walk.step))


def test_rows_deleted_above_the_walk_that_empty_its_next_page_lose_no_row_below_it():
    """More rows deleted above the row a full page ended on than there are below it: the next
    page comes back empty, which is not the end of the stream (the page before was full)."""
    service = Service(12)
    walk = MessageWalk(page_size=PAGE, max_rereads=2)
    kept = walk.accept(1, service.page(1))["message_id"].tolist()  # 12 to 3; 2 and 1 below
    for row in (11, 10, 9):
        service.ids.remove(row)
    kept += walk_all(service, walk)
    assert {1, 2} <= set(kept)
