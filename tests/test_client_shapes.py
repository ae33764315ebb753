"""Every shape the real service may write reads the same: times with fractions, Z or an offset,
empty arrays written empty or nil, a BOM, a charset parameter, another prefix layout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, _zoneinfo, available_timezones

import pandas as pd
import pytest

from payamak_analytics import PanelClient
from payamak_analytics.client import MESSAGE_COLUMNS, Message
from payamak_analytics.client.rows import message_frame, message_rows
from payamak_analytics.dates import TEHRAN
from payamak_analytics.errors import AnswerError

from .hostile_server import ARRAYS, HostileServer, answer, http, soap
from .test_client_safety import message_info, messages_answer

NUMBER = "09121234567"
TIMES = {
    "2025-03-21T10:00:00": datetime(2025, 3, 21, 10, 0, tzinfo=TEHRAN),
    "2025-03-21T10:00:00.1234567": datetime(2025, 3, 21, 10, 0, 0, 123456, tzinfo=TEHRAN),
    "2025-03-21T06:30:00Z": datetime(2025, 3, 21, 6, 30, tzinfo=UTC),
    "2025-03-21T06:30:00.5Z": datetime(2025, 3, 21, 6, 30, 0, 500000, tzinfo=UTC),
    "2025-03-21T10:00:00+03:30": datetime(2025, 3, 21, 10, 0, tzinfo=TEHRAN),
    "2025-03-21T11:00:00+04:30": datetime(2025, 3, 21, 6, 30, tzinfo=UTC),
}


@pytest.fixture
def server():
    with HostileServer() as hostile:
        yield hostile


def client_of(server, path, **options) -> PanelClient:
    return PanelClient("demo", "demo", wsdl="bundled", endpoint=server.url(path), timeout=5, **options)


@pytest.mark.parametrize("mixed", [False, True])
def test_each_time_means_what_it_says(server, mixed):
    texts = list(TIMES) if mixed else [t for t in TIMES if not t.endswith("Z") and "+" not in t]
    server.behaviours["/t"] = answer(
        "200 OK", messages_answer([message_info(i, ActionDateTime=t) for i, t in enumerate(texts, 1)])
    )
    client = client_of(server, "t")
    expected = [TIMES[t] for t in texts]
    frame = client.messages_page("sent", count=100).rows
    assert str(frame["action_datetime"].dtype) == "datetime64[us, Asia/Tehran]"
    assert [t.to_pydatetime() for t in frame["action_datetime"]] == expected
    assert [m.action_datetime for m in client.get_messages("sent", count=100)] == expected


def test_times_without_an_offset_are_in_the_service_zone(server):
    server.behaviours["/t"] = answer("200 OK", messages_answer([message_info(1, ActionDateTime="2025-03-21T10:00:00")]))
    client = client_of(server, "t", service_zone=UTC)
    expected = datetime(2025, 3, 21, 10, 0, tzinfo=UTC)
    assert client.messages_page("sent").rows["action_datetime"][0] == pd.Timestamp(expected)
    assert client.get_messages("sent")[0].action_datetime == expected


def delivery(numbers: str, statuses: str) -> bytes:
    return soap("GetBatchDelivery", f"<GetBatchDeliveryResult>0</GetBatchDeliveryResult>{numbers}{statuses}")


EMPTY = {
    "empty elements": delivery(
        f'<numbers xmlns:b="{ARRAYS}"/>', f'<deliveryStatus xmlns:b="{ARRAYS}"></deliveryStatus>'
    ),
    "nil": delivery(
        '<numbers xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/>',
        '<deliveryStatus xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/>',
    ),
    "missing": delivery("", ""),
}


@pytest.mark.parametrize("case", EMPTY)
def test_empty_arrays_in_every_form(server, case):
    server.behaviours["/e"] = answer("200 OK", EMPTY[case])
    client = client_of(server, "e")
    assert len(client.get_batch_delivery(12)) == 0
    frame = client.batch_delivery_frame(12)
    assert frame.empty and list(frame.columns)[:3] == ["batch_sms_id", "row", "number"]


ONE_PAGE = messages_answer([message_info(i) for i in range(1, 4)])
PREFIXED = (
    ONE_PAGE.replace(b"<s:", b"<soap:")
    .replace(b"</s:", b"</soap:")
    .replace(b"xmlns:s=", b"xmlns:soap=")
    .replace(
        b'<GetMessagesResponse xmlns="http://tempuri.org/">', b'<t:GetMessagesResponse xmlns:t="http://tempuri.org/">'
    )
    .replace(b"</GetMessagesResponse>", b"</t:GetMessagesResponse>")
    .replace(b"<GetMessagesResult ", b"<t:GetMessagesResult ")
    .replace(b"</GetMessagesResult>", b"</t:GetMessagesResult>")
)
WRAPPINGS = {
    "as is": http("200 OK", ONE_PAGE),
    "a BOM": http("200 OK", b"\xef\xbb\xbf" + ONE_PAGE),
    "a declaration and a charset": http(
        "200 OK", b'<?xml version="1.0" encoding="utf-8"?>' + ONE_PAGE, content_type='text/xml; charset="UTF-8"'
    ),
    "UTF-16 with its BOM": http(
        "200 OK",
        ('<?xml version="1.0" encoding="utf-16"?>' + ONE_PAGE.decode()).encode("utf-16"),
        content_type="text/xml; charset=utf-16",
    ),
    "other prefixes": http("200 OK", PREFIXED),
}


@pytest.mark.parametrize("case", WRAPPINGS)
def test_every_wrapping_reads_the_same(server, case):
    server.behaviours["/w"] = lambda request, connection: connection.sendall(WRAPPINGS[case])
    client = client_of(server, "w")
    frame = client.messages_page("sent").rows
    assert frame["message_id"].tolist() == [1, 2, 3]
    assert [m.message_id for m in client.get_messages("sent")] == [1, 2, 3]


def test_simulator_times_read_the_same_both_ways(client):
    """The page reader and the objects agree on the simulator's own answers, to the microsecond."""
    page = client.messages_page("sent", count=200)
    objects = client.get_messages("sent", count=200)
    assert [t.to_pydatetime() for t in page.rows["action_datetime"]] == [m.action_datetime for m in objects]
    assert all(abs(m.action_datetime - datetime.now(TEHRAN)) < timedelta(days=3650) for m in objects)


# Tehran kept summer time until 2022: the hour after 00:00 on 22 March did not exist, and the
# hour before 24:00 on 21 September came twice.
DAYLIGHT_SAVING_EDGES = [
    "2019-03-21T23:59:59",
    "2019-03-22T00:30:00",
    "2019-03-22T01:30:00",
    "2019-09-21T23:30:00",
    "2019-09-22T00:00:00",
    "2021-06-01T12:00:00",
    "2023-06-01T12:00:00",
    None,
]


def test_a_pages_times_mean_what_one_records_times_mean_across_summer_time_changes():
    """A page is read column-wise, a record value by value: a time that came twice or never
    was is the same moment either way (the first of the two; the hour before the change)."""
    page = message_frame(message_rows({"action_datetime": DAYLIGHT_SAVING_EDGES}))["action_datetime"]
    empty = dict.fromkeys(MESSAGE_COLUMNS.values())
    records = [Message.from_texts(empty | {"action_datetime": t}).action_datetime for t in DAYLIGHT_SAVING_EDGES]
    records = [t and t.astimezone(UTC) for t in records]  # moments, not wall times, are compared
    assert [None if pd.isna(t) else t.to_pydatetime().astimezone(UTC) for t in page] == records
    assert records[3] == datetime(2019, 9, 21, 19, 0, tzinfo=UTC)  # +04:30, the first of the two
    assert records[1] == datetime(2019, 3, 21, 21, 0, tzinfo=UTC)  # +03:30, the offset before the change


# Tehran's clocks went from +03:25:44 to +03:30 at 00:00 on 13 June 1935: the local times from
# 00:00:00 to 00:04:16 never were, so the minute 00:04 holds two offsets.
ODD_SECOND_CHANGE = ["1935-06-13T00:04:10", "1935-06-13T00:04:30", "1935-06-13T00:05:00", "1935-06-12T23:59:59"]


def test_a_pages_times_mean_what_one_records_times_mean_where_the_offset_changed_on_an_odd_second():
    """A minute the offset changes in is not read as a whole: 00:04:30 is 20:34:30 UTC, as a
    record reads it, not 20:38:46 (the offset of 00:04:00, in the gap)."""
    page = message_frame(message_rows({"action_datetime": ODD_SECOND_CHANGE}))["action_datetime"]
    empty = dict.fromkeys(MESSAGE_COLUMNS.values())
    records = [Message.from_texts(empty | {"action_datetime": t}).action_datetime for t in ODD_SECOND_CHANGE]
    records = [t.astimezone(UTC) for t in records]
    assert [t.to_pydatetime().astimezone(UTC) for t in page] == records
    assert records[1] == datetime(1935, 6, 12, 20, 34, 30, tzinfo=UTC)


def around_every_change(zone: ZoneInfo) -> list[str]:
    """Wall times of `zone` around each change of its offset since 1900: just before, in the
    gap or the repeated span, and after (the pure-Python zoneinfo lists the changes)."""
    texts = []
    for change in _zoneinfo.ZoneInfo(zone.key)._trans_utc:
        if change < -2208988800:  # 1900
            continue
        before = datetime.fromtimestamp(change - 1, UTC).astimezone(zone).replace(tzinfo=None)
        for step in (0, 1, 2, 61, 1800, 3599, 3601, 7201):
            texts.append((before + timedelta(seconds=step)).isoformat())
    return texts


def test_a_pages_times_mean_what_one_records_times_mean_around_every_change_of_every_zone():
    """The page reads an hour at a time and a record one time at a time: in every zone the
    service may be set to, around every change of its offset, both give the same moment."""
    empty = dict.fromkeys(MESSAGE_COLUMNS.values())
    for key in sorted(available_timezones()):
        zone = ZoneInfo(key)
        texts = around_every_change(zone)
        if not texts:
            continue
        page = message_rows({"action_datetime": texts}, zone)["action_datetime"]
        records = [Message.from_texts(empty | {"action_datetime": t}, zone).action_datetime for t in texts]
        expected = [r.astimezone(UTC).replace(tzinfo=None) for r in records]
        assert page.astype(object).tolist() == expected, key


@pytest.mark.parametrize("text", ["now", "today", "NOW"])
def test_a_time_written_as_a_word_is_refused_in_a_page_as_in_a_record(server, text):
    """numpy reads 'now' and 'today' as its clock's time: a page holding one is refused, as one
    record is, rather than stored as the time it was read."""
    server.behaviours["/t"] = answer("200 OK", messages_answer([message_info(1, ActionDateTime=text)]))
    client = client_of(server, "t")
    with pytest.raises(AnswerError, match="ActionDateTime"):
        client.get_messages("sent")
    with pytest.raises(AnswerError, match="ActionDateTime"):
        client.messages_page("sent")


@pytest.mark.parametrize("text", ["2025-11", "2025", "2025-11-20T10:00:00."])
def test_a_time_cut_short_is_refused_in_a_page_as_in_a_record(server, text):
    """numpy reads a month or a year alone as its first moment, and a time ending in a dot as
    the whole second: a page holding one is refused, as one record is, rather than stored as a
    time the service never wrote (a proxy cutting answers short)."""
    server.behaviours["/t"] = answer("200 OK", messages_answer([message_info(1, ActionDateTime=text)]))
    client = client_of(server, "t")
    with pytest.raises(AnswerError, match="ActionDateTime"):
        client.get_messages("sent")
    with pytest.raises(AnswerError, match="ActionDateTime"):
        client.messages_page("sent")


@pytest.mark.parametrize(
    ("text", "zone"), [("9999-12-31T23:59:59.9999999", UTC), ("0001-01-01T00:00:00", "Asia/Tokyo")]
)
def test_a_time_past_tehrans_calendar_is_refused_in_a_page_as_in_a_record(server, text, zone):
    """.NET's DateTime.MaxValue in a zone west of Tehran is past year 9999 in Tehran time (and
    MinValue in one east of it, before year 1): a record is refused, and so is a page, rather
    than stored as a time no reader holds."""
    server.behaviours["/t"] = answer("200 OK", messages_answer([message_info(1, ActionDateTime=text)]))
    client = client_of(server, "t", service_zone=zone if zone is UTC else ZoneInfo(zone))
    with pytest.raises(AnswerError, match="ActionDateTime"):
        client.get_messages("sent")
    with pytest.raises(AnswerError, match="ActionDateTime"):
        client.messages_page("sent")


def test_a_blank_enum_value_is_none_in_a_page_as_in_a_record(server):
    """A MessageType or Status of only spaces is no value (as a blank number is), not "Unknown"."""
    server.behaviours["/t"] = answer("200 OK", messages_answer([message_info(1, MessageType="  ", Status=" ")]))
    client = client_of(server, "t")
    record = client.get_messages("sent")[0]
    assert (record.message_type, record.status) == (None, None)
    page = client.messages_page("sent")
    assert (page.arrays["message_type"][0], page.arrays["status"][0]) == (None, None)
    assert page.rows[["message_type", "status"]].isna().all(axis=None)


def test_frames_have_the_canonical_dtypes(client):
    """Pages, empty frames and delivery reports carry the dtypes the store casts its reads to."""
    from payamak_analytics.client import DELIVERY_DTYPES, MESSAGE_DTYPES

    batch = client.send_batch_sms("50001234", ["09121234567", "09351234567"], "hi")
    frames = [client.messages_frame("sent", limit=50), client.messages_frame("sent", ["99999"])]
    for frame in frames:
        assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == MESSAGE_DTYPES
    delivery = client.batch_delivery_frame(batch.batch_sms_id)
    assert {column: str(dtype) for column, dtype in delivery.dtypes.items()} == DELIVERY_DTYPES


def test_records_in_a_comment_are_not_read_as_the_result():
    """Text shaped like a result inside a comment is not taken for the answer's records."""
    from payamak_analytics.client.pages import message_columns

    record = "<a:MessageInfo><a:MessageId>{}</a:MessageId><a:Content>{}</a:Content></a:MessageInfo>"
    decoy = f"<!-- <GetMessagesResult>{record.format(9, 'decoy')}</GetMessagesResult> -->"

    def answer(result: str) -> bytes:
        return (
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
            f'<s:Header>{decoy}</s:Header><s:Body><GetMessagesResponse xmlns="http://tempuri.org/">'
            f'<GetMessagesResult xmlns:a="urn:a">{result}</GetMessagesResult>'
            "</GetMessagesResponse></s:Body></s:Envelope>"
        ).encode()

    assert message_columns(answer(record.format(1, "one") + record.format(2, "two")))["content"] == ["one", "two"]
    assert message_columns(answer(""))["content"] == []
