"""A campaign never sends a number twice: one sender by a kernel lock, matches proven by recipients."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable

import pandas as pd
import pytest

from payamak_analytics import PanelClient, errors
from payamak_analytics.campaign import READS_PER_RESUME, campaign_status, resume_campaign, send_campaign
from payamak_analytics.simulator import FaultConfig
from payamak_analytics.store import Store

from .conftest import world_config
from .hostile_server import HostileServer, forwarding

LINE = "50001234"
TEXT = "Yalda sale"


def numbers(n: int, prefix: str = "0912") -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(n)]


def client_of(simulator, **kwargs) -> PanelClient:
    return PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05, **kwargs)


def times_sent(simulator) -> Counter:
    """How often the service (the simulator's own record) sent to each number."""
    return Counter(number for send in simulator.world.sends.values() for number in send.numbers)


def two_unknown_chunks(make_simulator, store: Store):
    """A 300-number campaign whose chunk 0 never ran (a 500 before the service) and whose chunk 1
    went out with its answer lost: both unknown, on a panel whose clock is months behind ours."""
    healthy = make_simulator(world_config(messages=200))
    failing = make_simulator(healthy.world, FaultConfig(fail_rate=1.0, operations=("SendBatchSms",)))
    slow = make_simulator(healthy.world, FaultConfig(slow_rate=1.0, slow_seconds=1.5, operations=("SendBatchSms",)))
    everyone = numbers(300)
    with pytest.raises(errors.SendOutcomeUnknownError):
        send_campaign(
            client_of(failing),
            store,
            name="c",
            from_number=LINE,
            numbers=everyone,
            text=TEXT,
            rate=None,
            progress=False,
        )
    with pytest.raises(errors.SendOutcomeUnknownError):
        resume_campaign(client_of(slow, timeout=0.5), store, "c", decide=lambda u: "leave", rate=None, progress=False)
    assert {everyone.index(n) // 100 for n in times_sent(healthy)} == {1}  # only chunk 1 went out
    reason = store.campaign("c")["stop_reason"]
    assert "run resume to check it" in reason and "try again" not in reason.lower()
    return healthy, everyone


def test_an_unknown_chunk_takes_only_the_record_whose_recipients_are_its_own(make_simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    healthy, everyone = two_unknown_chunks(make_simulator, store)
    [chunk_1_batch] = healthy.world.sends
    asked = []

    def person(unknown):  # says yes to every question, as --accept-matches and "y" at a terminal do
        asked.append((unknown.chunk, unknown.match))
        return "sent" if unknown.match is not None else "resend"

    status = resume_campaign(client_of(healthy), store, "c", decide=person, rate=None, progress=False)
    assert asked == [(0, None), (1, chunk_1_batch)]
    sent = times_sent(healthy)
    assert set(sent) == set(everyone) and set(sent.values()) == {1}
    assert status["state"].tolist() == ["sent"] and status["recipients"].tolist() == [300]


def test_a_look_alike_whose_recipients_cannot_be_read_is_never_resent_over(make_simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    healthy, _ = two_unknown_chunks(make_simulator, store)
    blind = make_simulator(healthy.world, FaultConfig(fail_rate=1.0, operations=("GetBatchDelivery",)))
    asked = []
    status = resume_campaign(
        client_of(blind), store, "c", decide=lambda u: asked.append(u) or "resend", rate=None, progress=False
    )
    assert asked == []  # neither chunk can be told apart from the unreadable record: no question, no resend
    states = dict(status[["state", "chunks"]].values.tolist())
    assert states == {"sent": 1, "unknown": 2} and max(times_sent(healthy).values()) == 1
    assert "could not be read" in store.campaign("c")["stop_reason"]


def test_a_batch_id_is_taken_by_one_chunk_at_most(tmp_path):
    store = Store(tmp_path / "p.duckdb")
    row = {
        "name": "c", "line": LINE, "text": TEXT, "flash": False, "recipients": 2, "invalid_numbers": 0,
        "duplicates": 0, "blacklisted": None, "parts": 1, "encoding": "GSM-7", "created_at": None,
    }  # fmt: skip
    store.create_campaign(row, [["09120000001"], ["09120000002"]])
    for chunk in (0, 1):
        store.journal_move("c", chunk, "planned", "unknown")
    store.journal_move("c", 0, "unknown", "sent", batch_id=777)
    with pytest.raises(errors.JournalConflictError, match="777"):
        store.journal_move("c", 1, "unknown", "sent", batch_id=777)
    with pytest.raises(errors.JournalConflictError):
        store.journal_move("c", 0, "planned", "in_flight")  # a move that does not apply
    assert dict(campaign_status(store, "c")[["state", "chunks"]].values.tolist()) == {"sent": 1, "unknown": 1}


def test_a_send_and_a_resume_in_two_threads_of_one_process_exclude_each_other(make_simulator, tmp_path):
    healthy = make_simulator(world_config(messages=200))
    slow = make_simulator(healthy.world, FaultConfig(latency_ms=700, operations=("SendBatchSms",)))
    store = Store(tmp_path / "p.duckdb")
    sender = threading.Thread(
        target=send_campaign,
        args=(client_of(slow), store),
        kwargs={
            "name": "t",
            "from_number": LINE,
            "numbers": numbers(400),
            "text": TEXT,
            "rate": None,
            "progress": False,
        },
    )
    sender.start()
    while store.sql("SELECT count(*) AS n FROM campaigns")["n"][0] == 0 and sender.is_alive():
        time.sleep(0.05)  # the campaign is written once its sender holds it
    with pytest.raises(errors.CampaignLockedError, match="being sent by"):
        resume_campaign(client_of(healthy), store, "t", decide=lambda u: "resend", rate=None, progress=False)
    sender.join(60)
    assert campaign_status(store, "t")["state"].tolist() == ["sent"]
    sent = times_sent(healthy)
    assert len(sent) == 400 and set(sent.values()) == {1} and len(healthy.world.sends) == 4


def test_a_sender_in_another_pid_namespace_is_still_the_only_sender(simulator, tmp_path):
    unshare = pid_namespaces()
    store = Store(tmp_path / "p.duckdb")
    send_campaign(
        client_of(simulator), store, name="ns", from_number=LINE, numbers=numbers(5), text=TEXT, progress=False
    )
    holder = subprocess.Popen(
        [unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-c", HOLD, str(store.path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding pid 1"  # pid 1 in its namespace
        with pytest.raises(errors.CampaignLockedError, match="PID 1 on"):
            resume_campaign(client_of(simulator), store, "ns", rate=None, progress=False)
    finally:
        holder.kill()
        holder.wait()


HOLD = """
import os, sys, time
from payamak_analytics.campaign import sole_sender
from payamak_analytics.store import Store
with sole_sender(Store(sys.argv[1]), "ns"):
    print("holding pid", os.getpid(), flush=True)
    time.sleep(60)
"""


def test_flash_must_be_a_bool_and_nothing_is_written(simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    for flash in ("false", 0, None):
        with pytest.raises(errors.InputError, match="flash"):
            send_campaign(
                client_of(simulator), store, name="f", from_number=LINE, numbers=numbers(3), text=TEXT, flash=flash
            )
    assert simulator.world.sends == {} and store.sql("SELECT count(*) AS n FROM campaigns")["n"][0] == 0


def test_an_unfinished_campaign_is_not_sent_again_under_a_new_name(make_simulator, tmp_path):
    simulator = make_simulator(world_config(messages=200))
    refusing = make_simulator(simulator.world, FaultConfig(fail_rate=1.0, operations=("SendBatchSms",)))
    store = Store(tmp_path / "p.duckdb")
    everyone = numbers(150)
    with pytest.raises(errors.SendOutcomeUnknownError):
        send_campaign(
            client_of(refusing),
            store,
            name="a",
            from_number=LINE,
            numbers=everyone,
            text=TEXT,
            rate=None,
            progress=False,
        )
    with pytest.raises(errors.InputError, match="resume a"):
        send_campaign(
            client_of(simulator),
            store,
            name="b",
            from_number=LINE,
            numbers=list(reversed(everyone)),  # the same numbers in another order
            text=TEXT,
            rate=None,
            progress=False,
        )
    assert simulator.world.sends == {} and store.sql("SELECT count(*) AS n FROM campaigns")["n"][0] == 1
    send_campaign(
        client_of(simulator),
        store,
        name="b",
        from_number=LINE,
        numbers=everyone,
        text=TEXT,
        rate=None,
        progress=False,
        same_as_unfinished=True,  # said in so many words
    )
    assert len(times_sent(simulator)) == 150


def pid_namespaces() -> str:
    """The unshare command, or skip where PID namespaces cannot be made."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--pid", "--fork", "true"], check=False).returncode != 0:
        pytest.skip("no PID namespaces here (needs unshare and the right to use it)")
    return unshare


@pytest.mark.slow
def test_a_store_held_from_outside_its_pid_namespace_is_waited_for(tmp_path):
    """Seen from inside a namespace, DuckDB names the holder "PID 0" and no program."""
    store = Store(tmp_path / "p.duckdb")
    inside = [pid_namespaces(), "--pid", "--fork", "--mount-proc", sys.executable, "-c", READ, str(store.path)]
    for hold, wait, expected in ((6, 30, "read 0"), (60, 0.3, "StoreLockedError")):
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_FILE, str(store.path), str(hold)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout.readline().strip() == "holding"
            reader = subprocess.run(inside + [str(wait)], capture_output=True, text=True, timeout=60, check=False)
        finally:
            holder.kill()
            holder.wait()
        assert reader.stdout.strip() == expected, reader.stderr


HOLD_FILE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""
READ = """
import sys
from payamak_analytics.errors import PayamakError
from payamak_analytics.store import Store
try:
    print("read", Store(sys.argv[1], lock_wait=float(sys.argv[2])).sql("SELECT count(*) AS n FROM campaigns")["n"][0])
except PayamakError as error:
    print(type(error).__name__)
"""


def _contents(change) -> Callable[[bytes], bytes]:
    """A rewrite of every sent record's Content element by `change(element) -> element`."""
    return lambda body: re.sub(rb"<a:Content>[^<]*</a:Content>", lambda m: change(m.group(0)), body)


STORED_OTHERWISE = {
    "a suffix the panel adds": _contents(lambda e: e.replace(b"</a:Content>", "\nلغو۱۱</a:Content>".encode())),
    "letters the panel converts": _contents(lambda e: e[:11] + e[11:-12].replace(b"a", "ā".encode()) + e[-12:]),
    "no text": _contents(lambda e: b'<a:Content i:nil="true"/>'),
    "no count": lambda body: re.sub(rb"<a:Count>\d+</a:Count>", b'<a:Count i:nil="true"/>', body),
}


@pytest.mark.parametrize("stored", STORED_OTHERWISE)
def test_a_record_of_the_chunk_stored_with_another_text_or_no_count_is_never_resent_over(
    make_simulator, tmp_path, stored
):
    """The panel may keep a send's text otherwise than it was sent (a suffix, converted letters) or
    leave fields out: a record whose recipients are the chunk's keeps the chunk in doubt, never
    offered for sending again."""
    store = Store(tmp_path / "p.duckdb")
    healthy, _ = two_unknown_chunks(make_simulator, store)
    keep = STORED_OTHERWISE[stored]
    asked = []

    def person(unknown):  # says "send it again" to every question
        asked.append((unknown.chunk, unknown.resendable))
        return "resend"

    def stored_otherwise(operation: str, body: bytes) -> bytes:
        return keep(body) if operation == "GetMessages" else body

    with HostileServer({"/svc": forwarding(healthy, stored_otherwise)}) as panel:
        client = PanelClient("demo", "demo", wsdl="bundled", endpoint=panel.url("svc"), max_retry_wait=0.05)
        status = resume_campaign(client, store, "c", decide=person, rate=None, progress=False)
    assert (1, True) not in asked and max(times_sent(healthy).values()) == 1
    assert dict(status[["state", "chunks"]].values.tolist()) == {"sent": 2, "unknown": 1}


def test_a_resume_reads_a_bounded_number_of_reports_however_many_records_may_be_a_chunk(
    make_simulator, tmp_path, monkeypatch
):
    """A line's thousands of other sends, kept without a count, could each be an unknown chunk: the
    resume reads at most READS_PER_RESUME reports to rule them out, and the chunk stays in doubt."""
    store = Store(tmp_path / "p.duckdb")
    healthy, _ = two_unknown_chunks(make_simulator, store)
    client = client_of(healthy)
    read = client.messages_frame
    others = pd.DataFrame({"message_id": range(10**6, 10**6 + 3000), "content": "OTP 1234", "count": pd.NA})

    def records(*args, **kwargs):
        frame = read(*args, **kwargs)
        return pd.concat([others.reindex(columns=frame.columns), frame.assign(count=pd.NA)], ignore_index=True)

    monkeypatch.setattr(client, "messages_frame", records)
    [chunk_1_batch] = healthy.world.sends
    reports, asked = client.get_batch_delivery, []

    def report(batch, *args, **kwargs):  # each other send's recipients are readable, and not chunk 0's
        asked.append(batch)
        return reports(chunk_1_batch if batch >= 10**6 else batch, *args, **kwargs)

    monkeypatch.setattr(client, "get_batch_delivery", report)
    status = resume_campaign(
        client, store, "c", decide=lambda u: "sent" if u.match else "resend", rate=None, progress=False
    )
    assert len(asked) <= READS_PER_RESUME and max(times_sent(healthy).values()) == 1
    assert dict(status[["state", "chunks"]].values.tolist()) == {"sent": 2, "unknown": 1}
