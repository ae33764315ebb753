"""The simulator's world over real HTTP: admin endpoints that refuse bad values, outages,
forgotten reports, incidents, several accounts, a clock that lives through its history."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import datetime

import numpy as np
import pytest
import requests
import zeep

from payamak_analytics.dates import TEHRAN
from payamak_analytics.errors import InputError
from payamak_analytics.simulator import HistoryConfig, World, WorldConfig
from payamak_analytics.simulator.history import OUT, TEHRAN_OFFSET, operator_of

from .conftest import START, admin_post, strict_zeep, truth, world_config

DEMO = ("demo", "demo")


def numbers(*values):
    return {"string": list(values)}


def admin(simulator, method: str, path: str, **params) -> requests.Response:
    base = simulator.url.rsplit("/", 1)[0]
    return requests.request(method, f"{base}/_sim/{path}", params=params, timeout=30)


def state(simulator) -> dict:
    """Everything an admin can change, as the endpoints report it."""
    return {
        "clock": admin(simulator, "GET", "clock").json()["epoch"],
        "switch": admin_post(simulator, "switch"),
        "dark": admin(simulator, "GET", "dark").json(),
        "incidents": admin(simulator, "GET", "incident").json(),
        "forgotten": dict(simulator.world.forgotten),
    }


BAD_REQUESTS = [
    ("POST", "clock", {"advance": "inf"}),
    ("POST", "clock", {"advance": "-inf"}),
    ("POST", "clock", {"advance": "nan"}),
    ("POST", "clock", {"advance": "NaN"}),
    ("POST", "clock", {"advance": "-1e12"}),
    ("POST", "clock", {"advance": "-1"}),
    ("POST", "clock", {"advance": "1e12"}),
    ("POST", "clock", {"advance": "1e400"}),
    ("POST", "clock", {"advance": "ten"}),
    ("POST", "clock", {"advance": ""}),
    ("POST", "clock", {"advance": ["1", "2"]}),
    ("POST", "clock", {"advance": "1", "speed": "2"}),
    ("POST", "switch", {"system_updating": "maybe"}),
    ("POST", "switch", {"system_updating": "1", "webservice_disabled": "yes"}),
    ("POST", "switch", {"updating": "1"}),
    ("POST", "dark", {}),
    ("POST", "dark", {"seconds": "inf"}),
    ("POST", "dark", {"seconds": "nan"}),
    ("POST", "dark", {"seconds": "0"}),
    ("POST", "dark", {"seconds": "-30"}),
    ("POST", "dark", {"seconds": "1e9"}),
    ("POST", "dark", {"seconds": "5", "documents": "maybe"}),
    ("POST", "forget", {"batch_id": "abc", "times": "1"}),
    ("POST", "forget", {"batch_id": "-5", "times": "1"}),
    ("POST", "forget", {"batch_id": "1", "times": "1"}),
    ("POST", "forget", {"batch_id": "10000000", "times": "-1"}),
    ("POST", "forget", {"batch_id": "10000000", "times": "1.5"}),
    ("POST", "forget", {"batch_id": "10000000", "times": "1e9"}),
    ("POST", "forget", {"batch_id": "9" * 40, "times": "1"}),
    ("POST", "incident", {"operator": "Nokia", "status": "6", "rate": "0.3"}),
    ("POST", "incident", {"operator": "MCI", "status": "0", "rate": "0.3"}),
    ("POST", "incident", {"operator": "MCI", "status": "12", "rate": "0.3"}),
    ("POST", "incident", {"operator": "MCI", "status": "six", "rate": "0.3"}),
    ("POST", "incident", {"operator": "MCI", "status": "6", "rate": "0"}),
    ("POST", "incident", {"operator": "MCI", "status": "6", "rate": "1.5"}),
    ("POST", "incident", {"operator": "MCI", "status": "6", "rate": "nan"}),
    ("POST", "incident", {"operator": "MCI", "status": "6", "rate": "inf"}),
    ("POST", "incident", {"operator": "MCI", "status": "6"}),
    ("POST", "incident", {"operator": "MCI", "status": "6", "rate": "0.3", "line": "99999999"}),
    ("GET", "truth", {"username": "nobody"}),
    ("GET", "truth", {"username": "demo", "user": "demo"}),
    ("GET", "truth", {"batches": "2"}),
]


@pytest.mark.parametrize("method, path, params", BAD_REQUESTS, ids=lambda v: str(v))
def test_admin_refuses_bad_values_with_400_and_keeps_its_state(simulator, method, path, params):
    service = strict_zeep(simulator).service
    before = state(simulator)
    response = admin(simulator, method, path, **params)
    assert response.status_code == 400
    reason = response.text
    assert reason and "\n" not in reason.strip() and "Traceback" not in reason
    assert state(simulator) == before
    sent = service.SendSMS(*DEMO, "10002188", numbers("09121234567"), "hi", False, None, None)
    assert sent["SendSMSResult"] == 0  # the service still works, on a finite clock
    assert service.GetDelivery(*DEMO, sent["recId"]["long"][0]) == -5


def test_a_refusal_says_what_to_write(simulator):
    assert "from 0 to" in admin(simulator, "POST", "clock", advance="-1").text
    named = admin(simulator, "POST", "incident", operator="Nokia", status="6", rate="0.3").text
    assert all(name in named for name in ("MCI", "Irancell", "Rightel"))
    assert "it takes advance" in admin(simulator, "POST", "clock", speed="2").text


def test_unknown_endpoints_and_methods(simulator):
    assert admin(simulator, "GET", "nothing").status_code == 404
    wrong = admin(simulator, "PUT", "clock", advance="1")
    assert wrong.status_code == 405 and "POST" in wrong.headers["Allow"]


def test_the_clock_moves_forward_by_finite_steps(simulator):
    before = admin(simulator, "GET", "clock").json()["epoch"]
    moved = admin_post(simulator, "clock", advance="3600")
    assert moved["epoch"] == pytest.approx(before + 3600)
    assert moved["clock"].endswith("+03:30")


def _soap_post(simulator, body: bytes, action: str) -> requests.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"http://tempuri.org/ISendService/{action}"'}
    return requests.post(simulator.url, data=body, headers=headers, timeout=30)


CREDIT = (
    b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetCredit xmlns="http://tempuri.org/">'
    b"<userName>demo</userName><password>demo</password></GetCredit></s:Body></s:Envelope>"
)


def test_dark_answers_503_to_everything_until_lifted(simulator):
    service = strict_zeep(simulator).service
    assert admin_post(simulator, "dark", seconds="600")["dark_seconds_left"] > 590
    response = _soap_post(simulator, CREDIT, "GetCredit")
    assert response.status_code == 503
    assert b"Service Unavailable" in response.content and b"Envelope" not in response.content
    assert 0 < int(response.headers["Retry-After"]) <= 600
    assert requests.get(simulator.wsdl_url, timeout=30).status_code == 200  # a client can still be built
    assert truth(simulator, batches=0)["account"] == "demo"  # the admin still gets in
    before = simulator.world.accounts["demo"].credit
    send = b"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
        <SendSMS xmlns="http://tempuri.org/"><userName>demo</userName><password>demo</password>
        <fromNumber>10002188</fromNumber><toNumbers xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays">
        <a:string>09121234567</a:string></toNumbers><messageContent>hi</messageContent><isFlash>false</isFlash>
        </SendSMS></s:Body></s:Envelope>"""
    assert _soap_post(simulator, send, "SendSMS").status_code == 503
    assert simulator.world.sends == {} and simulator.world.accounts["demo"].credit == before  # nothing went out
    assert admin(simulator, "DELETE", "dark").json() == {"dark_seconds_left": 0, "documents": False}
    assert service.GetCredit(*DEMO) == before


def test_dark_with_documents_refuses_the_wsdl_too(simulator):
    assert admin_post(simulator, "dark", seconds="600", documents="1")["documents"] is True
    assert requests.get(simulator.wsdl_url, timeout=30).status_code == 503
    assert _soap_post(simulator, CREDIT, "GetCredit").status_code == 503
    admin(simulator, "DELETE", "dark")
    assert requests.get(simulator.wsdl_url, timeout=30).status_code == 200


def test_dark_ends_by_itself_after_its_wall_seconds(simulator):
    admin_post(simulator, "dark", seconds="1")
    assert _soap_post(simulator, CREDIT, "GetCredit").status_code == 503
    deadline = time.monotonic() + 30
    while _soap_post(simulator, CREDIT, "GetCredit").status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _soap_post(simulator, CREDIT, "GetCredit").status_code == 200


def test_forget_answers_minus_2_exactly_k_times(simulator):
    service = strict_zeep(simulator).service
    batch = service.SendBatchSms(*DEMO, "50001234", numbers("09121234567", "09351234567"), "hi", False)["batchSmsId"]
    history_batch = int(simulator.world.history.newest_first(2, simulator.world.clock.now())[0]) + 10_000_000
    for target in (batch, history_batch):
        assert admin_post(simulator, "forget", batch_id=str(target), times="3") == {"batch_id": target, "times": 3}
        answers = [service.GetBatchDelivery(*DEMO, target, 1, 100)["GetBatchDeliveryResult"] for _ in range(5)]
        assert answers == [-2, -2, -2, 0, 0]
    assert service.GetBatchDelivery("demo", "wrong", batch, 1, 100)["GetBatchDeliveryResult"] == -1
    admin_post(simulator, "forget", batch_id=str(batch), times="2")
    assert service.GetBatchDelivery("demo", "wrong", batch, 1, 100)["GetBatchDeliveryResult"] == -1  # not counted
    assert service.GetBatchDelivery(*DEMO, batch, 1, 100)["GetBatchDeliveryResult"] == -2
    admin_post(simulator, "forget", batch_id=str(batch), times="0")  # cancels the rest
    report = service.GetBatchDelivery(*DEMO, batch, 1, 100)
    assert report["GetBatchDeliveryResult"] == 0 and report["numbers"]["string"] == ["09121234567", "09351234567"]


def test_world_config_refuses_absurd_values():
    for bad in (
        {"start": float("nan")},
        {"start": float("inf")},
        {"clock_speed": -1.0},
        {"clock_speed": float("nan")},
        {"accounts": -1},
        {"accounts": 1000},
    ):
        with pytest.raises(InputError):
            World(WorldConfig(history=HistoryConfig(messages=100), **bad))
    world = World(WorldConfig(history=HistoryConfig(messages=100), start=START, clock_speed=0.0))
    for bad_step in (float("nan"), float("inf"), -1.0, 1e12):
        with pytest.raises(InputError):
            world.clock.advance(bad_step)
    assert world.clock.now() == START


def test_history_is_the_same_for_the_same_seed_and_start():
    a, b = (World(world_config(messages=2000)) for _ in range(2))
    assert np.array_equal(a.history.t, b.history.t) and np.array_equal(a.history.peer, b.history.peer)


# --- incidents on demand ----------------------------------------------------------------------
MCI_NUMBERS = [f"0912{i:07d}" for i in range(50)]
IRANCELL_NUMBERS = [f"0935{i:07d}" for i in range(50)]


def _send_batches(service, line: str, count: int) -> list[int]:
    return [
        service.SendBatchSms(*DEMO, line, numbers(*MCI_NUMBERS, *IRANCELL_NUMBERS), f"offer {k}", False)["batchSmsId"]
        for k in range(count)
    ]


def _statuses_by_number(service, batches: list[int]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for batch in batches:
        report = service.GetBatchDelivery(*DEMO, batch, 1, 100)
        for number, status in zip(report["numbers"]["string"], report["deliveryStatus"]["int"], strict=True):
            found.setdefault(number[:4], []).append(status)
    return found


def test_an_incident_fails_its_share_of_new_sends_to_one_operator_until_ended(simulator):
    service = strict_zeep(simulator).service
    answer = admin_post(simulator, "incident", operator="IranCell", status="6", rate="0.5")
    assert answer["running"] == 1 and answer["incidents"][0]["operator"] == "Irancell"
    during = _send_batches(service, "50001234", 10)
    ended = admin(simulator, "DELETE", "incident").json()
    assert ended["running"] == 0 and ended["incidents"][0]["end"] is not None
    after = _send_batches(service, "50001234", 10)
    admin_post(simulator, "clock", advance=str(2 * 86400))
    hit = _statuses_by_number(service, during)
    share = hit["0935"].count(6) / len(hit["0935"])
    assert abs(share - 0.5) < 4 * (0.25 / 500) ** 0.5, share  # 500 Irancell recipients
    assert hit["0912"].count(6) / len(hit["0912"]) < 0.03  # MCI untouched
    calm = _statuses_by_number(service, after)
    assert calm["0935"].count(6) / len(calm["0935"]) < 0.03
    assert _statuses_by_number(service, during) == hit  # ending it changed nothing already sent


def test_an_incident_on_one_line_leaves_the_others(simulator):
    service = strict_zeep(simulator).service
    admin_post(simulator, "incident", operator="hamrah-e aval", status="9", rate="1", line="50001234")
    on_line, other_line = _send_batches(service, "50001234", 2), _send_batches(service, "10002188", 2)
    admin_post(simulator, "clock", advance=str(86400))
    assert set(_statuses_by_number(service, on_line)["0912"]) == {9}
    assert _statuses_by_number(service, other_line)["0912"].count(9) < 10


def test_incidents_are_the_same_for_the_same_seed(make_simulator):
    seen = []
    for _ in range(2):
        simulator = make_simulator()
        service = strict_zeep(simulator).service
        admin_post(simulator, "incident", operator="rightel", status="2", rate="0.4")
        admin_post(simulator, "incident", operator="MCI", status="11", rate="0.2")
        batches = [
            service.SendBatchSms(*DEMO, "50001234", numbers(*[f"0921{i:07d}" for i in range(100)]), "x", False)[
                "batchSmsId"
            ],
            _send_batches(service, "50001234", 1)[0],
        ]
        admin_post(simulator, "clock", advance=str(86400))
        seen.append(_statuses_by_number(service, batches))
    assert seen[0] == seen[1] and 25 < seen[0]["0921"].count(2) < 60


def test_an_incident_reaches_the_history_the_clock_goes_on_to_show(make_simulator):
    config = WorldConfig(history=HistoryConfig(messages=3000, days=10), start=START, clock_speed=0.0)
    config.history_end = START + 5 * 86400
    simulator = make_simulator(config)
    service = strict_zeep(simulator).service
    admin_post(simulator, "incident", operator="MCI", status="9", rate="1")
    admin_post(simulator, "clock", advance=str(3 * 86400))
    h = simulator.world.history
    big = (h.direction == 2) & (h.recipients == 100)
    before = int(np.flatnonzero(big & (h.t < START))[-1]) + h.first_id
    during = int(np.flatnonzero(big & (h.t > START) & (h.t < START + 2 * 86400))[0]) + h.first_id
    touched = _statuses_by_number_any(service, during)
    untouched = _statuses_by_number_any(service, before)
    assert touched["mci"] and set(touched["mci"]) == {9}
    assert touched["other"] and set(touched["other"]) != {9}
    assert untouched["mci"] and set(untouched["mci"]) != {9}
    assert truth(simulator, batches=0)["incidents"][0]["operator"] == "MCI"


def _statuses_by_number_any(service, batch: int) -> dict[str, list[int]]:
    report = service.GetBatchDelivery(*DEMO, batch, 1, 100)
    found: dict[str, list[int]] = {"mci": [], "other": []}
    for number, status in zip(report["numbers"]["string"], report["deliveryStatus"]["int"], strict=True):
        found["mci" if operator_of(np.array([int(number)]))[0] == 0 else "other"].append(status)
    return found


def test_delivery_is_steady_over_four_weeks_without_incidents():
    """Per operator and day, the delivered share stays within binomial noise of its four-week
    share: an alert watching it has nothing to find."""

    world = World(WorldConfig(history=HistoryConfig(messages=20_000, days=28), start=START, clock_speed=0.0))
    h = world.history
    owner, row = h.expand(np.flatnonzero(h.direction == OUT))
    delivered = h.course(owner, row).final == 1
    operator = operator_of(h.numbers(owner, row))
    day = (h.t[owner] + TEHRAN_OFFSET) // 86400
    assert len(np.unique(operator)) >= 3  # the operators the history's numbers belong to
    for o in np.unique(operator):
        mine = operator == o
        p = delivered[mine].mean()
        for d in np.unique(day[mine]):
            cell = mine & (day == d)
            n = int(cell.sum())
            z = (delivered[cell].sum() - n * p) / (n * p * (1 - p)) ** 0.5
            assert abs(z) < 4.5, (o, d, n, z)


# --- scheduled and usance messages; a reproducible start ---------------------------------------
def _living(messages: int = 3000, days: int = 10, ahead_days: float = 5) -> WorldConfig:
    """A frozen clock at START with the history going on `ahead_days` past it."""
    config = WorldConfig(history=HistoryConfig(messages=messages, days=days), start=START, clock_speed=0.0)
    config.history_end = START + ahead_days * 86400
    return config


def test_scheduled_and_usance_lists_are_empty_when_nothing_waits(simulator):
    service = strict_zeep(simulator).service
    for kind in (3, 4):
        assert not service.GetMessages(*DEMO, kind, None, 1, 100)
        start, end = (simulator.world.clock.now() + d * 86400 for d in (-30, 30))
        since, until = (datetime.fromtimestamp(x, TEHRAN).replace(tzinfo=None) for x in (start, end))
        assert not service.GetMessagesByDateRange(*DEMO, kind, None, since, until)


def test_scheduled_campaigns_wait_in_the_schedule_list_until_their_time(make_simulator):
    simulator = make_simulator(_living(messages=8000))
    service = strict_zeep(simulator).service
    for _ in range(8):  # until a scheduled campaign lies ahead of the clock
        waiting = service.GetMessages(*DEMO, 3, None, 1, 1000)
        if waiting:
            break
        admin_post(simulator, "clock", advance=str(12 * 3600))
    assert waiting and {m.MessageType for m in waiting} == {"Schedule"}
    assert {m.Status for m in waiting} == {"WaitForSend"} and all(m.Sent == 0 and m.Count > 0 for m in waiting)
    clock = datetime_of(simulator)
    assert all(m.ActionDateTime > clock for m in waiting)
    assert not service.GetMessages(*DEMO, 4, None, 1, 100)
    soonest = min(waiting, key=lambda m: m.ActionDateTime)
    sent_ids = {m.MessageId for m in service.GetMessages(*DEMO, 2, None, 1, 1000)}
    assert soonest.MessageId not in sent_ids
    seconds = (soonest.ActionDateTime - clock).total_seconds() + 1
    admin_post(simulator, "clock", advance=str(seconds))
    assert soonest.MessageId in {m.MessageId for m in service.GetMessages(*DEMO, 2, None, 1, 1000)}
    assert soonest.MessageId not in {m.MessageId for m in service.GetMessages(*DEMO, 3, None, 1, 1000)}


def datetime_of(simulator):
    return datetime.fromtimestamp(simulator.world.clock.now(), TEHRAN).replace(tzinfo=None)


def _cli_first_page(*flags: str) -> list[tuple]:
    process = subprocess.Popen(
        [sys.executable, "-m", "payamak_analytics.cli", "simulate", "--messages", "400", *flags],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"(http://\S+\?wsdl)", process.stdout.readline()).group(1)
        page = zeep.Client(url).service.GetMessages(*DEMO, 2, None, 1, 50)
        return [(m.MessageId, m.ActionDateTime, m.Content, m.Receiver) for m in page]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_same_seed_and_start_give_the_same_history_in_any_form_of_date():
    gregorian = _cli_first_page("--seed", "3", "--start", "2025-11-24", "--clock-speed", "0")
    time.sleep(1.1)  # another wall clock second
    jalali = _cli_first_page("--seed", "3", "--start", "1404-09-03", "--clock-speed", "0")
    epoch = _cli_first_page("--seed", "3", "--start", "1763929800", "--clock-speed", "0")
    assert gregorian and gregorian == jalali == epoch
    assert _cli_first_page("--seed", "4", "--start", "2025-11-24", "--clock-speed", "0") != gregorian


# --- several accounts -------------------------------------------------------------------------
def test_extra_accounts_have_their_own_lines_history_and_truth(make_simulator):
    config = world_config(messages=1500)
    config.accounts = 2
    simulator = make_simulator(config)
    service = strict_zeep(simulator).service
    assert service.GetSenderNumbers("demo1", "demo1") == "20000001,50000001"
    assert service.GetSenderNumbers("demo2", "demo2") == "20000002,50000002"
    assert service.GetCredit("demo2", "demo2") == 1_000_000 and service.GetCredit("demo1", "demo2") == -1
    pages = {}
    for user in ("demo", "demo1", "demo2"):
        sent, index = [], 1
        while page := service.GetMessages(user, user, 2, None, index, 1000):
            sent += page
            index += len(page)
        received = service.GetMessages(user, user, 1, None, 1, 1000)
        t = truth(simulator, username=user, batches=0)
        assert t["account"] == user and t["messages"]["sent"] == len(sent)
        assert t["messages"]["received"] == len(received)
        assert service.GetInboxCount(user, user, False) == t["messages"]["received_unread"]
        lines = set(service.GetSenderNumbers(user, user).split(","))
        assert {m.Sender for m in sent} <= lines
        pages[user] = sent
    ids = [{m.MessageId for m in pages[u]} for u in pages]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
    assert [m.Content for m in pages["demo1"][:20]] != [m.Content for m in pages["demo2"][:20]]
    theirs = pages["demo1"][0].MessageId
    assert service.GetBatchDelivery(*DEMO, theirs, 1, 100)["GetBatchDeliveryResult"] == -2
    assert service.GetBatchDelivery("demo1", "demo1", theirs, 1, 100)["GetBatchDeliveryResult"] == 0
    sent = service.SendBatchSms("demo2", "demo2", "50000002", numbers("09121234567"), "hi", False)
    assert sent["SendBatchSmsResult"] == 0 and sent["batchSmsId"] > max(max(i) for i in ids)
    assert (
        service.SendBatchSms("demo2", "demo2", "50001234", numbers("09121234567"), "hi", False)["SendBatchSmsResult"]
        == 3
    )
    assert truth(simulator, user="demo2", batches=0)["messages"]["sent"] == len(pages["demo2"]) + 1


# --- a clock that lives through its history ---------------------------------------------------
def test_the_service_shows_only_what_its_clock_has_reached(make_simulator):
    simulator = make_simulator(_living())
    service = strict_zeep(simulator).service
    h = simulator.world.history
    seen = []
    for step in range(4):
        clock = datetime_of(simulator)
        sent = service.GetMessages(*DEMO, 2, None, 1, 1000)
        received = service.GetMessages(*DEMO, 1, None, 1, 1000)
        assert max(m.ActionDateTime for m in sent + received) <= clock
        t = truth(simulator, batches=0)["messages"]
        now = simulator.world.clock.now()
        assert t["sent"] == int(((h.direction == 2) & (h.t <= now)).sum())
        assert t["received"] == int(((h.direction == 1) & (h.t <= now)).sum())
        assert service.GetInboxCount(*DEMO, True) + service.GetInboxCount(*DEMO, False) == t["received"]
        seen.append((t["sent"], t["received"], t["received_read"]))
        admin_post(simulator, "clock", advance=str(6 * 3600))
    assert all(a < b for a, b in zip([s[0] for s in seen], [s[0] for s in seen[1:]]))  # more each step
    future = int(np.flatnonzero((h.direction == 2) & (h.t > simulator.world.clock.now()))[0]) + h.first_id
    assert service.GetBatchDelivery(*DEMO, future, 1, 100)["GetBatchDeliveryResult"] == -2
    assert service.GetDelivery(*DEMO, future * 1000) == -2
    admin_post(simulator, "clock", advance=str(5 * 86400))
    assert service.GetBatchDelivery(*DEMO, future, 1, 100)["GetBatchDeliveryResult"] == 0


FINAL = set(range(1, 12))
IN_FLIGHT = {-5, -4, 0, 5}


def test_truth_records_when_each_recipient_became_final(make_simulator):
    simulator = make_simulator(world_config(messages=200))
    service = strict_zeep(simulator).service
    batch = service.SendBatchSms(*DEMO, "50001234", numbers(*MCI_NUMBERS, *IRANCELL_NUMBERS), "hi", False)
    batch = batch["batchSmsId"]
    sent_at = simulator.world.clock.now()
    checked = 0
    for advance in (0, 300, 700, 3600, 4 * 3600, 2 * 86400):
        admin_post(simulator, "clock", advance=str(advance))
        entry = truth(simulator, numbers=1)["batches"][str(batch)]
        report = service.GetBatchDelivery(*DEMO, batch, 1, 100)
        assert entry["numbers"] == report["numbers"]["string"] and entry["sent_at"] == pytest.approx(sent_at)
        now = simulator.world.clock.now()
        for final_at, status in zip(entry["final_at"], report["deliveryStatus"]["int"], strict=True):
            assert status in (FINAL if final_at is not None else IN_FLIGHT)  # 5 is both: held, or held for good
            assert final_at is None or sent_at < final_at <= now
            checked += final_at is not None
    assert entry["final_at"].count(None) == 0 and checked > 100


def test_history_final_times_agree_with_the_statuses_over_a_living_clock(make_simulator):
    simulator = make_simulator(_living(messages=1500))
    service = strict_zeep(simulator).service
    admin_post(simulator, "clock", advance=str(86400))
    now = simulator.world.clock.now()
    batches = truth(simulator)["batches"]
    recent = [b for b, e in batches.items() if now - 3 * 3600 < e["sent_at"] and e["count"] > 10][:3]
    assert recent
    for batch in recent:
        statuses = service.GetBatchDelivery(*DEMO, int(batch), 1, 100)["deliveryStatus"]["int"]
        final_at = batches[batch]["final_at"]
        assert all(s in (FINAL if f is not None else IN_FLIGHT) for f, s in zip(final_at, statuses, strict=True))


def test_not_sent_counts_follow_an_incident_that_cancels_sends(make_simulator):
    simulator = make_simulator(_living())
    service = strict_zeep(simulator).service
    admin_post(simulator, "incident", operator="MCI", status="11", rate="0.5")
    runtime = _send_batches(service, "50001234", 1)[0]
    admin_post(simulator, "clock", advance=str(2 * 86400))
    start = datetime.fromtimestamp(START, TEHRAN).replace(tzinfo=None)
    sent = service.GetMessages(*DEMO, 2, None, 1, 1000)
    checked = [m for m in sent if m.ActionDateTime > start and m.Count > 10][:5]
    checked += [m for m in sent if m.MessageId == runtime]
    assert len(checked) == 6
    for message in checked:
        statuses = service.GetBatchDelivery(*DEMO, message.MessageId, 1, 100)["deliveryStatus"]["int"]
        assert message.NotSent == sum(s in (10, 11) for s in statuses) > 0
        assert message.Sent == message.Count - message.NotSent
        assert truth(simulator)["batches"][str(message.MessageId)]["not_sent"] == message.NotSent


def test_forget_holds_under_concurrent_readers(simulator):
    from concurrent.futures import ThreadPoolExecutor

    service = strict_zeep(simulator).service
    batch = service.SendBatchSms(*DEMO, "50001234", numbers("09121234567"), "hi", False)["batchSmsId"]
    admin_post(simulator, "forget", batch_id=str(batch), times="7")
    body = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        '<GetBatchDelivery xmlns="http://tempuri.org/"><userName>demo</userName><password>demo</password>'
        f"<batchSmsId>{batch}</batchSmsId><index>1</index><count>100</count></GetBatchDelivery></s:Body></s:Envelope>"
    ).encode()

    def call(_) -> bytes:
        return _soap_post(simulator, body, "GetBatchDelivery").content

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(call, range(40)))
    assert sum(b"<GetBatchDeliveryResult>-2<" in a for a in answers) == 7
    assert sum(b"<GetBatchDeliveryResult>0<" in a for a in answers) == 33
