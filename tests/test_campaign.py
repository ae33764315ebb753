"""Campaign sends against the simulator: chunked, journaled, resumable, never sent twice."""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

import payamak_analytics.wsdl
from payamak_analytics import PanelClient, errors
from payamak_analytics.campaign import (
    campaign_status,
    plan_campaign,
    resume_campaign,
    send_campaign,
    sole_sender,
    unknown_chunks,
)
from payamak_analytics.simulator import FaultConfig, HistoryConfig, WorldConfig
from payamak_analytics.store import Store
from payamak_analytics.sync import sync

from .conftest import admin_post, kill_during, truth, world_config
from .hostile_server import HostileServer, forwarding

LINE = "50001234"
TEXT = "حراج ویژه زمستانه\nلغو۱۱"


def numbers(n: int, prefix: str = "0912") -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(n)]


def client_of(simulator, user: str = "demo", **kwargs) -> PanelClient:
    """The simulator's `user`: demo's password is its name, the special accounts' is `<name>-pw`."""
    password = user if user == "demo" else f"{user}-pw"
    return PanelClient(user, password, wsdl=simulator.wsdl_url, max_retry_wait=0.05, **kwargs)


def start(client: PanelClient, store: Store, name: str, count: int):
    """A campaign of `count` numbers on LINE, sent at once with no progress bar."""
    return send_campaign(client, store, name=name, from_number=LINE, numbers=numbers(count), text=TEXT,
                         rate=None, progress=False)  # fmt: skip


def times_sent(simulator) -> Counter:
    """How often the simulator sent to each number (its own record of every runtime send)."""
    return Counter(number for send in simulator.world.sends.values() for number in send.numbers)


def test_2050_numbers_become_21_batches_each_number_once(simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    client = client_of(simulator)
    plan = send_campaign(
        client, store, name="nowruz", from_number=LINE, numbers=numbers(2050), text=TEXT, rate=None, progress=False
    )
    assert len(plan.chunks) == 21 and plan.parts == 1 and plan.blacklisted is not None
    assert len(simulator.world.sends) == 21
    sent = times_sent(simulator)
    assert len(sent) == 2050 and set(sent.values()) == {1}
    status = campaign_status(store, "nowruz")
    assert status["state"].tolist() == ["sent"] and status["recipients"].tolist() == [2050]
    assert store.sql("SELECT state FROM campaigns")["state"].tolist() == ["done"]

    sync(client, store, progress=False)  # the sync links the batches to their campaign
    linked = store.sql("SELECT batch_id FROM batches WHERE campaign = 'nowruz' ORDER BY 1")["batch_id"].tolist()
    assert linked == sorted(simulator.world.sends) and truth(simulator, batches=0)["recipients"] >= 2050


def test_dry_run_sends_nothing_and_reports_bad_numbers(simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    raw = numbers(250) + ["۰۹۱۲۰۰۰۰۰۰۱", "+989120000002", "12345", "not a number", "0912000000"]
    plan = send_campaign(
        client_of(simulator), store, name="test", from_number=LINE, numbers=raw, text="س" * 71, dry_run=True
    )
    assert len(plan.numbers) == 250 and plan.duplicates == 2
    assert plan.invalid == ["12345", "not a number", "0912000000"]
    assert (plan.parts, plan.encoding, plan.messages) == (2, "UCS-2", 500) and len(plan.chunks) == 3
    calls = truth(simulator, batches=0)["calls"]
    assert not {"SendSMS", "SendBatchSms", "SendSmsLikeToLike"} & set(calls)
    assert store.sql("SELECT count(*) AS n FROM campaigns")["n"][0] == 0


def test_a_campaign_plan_flags_numbers_outside_the_number_plan_without_leaving_them_out(simulator, tmp_path):
    raw = numbers(20) + ["09065551234", "0941-123-4567", "09981234567", "09991234567"]
    store = Store(tmp_path / "p.duckdb")
    plan = send_campaign(client_of(simulator), store, name="t", from_number=LINE, numbers=raw, text=TEXT, dry_run=True)
    assert len(plan.numbers) == 24 and plan.invalid == []
    assert plan.unallocated == ["09065551234", "09411234567"]  # 0998 1 and 0999 1 are allocated
    assert "outside the number plan (still sent): 2" in str(plan) and "09065551234" in plan.warning


def test_invalid_and_duplicate_numbers_are_not_sent(simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    raw = ["09121234567", "9121234567", "+98 912 123 4567", "0935123456", "09351234567", "abc"]
    plan = send_campaign(
        client_of(simulator), store, name="mix", from_number=LINE, numbers=raw, text=TEXT, rate=None, progress=False
    )
    assert plan.numbers == ["09121234567", "09351234567"] and plan.duplicates == 2 and len(plan.invalid) == 2
    assert times_sent(simulator) == Counter({"09121234567": 1, "09351234567": 1})


@pytest.mark.parametrize("rate", ["2", float("nan"), -1, 0, True, float("inf")])
def test_a_bad_rate_is_refused_before_anything_is_planned_or_sent(simulator, tmp_path, rate):
    store = Store(tmp_path / "p.duckdb")
    with pytest.raises(errors.InputError, match="rate caps the calls a second"):
        send_campaign(client_of(simulator), store, name="r", from_number=LINE, numbers=numbers(3), text=TEXT,
                      rate=rate, progress=False)  # fmt: skip
    assert store.sql("SELECT count(*) FROM campaigns").iloc[0, 0] == 0 and not simulator.world.sends


def test_not_enough_credit_stops_before_anything_is_sent(simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    with pytest.raises(errors.CreditError) as caught:
        send_campaign(
            client_of(simulator, "nocredit"),
            store,
            name="c",
            from_number=LINE,
            numbers=numbers(150),
            text=TEXT,
            progress=False,
        )
    assert caught.value.code == 8 and "Nothing was sent" in str(caught.value)
    assert simulator.world.sends == {}


def test_a_refusal_stops_at_the_first_chunk_and_keeps_the_rest_planned(simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    with pytest.raises(errors.SenderLineError):  # the panel refuses the inactive line at the first send
        send_campaign(
            client_of(simulator),
            store,
            name="b",
            from_number="30001111",
            numbers=numbers(250),
            text=TEXT,
            rate=None,
            progress=False,
        )
    status = dict(campaign_status(store, "b")[["state", "chunks"]].values.tolist())
    assert status == {"failed": 1, "planned": 2}
    assert store.sql("SELECT code FROM campaign_chunks WHERE state = 'failed'")["code"].tolist() == [6]
    assert "inactive" in store.sql("SELECT stop_reason FROM campaigns")["stop_reason"][0]
    assert simulator.world.sends == {}


def test_a_lost_answer_is_unknown_and_resume_takes_the_match(make_simulator, tmp_path):
    healthy = make_simulator(WorldConfig(history=HistoryConfig(messages=300), clock_speed=0.0))  # a clock at today
    slow = make_simulator(healthy.world, FaultConfig(slow_rate=1.0, slow_seconds=1.5, operations=("SendBatchSms",)))
    store = Store(tmp_path / "p.duckdb")
    with pytest.raises(errors.SendOutcomeUnknownError):
        start(client_of(slow, timeout=0.5), store, "lost", 150)
    assert len(healthy.world.sends) == 1  # the first chunk did go out; its answer was lost
    [unknown] = unknown_chunks(client_of(healthy), store, "lost")
    assert unknown.chunk == 0 and unknown.match == next(iter(healthy.world.sends))
    asked = []
    status = resume_campaign(
        client_of(healthy), store, "lost", decide=lambda u: asked.append(u) or "sent", rate=None, progress=False
    )
    assert [u.chunk for u in asked] == [0]
    assert status["state"].tolist() == ["sent"] and status["recipients"].tolist() == [150]
    assert set(times_sent(healthy).values()) == {1} and len(times_sent(healthy)) == 150


def test_a_campaign_killed_at_random_points_never_sends_a_number_twice(make_simulator, tmp_path):
    simulator = make_simulator(world_config(messages=200))
    db, csv = tmp_path / "p.duckdb", tmp_path / "numbers.csv"
    everyone = numbers(2050)
    csv.write_text("mobile\n" + "\n".join(everyone) + "\n")
    env = {**os.environ, "PAYAMAK_USERNAME": "demo", "PAYAMAK_PASSWORD": "demo", "PAYAMAK_WSDL": simulator.wsdl_url}
    command = [sys.executable, "-m", "payamak_analytics.cli", "campaign"]
    rng = random.Random(7)
    logs = []
    for _ in range(4):
        begun = db.exists() and not Store(db).sql("SELECT 1 FROM campaigns WHERE name = 'big'").empty
        args = ["resume", "big"] if begun else ["send", "--name", "big", "--from", LINE, "--numbers", str(csv)]
        process = subprocess.Popen(
            command + args + ([] if begun else ["--text", TEXT]) + ["--db", str(db), "--rate", "12"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        kill_during(process, "campaign big", rng, window=0.6)  # while chunks are going out
        logs.append(process.stderr.read().decode(errors="replace")[-600:])
    store = Store(db)
    assert not store.sql("SELECT 1 FROM campaigns WHERE name = 'big'").empty, logs
    status = resume_campaign(client_of(simulator), store, "big", rate=None, progress=False)  # leaves unknowns alone
    states = store.sql("SELECT chunk, state, numbers FROM campaign_chunks WHERE campaign = 'big' ORDER BY chunk")
    assert set(states["state"]) <= {"sent", "unknown"} and "sent" in set(states["state"])
    sent = times_sent(simulator)
    assert max(sent.values()) == 1  # no number went out twice
    for chunk in states.itertuples():
        got = {sent.get(n, 0) for n in chunk.numbers}
        assert got == {1} if chunk.state == "sent" else got in ({0}, {1})
    unknown = int((states["state"] == "unknown").sum())
    assert status.set_index("state")["chunks"].get("unknown", 0) == unknown
    assert sum(status["recipients"]) == 2050


def test_cli_dry_run_reads_a_csv(simulator, tmp_path):
    csv = tmp_path / "numbers.csv"
    csv.write_text("phone\n09121234567\n۰۹۳۵۱۲۳۴۵۶۷\n0912\n09121234567\n")
    env = {**os.environ, "PAYAMAK_USERNAME": "demo", "PAYAMAK_PASSWORD": "demo", "PAYAMAK_WSDL": simulator.wsdl_url}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "payamak_analytics.cli",
            "campaign",
            "send",
            "--name",
            "x",
            "--from",
            LINE,
            "--numbers",
            str(csv),
            "--text",
            "hello",
            "--dry-run",
            "--db",
            str(tmp_path / "p.duckdb"),
        ],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "2 recipients in 1 chunks, 1 invalid and 1 duplicate numbers left out" in out.stdout
    assert "Left out, not mobile numbers: 0912" in out.stdout and "nothing was sent" in out.stdout
    assert simulator.world.sends == {}


def test_two_resumes_started_at_once_after_a_kill_never_send_a_number_twice(make_simulator, tmp_path):
    # the panel's clock runs with the wall clock, as a real panel's does: resume matches a chunk
    # left in flight against sent records made since the campaign was planned
    simulator = make_simulator(WorldConfig(history=HistoryConfig(messages=200)))
    db, csv = tmp_path / "p.duckdb", tmp_path / "numbers.csv"
    csv.write_text("\n".join(numbers(2000)) + "\n")
    env = {**os.environ, "PAYAMAK_USERNAME": "demo", "PAYAMAK_PASSWORD": "demo", "PAYAMAK_WSDL": simulator.wsdl_url}
    command = [sys.executable, "-m", "payamak_analytics.cli", "campaign"]
    first = subprocess.Popen(
        command
        + [
            "send",
            "--name",
            "big",
            "--from",
            LINE,
            "--numbers",
            str(csv),
            "--text",
            TEXT,
            "--db",
            str(db),
            "--rate",
            "10",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert kill_during(first, "campaign big", random.Random(3), window=0.8)
    resumes = [
        subprocess.Popen(
            command + ["resume", "big", "--accept-matches", "--db", str(db), "--rate", "50"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in resumes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results  # one sends, the other is refused
    refused = next(err for code, err in results if code == 1)
    assert refused.startswith("error: ") and "is being sent by" in refused and refused.count("\n") == 1
    assert "{" not in refused  # the holder named for people, not as the lock file's JSON
    per_number = times_sent(simulator)
    assert max(per_number.values()) == 1
    runtime = truth(simulator)["batches"]
    sent_batches = {b for b in runtime if int(b) in simulator.world.sends}
    assert sum(runtime[b]["count"] for b in sent_batches) == len(per_number)  # the service's own count agrees
    store = Store(db)
    status = campaign_status(store, "big").set_index("state")
    assert status["recipients"].get("sent", 0) == len(per_number) <= 2000
    with sole_sender(store, "big"):  # the holder let go
        pass


def test_a_holder_is_named_and_a_second_sender_refused(simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    start(client_of(simulator), store, "c", 150)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import sys, time
from payamak_analytics.campaign import sole_sender
from payamak_analytics.store import Store
with sole_sender(Store({str(tmp_path / "p.duckdb")!r}), "c"):
    print("claimed", flush=True)
    time.sleep(60)
""",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "claimed"
        with pytest.raises(errors.CampaignLockedError, match=f"PID {holder.pid}"):
            resume_campaign(client_of(simulator), store, "c", rate=None, progress=False)
    finally:
        holder.kill()
        holder.wait()
    status = resume_campaign(client_of(simulator), store, "c", rate=None, progress=False)  # the dead holder is replaced
    assert status["state"].tolist() == ["sent"]


@pytest.mark.parametrize("bad", ["hello\x01world", "nul\x00here", "lone \ud800 surrogate", "   "])
def test_a_bad_text_is_refused_before_the_name_is_used(simulator, tmp_path, bad):
    store = Store(tmp_path / "p.duckdb")
    with pytest.raises(errors.InputError):
        send_campaign(
            client_of(simulator),
            store,
            name="n",
            from_number=LINE,
            numbers=numbers(5),
            text=bad,
            rate=None,
            progress=False,
        )
    assert store.sql("SELECT count(*) FROM campaigns").iloc[0, 0] == 0 and simulator.world.sends == {}
    send_campaign(
        client_of(simulator),
        store,
        name="n",
        from_number=LINE,
        numbers=numbers(5),
        text="ok",
        rate=None,
        progress=False,
    )  # the name is still free
    assert campaign_status(store, "n")["state"].tolist() == ["sent"]


def test_a_garbled_answer_to_a_send_is_unknown_and_a_plain_resume_never_resends_it(make_simulator, tmp_path):
    healthy = make_simulator(WorldConfig(history=HistoryConfig(messages=300), clock_speed=0.0))
    garbling = make_simulator(healthy.world, FaultConfig(drop_rate=1.0, operations=("SendBatchSms",)))
    store = Store(tmp_path / "p.duckdb")
    with pytest.raises(errors.SendOutcomeUnknownError):
        start(client_of(garbling), store, "g", 250)
    assert len(healthy.world.sends) == 1  # it went out; its answer was cut
    status = resume_campaign(client_of(healthy), store, "g", rate=None, progress=False)
    assert dict(status[["state", "chunks"]].values.tolist()) == {"sent": 2, "unknown": 1}
    assert max(times_sent(healthy).values()) == 1 and len(times_sent(healthy)) == 250


def test_a_send_the_service_never_took_goes_back_to_planned_and_resume_sends_it(make_simulator, tmp_path):
    simulator = make_simulator(world_config(messages=200))
    store = Store(tmp_path / "p.duckdb")
    admin_post(simulator, "switch", system_updating=1)  # the service's own refusal: code 9
    with pytest.raises(errors.ServiceUnavailableError):
        start(client_of(simulator), store, "r", 150)
    admin_post(simulator, "switch", system_updating=0)
    with socket.socket() as probe:  # a port nobody listens on: the connection is refused, nothing left
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/SendService.svc"
    refused = PanelClient("demo", "demo", wsdl=simulator.wsdl_url, endpoint=closed, max_retry_wait=0.05)
    with pytest.raises(errors.NotSentError):
        resume_campaign(refused, store, "r", rate=None, progress=False)
    assert campaign_status(store, "r")["state"].tolist() == ["planned"] and simulator.world.sends == {}
    assert store.campaign("r")["state"] == "stopped"
    status = resume_campaign(client_of(simulator), store, "r", rate=None, progress=False)
    assert status["state"].tolist() == ["sent"] and set(times_sent(simulator).values()) == {1}


def test_the_credit_check_counts_the_tariff_the_service_charges(make_simulator, tmp_path):
    """The panel charges an English part more than a Persian one (its sent records say how much):
    a campaign the credit cannot cover at that tariff is refused before anything is sent."""
    from decimal import Decimal

    simulator = make_simulator(world_config(messages=300))
    simulator.world.accounts["demo"].credit = Decimal(250)  # 200 parts; 260 at the English tariff of 1.3
    store = Store(tmp_path / "p.duckdb")
    with pytest.raises(errors.CreditError) as caught:
        send_campaign(client_of(simulator), store, name="en", from_number=LINE, numbers=numbers(200),
                      text="Winter sale", rate=None, progress=False)  # fmt: skip
    assert "Nothing was sent" in str(caught.value) and simulator.world.sends == {}


@pytest.mark.parametrize("bad", [None, 9.5, b"09121234567", {"09121234567": "Ali"}])
def test_numbers_of_the_wrong_kind_are_an_input_error(simulator, tmp_path, bad):
    with pytest.raises(errors.InputError, match="numbers must be a list"):
        send_campaign(client_of(simulator), Store(tmp_path / "p.duckdb"), name="k", from_number=LINE, numbers=bad,
                      text=TEXT, rate=None, progress=False)  # fmt: skip
    assert simulator.world.sends == {}


def test_one_number_given_as_a_whole_number_is_sent_to(simulator, tmp_path):
    plan = send_campaign(client_of(simulator), Store(tmp_path / "p.duckdb"), name="one", from_number=LINE,
                         numbers=9121234567, text=TEXT, dry_run=True)  # fmt: skip
    assert plan.numbers == ["09121234567"]


@pytest.mark.parametrize("tariff", [b"-5.0", b"0.0", b"0.25"])
def test_a_tariff_under_one_a_part_never_lets_through_a_campaign_the_credit_cannot_cover(
    make_simulator, tmp_path, tariff
):
    """Credit is counted in SMS: a sent record's tariff under one (a hostile or odd panel's, a
    free send's) prices a part at one, as the check did before it read tariffs."""
    simulator = make_simulator(world_config(messages=300))
    simulator.world.accounts["demo"].credit = Decimal(150)

    def cheap(operation: str, body: bytes) -> bytes:
        return re.sub(rb"<a:Tariff>[^<]*</a:Tariff>", b"<a:Tariff>" + tariff + b"</a:Tariff>", body)

    with HostileServer({"/svc": forwarding(simulator, cheap)}) as proxy:
        client = PanelClient("demo", "demo", wsdl="bundled", endpoint=proxy.url("svc"))
        with pytest.raises(errors.CreditError):
            send_campaign(client, Store(tmp_path / "p.duckdb"), name="cheap", from_number=LINE, numbers=numbers(200),
                          text=TEXT, rate=None, progress=False)  # fmt: skip
    assert simulator.world.sends == {}


def test_a_panel_without_get_messages_plans_a_campaign_at_one_credit_a_part(simulator, tmp_path):
    """A deployment whose contract has no GetMessages (its service description without the
    operation): the credit check cannot read a tariff, and counts one credit a part."""
    bundled = Path(payamak_analytics.wsdl.__file__).parent
    for schema in bundled.glob("xsd*.xsd"):
        shutil.copy(schema, tmp_path)
    operation = r'<wsdl:operation name="GetMessages">.*?</wsdl:operation>'
    wsdl = re.sub(operation, "", (bundled / "SendService.wsdl").read_text(encoding="utf-8"), flags=re.DOTALL)
    (tmp_path / "SendService.wsdl").write_text(wsdl, encoding="utf-8")
    client = PanelClient("demo", "demo", wsdl=str(tmp_path / "SendService.wsdl"), endpoint=simulator.url)
    assert not client.has("GetMessages")
    plan = plan_campaign(client, name="p", from_number=LINE, numbers=numbers(3), text=TEXT)
    assert plan.tariff == 1 and plan.cost == plan.messages
