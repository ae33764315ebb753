"""The simulator's world over real HTTP: admin endpoints that refuse bad values, outages,
forgotten reports, incidents, several accounts, a clock that lives through its history."""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests

from payamak_analytics.simulator import HistoryConfig, WorldConfig

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
