"""The watch against the simulator on its own clock: incidents, outages, the lock, the sinks."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
import requests
from aiosmtpd.controller import Controller

from payamak_analytics import PanelClient
from payamak_analytics.alerts import (
    SURGE_CODES,
    AlertRules,
    Notice,
    _judge,
    alerts,
    alerts_html,
    upper_tail,
    wilson,
    z_score,
)
from payamak_analytics.dates import TEHRAN
from payamak_analytics.errors import InputError, SenderLineError
from payamak_analytics.simulator import HistoryConfig, WorldConfig
from payamak_analytics.sinks import SmsSink, SmtpSink, WebhookSink
from payamak_analytics.store import Store
from payamak_analytics.sync import sync
from payamak_analytics.watch import Watch, WatchLock, WatchLockedError, duration

from .conftest import START, truth
from .hostile_server import HostileServer, first_page_always, forwarding, listed_count
from .test_sync import panel_batch

CYCLE = 900  # simulated seconds between cycles
MCI, IRANCELL = ("0912", "0919", "0991"), ("0935", "0936", "0901")


def admin(simulator, method: str, path: str, **params) -> dict:
    base = simulator.url.rsplit("/", 1)[0]
    answer = requests.request(method, f"{base}/_sim/{path}", params=params, timeout=30)
    answer.raise_for_status()
    return answer.json()


def sim_clock(simulator):
    """The simulator's clock: the watch's `now` in every test."""
    return lambda: datetime.fromisoformat(admin(simulator, "GET", "clock")["clock"])


def send_traffic(client: PanelClient, rng: random.Random, batches: int = 10) -> None:
    """What the account sends in a cycle: batches of 100 MCI and Irancell numbers."""
    for _ in range(batches):
        numbers = [f"{rng.choice(MCI + IRANCELL)}{rng.randrange(10**7):07d}" for _ in range(100)]
        client.send_batch_sms("10002188", numbers, "Your order has shipped.")


class Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint on loopback that keeps every JSON body it gets."""

    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    handler = type("Hook", (Receiver,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler.received
    server.shutdown()


class Inbox:
    def __init__(self):
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"127.0.0.1:{port}", inbox.messages
    controller.stop()


@pytest.fixture
def quiet_simulator(make_simulator):
    """A month of light history before the clock, which does not move by itself."""
    return make_simulator(WorldConfig(history=HistoryConfig(messages=300, days=30), start=START, clock_speed=0.0))


@pytest.mark.slow
def test_staged_incident_gives_one_alert_and_one_end(quiet_simulator, webhook, smtp_server, tmp_path):
    url, hooks = webhook
    server, mails = smtp_server
    client = PanelClient("demo", "demo", wsdl=quiet_simulator.wsdl_url, max_retry_wait=0.05)
    store = Store(tmp_path / "watch.duckdb")
    sinks = [WebhookSink(url, account="demo"), SmtpSink(server, ["oncall@example.com"])]
    runner = Watch(client, store, every=f"{CYCLE}s", sinks=sinks, now=sim_clock(quiet_simulator))
    rng = random.Random(5)

    def step() -> None:
        send_traffic(client, rng)
        admin(quiet_simulator, "POST", "clock", advance=CYCLE)
        runner.cycle()

    for _ in range(3):
        step()
    assert hooks == [] and mails == []  # a normal hour raises nothing
    admin(quiet_simulator, "POST", "incident", operator="MCI", status=9, rate=0.5)
    for cycles in range(1, 3):
        step()
        if hooks:
            break
    assert [h["event"] for h in hooks] == ["raised"], f"not raised within two cycles: {alerts(store)}"
    raised = hooks[0]
    assert raised["operator"] == "MCI" and raised["incident"] == "delivery/operator=MCI"
    if raised["kind"] == "delivery_drop":
        assert raised["evidence"]["window"]["rate"] < raised["evidence"]["baseline"]["rate"] - 0.1
    else:  # the rejections show in the codes before enough of them move the rate
        assert raised["kind"] == "code_surge"
    assert 9 in [c["code"] for c in raised["evidence"]["codes"]]
    assert len(mails) == 1 and "ALERT" in mails[0].content.decode()

    for _ in range(3):  # the incident goes on: still one alert
        step()
    assert len(hooks) == 1
    admin(quiet_simulator, "DELETE", "incident")
    for _ in range(12):
        step()
        if len(hooks) > 1:
            break
    assert [h["event"] for h in hooks] == ["raised", "ended"]
    assert hooks[1]["alert_id"] == raised["alert_id"] and hooks[1]["ended_at"]
    assert len(mails) == 2
    stored = alerts(store)
    assert len(stored) == 1 and stored["ended_at"].notna().all()
    assert alerts(store, active=True).empty
    assert "MCI" in alerts_html(store) and 'dir="rtl"' in alerts_html(store, lang="fa")


@pytest.mark.slow
def test_four_quiet_weeks_raise_no_alert(quiet_simulator, tmp_path):
    """Four simulated weeks with no incident: no alert of any kind.

    Coarser than a real watch to stay near a minute: a cycle every 50 hours (so the cycles fall at
    every hour of the day in turn), each after an hour of ordinary traffic (1,000 recipients of
    MCI and Irancell). `benchmarks/bench_watch.py` measures the same with
    15-minute cycles and traffic every cycle."""
    client = PanelClient("demo", "demo", wsdl=quiet_simulator.wsdl_url, max_retry_wait=0.05)
    store = Store(tmp_path / "watch.duckdb")
    runner = Watch(client, store, every="50h", now=sim_clock(quiet_simulator))
    rng = random.Random(8)
    runner.cycle()
    for _ in range(13):
        admin(quiet_simulator, "POST", "clock", advance=49 * 3600)
        for _ in range(10):
            numbers = sorted({f"{rng.choice(MCI + IRANCELL)}{rng.randrange(10**7):07d}" for _ in range(100)})
            client.send_sms("10002188", numbers, "Your order has shipped.")
            admin(quiet_simulator, "POST", "clock", advance=360)
        assert runner.cycle().outcome == "ok"
    assert alerts(store).empty, alerts(store)[["first_seen", "title"]]
    judged = store.sql("SELECT count(*) AS n FROM deliveries WHERE status = 1")["n"].iloc[0]
    assert judged > 10_000  # the rules had the volume to judge every cycle


@pytest.fixture
def live_simulator(make_simulator):
    """A month of light history; the clock runs with the wall clock, as a real service's does."""
    return make_simulator(WorldConfig(history=HistoryConfig(messages=300, days=30)))


def _cli(simulator, *args: str) -> subprocess.Popen:
    env = os.environ | {"PAYAMAK_USERNAME": "demo", "PAYAMAK_PASSWORD": "demo", "PYTHONPATH": str(Path.cwd())}
    command = [sys.executable, "-m", "payamak_analytics.cli", "--wsdl", simulator.wsdl_url, "--timeout", "5", "watch"]
    return subprocess.Popen([*command, *args], env=env, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_going_dark_does_not_stop_the_watch(live_simulator, tmp_path):
    db = tmp_path / "watch.duckdb"
    process = _cli(live_simulator, "--db", str(db), "--every", "1s")
    try:
        _wait_for(lambda: _cycles(db, "ok") >= 1)
        client = PanelClient("demo", "demo", wsdl=live_simulator.wsdl_url, max_retry_wait=0.05)
        send_traffic(client, random.Random(1), batches=3)
        before = _cycles(db)
        admin(live_simulator, "POST", "dark", seconds=5)  # a cycle fails, or its sync pauses through it
        time.sleep(6)
        assert process.poll() is None
        _wait_for(lambda: _cycles(db) > before + 1 and _last_outcome(db) == "ok")
    finally:
        err = _stop(process)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    expected = truth(live_simulator, batches="0")
    store = Store(db)
    stored = store.sql("SELECT count(*) AS n FROM messages WHERE message_type = 'Out'")["n"].iloc[0]
    assert stored == expected["messages"]["sent"]  # caught up
    assert store.sql("SELECT count(*) AS n FROM deliveries")["n"].iloc[0] == expected["recipients"]


@pytest.mark.slow
def test_sigterm_at_any_moment_of_a_cycle_stops_the_watch_within_seconds(live_simulator, tmp_path):
    """Cycles of a second, each mostly a sync: the signals land in the sync, between the two
    syncs and in the wait, and each ends the watch cleanly."""
    client = PanelClient("demo", "demo", wsdl=live_simulator.wsdl_url)
    send_traffic(client, random.Random(2), batches=5)
    for attempt, delay in enumerate((0.0, 0.3, 0.55, 0.8, 1.1)):
        db = tmp_path / f"watch{attempt}.duckdb"
        process = _cli(live_simulator, "--db", str(db), "--every", "1s")
        try:
            _wait_for(lambda: _cycles(db, "ok") >= 1, 120)  # noqa: B023 - used within the iteration
            time.sleep(delay)
        finally:
            err = _stop(process)
        assert process.returncode == 0, err
        assert "watch stopped after" in err and "Traceback" not in err


def _stop(process: subprocess.Popen, within: float = 30) -> str:
    """SIGTERM, then the watch's stderr; a watch still running after `within` seconds is killed
    and the test fails."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=within)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        err = process.communicate()[1]
        pytest.fail(f"the watch was still running {within:g} s after SIGTERM; its log ends:\n{err[-2000:]}")


def _cycles(db: Path, outcome: str | None = None) -> int:
    """Cycles recorded so far, read from this process while the watch writes from its own."""
    try:
        found = Store(db, lock_wait=2).sql("SELECT outcome FROM watch_cycles ORDER BY cycle_id")
    except Exception:  # noqa: BLE001 - the file is not there yet, or held a moment longer: ask again
        return 0
    return int((found["outcome"] == outcome).sum()) if outcome else len(found)


def _last_outcome(db: Path) -> str | None:
    try:
        last = Store(db, lock_wait=2).sql("SELECT outcome FROM watch_cycles ORDER BY cycle_id DESC LIMIT 1")
    except Exception:  # noqa: BLE001 - as above
        return None
    return last["outcome"].iloc[0] if len(last) else None


def _wait_for(condition, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_second_watch_on_the_same_store_refuses(live_simulator, tmp_path):
    db = tmp_path / "watch.duckdb"
    first = _cli(live_simulator, "--db", str(db), "--every", "1h")
    try:
        _wait_for(lambda: Path(f"{db}.watch.lock").exists() and Path(f"{db}.watch.lock").read_text(), 60)
        second = _cli(live_simulator, "--db", str(db), "--once")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 1
        assert "Another watch is running" in err and f'"pid": {first.pid}' in err
        _wait_for(lambda: _cycles(db) >= 1)
    finally:
        err = _stop(first)
    assert first.returncode == 0, err
    assert "watch stopped after 1 cycles" in err and "Traceback" not in err
    with WatchLock(Store(db)):  # the lock went with the process
        pass


def test_the_lock_names_its_holder_within_one_process(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    with WatchLock(store), pytest.raises(WatchLockedError, match=str(os.getpid())), WatchLock(store):
        pass


def test_alert_sms_dry_run_sends_nothing_and_the_cap_holds(simulator, tmp_path):
    client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05)
    store = Store(tmp_path / "s.duckdb")
    from payamak_analytics.alerts import Alert

    alert = Alert(
        "service", "service", "critical", "The web service is disabled", "وب سرویس غیرفعال است", {}, alert_id=1
    )
    numbers = ["09121234567", "09351234567", "09191234567"]
    before = truth(simulator, batches="0")["recipients"]
    dry = SmsSink(client, store, numbers, line="10002188", per_hour=2)
    for _ in range(3):
        dry.send(Notice("raised", alert))
    assert truth(simulator, batches="0")["recipients"] == before
    real = SmsSink(client, store, numbers, line="10002188", per_hour=2, really_send=True)
    for _ in range(3):
        real.send(Notice("raised", alert))
        real.send(Notice("ended", alert))
    assert truth(simulator, batches="0")["recipients"] == before + 2  # the cap, across notices
    warning = Alert("credit", "credit", "warning", "Credit low", "اعتبار کم", {}, alert_id=2)
    assert SmsSink(client, store, numbers, really_send=True, per_hour=50).send(Notice("raised", warning)) is None
    assert truth(simulator, batches="0")["recipients"] == before + 2  # warnings do not page anyone


@pytest.mark.parametrize("text", ["0", "-5m", "nan", "inf", "soon", "", "8d", True])
def test_bad_durations_are_refused(text):
    with pytest.raises(InputError, match="15m"):
        duration(text)


def test_durations_people_write():
    assert duration("15m").total_seconds() == 900
    assert duration("1h").total_seconds() == 3600
    assert duration(90).total_seconds() == 90


@pytest.mark.parametrize(
    "rules", [{"drop": 0}, {"drop": 1.5}, {"min_volume": 0}, {"z": float("nan")}, {"credit_days": -1}]
)
def test_bad_rules_are_refused(rules):
    with pytest.raises(InputError):
        AlertRules(**rules)


def test_sinks_refuse_bad_addresses(tmp_path):
    with pytest.raises(InputError):
        WebhookSink("ftp://example.com/x")
    with pytest.raises(InputError):
        SmtpSink("localhost", ["a@example.com"])
    with pytest.raises(InputError):
        SmtpSink("localhost:25", ["not-an-address"])
    assert "secret" not in repr(WebhookSink("https://user:secret@hooks.example.com/t/secret"))


def test_statistics():
    low, high = wilson(93, 100)
    assert 0.86 < low < 0.93 < high < 0.97
    assert z_score(930, 1000, 47, 100) > 4
    assert z_score(930, 1000, 93, 100) == pytest.approx(0, abs=1e-9)


def _cells(rows: list[tuple]) -> pd.DataFrame:
    """Counts as alerts._cells gives them: (period, line, answered, delivered, code 2)."""
    frame = pd.DataFrame(rows, columns=["period", "line", "answered", "delivered", "c2"])
    frame["operator"], frame["past_queue"] = "MCI", frame["answered"]
    for code in SURGE_CODES:
        if f"c{code}" not in frame:
            frame[f"c{code}"] = 0
    return frame


def test_a_baseline_is_taken_in_the_window_mix_of_lines():
    """An hour of one-time codes alone, against weeks of codes and campaigns, is not a surge; the
    same codes failing more than they used to still are."""
    base = [("hour_of_week", "codes", 1000, 920, 80), ("hour_of_week", "campaigns", 4000, 3980, 20)]
    usual = _cells([("window", "codes", 400, 368, 32), *base])
    mine, others = usual["operator"] == "MCI", usual["operator"] != "MCI"
    now = datetime(2025, 11, 30, 11, tzinfo=TEHRAN)
    assert _judge(usual, mine, others, {"operator": "MCI"}, AlertRules(), now) == "clear"

    failing = _cells([("window", "codes", 400, 320, 80), *base])
    verdict = _judge(failing, mine, others, {"operator": "MCI"}, AlertRules(), now)
    assert verdict.kind == "delivery_drop" and verdict.code == 2  # 80% against the codes' own 92%
    assert verdict.evidence["baseline"]["rate"] == pytest.approx(0.92)
    assert verdict.evidence["codes"][0]["baseline"]["rate"] == pytest.approx(0.08)

    # the same hours of past weeks held campaigns only: the codes are judged against their own last days
    unknown = _cells([("window", "codes", 400, 368, 32), base[1], ("hour_of_day", "codes", 2000, 1840, 160)])
    assert _judge(unknown, mine, others, {"operator": "MCI"}, AlertRules(), now) == "clear"
    failing = _cells([("window", "codes", 400, 280, 120), base[1], ("hour_of_day", "codes", 2000, 1840, 160)])
    verdict = _judge(failing, mine, others, {"operator": "MCI"}, AlertRules(), now)
    assert verdict.evidence["baseline"]["kind"] == "hour_of_day" and verdict.code == 2


def test_the_newest_sends_raise_a_large_incident_a_cycle_sooner_and_only_a_large_one():
    """Many of the newest sends failing shows in the window's newest half before the whole hour
    moves; a chance cluster in a normal code does not alert, and the half never ends what the
    hour cannot judge."""
    now = datetime(2025, 11, 30, 11, tzinfo=TEHRAN)
    base = ("hour_of_week", "codes", 4000, 3680, 320)  # code 2: 8% usually
    hour = _cells([("window", "codes", 400, 356, 44), ("newest", "codes", 60, 36, 24), base])
    mine, others = hour["operator"] == "MCI", hour["operator"] != "MCI"
    verdict = _judge(hour, mine, others, {"operator": "MCI"}, AlertRules(), now)
    assert verdict.kind == "delivery_drop" and verdict.code == 2  # 60% of 60 against 92% (code 2: 40%); the hour: 89%
    assert verdict.evidence["window"]["of"] == 60 and verdict.evidence["window"]["from"] == "2025-11-30T10:30:00+03:30"

    chance = _cells([("window", "codes", 400, 362, 38), ("newest", "codes", 60, 42, 18), base])
    assert _judge(chance, mine, others, {"operator": "MCI"}, AlertRules(), now) == "clear"  # 30% of 60: 1 in 1.6M
    few = _cells([("window", "codes", 90, 80, 10), ("newest", "codes", 40, 20, 20), base])
    assert _judge(few, mine, others, {"operator": "MCI"}, AlertRules(), now) is None  # too few to tell
    # a 15-point drop in a thin hour: the hour cannot tell, and the half (blind to it) must not say clear
    thin = _cells([("window", "codes", 90, 69, 21), ("newest", "codes", 60, 46, 14), base])
    assert _judge(thin, mine, others, {"operator": "MCI"}, AlertRules(), now) is None


def test_a_handful_of_answers_never_alerts_whatever_the_rules():
    """With min_volume=1, one failed answer among the newest is 1 in 12 by chance, not z 9.8."""
    now = datetime(2025, 11, 30, 11, tzinfo=TEHRAN)
    cells = _cells(
        [("window", "codes", 20, 19, 1), ("newest", "codes", 1, 0, 1), ("hour_of_week", "codes", 4000, 3680, 320)]
    )
    mine, others = cells["operator"] == "MCI", cells["operator"] != "MCI"
    assert _judge(cells, mine, others, {"operator": "MCI"}, AlertRules(min_volume=1, min_baseline=1), now) == "clear"
    assert upper_tail(1, 1, 0.08) == pytest.approx(0.08)
    assert upper_tail(22, 60, 0.08) < 0.5 * math.erfc(6 / math.sqrt(2)) < upper_tail(18, 60, 0.08)


def test_an_incident_opens_once_ends_once_and_shows_in_the_widget(tmp_path):
    from datetime import timedelta

    from payamak_analytics.alerts import Alert, track
    from payamak_analytics.widgets import ActiveAlerts

    store, rules = Store(tmp_path / "s.duckdb"), AlertRules()
    now = datetime(2025, 11, 24, 3, 0, tzinfo=TEHRAN)

    def credit(days: float) -> Alert:
        title = f"Delivery dropped on MCI to {days} <soon>"  # a rate: it ends after a calm spell
        return Alert("delivery/operator=MCI", "delivery_drop", "warning", title, "افت", {"days_left": days})

    widget = ActiveAlerts(store)
    assert [n.event for n in track(store, [credit(2.0)], set(), now, rules)] == ["raised"]
    assert track(store, [credit(1.5)], set(), now + timedelta(minutes=15), rules) == []  # the same incident
    widget.show()
    assert "MCI to 1.5 &lt;soon&gt;" in widget.table.value  # fresh evidence, escaped
    assert (
        track(store, [], {"delivery/operator=MCI"}, now + timedelta(minutes=30), rules) == []
    )  # clear, not for long enough
    assert track(store, [], set(), now + timedelta(hours=3), rules) == []  # not judged: unknown is not recovered
    ended = track(store, [], {"delivery/operator=MCI"}, now + timedelta(hours=4), rules)
    assert [n.event for n in ended] == ["ended"] and ended[0].alert.alert_id == 1
    widget.show()
    assert "No alert" in widget.table.value
    widget.active.value = False
    assert "MCI to 1.5" in widget.table.value
    assert [n.event for n in track(store, [credit(2.0)], set(), now + timedelta(hours=5), rules)] == ["raised"]
    assert len(alerts(store)) == 2 and len(alerts(store, active=True)) == 1


@pytest.mark.parametrize(
    "options",
    [
        ["--every", "0"],
        ["--every", "soon"],
        ["--window=-1h"],
        ["--drop", "2"],
        ["--webhook", "hooks.example.com"],
        ["--smtp", "mail.example.com"],
        ["--mail-to", "a@example.com"],
        ["--alert-sms", "12345"],
        ["--really-send"],
        ["--alert-sms", "09121234567", "--sms-per-hour", "0"],
        ["--log", "/"],
    ],
)
def test_bad_watch_options_create_nothing(options, tmp_path):
    db = tmp_path / "store" / "watch.duckdb"
    env = os.environ | {"PAYAMAK_USERNAME": "demo", "PAYAMAK_PASSWORD": "demo", "PYTHONPATH": str(Path.cwd())}
    command = [sys.executable, "-m", "payamak_analytics.cli", "--wsdl", "bundled", "watch", "--db", str(db), "--once"]
    done = subprocess.run([*command, *options], check=False, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert not (tmp_path / "store").exists()


@pytest.mark.slow
def test_a_store_falling_behind_raises_and_ends_its_alerts(quiet_simulator, tmp_path):
    client = PanelClient("demo", "demo", wsdl=quiet_simulator.wsdl_url, max_retry_wait=0.05, timeout=5)
    store = Store(tmp_path / "watch.duckdb")
    runner = Watch(client, store, every=f"{CYCLE}s", now=sim_clock(quiet_simulator), give_up_after=3)
    assert runner.cycle().urgent_pages > 0  # a new store reads the oldest readable reports first
    send_traffic(client, random.Random(3), batches=3)
    admin(quiet_simulator, "POST", "clock", advance=CYCLE)
    assert runner.cycle().outcome == "ok"  # read while most recipients are still in flight
    admin(quiet_simulator, "POST", "dark", seconds=600)
    admin(quiet_simulator, "POST", "clock", advance=6.5 * 86400)  # days without a sync
    behind = [runner.cycle()]
    admin(quiet_simulator, "POST", "clock", advance=CYCLE)
    behind.append(runner.cycle())
    assert [c.outcome for c in behind] == ["failed", "failed"] and behind[1].at_risk > 0
    raised = alerts(store, active=True).set_index("kind")
    assert sorted(raised.index) == ["reports_expiring", "service"]
    assert raised.loc["reports_expiring", "severity"] == "critical"
    admin(quiet_simulator, "POST", "clock", advance=86400)  # day 7 passes with the service still dark
    lost = runner.cycle()
    assert lost.outcome == "failed" and lost.unreadable >= behind[1].at_risk > 0
    admin(quiet_simulator, "DELETE", "dark")
    admin(quiet_simulator, "POST", "clock", advance=CYCLE)
    back = runner.cycle()
    assert back.outcome == "ok" and back.at_risk == 0 and back.ended == 2
    assert alerts(store, active=True).empty


def test_a_batch_the_service_forgets_counts_as_no_longer_readable_once(quiet_simulator, tmp_path):
    """A batch the service keeps calling unknown (-2) past the sync's day of grace is retired as
    gone; the next cycle counts its recipients as no longer readable and says so, though a sync
    run by hand retired it, and no other cycle counts them again."""
    client = PanelClient("demo", "demo", wsdl=quiet_simulator.wsdl_url, max_retry_wait=0.05, timeout=5)
    store = Store(tmp_path / "watch.duckdb")
    runner = Watch(client, store, every=f"{CYCLE}s", now=sim_clock(quiet_simulator), give_up_after=3)
    runner.cycle()
    sent = client.send_batch_sms("10002188", [f"0912{n:07d}" for n in range(73)], "Your order has shipped.")
    admin(quiet_simulator, "POST", "forget", batch_id=sent.batch_sms_id, times=1000)
    admin(quiet_simulator, "POST", "clock", advance=CYCLE)
    assert runner.cycle().unreadable == 0  # unknown once: asked again later
    admin(quiet_simulator, "POST", "clock", advance=86400 + CYCLE)
    sync(client, store, progress=False, now=sim_clock(quiet_simulator))  # `payamak sync` between two cycles
    assert store.sync_runs()["recipients_unreadable"].sum() == 73
    assert sum(store.gone_untold().values()) == 73  # looked at, not counted: a cycle counts them as it records itself
    retired = runner.cycle()  # with any history report that expired unread over that day
    assert retired.unreadable >= 73
    alert = alerts(store, active=True).set_index("kind").loc["reports_expiring"]
    assert f"{retired.unreadable} recipients' delivery reports could no longer be read" in alert["title"]
    admin(quiet_simulator, "POST", "clock", advance=CYCLE)
    another = Watch(client, store, every=f"{CYCLE}s", now=sim_clock(quiet_simulator), give_up_after=3)
    assert another.cycle().unreadable < 73  # counted once


def test_a_line_answering_inactive_is_one_alert(make_simulator, tmp_path):
    from payamak_analytics.campaign import send_campaign

    simulator = make_simulator(WorldConfig(history=HistoryConfig(messages=40, days=10), start=START, clock_speed=0.0))
    client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05)
    store = Store(tmp_path / "watch.duckdb")
    numbers = [f"0912{n:07d}" for n in range(150)]
    with pytest.raises(SenderLineError, match="inactive"):
        send_campaign(client, store, name="winter", from_number="30001111", numbers=numbers, text="Sale today")
    runner = Watch(client, store, every=f"{CYCLE}s", now=sim_clock(simulator))
    runner.cycle()
    runner.cycle()
    found = alerts(store)
    assert found[["kind", "line", "code"]].values.tolist() == [["line_inactive", "30001111", 6]]


def test_reports_count_as_behind_once_overdue_by_the_schedule_or_read_at_a_time_still_to_come(tmp_path):
    store, now = Store(tmp_path / "risk.duckdb"), datetime(2026, 3, 21, 12, tzinfo=TEHRAN)
    day, hour = pd.Timedelta(days=1), pd.Timedelta(hours=1)
    batches = [  # (id, sent, last read): each 6.5 days old, 100 recipients in flight; a page then waits 6 h
        (1, now - 6.5 * day, now - 5 * hour),  # read 5 h ago: not due yet
        (2, now - 6.5 * day, now - 7.5 * hour),  # due 1.5 h ago: more than an hour late
        (3, now - 6.5 * day, now + 2 * day),  # a read stamped two days ahead (a clock set right since)
        (4, now - 6.5 * day, None),
    ]
    with store.transaction() as con:
        for batch_id, sent, read in batches:
            con.execute(
                "INSERT INTO batches (batch_id, recipients, sent_at, complete, pending, last_checked) "
                "VALUES (?, 100, ?, true, 100, ?)",
                [batch_id, sent, read],
            )
    risk = store.report_risk(now, now - 15 * pd.Timedelta(minutes=1), pd.Timedelta(days=1), hour)
    assert risk == {"unreadable": 0, "at_risk": 300}
    assert list(store.urgent_batches(now, pd.Timedelta(days=5))["batch_id"]) == [2, 3, 4]


def test_the_watch_command_finds_the_store_where_payamak_store_says(live_simulator, tmp_path):
    db = tmp_path / "elsewhere" / "shop.duckdb"
    env = os.environ | {
        "PAYAMAK_USERNAME": "demo",
        "PAYAMAK_PASSWORD": "demo",
        "PAYAMAK_STORE": str(db),
        "PYTHONPATH": str(Path.cwd()),
    }
    command = [sys.executable, "-m", "payamak_analytics.cli", "--wsdl", live_simulator.wsdl_url, "watch", "--once"]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert _cycles(db, "ok") == 1 and not (tmp_path / "data").exists()


def test_an_alert_sms_whose_send_may_have_gone_out_is_never_sent_again(make_simulator, tmp_path):
    """A lost answer to the alert's SendSMS is not a delivery to try again: the SMS may be on its way."""
    from payamak_analytics.alerts import Alert
    from payamak_analytics.simulator import FaultConfig
    from payamak_analytics.sinks import Dispatcher

    healthy = make_simulator(WorldConfig(history=HistoryConfig(messages=50), clock_speed=0.0))
    slow = make_simulator(healthy.world, FaultConfig(slow_rate=1.0, slow_seconds=1.5, operations=("SendSMS",)))
    client = PanelClient("demo", "demo", wsdl=slow.wsdl_url, timeout=0.7, max_retry_wait=0.05)
    store = Store(tmp_path / "s.duckdb")
    sink = SmsSink(client, store, ["09121234567"], line="10002188", per_hour=10, really_send=True)
    alert = Alert("service", "service", "critical", "The web service is off", "وب سرویس غیرفعال است", {}, alert_id=1)
    dispatcher = Dispatcher(store, [sink], budget=8, retries=2)
    dispatcher.dispatch([Notice("raised", alert)])
    dispatcher.dispatch([])  # the next cycle
    sent = sum(send.numbers.count("09121234567") for send in healthy.world.sends.values())
    assert sent == 1
    [state] = store.sql("SELECT state FROM alert_outbox")["state"].tolist()
    assert state == "refused"


def test_an_alert_sms_sent_before_a_crash_is_not_sent_again_after_it(simulator, tmp_path):
    """The outbox still says "waiting" when the process died after the send: the next process
    hands the notice to the sink again, and the numbers the send went to get nothing more."""
    from payamak_analytics.alerts import Alert

    client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05)
    store = Store(tmp_path / "s.duckdb")
    alert = Alert("service", "service", "critical", "The web service is off", "وب سرویس غیرفعال است", {}, alert_id=1)
    sink = SmsSink(client, store, ["09121234567"], line="10002188", per_hour=10, really_send=True)
    before = len(simulator.world.sends)
    sink.send(Notice("raised", alert))
    sink.send(Notice("raised", alert))  # the same notice again, after a restart
    assert len(simulator.world.sends) == before + 1
    sink.send(Notice("ended", alert))  # another notice of the alert does go out
    assert len(simulator.world.sends) == before + 2


def test_a_notice_already_sent_is_not_called_held_back_by_the_cap(simulator, tmp_path, caplog):
    """Numbers that had the notice before a restart are not numbers the hourly cap held back."""
    from payamak_analytics.alerts import Alert

    client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05)
    store = Store(tmp_path / "s.duckdb")
    alert = Alert("service", "service", "critical", "The web service is off", "وب سرویس غیرفعال است", {}, alert_id=1)
    sink = SmsSink(client, store, ["09121234567"], line="10002188", per_hour=10, really_send=True)
    sink.send(Notice("raised", alert))
    sink.send(Notice("raised", alert))  # the same notice again, after a restart
    assert "held back by the cap" not in caplog.text


def test_the_watchs_urgent_reads_refuse_a_service_that_ignores_the_report_index(make_simulator, tmp_path):
    """The reports closest to expiry are read before the sync, page by page: a page repeating
    another of its batch fails the cycle, as the sync refuses it, before a number is stored twice."""
    simulator, batch = panel_batch(make_simulator, 250)
    admin(simulator, "POST", "clock", advance=6 * 86400)  # the batch is urgent: its report expires in a day
    with HostileServer({"/svc": first_page_always(simulator)}) as proxy:
        client = PanelClient("demo", "demo", wsdl="bundled", endpoint=proxy.url("svc"), max_retry_wait=0.05)
        store = Store(tmp_path / "watch.duckdb")
        cycle = Watch(client, store, every="15m", now=sim_clock(simulator)).cycle()
    assert cycle.outcome == "failed" and "repeats another page" in cycle.error
    rows = store.sql(f"SELECT count(*), count(DISTINCT number) FROM deliveries WHERE batch_id = {batch}")
    assert rows.iloc[0, 0] == rows.iloc[0, 1]  # no number stored twice


def test_the_watchs_urgent_reads_do_not_close_a_batch_listed_with_fewer_recipients_than_its_report(
    make_simulator, tmp_path
):
    """A list whose Count says 120 for a batch of 250, read first by the watch (its report expires
    in a day): the page at row 101 comes back full where 20 rows were due, so the report goes on,
    as the sync reads it; the batch is not closed as read in full with rows 201 to 250 unread."""
    simulator, batch = panel_batch(make_simulator, 250)
    admin(simulator, "POST", "clock", advance=6 * 86400)
    proxy_behaviour = forwarding(simulator, lambda operation, body: listed_count(operation, body, batch, 120))
    with HostileServer({"/svc": proxy_behaviour}) as proxy:
        client = PanelClient("demo", "demo", wsdl="bundled", endpoint=proxy.url("svc"), max_retry_wait=0.05)
        store = Store(tmp_path / "watch.duckdb")
        cycle = Watch(client, store, every="15m", now=sim_clock(simulator)).cycle()
    assert cycle.outcome == "ok" and cycle.urgent_pages >= 3
    stored = store.sql(f"SELECT count(*), count(DISTINCT number) FROM deliveries WHERE batch_id = {batch}")
    assert stored.iloc[0].tolist() == [250, 250]
    assert store.sql(f"SELECT complete FROM batches WHERE batch_id = {batch}").iloc[0, 0]


def test_one_batchs_report_out_of_contract_in_the_watchs_urgent_reads_leaves_only_it_unread(make_simulator, tmp_path):
    """The urgent reads meet a report page whose status is text (waiting will not change it): as
    in the sync, only its batch is left open. It stopped the cycle there: the urgent reports after
    it and every report the sync reads were left unread, at every cycle until it expired."""
    simulator, batch = panel_batch(make_simulator, 150)
    admin(simulator, "POST", "clock", advance=6 * 86400)  # the batch is urgent: its report expires in a day

    def text_status(operation: str, body: bytes) -> bytes:
        if operation == "GetBatchDelivery" and b"09120000000<" in body:
            return body.replace(b"<a:int>", b"<a:int>x", 1)
        return body

    with HostileServer({"/svc": forwarding(simulator, text_status)}) as proxy:
        client = PanelClient("demo", "demo", wsdl="bundled", endpoint=proxy.url("svc"), max_retry_wait=0.05)
        store = Store(tmp_path / "watch.duckdb")
        cycle = Watch(client, store, every="15m", now=sim_clock(simulator)).cycle()
    assert cycle.outcome == "failed" and "out of contract" in cycle.error  # the sync's, once it read the rest
    closed = store.sql("SELECT batch_id, complete FROM batches").set_index("batch_id")["complete"]
    assert not closed[batch] and closed.drop(batch).all()  # every other report read


def test_the_alerts_delivery_rate_leaves_a_status_that_says_nothing_of_delivery_beside_it(tmp_path):
    """Recipients answered 8 ("unknown") or 4 ("unknown error") have no known outcome: the
    reports leave them out of every rate, and so does the alerts' rate. Counted as answers that
    were not delivered, an hour of a provider answering "unknown" read as a delivery-rate drop the
    report of the same hour did not show."""
    from payamak_analytics import alerts as rules_of_alerts

    now = datetime(2025, 11, 30, 11, tzinfo=TEHRAN)
    store = Store(tmp_path / "s.duckdb")
    statuses = [1] * 80 + [2] * 10 + [8] * 6 + [4] * 4
    with store.transaction() as con:
        con.execute(
            "INSERT INTO batches (batch_id, line, recipients, sent_at, complete, pending) VALUES (1, '10002188', ?, ?, true, 0)",
            [len(statuses), now - pd.Timedelta(minutes=20)],
        )
        con.executemany(
            """INSERT INTO deliveries (batch_id, "row", number, operator, status, final) VALUES (1, ?, ?, 'MCI', ?, true)""",
            [[row, f"0912{row:07d}", status] for row, status in enumerate(statuses, start=1)],
        )
    cells = rules_of_alerts._cells(store, now, AlertRules())
    window = cells[cells["period"] == "window"].iloc[0]
    assert (window["delivered"], window["answered"]) == (80, 90)  # 89%, as the report says: not 80%
