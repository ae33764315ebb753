"""The book of delivery reports a load keeps in dlt's state, step by step, without HTTP."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from payamak_analytics.dates import TEHRAN
from payamak_analytics.warehouse import book as book_module
from payamak_analytics.warehouse.book import DeliveryBook

NOW = datetime(2025, 11, 24, 12, tzinfo=TEHRAN)
NUMBERS = [f"0912{i:07d}" for i in range(150)]


def add(book: DeliveryBook, batch: int, recipients: int, sent_at: datetime) -> None:
    book.add([batch], ["10002188"], [recipients], [sent_at.timestamp()])


def plan_of(book: DeliveryBook, now=NOW) -> dict:
    return {batch: list(pages) for plan in book.plans(now) for batch, pages in plan.items()}


def reopened(state: dict) -> DeliveryBook:
    """The book as the next load finds it, after dlt stored the state as JSON."""
    stored = json.loads(json.dumps(state))
    state.clear()
    state.update(stored)
    return DeliveryBook(state)


def read_all(book: DeliveryBook, statuses_of, now=NOW):
    """Read every planned page, with `statuses_of(batch, index, n)` as the service's answer."""
    plan = plan_of(book, now)
    pages = {}
    for batch, indexes in plan.items():
        pages[batch] = []
        for index in indexes:
            numbers = NUMBERS[index - 1 : index + 99][: max(0, 150 - index + 1)]
            pages[batch].append(book.page(batch, index, numbers, statuses_of(batch, index, len(numbers))))
    facts = {batch: book.close(batch, read, now) for batch, read in pages.items()}
    book.save()
    return plan, pages, facts


def test_a_new_batch_is_read_in_full_then_only_its_pages_in_flight():
    state: dict = {}
    book = DeliveryBook(state)
    add(book, 7, 150, NOW - timedelta(hours=1))
    plan, pages, facts = read_all(book, lambda b, i, n: [1] * n if i == 1 else [0] * n)
    assert plan == {7: [1, 101]}
    assert [len(p.changed) for p in pages[7]] == [100, 50]  # the first sight of each row is an event
    assert facts[7].complete and facts[7].pending == 50

    assert plan_of(reopened(state)) == {}  # read at this very moment: nothing is due yet
    later = NOW + timedelta(minutes=15)  # under 6 h old: due at every run
    plan, pages, facts = read_all(reopened(state), lambda b, i, n: [0] * 10 + [1] * (n - 10), later)
    assert plan == {7: [101]}  # the delivered page is never asked again
    assert pages[7][0].changed == list(range(10, 50))  # only the rows whose status moved
    assert facts[7].pending == 10

    plan, _, _ = read_all(reopened(state), lambda b, i, n: [1] * n, later + timedelta(minutes=15))
    assert plan == {7: [101]} and reopened(state).waiting == 0  # all final: the batch is forgotten


def test_expired_and_provider_errors_keep_the_last_status_seen():
    state: dict = {}
    book = DeliveryBook(state)
    add(book, 8, 3, NOW - timedelta(days=2))
    read_all(book, lambda b, i, n: [0, 5, 0])
    _, pages, facts = read_all(reopened(state), lambda b, i, n: [-3, -1, 1], NOW + timedelta(hours=6))
    page = pages[8][0]
    assert page.statuses == [0, 5, 1] and page.expired == [True, False, False]
    assert page.final == [True, False, True] and page.changed == [2]  # -3 and -1 are no change of status
    assert facts[8].pending == 1 and reopened(state).waiting == 0  # an expired report is never asked again


def test_a_report_the_service_forgot_is_asked_again_until_the_week_has_passed():
    state: dict = {}
    book = DeliveryBook(state)
    add(book, 9, 50, NOW - timedelta(days=6))
    assert plan_of(book) == {9: [1]}
    book.missing(9, NOW)
    book.save()
    later = reopened(state)
    assert plan_of(later, NOW + timedelta(days=2)) == {9: [1]}  # asked again next time
    later.missing(9, NOW + timedelta(days=2))  # and now the week has passed
    later.save()
    assert reopened(state).waiting == 0 and later.unreadable == 1


def test_a_million_new_batches_are_planned_a_chunk_at_a_time():
    state: dict = {}
    book = DeliveryBook(state)
    ids = list(range(1, 1_000_001))
    book.add(ids, ["10002188", "50001234"] * 500_000, [1] * 1_000_000, [NOW.timestamp()] * 1_000_000)
    book.save()
    assert len(json.dumps(state)) < 1_000_000  # packed columns, not a million dicts
    plans = reopened(state).plans(NOW)
    first = next(plans)
    assert list(first) == ids[:2000] and list(first[1]) == [1]
    assert len(json.dumps(state)) < 1_000_000


def test_a_young_batch_read_before_is_forgotten_once_its_report_expires():
    state: dict = {}
    book = DeliveryBook(state)
    add(book, 10, 20, NOW - timedelta(days=1))
    read_all(book, lambda b, i, n: [0] * n)
    assert plan_of(reopened(state), NOW + timedelta(days=7)) == {} and reopened(state).waiting == 0


def test_a_first_read_shorter_than_the_batch_is_read_again():
    state: dict = {}
    book = DeliveryBook(state)
    add(book, 11, 150, NOW - timedelta(hours=2))
    plan = plan_of(book)
    short = book.page(11, 1, NUMBERS[:100], [1] * 100)
    facts = book.close(11, [short], NOW)  # the second page came back empty
    book.save()
    assert plan == {11: [1, 101]} and not facts.complete
    assert plan_of(reopened(state)) == {11: [1, 101]}


def test_a_record_claiming_absurdly_many_recipients_is_read_within_a_cap():
    book = DeliveryBook({})
    add(book, 12, 10**12, NOW)
    (pages,) = next(book.plans(NOW)).values()
    assert len(pages) == 10_000 and pages[-1] == 999_901


def test_a_page_in_flight_is_asked_again_on_the_sync_schedule():
    state: dict = {}
    book = DeliveryBook(state)
    add(book, 13, 100, NOW - timedelta(days=2))
    read_all(book, lambda b, i, n: [5] * n)  # two days old: a page waits 6 h between reads
    assert plan_of(reopened(state), NOW + timedelta(hours=5, minutes=59)) == {}
    assert plan_of(reopened(state), NOW + timedelta(hours=6)) == {13: [1]}


def test_a_read_stamped_in_the_future_or_by_an_older_book_is_not_trusted():
    state: dict = {}
    book = DeliveryBook(state)
    add(book, 14, 100, NOW - timedelta(days=2))
    read_all(book, lambda b, i, n: [5] * n, NOW + timedelta(days=2))  # a clock two days ahead, then set right
    assert plan_of(reopened(state)) == {14: [1]}
    del state["known"]["14"]["checked"]  # a book saved before reads were stamped
    assert plan_of(reopened(state)) == {14: [1]}


def test_unread_batches_are_packed_in_segments_a_later_load_leaves_as_they_were(monkeypatch):
    monkeypatch.setattr(book_module, "SEGMENT", 4)
    state: dict = {}
    for load in range(5):  # five loads of 3 new batches each
        book = reopened(state)
        earlier = json.dumps(state.get("unread", [])[:-1])
        book.add([10 * load + i for i in range(3)], ["10002188"] * 3, [1] * 3, [NOW.timestamp()] * 3)
        book.save()
        assert json.dumps(state["unread"][: len(json.loads(earlier))]) == earlier  # only the last one packed again
    assert [segment["n"] for segment in state["unread"]] == [6, 6, 3] and reopened(state).waiting == 15
    assert list(plan_of(reopened(state))) == [10 * load + i for load in range(5) for i in range(3)]

    first = {name: value for name, value in state["unread"][0].items() if name != "n"}
    assert list(plan_of(DeliveryBook({"unread": first}))) == [0, 1, 2, 10, 11, 12]  # a book saved before segments
