"""The local panel over real HTTP, called with zeep in strict mode, as any SOAP client would."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import requests

from payamak_analytics.simulator import FaultConfig
from payamak_analytics.simulator.history import FIRST_MESSAGE_ID, OUT, WEEK

from .conftest import admin_post, strict_zeep, truth, world_config

DEMO = ("demo", "demo")


def numbers(*values):
    return {"string": list(values)}


@pytest.fixture
def service(simulator):
    return strict_zeep(simulator).service


def test_get_credit_codes(service):
    assert service.GetCredit(*DEMO) == 1_000_000
    assert service.GetCredit("demo", "wrong") == -1
    assert service.GetCredit("nobody", "x") == -1
    assert service.GetCredit("inactive", "inactive-pw") == -2


def test_get_inbox_count_codes(service, simulator):
    t = truth(simulator, batches=0)["messages"]
    assert service.GetInboxCount(*DEMO, True) == t["received_read"] > 0
    assert service.GetInboxCount(*DEMO, False) == t["received_unread"] > 0
    assert service.GetInboxCount("demo", "wrong", True) == -1


SEND_CASES = [
    # (code, account, line, recipients, text)
    (0, DEMO, "10002188", ["09121234567"], "سلام"),
    (1, ("demo", "wrong"), "10002188", ["09121234567"], "hi"),
    (2, ("blocked", "blocked-pw"), "10002188", ["09121234567"], "hi"),
    (3, DEMO, "99999999", ["09121234567"], "hi"),
    (5, DEMO, "10002188", [f"0912{i:07d}" for i in range(101)], "hi"),
    (6, DEMO, "30001111", ["09121234567"], "hi"),
    (7, DEMO, "10002188", ["09121234567"], "بازی قمار آنلاین"),
    (8, ("nocredit", "nocredit-pw"), "10002188", ["09121234567"], "hi"),
]


@pytest.mark.parametrize("operation", ["SendSMS", "SendBatchSms"])
@pytest.mark.parametrize("code, account, line, recipients, text", SEND_CASES)
def test_send_codes(simulator, operation, code, account, line, recipients, text):
    service = strict_zeep(simulator).service
    call = getattr(service, operation)
    answer = call(*account, line, numbers(*recipients), text, False, *([None, None] if operation == "SendSMS" else []))
    assert answer[f"{operation}Result"] == code
    assert len(simulator.world.sends) == (1 if code == 0 else 0)  # a refused send leaves no trace
    if code == 0 and operation == "SendSMS":
        assert answer["recId"]["long"][0] > 0 and answer["status"] == b"\x01"
    if code == 0 and operation == "SendBatchSms":
        assert answer["batchSmsId"] >= FIRST_MESSAGE_ID


@pytest.mark.parametrize("operation", ["SendSMS", "SendBatchSms"])
def test_daily_limit_answers_4(make_simulator, operation):
    config = world_config()
    config.daily_limit = 3
    simulator = make_simulator(config)
    call = getattr(strict_zeep(simulator).service, operation)
    extra = [None, None] if operation == "SendSMS" else []
    assert call(*DEMO, "10002188", numbers("09121234567", "09351234567"), "a", False, *extra)[f"{operation}Result"] == 0
    assert call(*DEMO, "10002188", numbers("09121234568", "09351234568"), "b", False, *extra)[f"{operation}Result"] == 4


@pytest.mark.parametrize("switch, code", [("system_updating", 9), ("webservice_disabled", 10)])
def test_switches_answer_9_and_10(simulator, service, switch, code):
    admin_post(simulator, "switch", **{switch: "1"})
    assert service.SendSMS(*DEMO, "10002188", numbers("09121234567"), "hi", False, None, None)["SendSMSResult"] == code
    assert service.SendBatchSms(*DEMO, "10002188", numbers("09121234567"), "hi", False)["SendBatchSmsResult"] == code
    admin_post(simulator, "switch", **{switch: "0"})
    assert service.SendSMS(*DEMO, "10002188", numbers("09121234567"), "hi", False, None, None)["SendSMSResult"] == 0


def test_credit_is_debited_by_parts_recipients_and_tariff(service):
    persian_two_parts = "س" * 71
    english_one_part = "a" * 100
    service.SendSMS(
        *DEMO, "10002188", numbers("09121234567", "09351234567", "09201234567"), persian_two_parts, False, None, None
    )
    assert service.GetCredit(*DEMO) == 1_000_000 - 2 * 3 * 1
    service.SendBatchSms(*DEMO, "10002188", numbers("09121234567", "09351234567"), english_one_part, False)
    assert float(service.GetCredit(*DEMO)) == pytest.approx(1_000_000 - 6 - 1 * 2 * 1.3)


def test_send_sms_reports_invalid_recipients_per_number(service):
    answer = service.SendSMS(*DEMO, "10002188", numbers("09121234567", "12345"), "hi", False, None, None)
    assert answer["SendSMSResult"] == 0
    assert answer["status"] == b"\x01\x00"
    assert answer["recId"]["long"][1] == 0
    assert service.GetDelivery(*DEMO, answer["recId"]["long"][0]) == -5


def test_get_batch_delivery_codes_and_paging(service):
    batch = service.SendBatchSms(*DEMO, "50001234", numbers(*[f"0912{i:07d}" for i in range(100)]), "hi", False)[
        "batchSmsId"
    ]
    first = service.GetBatchDelivery(*DEMO, batch, 1, 60)
    second = service.GetBatchDelivery(*DEMO, batch, 61, 60)
    assert first["GetBatchDeliveryResult"] == 0
    assert len(first["numbers"]["string"]) == 60 and len(second["numbers"]["string"]) == 40
    assert first["numbers"]["string"][0] == "09120000000" and second["numbers"]["string"][0] == "09120000060"
    assert set(first["deliveryStatus"]["int"]) == {-5}
    assert service.GetBatchDelivery("demo", "wrong", batch, 1, 100)["GetBatchDeliveryResult"] == -1
    assert service.GetBatchDelivery(*DEMO, 1, 1, 100)["GetBatchDeliveryResult"] == -2
    assert service.GetBatchDelivery("nocredit", "nocredit-pw", batch, 1, 100)["GetBatchDeliveryResult"] == -2


def test_get_messages_pages_newest_first(service, simulator):
    page = service.GetMessages(*DEMO, 2, None, 1, 1000)
    assert len(page) == 1000
    ids = [m.MessageId for m in page]
    assert ids == sorted(ids, reverse=True)
    assert all(m.MessageType == "Out" for m in page)
    next_page = service.GetMessages(*DEMO, 2, None, 1001, 1000)
    assert next_page[0].MessageId < ids[-1]
    received = service.GetMessages(*DEMO, 1, None, 1, 5)
    assert all(m.MessageType == "In" and m.Content for m in received)
    only_promo = service.GetMessages(*DEMO, 2, numbers("50001234"), 1, 200)
    assert only_promo and all(m.Sender == "50001234" for m in only_promo)
    refused = strict_zeep(simulator)
    with refused.settings(raw_response=True):
        raw = refused.service.GetMessages("demo", "wrong", 2, None, 1, 10).content
    assert b'<GetMessagesResult i:nil="true"' in raw  # nil, not an empty list: the caller can tell


def test_sent_record_agrees_with_its_batch_delivery(make_simulator):
    simulator = make_simulator(world_config(days=3))
    service = strict_zeep(simulator).service
    world = simulator.world
    h = world.history
    # the biggest campaign chunk older than a day: every status is final by now
    candidates = np.flatnonzero((h.direction == OUT) & (h.t < world.clock.now() - 86400))
    i = int(candidates[np.argmax(h.recipients[candidates])])
    newer = int(((h.direction == OUT) & (np.arange(len(h)) > i)).sum())
    [message] = service.GetMessages(*DEMO, 2, None, newer + 1, 1)
    assert message.MessageId == FIRST_MESSAGE_ID + i
    report = service.GetBatchDelivery(*DEMO, message.MessageId, 1, 100)
    statuses = report["deliveryStatus"]["int"]
    assert message.Count == len(statuses) > 1
    assert message.NotSent == sum(s in (10, 11) for s in statuses)
    assert message.Sent == message.Count - message.NotSent


def test_statuses_move_with_the_clock(simulator, service):
    answer = service.SendSMS(*DEMO, "50001234", numbers(*[f"0935{i:07d}" for i in range(50)]), "hi", False, None, None)
    rec_ids = answer["recId"]["long"]
    seen, age = [], 0
    for moment in (0, 61, 3 * 3600, 2 * 86400, 8 * 86400):  # seconds after the send
        admin_post(simulator, "clock", advance=moment - age)
        age = moment
        seen.append({service.GetDelivery(*DEMO, r) for r in rec_ids})
    assert seen[0] == {-5}
    assert seen[1] <= {-4, 0, 6, 7, 10, 11} and seen[1] & {-4, 0}
    assert 1 in seen[3] and not seen[3] & {-5, -4}
    assert seen[4] == {-3}


def _rec_id_with_status(world, wanted: int) -> int:
    h = world.history
    recent = np.flatnonzero((h.direction == OUT) & (h.t > world.clock.now() - WEEK + 3600))
    owner, row = h.expand(recent)
    statuses = h.statuses(owner, row, world.clock.now())
    k = int(np.flatnonzero(statuses == wanted)[0])
    return (FIRST_MESSAGE_ID + int(owner[k])) * 1000 + int(row[k])


def test_get_delivery_reaches_every_status(make_simulator):
    simulator = make_simulator(world_config(messages=20_000, days=10))
    service = strict_zeep(simulator).service
    for code in range(12):
        assert service.GetDelivery(*DEMO, _rec_id_with_status(simulator.world, code)) == code
    old = FIRST_MESSAGE_ID * 1000  # the oldest record, 10 days old
    assert service.GetDelivery(*DEMO, old) == -3
    assert service.GetDeilvery(*DEMO, old) == -3
    assert service.GetDelivery(*DEMO, 5) == -2
    assert service.GetDelivery("demo", "wrong", old) == -1
    fresh = service.SendSMS(*DEMO, "10002188", numbers("09121234567"), "x", False, None, None)["recId"]["long"][0]
    assert service.GetDelivery(*DEMO, fresh) == -5
    admin_post(simulator, "clock", advance=70)
    statuses = {
        service.GetDelivery(
            *DEMO,
            service.SendSMS(*DEMO, "10002188", numbers(f"0912000{i:04d}"), "x", False, None, None)["recId"]["long"][0],
        )
        for i in range(40)
    }
    admin_post(simulator, "clock", advance=0)
    assert statuses == {-5}


def test_other_operations_answer_as_service_md_says(simulator, service):
    assert service.GetSenderNumbers(*DEMO) == "10002188,50001234,30001111"
    assert service.GetSenderNumbers("demo", "x") == "-1"
    like = service.SendSmsLikeToLike(
        *DEMO, "10002188", numbers("09121234567", "09351234567"), numbers("سلام علی", "سلام مریم"), False
    )
    assert like["SendSmsLikeToLikeResult"] == 0
    report = service.GetDeliveryLikeToLike(*DEMO, like["smsId"])
    assert report["GetDeliveryLikeToLikeResult"] == 0 and report["numbers"]["string"] == ["09121234567", "09351234567"]
    assert service.GetDeliveryLikeToLike(*DEMO, 3)["GetDeliveryLikeToLikeResult"] == -2
    assert service.NumberIsInTelecomBlacklist(*DEMO, "09121234567") in (0, 1)
    assert service.NumberIsInTelecomBlacklist("demo", "x", "09121234567") == -1
    assert service.NumberIsInTelecomBlacklist("inactive", "inactive-pw", "09121234567") == -2
    assert service.NumberIsInTelecomBlacklist(*DEMO, "") == -3
    candidates = ",".join(f"0912{i:07d}" for i in range(300))
    extracted = service.ExtractTelecomBlacklistNumbers(*DEMO, candidates)
    assert extracted["ExtractTelecomBlacklistNumbersResult"] == 0
    blacklisted = extracted["blacklistNumbers"]["string"]
    assert 0 < len(blacklisted) < 60
    assert all(service.NumberIsInTelecomBlacklist(*DEMO, n) == 1 for n in blacklisted[:5])
    assert service.CheckSmsContent(*DEMO, "سلام") == 0
    assert service.CheckSmsContent(*DEMO, "قمار") == 1
    assert service.CheckSmsContent("demo", "x", "سلام") == -1
    assert service.Dummy(42) == 42
    from datetime import datetime, timedelta

    now = datetime.fromtimestamp(simulator.world.clock.now())
    ranged = service.GetMessagesByDateRange(*DEMO, 2, None, now - timedelta(days=2), now)
    assert ranged and all(
        now - timedelta(days=2, hours=4) <= m.ActionDateTime <= now + timedelta(hours=4) for m in ranged
    )


def test_truth_equals_what_paging_everything_returns(make_simulator):
    simulator = make_simulator(world_config(messages=2500, days=8))
    service = strict_zeep(simulator).service
    sent, index = [], 1
    while page := service.GetMessages(*DEMO, 2, None, index, 1000):
        sent += page
        index += len(page)
    received = service.GetMessages(*DEMO, 1, None, 1, 1000)
    by_status: dict[str, int] = {}
    for message in sent:
        index = 1
        while True:
            report = service.GetBatchDelivery(*DEMO, message.MessageId, index, 100)
            statuses = report["deliveryStatus"]["int"] if report["deliveryStatus"] else []
            for s in statuses:
                by_status[str(s)] = by_status.get(str(s), 0) + 1
            if len(statuses) < 100:
                break
            index += 100
    t = truth(simulator)
    assert t["messages"]["sent"] == len(sent) == len({m.MessageId for m in sent})
    assert t["messages"]["received"] == len(received)
    assert t["messages"]["received_read"] == sum(m.IsRead for m in received)
    assert t["recipients_by_status"] == by_status
    assert sum(t["batches"][str(m.MessageId)]["count"] for m in sent) == sum(m.Count for m in sent)
    assert t["calls"]["GetBatchDelivery"] >= len(sent)


def test_history_is_deterministic(make_simulator):
    a = strict_zeep(make_simulator()).service.GetMessages(*DEMO, 2, None, 1, 50)
    b = strict_zeep(make_simulator()).service.GetMessages(*DEMO, 2, None, 1, 50)
    assert [(m.MessageId, m.Content, m.Receiver) for m in a] == [(m.MessageId, m.Content, m.Receiver) for m in b]


@pytest.mark.parametrize("kind", ["fail", "fault", "drop"])
def test_faults_appear_at_about_their_rates(make_simulator, kind):
    rate = 0.2
    simulator = make_simulator(faults=FaultConfig(**{f"{kind}_rate": rate, "seed": 3}))
    envelope = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        b'<GetCredit xmlns="http://tempuri.org/"><userName>demo</userName><password>demo</password></GetCredit>'
        b"</s:Body></s:Envelope>"
    )
    outcomes = {"ok": 0, "fail": 0, "fault": 0, "drop": 0}
    n = 400
    for _ in range(n):
        try:
            response = requests.post(
                simulator.url,
                data=envelope,
                timeout=10,
                headers={"Content-Type": "text/xml", "SOAPAction": '"http://tempuri.org/ISendService/GetCredit"'},
            )
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
            outcomes["drop"] += 1
            continue
        if response.status_code == 200:
            outcomes["ok"] += 1
        elif b"Fault" in response.content:
            outcomes["fault"] += 1
        else:
            assert response.status_code in (500, 503)
            outcomes["fail"] += 1
    expected, spread = n * rate, 4 * (n * rate * (1 - rate)) ** 0.5
    assert abs(outcomes[kind] - expected) < spread, outcomes
    assert outcomes["ok"] + outcomes[kind] == n


def test_slow_answers_outlast_a_client_timeout(make_simulator):
    simulator = make_simulator(faults=FaultConfig(slow_rate=1.0, slow_seconds=1.5))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(simulator.url, data=b"<x/>", timeout=0.5, headers={"Content-Type": "text/xml"})


HOSTILE = {
    "malformed": b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body><GetCredit",
    "not soap": b"<hello/>",
    "empty body": b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body/></s:Envelope>",
    "unknown operation": b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body>"
    b"<DropTables xmlns='http://tempuri.org/'/></s:Body></s:Envelope>",
    "wrong type": b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body>"
    b"<GetBatchDelivery xmlns='http://tempuri.org/'><userName>demo</userName><password>demo</password>"
    b"<batchSmsId>abc</batchSmsId><index>1</index><count>100</count></GetBatchDelivery></s:Body></s:Envelope>",
    "int overflow": b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body>"
    b"<GetBatchDelivery xmlns='http://tempuri.org/'><batchSmsId>99999999999</batchSmsId></GetBatchDelivery>"
    b"</s:Body></s:Envelope>",
    "xxe": b"<?xml version='1.0'?><!DOCTYPE r [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
    b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body><CheckSmsContent xmlns='http://tempuri.org/'>"
    b"<userName>demo</userName><password>demo</password><message>&x;</message></CheckSmsContent></s:Body></s:Envelope>",
    "billion laughs": b"<?xml version='1.0'?><!DOCTYPE l [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
    b"<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]><s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'>"
    b"<s:Body><Dummy xmlns='http://tempuri.org/'><number>&c;</number></Dummy></s:Body></s:Envelope>",
    "oversized": b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body><CheckSmsContent xmlns='http://tempuri.org/'><message>"
    + b"a" * 1_100_000
    + b"</message></CheckSmsContent></s:Body></s:Envelope>",
    "mismatched action": b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body>"
    b"<Dummy xmlns='http://tempuri.org/'><number>1</number></Dummy></s:Body></s:Envelope>",
}


# What WCF answers each: (SOAPAction's operation, HTTP status, fault code or None for an empty body).
HOSTILE_ANSWERS = {
    "malformed": ("GetCredit", 500, "a:DeserializationFailed"),
    "not soap": ("GetCredit", 400, None),
    "empty body": ("", 500, "a:ActionNotSupported"),
    "unknown operation": ("", 500, "a:ActionNotSupported"),
    "wrong type": ("GetBatchDelivery", 500, "a:DeserializationFailed"),
    "int overflow": ("GetBatchDelivery", 500, "a:DeserializationFailed"),
    "xxe": ("CheckSmsContent", 400, None),
    "billion laughs": ("Dummy", 400, None),
    "oversized": ("CheckSmsContent", 413, None),
    "mismatched action": ("GetCredit", 500, "a:InternalServiceFault"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_requests_get_what_wcf_answers(simulator, name):
    operation, status, code = HOSTILE_ANSWERS[name]
    action = f"http://tempuri.org/ISendService/{operation}" if operation else ""
    response = requests.post(
        simulator.url, data=HOSTILE[name], timeout=10, headers={"Content-Type": "text/xml", "SOAPAction": action}
    )
    assert response.status_code == status
    answer = response.content.decode()
    assert (f">{code}</faultcode>" in answer and "<faultstring" in answer) if code else answer == ""
    assert "Traceback" not in answer and "root:" not in answer and 'File "' not in answer
    assert strict_zeep(simulator).service.Dummy(7) == 7  # still serving


def test_admin_endpoints_are_off_unless_asked(make_simulator):
    from payamak_analytics.simulator import Simulator

    with Simulator(world_config(messages=100)) as closed:
        base = closed.url.rsplit("/", 1)[0]
        assert requests.get(f"{base}/_sim/truth", timeout=5).status_code == 404
        assert requests.post(f"{base}/_sim/clock?advance=100", timeout=5).status_code == 404


def test_binds_loopback_by_default(simulator):
    assert simulator.url.startswith("http://127.0.0.1:")


def test_php_soapclient_speaks_to_the_simulator(simulator):
    """A SOAP client of another language, with the real service's element names."""
    if shutil.which("php") is None:
        pytest.skip("php (Debian's php-cli and php-soap) is not installed; make test installs it where apt-get can")
    script = Path(__file__).parent / "clients" / "php_soapclient.php"
    result = subprocess.run(
        ["php", str(script), simulator.wsdl_url], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines[0] == 'string(7) "1000000"'  # GetCredit
    assert "int(0)" in lines and 'string(4) "0101"' in lines  # SendSMS to two numbers: both sent
    assert 'string(11) "09121234567"' in lines and "int(-5)" in lines  # GetBatchDelivery of the new batch
    assert 'string(10) "WebService"' in lines  # GetMessages: the newest record, an enum by name
    assert lines[-1] == "int(-2)"  # GetDelivery of an unknown recId
    sent = list(simulator.world.sends.values())
    assert [len(s.numbers) for s in sent] == [2, 1]
