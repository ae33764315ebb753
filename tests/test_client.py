"""PanelClient against the simulator over loopback: every method, every code, bad input, safety."""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
import sys
import traceback
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree
from zeep.helpers import serialize_object

from payamak_analytics import PanelClient, errors, wsdl
from payamak_analytics.client.pages import (
    MESSAGE_COLUMNS,
    message_columns,
    messages_frame,
    scanned_columns,
    tree_columns,
)
from payamak_analytics.simulator import FaultConfig
from payamak_analytics.simulator.world import Account

from .conftest import truth, world_config

LINE = "10002188"


def make_client(simulator, username="demo", password="demo", **kwargs) -> PanelClient:
    return PanelClient(username, password, wsdl=simulator.wsdl_url, max_retry_wait=0.05, **kwargs)


def sends_served(simulator) -> int:
    calls = truth(simulator, batches=0)["calls"]
    return sum(calls.get(op, 0) for op in ("SendSMS", "SendBatchSms", "SendSmsLikeToLike"))


# --- every method -----------------------------------------------------------------------------
def test_account_methods(client, simulator):
    t = truth(simulator, batches=0)["messages"]
    assert client.get_credit() == Decimal(1_000_000)
    assert client.get_inbox_count(False) == t["received_unread"]
    assert client.get_inbox_count(True) == t["received_read"]
    assert client.get_sender_numbers() == ["10002188", "50001234", "30001111"]
    assert client.dummy(12) == 12
    assert client.check_sms_content("سلام") is True
    assert client.check_sms_content("قمار") is False


def test_plan_send_flags_numbers_outside_the_number_plan_and_still_sends_them(client, simulator):
    """09065551234 and 0941 123 4567 are well-formed but unallocated for libphonenumber: a warning, not a refusal."""
    plan = client.plan_send(LINE, ["09065551234", "۰۹۴۱ ۱۲۳ ۴۵۶۷", "09121234567", "+98 935 123 4567"], "hi")
    assert plan.numbers == ["09065551234", "09411234567", "09121234567", "09351234567"]
    assert plan.unallocated == ["09065551234", "09411234567"]
    assert "2 number(s) are not in the number plan" in plan.warning and "09411234567" in plan.warning
    assert sends_served(simulator) == 0
    assert client.plan_send(LINE, ["09121234567", "09901234567"], "hi").warning == ""
    result = client.send_sms(plan.from_number, plan.numbers, plan.text)
    assert result.sent_count == 4


def test_send_sms_and_delivery(client, simulator):
    result = client.send_sms(LINE, ["0912 123 4567", "+989351234567"], "سلام")
    assert [r.number for r in result.recipients] == ["09121234567", "09351234567"]
    assert result.sent_count == 2 and all(r.rec_id > 0 for r in result.recipients)
    status = client.get_delivery(result.rec_ids[0])
    assert (status.code, status.outcome, status.final) == (-5, "in_flight", False)
    assert client.get_credit() == 1_000_000 - 2
    newest = client.get_messages("sent", count=1)[0]
    assert (newest.content, newest.count, newest.sender, newest.cost) == ("سلام", 2, LINE, Decimal("2.0"))
    assert newest.action_datetime.tzinfo is not None


def test_batch_send_and_paged_delivery(client, simulator):
    numbers = [f"0912{i:07d}" for i in range(100)]
    batch = client.send_batch_sms("50001234", numbers, "hello", flash=True)
    pages = list(client.iter_batch_delivery(batch.batch_sms_id, page_size=30))
    assert [len(p) for p in pages] == [30, 30, 30, 10]
    assert [p.index for p in pages] == [1, 31, 61, 91]
    frame = client.batch_delivery_frame(batch.batch_sms_id)
    assert frame["number"].tolist() == numbers
    assert set(frame["status"]) == {-5} and set(frame["operator"]) == {"MCI"}
    assert str(frame["status"].dtype) == "Int64" and str(frame["outcome"].dtype) == "category"


def test_like_to_like(client):
    sent = client.send_like_to_like(LINE, ["09121234567", "09351234567"], ["سلام علی", "سلام مریم"])
    page = client.get_delivery_like_to_like(sent.batch_sms_id)
    assert page.numbers == ["09121234567", "09351234567"]
    with pytest.raises(errors.InputError):
        client.send_like_to_like(LINE, ["09121234567", "09351234567"], ["only one"])


def test_blacklist(client):
    numbers = [f"0912{i:07d}" for i in range(300)]
    listed = client.extract_telecom_blacklist(numbers)
    assert listed and all(client.is_in_telecom_blacklist(n) for n in listed[:3])
    clean = next(n for n in numbers if n not in listed)
    assert client.is_in_telecom_blacklist(clean) is False


def test_messages_by_date_range(client, simulator):
    now = datetime.fromtimestamp(simulator.world.clock.now())
    ranged = client.get_messages_by_date_range("received", now - timedelta(days=3), now)
    assert ranged and all(m.message_type == "In" for m in ranged)
    assert all(now - timedelta(days=3) <= m.action_datetime.replace(tzinfo=None) <= now for m in ranged)


def test_messages_frame_dtypes(client):
    frame = client.messages_frame("sent", limit=1500)
    assert len(frame) == 1500 and frame["message_id"].is_unique
    assert list(frame.columns) == list(MESSAGE_COLUMNS.values())
    assert str(frame["action_datetime"].dt.tz) == "Asia/Tehran"
    assert str(frame["message_id"].dtype) == "Int64" and str(frame["flash"].dtype) == "boolean"
    assert str(frame["send_method"].dtype) == "category"
    assert frame["action_datetime"].is_monotonic_decreasing


# --- paging boundaries ------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 999, 1000, 1001, 2000])
def test_paging_boundaries(make_simulator, n):
    simulator = make_simulator(world_config(messages=n, received_share=0.0))
    client = make_client(simulator)
    frame = client.messages_frame("sent")
    assert len(frame) == n == truth(simulator, batches=0)["messages"]["sent"]
    assert frame["message_id"].is_unique
    assert client.calls["GetMessages"] == n // 1000 + 1  # stops on the first short page
    assert len(client.messages_frame("received")) == 0


# --- codes become typed errors ----------------------------------------------------------------
SEND_ERRORS = [
    (1, errors.CredentialsError, ("demo", "wrong"), LINE, "hi"),
    (2, errors.AccountStateError, ("blocked", "blocked-pw"), LINE, "hi"),
    (3, errors.SenderLineError, ("demo", "demo"), "99999999", "hi"),
    (6, errors.SenderLineError, ("demo", "demo"), "30001111", "hi"),
    (7, errors.ContentError, ("demo", "demo"), LINE, "قمار"),
    (8, errors.CreditError, ("nocredit", "nocredit-pw"), LINE, "hi"),
]


@pytest.mark.parametrize("method", ["send_sms", "send_batch_sms"])
@pytest.mark.parametrize("code, error, account, line, message", SEND_ERRORS)
def test_send_codes_raise_typed_errors(simulator, method, code, error, account, line, message):
    client = make_client(simulator, *account)
    with pytest.raises(error) as caught:
        getattr(client, method)(line, ["09121234567"], message)
    assert caught.value.code == code and caught.value.message_fa and caught.value.operation
    assert client.calls[{"send_sms": "SendSMS", "send_batch_sms": "SendBatchSms"}[method]] == 1


def test_daily_limit_and_service_switches(make_simulator):
    config = world_config()
    config.daily_limit = 2
    simulator = make_simulator(config)
    client = make_client(simulator)
    client.send_sms(LINE, ["09121234567", "09351234567"], "a")
    with pytest.raises(errors.LimitError) as caught:
        client.send_sms(LINE, ["09121234568"], "b")
    assert caught.value.code == 4
    simulator.world.system_updating = True
    with pytest.raises(errors.ServiceUnavailableError) as caught:
        client.send_batch_sms(LINE, ["09121234567"], "c")
    assert caught.value.code == 9
    simulator.world.system_updating, simulator.world.webservice_disabled = False, True
    with pytest.raises(errors.ServiceUnavailableError) as caught:
        client.send_batch_sms(LINE, ["09121234567"], "c")
    assert caught.value.code == 10


def test_code_5_from_a_service_with_a_lower_limit(make_simulator):
    config = world_config()
    config.max_recipients = 2
    client = make_client(make_simulator(config))
    with pytest.raises(errors.LimitError) as caught:
        client.send_sms(LINE, ["09121234567", "09351234567", "09201234567"], "a")
    assert caught.value.code == 5


def test_read_codes_raise_typed_errors(simulator):
    wrong = make_client(simulator, "demo", "wrong")
    inactive = make_client(simulator, "inactive", "inactive-pw")
    client = make_client(simulator)
    cases = [
        (wrong.get_credit, errors.CredentialsError, -1),
        (inactive.get_credit, errors.AccountStateError, -2),
        (lambda: wrong.get_inbox_count(True), errors.CredentialsError, -1),
        (lambda: wrong.get_batch_delivery(10_000_000), errors.CredentialsError, -1),
        (lambda: client.get_batch_delivery(5), errors.NotFoundError, -2),
        (lambda: client.get_delivery(5), errors.NotFoundError, -2),
        (lambda: wrong.is_in_telecom_blacklist("09121234567"), errors.CredentialsError, -1),
        (lambda: inactive.is_in_telecom_blacklist("09121234567"), errors.AccountStateError, -2),
        (lambda: inactive.extract_telecom_blacklist(["09121234567"]), errors.AccountStateError, -2),
        (lambda: wrong.check_sms_content("x"), errors.CredentialsError, -1),
        (wrong.get_sender_numbers, errors.CredentialsError, -1),
    ]
    for call, error, code in cases:
        with pytest.raises(error) as caught:
            call()
        assert caught.value.code == code, call
    with pytest.raises(errors.PayamakError, match="user name or password"):
        wrong.get_messages("sent")
    with pytest.raises(errors.PayamakError, match="user name or password"):
        wrong.messages_frame("sent")
    with pytest.raises(errors.PayamakError) as caught:
        wrong.get_delivery(10_000_000_000)
    assert caught.value.code == -1
    assert wrong.retries["GetDelivery"] == wrong.read_attempts - 1  # -1 is the provider's "try again"


# --- bad input is refused before anything is sent ---------------------------------------------
BAD_SENDS = [
    (LINE, ["123"], "hi"),
    (LINE, ["0912123456"], "hi"),
    (LINE, ["02188888888"], "hi"),
    (LINE, ["+14155550100"], "hi"),
    (LINE, ["09121234567", "x"], "hi"),
    (LINE, [], "hi"),
    (LINE, "", "hi"),
    (LINE, [f"0912{i:07d}" for i in range(101)], "hi"),
    (LINE, ["09121234567", "+989121234567"], "hi"),
    (LINE, None, "hi"),
    (LINE, 3.5, "hi"),
    (LINE, {"a": 1}, "hi"),
    (LINE, b"09121234567", "hi"),
    (LINE, ["09121234567"], ""),
    (LINE, ["09121234567"], "   "),
    (LINE, ["09121234567"], None),
    (LINE, ["09121234567"], 42),
    (LINE, ["09121234567"], "س" * 700),
    (LINE, ["09121234567"], ["a", "b"]),
    ("", ["09121234567"], "hi"),
    ("abc", ["09121234567"], "hi"),
    (None, ["09121234567"], "hi"),
    ("12", ["09121234567"], "hi"),
    ([LINE], ["09121234567"], "hi"),
]


@pytest.mark.parametrize("method", ["send_sms", "send_batch_sms"])
@pytest.mark.parametrize("line, numbers, message", BAD_SENDS)
def test_bad_send_input_sends_nothing(shared_simulator, method, line, numbers, message):
    client = make_client(shared_simulator)
    before = sends_served(shared_simulator)
    with pytest.raises(errors.InputError) as caught:
        getattr(client, method)(line, numbers, message)
    assert caught.value.message_en and caught.value.message_fa
    assert sends_served(shared_simulator) == before
    assert sum(client.calls.values()) == 0


BAD_CALLS = [
    lambda c: c.send_sms(LINE, ["09121234567"], "hi", flash="yes"),
    lambda c: c.get_batch_delivery(10_000_000, index=0),
    lambda c: c.get_batch_delivery(10_000_000, count=101),
    lambda c: c.get_batch_delivery("10000000"),
    lambda c: c.get_messages("outbox"),
    lambda c: c.get_messages(3),
    lambda c: c.get_messages("sent", count=1001),
    lambda c: c.get_messages("sent", index=-5),
    lambda c: c.get_messages("sent", from_numbers=["line-a"]),
    lambda c: c.get_delivery(0),
    lambda c: c.get_delivery(True),
    lambda c: c.get_inbox_count("no"),
    lambda c: c.get_messages_by_date_range("sent", "yesterday", datetime.now()),
    lambda c: c.is_in_telecom_blacklist("123"),
    lambda c: c.extract_telecom_blacklist([]),
    lambda c: c.get_batch_delivery(10**5000),  # too long for Python to write out: still an input error
    lambda c: c.send_sms(10**5000, ["09121234567"], "hi"),
]


@pytest.mark.parametrize("call", BAD_CALLS)
def test_bad_read_input_is_an_input_error(shared_simulator, call):
    client = make_client(shared_simulator)
    with pytest.raises(errors.InputError):
        call(client)
    assert sum(client.calls.values()) == 0


def test_missing_credentials_say_what_to_do(shared_simulator, monkeypatch, tmp_path):
    monkeypatch.delenv("PAYAMAK_USERNAME", raising=False)
    monkeypatch.delenv("PAYAMAK_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(errors.InputError, match="PAYAMAK_USERNAME"):
        PanelClient(wsdl=shared_simulator.wsdl_url)


def test_credentials_and_service_from_environment_and_dotenv(shared_simulator, monkeypatch, tmp_path):
    monkeypatch.delenv("PAYAMAK_USERNAME", raising=False)
    monkeypatch.delenv("PAYAMAK_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        f"PAYAMAK_USERNAME=demo\nPAYAMAK_PASSWORD=demo\nPAYAMAK_WSDL={shared_simulator.wsdl_url}\n"
    )
    assert PanelClient().get_credit() == 1_000_000
    monkeypatch.setenv("PAYAMAK_PASSWORD", "wrong")  # the environment wins over .env
    with pytest.raises(errors.CredentialsError):
        PanelClient().get_credit()


def test_bundled_wsdl_with_an_endpoint(shared_simulator):
    client = PanelClient("demo", "demo", wsdl="bundled", endpoint=shared_simulator.url)
    assert client.endpoint == shared_simulator.url and client.get_credit() == 1_000_000


def test_unreachable_service_is_a_transport_error():
    with pytest.raises(errors.TransportError, match="Could not load"):
        PanelClient("demo", "demo", wsdl="http://127.0.0.1:9/SendService.svc?wsdl", timeout=2)
    client = PanelClient(
        "demo", "demo", wsdl="bundled", endpoint="http://127.0.0.1:9/SendService.svc", max_retry_wait=0.01
    )
    with pytest.raises(errors.TransportError):
        client.get_credit()
    assert client.calls["GetCredit"] == client.read_attempts
    with pytest.raises(errors.TransportError) as caught:  # refused: the send never left, so it is not "unknown"
        client.send_sms(LINE, ["09121234567"], "hi")
    assert not isinstance(caught.value, errors.SendOutcomeUnknownError) and client.calls["SendSMS"] == 1


# --- a bad network ----------------------------------------------------------------------------
def test_reads_survive_a_bad_network(make_simulator):
    simulator = make_simulator(
        world_config(messages=4000), FaultConfig(fail_rate=0.25, drop_rate=0.1, fault_rate=0.05, seed=11)
    )
    client = make_client(simulator, read_attempts=8)
    for _ in range(20):
        assert client.get_credit() == 1_000_000
    frame = client.messages_frame("sent")
    assert len(frame) == truth(simulator, batches=0)["messages"]["sent"] and frame["message_id"].is_unique
    assert sum(client.retries.values()) > 5


def test_sends_never_go_out_twice(make_simulator):
    simulator = make_simulator(faults=FaultConfig(fail_rate=0.2, drop_rate=0.2, fault_rate=0.1, seed=5))
    client = make_client(simulator)
    outcomes = {"ok": 0, "unknown": 0, "not_sent": 0}
    for i in range(60):
        try:
            client.send_batch_sms(LINE, [f"0912{i:07d}"], f"message {i}")
            outcomes["ok"] += 1
        except errors.SendOutcomeUnknownError:
            outcomes["unknown"] += 1
        except errors.TransportError:
            outcomes["not_sent"] += 1
    served = truth(simulator, batches=0)
    assert client.calls["SendBatchSms"] == 60  # one request per send: never retried
    runtime_sends = len(simulator.world.sends)
    assert served["calls"]["SendBatchSms"] == runtime_sends  # every request that reached the panel sent once
    assert outcomes["ok"] <= runtime_sends <= outcomes["ok"] + outcomes["unknown"]
    # a 5xx, an s:Server fault or a cut answer do not prove the send never ran: all unknown
    assert outcomes["unknown"] > 0 and outcomes["not_sent"] == 0
    contents = [s.texts[0] for s in simulator.world.sends.values()]
    assert len(contents) == len(set(contents))  # no text went out twice


def test_a_lost_answer_to_a_send_is_unknown_not_retried(make_simulator):
    simulator = make_simulator(faults=FaultConfig(slow_rate=1.0, slow_seconds=1.5))
    client = make_client(simulator, timeout=0.5)
    with pytest.raises(errors.SendOutcomeUnknownError, match="check the account's sent messages"):
        client.send_sms(LINE, ["09121234567"], "hi")
    assert client.calls["SendSMS"] == 1
    assert len(simulator.world.sends) == 1  # it did go out


# --- the password stays secret ----------------------------------------------------------------
def test_password_never_shows(make_simulator, caplog):
    secret = "S3cret-پسورد&<x>"
    simulator = make_simulator()
    simulator.world.accounts["alice"] = Account("alice", secret, Decimal(10))
    caplog.set_level(logging.DEBUG)
    client = make_client(simulator, "alice", secret)
    texts = [repr(client), str(vars(client))]
    client.get_credit()
    client.messages_frame("sent", limit=5)
    failures = []
    for call in (
        lambda: client.send_sms("99999999", ["09121234567"], "hi"),
        lambda: make_client(simulator, "alice", secret + "x").get_credit(),
        lambda: client.get_batch_delivery(12),
    ):
        try:
            call()
        except errors.PayamakError as error:
            failures.append(error)
    assert len(failures) == 3
    texts += [str(e) for e in failures] + [repr(e) for e in failures]
    texts += ["".join(traceback.format_exception(e)) for e in failures]
    logs = caplog.text
    assert "GetCredit to http" in logs  # the DEBUG records of the calls were captured
    from xml.sax.saxutils import escape

    for text in texts + [logs]:
        assert secret not in text and escape(secret) not in text


# --- the fast page parser reads exactly what zeep reads ---------------------------------------
def zeep_rows(client: PanelClient, raw: bytes) -> list[dict]:
    binding = client.wire.binding
    operation = binding.get("GetMessages")
    envelope = etree.fromstring(raw)
    result = operation.process_reply(envelope)
    return [dict(serialize_object(info)) for info in (result or [])]


def wire_value_of(column: str, value):
    """A frame's value as zeep gives it."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if column == "action_datetime":
        return value.to_pydatetime().replace(tzinfo=None)
    if column in ("cost", "tariff"):
        return Decimal(str(value))
    return value.item() if hasattr(value, "item") else value


def frame_as_wire_values(frame) -> list[dict]:
    return [
        {wire: wire_value_of(column, record[column]) for wire, column in MESSAGE_COLUMNS.items()}
        for record in frame.to_dict("records")
    ]


def assert_same_as_zeep(client, raw):
    ours = frame_as_wire_values(messages_frame(message_columns(raw)))
    theirs = zeep_rows(client, raw)
    assert len(ours) == len(theirs) > 0
    for mine, zeeps in zip(ours, theirs):
        for wire in MESSAGE_COLUMNS:
            assert mine[wire] == zeeps.get(wire), (wire, mine[wire], zeeps.get(wire))


def test_fast_parser_equals_zeep_on_the_same_bytes(client):
    client.send_sms(LINE, ["09121234567", "09351234567"], 'multi & <escaped> "text"')  # nil Receiver, Title, Desc
    page = client.messages_page("sent", count=1000)
    assert_same_as_zeep(client, page.raw)
    received = client.messages_page("received", count=200)
    assert_same_as_zeep(client, received.raw)


def test_fast_parser_equals_zeep_with_missing_elements(client):
    """The 2020 service sends no Cost, SendMethod or SendStatus: both parsers give None."""
    raw = client.messages_page("sent", count=300).raw
    root = etree.fromstring(raw)
    models = "http://schemas.datacontract.org/2004/07/SMSPanel.Domain.Models"
    for name in ("Cost", "SendMethod", "SendStatus"):
        for element in root.iter(f"{{{models}}}{name}"):
            element.getparent().remove(element)
    first_content = next(root.iter(f"{{{models}}}Content"))
    first_content.text = ""  # an empty element that is not nil
    stripped = etree.tostring(root)
    assert b"<a:Content></a:Content>" in stripped or b"<a:Content/>" in stripped
    assert_same_as_zeep(client, stripped)


def test_fast_parser_ignores_casing_and_prefixes(client):
    raw = client.messages_page("sent", count=100).raw
    recased = raw.replace(b"<a:MessageId>", b"<a:messageID>").replace(b"</a:MessageId>", b"</a:messageID>")
    recased = recased.replace(b"<a:Content>", b"<a:CONTENT>").replace(b"</a:Content>", b"</a:CONTENT>")
    recased = recased.replace(b"xmlns:a=", b"xmlns:dc=").replace(b"<a:", b"<dc:").replace(b"</a:", b"</dc:")
    assert messages_frame(message_columns(recased)).equals(messages_frame(message_columns(raw)))


def tree_reading(raw: bytes) -> dict:
    return tree_columns(etree.fromstring(raw).xpath("//*[local-name() = 'GetMessagesResult']")[0])


# Each case: how a real page could differ from the simulator's, and whether the regular
# expression may still read it (the tree reads the rest; both must give the same columns).
SCAN_CASES = {
    "as served": (lambda raw: raw, True),
    "entities and references": (
        lambda raw: raw.replace(
            b"<a:Content>", b"<a:Content>&lt;b&gt; &amp;&amp; &quot;&apos; &#xD;&#1583;&#x1F600;", 1
        ),
        True,
    ),
    "CR LF and lone CR in a text": (lambda raw: raw.replace(b"<a:Content>", b"<a:Content>one\r\ntwo\rthree ", 2), True),
    "indented": (
        lambda raw: raw.replace(b"><a:", b">\n    <a:").replace(b"></a:MessageInfo>", b">\n</a:MessageInfo>"),
        True,
    ),
    "an extra field in every record": (
        lambda raw: raw.replace(b"<a:Cost>", b"<a:Region>Tehran</a:Region><a:Cost>"),
        True,
    ),
    "fields in another order": (
        lambda raw: re.sub(rb"(<a:Content>[^<]*</a:Content>)(<a:Cost>[^<]*</a:Cost>)", rb"\2\1", raw),
        True,
    ),
    "an empty element": (
        lambda raw: re.sub(rb"<a:Sender>[^<]*</a:Sender>", b"<a:Sender></a:Sender>", raw, count=1),
        True,
    ),
    "one record with another layout": (lambda raw: raw.replace(b'<a:Desc i:nil="true"/>', b"", 1), False),
    "a comment between records": (
        lambda raw: raw.replace(b"</a:MessageInfo><a:MessageInfo>", b"</a:MessageInfo><!-- x --><a:MessageInfo>", 1),
        False,
    ),
    "CDATA in a text": (lambda raw: raw.replace(b"<a:Content>", b"<a:Content><![CDATA[<b>]]>", 1), False),
    "an attribute on a field": (lambda raw: raw.replace(b"<a:Content>", b'<a:Content xml:lang="fa">', 1), False),
    "declared in another encoding": (
        lambda raw: ('<?xml version="1.0" encoding="utf-16"?>' + raw.decode("utf-8")).encode("utf-16"),
        False,
    ),
}


@pytest.mark.parametrize("case", SCAN_CASES)
def test_scanned_and_tree_readings_agree(client, case):
    change, scannable = SCAN_CASES[case]
    raw = change(client.messages_page("sent", count=60).raw)
    assert (scanned_columns(raw, "GetMessages") is not None) is scannable
    assert message_columns(raw) == tree_reading(raw)
    assert len(message_columns(raw)["message_id"]) == 60


@pytest.mark.parametrize(
    "body",
    [
        b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body><GetMessagesResponse",
        (
            b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
            b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body><GetMessagesResponse>"
            b"<GetMessagesResult>&e;</GetMessagesResult></GetMessagesResponse></s:Body></s:Envelope>"
        ),
        b"not xml at all",
    ],
)
def test_truncated_or_hostile_answers_are_transport_errors(body):
    with pytest.raises(errors.TransportError):
        message_columns(body)


# --- deployments differ -----------------------------------------------------------------------
def test_operations_missing_from_a_deployment(shared_simulator, tmp_path):
    """An older service (2020) has no GetMessagesByDateRange: the client says so, clearly."""
    folder = wsdl.WSDL_PATH.parent
    for name in wsdl.SCHEMA_NAMES:
        shutil.copy(folder / f"{name}.xsd", tmp_path)
    document = etree.fromstring(wsdl.document("wsdl"))
    for element in list(document.iter()):
        if element.get("name", "").startswith(("GetMessagesByDateRange", "ISendService_GetMessagesByDateRange")):
            element.getparent().remove(element)
    (tmp_path / "SendService.wsdl").write_bytes(etree.tostring(document))
    client = PanelClient("demo", "demo", wsdl=str(tmp_path / "SendService.wsdl"), endpoint=shared_simulator.url)
    assert not client.has("GetMessagesByDateRange") and client.has("GetMessages")
    with pytest.raises(errors.UnsupportedOperationError, match="GetMessagesByDateRange"):
        client.get_messages_by_date_range("sent", datetime.now() - timedelta(days=1), datetime.now())
    assert len(client.get_messages("sent", count=3)) == 3
    assert client.missing_message_fields == frozenset()


def test_message_fields_missing_from_a_deployment_are_named(shared_simulator, tmp_path, caplog):
    """The 2020 service's MessageInfo has no Cost, SendMethod or SendStatus."""
    folder = wsdl.WSDL_PATH.parent
    shutil.copy(folder / "SendService.wsdl", tmp_path)
    for name in wsdl.SCHEMA_NAMES:
        shutil.copy(folder / f"{name}.xsd", tmp_path)
    schema = etree.fromstring(wsdl.document("xsd3"))
    for element in list(schema.iter("{http://www.w3.org/2001/XMLSchema}element")):
        if element.get("name") in ("Cost", "SendMethod", "SendStatus"):
            element.getparent().remove(element)
    (tmp_path / "xsd3.xsd").write_bytes(etree.tostring(schema))
    with caplog.at_level(logging.INFO, logger="payamak_analytics"):
        client = PanelClient("demo", "demo", wsdl=str(tmp_path / "SendService.wsdl"), endpoint=shared_simulator.url)
    assert client.missing_message_fields == {"Cost", "SendMethod", "SendStatus"}
    assert "Cost, SendMethod, SendStatus" in caplog.text


def test_unknown_codes_and_enum_values_never_crash():
    from payamak_analytics import codes

    assert codes.delivery_status(42).outcome == "unknown"
    assert codes.enum_name("SMSStatus", "sENT") == "Sent"
    assert codes.enum_name("SMSSendMethod", "cancellationby11") == "CancellationBy11"  # a newer deployment's
    assert codes.enum_name("SMSSendMethod", "CarrierPigeon") == "Unknown"
    with pytest.raises(errors.PayamakError) as caught:
        codes.raise_for("SendSMS", 77)
    assert caught.value.code == 77


def test_importing_the_client_never_loads_the_simulator():
    """The client must work against the real service: it shares nothing with the simulator but the WSDL."""
    probe = "import sys, payamak_analytics.client; print(sorted(m for m in sys.modules if 'simulator' in m))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert done.stdout.strip() == "[]"
