"""The simulator's world over real HTTP: admin endpoints that refuse bad values, outages,
forgotten reports, incidents, several accounts, a clock that lives through its history."""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests

from payamak_analytics.simulator import HistoryConfig, WorldConfig
from payamak_analytics.simulator.history import operator_of

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
    assert requests.get(simulator.wsdl_url, timeout=30).status_code == 503
    assert truth(simulator, batches=0)["account"] == "demo"  # the admin still gets in
    before = simulator.world.accounts["demo"].credit
    send = b"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
        <SendSMS xmlns="http://tempuri.org/"><userName>demo</userName><password>demo</password>
        <fromNumber>10002188</fromNumber><toNumbers xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays">
        <a:string>09121234567</a:string></toNumbers><messageContent>hi</messageContent><isFlash>false</isFlash>
        </SendSMS></s:Body></s:Envelope>"""
    assert _soap_post(simulator, send, "SendSMS").status_code == 503
    assert simulator.world.sends == {} and simulator.world.accounts["demo"].credit == before  # nothing went out
    assert admin(simulator, "DELETE", "dark").json() == {"dark_seconds_left": 0}
    assert service.GetCredit(*DEMO) == before


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
    from payamak_analytics.errors import InputError
    from payamak_analytics.simulator import World

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
    from payamak_analytics.simulator import World

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
    from payamak_analytics.simulator import World
    from payamak_analytics.simulator.history import OUT, TEHRAN_OFFSET

    world = World(WorldConfig(history=HistoryConfig(messages=20_000, days=28), start=START, clock_speed=0.0))
    h = world.history
    owner, row = h.expand(np.flatnonzero(h.direction == OUT))
    delivered = h.course(owner, row).final == 1
    operator = operator_of(h.numbers(owner, row))
    day = (h.t[owner] + TEHRAN_OFFSET) // 86400
    for o in range(4):
        mine = operator == o
        p = delivered[mine].mean()
        for d in np.unique(day[mine]):
            cell = mine & (day == d)
            n = int(cell.sum())
            z = (delivered[cell].sum() - n * p) / (n * p * (1 - p)) ** 0.5
            assert abs(z) < 4.5, (o, d, n, z)
