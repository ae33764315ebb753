"""A sync against a hostile GetMessages: whatever the pages hold, the run ends with one typed
error, recorded in sync_runs, and stores nothing it cannot page past."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from payamak_analytics import PanelClient, patience
from payamak_analytics import sync as sync_module
from payamak_analytics.errors import AnswerError
from payamak_analytics.simulator import HistoryConfig, WorldConfig
from payamak_analytics.simulator.faults import SERVER_ERROR
from payamak_analytics.store import Store
from payamak_analytics.sync import SyncError, sync

from .conftest import truth
from .hostile_server import HostileServer, answer, by_operation, forwarding, http, soap

ROOT = Path(__file__).resolve().parents[1]


def records(ids, *, with_ids: bool = True) -> str:
    """MessageInfo records as WCF writes them, newest first, received (no report to read)."""
    return "".join(
        "<MessageInfo>"
        f"<ActionDateTime>2025-11-20T10:{(n // 60) % 60:02d}:{n % 60:02d}</ActionDateTime>"
        + (f"<MessageId>{n}</MessageId>" if with_ids else "")
        + "<MessageType>In</MessageType><Sender>09121234567</Sender><Receiver>10002188</Receiver>"
        "</MessageInfo>"
        for n in ids
    )


def messages_answer(inner: str) -> bytes:
    return soap("GetMessages", f"<GetMessagesResult>{inner}</GetMessagesResult>")


def client_of(server: HostileServer, path: str) -> PanelClient:
    return PanelClient("demo", "pw", wsdl="bundled", endpoint=server.url(path), timeout=2, max_retry_wait=0.05)


def test_records_without_a_message_id_stop_the_sync_with_a_typed_error(tmp_path):
    """MessageId may be left out by the contract (minOccurs=0), but a row without one can be
    neither stored nor paged past: the sync says so, instead of a TypeError from the walk."""
    answer = messages_answer(records(range(3), with_ids=False))
    with HostileServer({"/svc": by_operation({"GetMessages": answer})}) as server:
        store = Store(tmp_path / "p.duckdb")
        with pytest.raises(SyncError, match="MessageId") as caught:
            sync(client_of(server, "svc"), store, progress=False, deliveries=False, give_up_after=5)
    assert isinstance(caught.value.__cause__, AnswerError)
    runs = store.sync_runs()
    assert runs["outcome"].tolist() == ["failed"] and "MessageId" in runs["error"].iloc[0]
    assert store.sql("SELECT count(*) FROM messages").iloc[0, 0] == 0


@pytest.mark.slow
def test_a_service_that_ignores_the_index_ends_the_first_sync_with_a_typed_error(tmp_path):
    """A full page, the same whatever `index` asks (a proxy that caches by path, a service that
    ignores the parameter): each page shows the last row of the one before, so without a check
    the first walk (which has nothing stored to stop at) pages on for ever."""
    answer = messages_answer(records(range(10_000_000 + 999, 10_000_000 - 1, -1)))
    with HostileServer({"/svc": by_operation({"GetMessages": answer})}) as server:
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PAYAMAK_USERNAME": "demo",
            "PAYAMAK_PASSWORD": "pw",
            "PAYAMAK_WSDL": "bundled",
            "PAYAMAK_ENDPOINT": server.url("svc"),
        }
        command = [sys.executable, "-m", "payamak_analytics.cli", "sync", "--db", str(tmp_path / "p.duckdb")]
        command += ["--no-deliveries"]
        try:
            done = subprocess.run(command, check=False, env=environment, capture_output=True, text=True, timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("the sync was still paging through the same page after 90 s")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "index" in done.stderr and "run the sync again" in done.stderr
    store = Store(tmp_path / "p.duckdb")
    assert store.sync_runs()["outcome"].tolist() == ["failed"]
    assert store.sql("SELECT count(*) FROM messages").iloc[0, 0] == 1000  # the one page, once


@pytest.mark.parametrize(
    "inner",
    [
        "the list is not available",  # no records at all: read as an empty page, the walk would end here
        records(range(3)) + "and more to come",
        "note: " + records(range(3)),
        records(range(2)) + "between" + records(range(2, 4)),
    ],
    ids=["text only", "text after", "text before", "text between"],
)
def test_text_inside_the_messages_result_stops_the_sync_before_anything_is_stored(inner, tmp_path):
    """The result holds records and nothing else. Text in it is an answer out of contract: taken
    as an empty page it would end the first walk as if the account had no older messages (which
    the next, incremental, sync would never read), and ignored it would hide a broken proxy."""
    with HostileServer({"/svc": by_operation({"GetMessages": messages_answer(inner)})}) as server:
        store = Store(tmp_path / "p.duckdb")
        with pytest.raises(SyncError, match="GetMessagesResult held text") as caught:
            sync(client_of(server, "svc"), store, progress=False, give_up_after=30)
        asked = [request for request in server.requests if request.operation == "GetMessages"]
    assert isinstance(caught.value.__cause__, AnswerError)
    assert len({request.body for request in asked}) == len(asked)  # no page asked twice: waiting changes nothing
    assert store.sync_runs()["outcome"].tolist() == ["failed"]
    assert store.sql("SELECT count(*) FROM messages").iloc[0, 0] == 0


def test_an_answer_the_client_calls_final_is_not_asked_again_by_the_sync(tmp_path):
    """A value of the wrong kind will be the same on the next call: the sync stops at the first
    answer (its outage budget is for a service that does not answer, not for one that answers wrong)."""
    wrong = records(range(3)).replace("<MessageId>1</MessageId>", "<MessageId>one</MessageId>")
    with HostileServer({"/svc": by_operation({"GetMessages": messages_answer(wrong)})}) as server:
        store = Store(tmp_path / "p.duckdb")
        with pytest.raises(SyncError, match="MessageId") as caught:
            sync(client_of(server, "svc"), store, progress=False, give_up_after=60)
        asked = [request for request in server.requests if request.operation == "GetMessages"]
    assert isinstance(caught.value.__cause__, AnswerError) and not caught.value.__cause__.retryable
    assert len({request.body for request in asked}) == len(asked)
    assert store.sync_runs()["outcome"].tolist() == ["failed"]


def test_a_web_page_with_a_doctype_for_an_answer_is_weather_and_the_sync_goes_on(tmp_path):
    """A proxy, a portal or IIS itself may answer 200 with a web page (IIS's error page is
    XHTML, with its DOCTYPE): not SOAP at all, as a page without a DOCTYPE is, so it is asked
    again later; only a SOAP envelope carrying a DTD is an answer that waiting will not change."""
    calls = []

    def a_page_at_first(request, connection) -> None:
        calls.append(request.operation)
        body = SERVER_ERROR if len(calls) <= 4 else messages_answer("")
        connection.sendall(http("200 OK", body, content_type="text/html"))

    with HostileServer({"/svc": a_page_at_first}) as server:
        store = Store(tmp_path / "p.duckdb")
        summary = sync(client_of(server, "svc"), store, progress=False, give_up_after=30)
    assert summary.requeued + summary.retries >= 4
    assert store.sync_runs()["outcome"].tolist() == ["ok"]


def test_a_page_that_keeps_failing_for_a_while_ends_the_run_saying_it_may_pass(tmp_path, monkeypatch):
    """A 503 is weather: a page that still meets it after all its attempts ends the run, but
    the reason given is that, not "an answer waiting will not change" (which would send the user
    looking for a broken account instead of trying again later)."""
    monkeypatch.setattr(patience, "FIRST_BACKOFF", 0.01)
    monkeypatch.setattr(patience, "MAX_BACKOFF", 0.02)
    monkeypatch.setattr(sync_module, "Breaker", functools.partial(patience.Breaker, first_pause=0.01))
    with HostileServer({"/svc": answer("503 Service Unavailable", b"busy", content_type="text/plain")}) as server:
        store = Store(tmp_path / "p.duckdb")
        with pytest.raises(SyncError) as caught:
            sync(client_of(server, "svc"), store, progress=False, give_up_after=60)
    message = str(caught.value)
    assert "waiting will not change" not in message
    assert f"{patience.PAGE_ATTEMPTS} times" in message and "run the sync again" in message
    assert store.sync_runs()["outcome"].tolist() == ["failed"]


@pytest.mark.parametrize("asked", ["Fri, 31 Dec 9999 23:59:59 GMT", "9" * 400], ids=["year 9999", "infinite"])
def test_a_retry_after_past_the_outage_budget_is_recorded_as_the_pause_the_run_took(tmp_path, asked):
    """A 503 asking to come back in 8,000 years (or never) pauses the workers until the outage
    budget is spent, not longer: the run gives up then, and records the pause it took, not the
    one it was asked for (sync_runs said 251,606,551,445 seconds paused, or infinity)."""
    busy = answer("503 Service Unavailable", b"busy", ("Retry-After", asked), content_type="text/plain")
    with HostileServer({"/svc": busy}) as server:
        store = Store(tmp_path / "p.duckdb")
        with pytest.raises(SyncError, match="no successful answer for 2 s"):
            sync(client_of(server, "svc"), store, progress=False, give_up_after=2)
    run = store.sync_runs().iloc[0]
    assert run["outcome"] == "failed" and run["pauses"] >= 1 and 0 < run["paused_seconds"] <= 2


def test_an_outage_budget_shorter_than_a_call_gives_up_only_once_a_call_has_failed(tmp_path):
    """The budget is time without a successful answer while calls fail: before any call was
    answered, or while calls are merely slower than it, nothing has failed. A budget of a
    microsecond ended the sync before its first call, as "no successful answer for 0 s"."""
    short = messages_answer(records(range(500, 0, -1)))  # one page: the walk ends at it
    with HostileServer({"/svc": by_operation({"GetMessages": short})}) as server:
        store = Store(tmp_path / "p.duckdb")
        summary = sync(client_of(server, "svc"), store, progress=False, deliveries=False, give_up_after=1e-6)
    assert summary.pages >= 1 and store.sync_runs()["outcome"].tolist() == ["ok"]
    busy = answer("503 Service Unavailable", b"busy", content_type="text/plain")
    with (
        HostileServer({"/svc": busy}) as server,
        pytest.raises(SyncError, match="1e-06 s; the last error: GetMessages"),
    ):
        sync(client_of(server, "svc"), Store(tmp_path / "q.duckdb"), progress=False, give_up_after=1e-6)


@pytest.mark.parametrize(
    "wrong",
    [
        lambda body: body.replace(b"GetBatchDelivery", b"GetCredit"),  # another operation's answer
        lambda body: body.replace(b"<a:int>", b"<a:int>x", 1),  # a status that is text
    ],
    ids=["another operation", "text status"],
)
def test_a_report_page_out_of_contract_ends_the_sync_as_a_messages_page_does(make_simulator, tmp_path, wrong):
    """An answer waiting will not change ends the run failed whichever stream meets it; every report
    answered so is the service (or a proxy), and the run stops early. A report page out of contract
    was taken for weather that outlasted its attempts: the run was recorded `ok` with its batches
    "not read in full: the next sync asks again", which the next run (and every one until the report
    expired) did, as silently."""
    world = WorldConfig(history=HistoryConfig(messages=300, days=10), clock_speed=0.0)
    simulator = make_simulator(world)

    def rewrite(operation: str, body: bytes) -> bytes:
        return wrong(body) if operation == "GetBatchDelivery" else body

    with HostileServer({"/svc": forwarding(simulator, rewrite)}) as proxy:
        client = PanelClient("demo", "demo", wsdl="bundled", endpoint=proxy.url("svc"), max_retry_wait=0.05)
        store = Store(tmp_path / "p.duckdb")
        with pytest.raises(SyncError, match="waiting will not change") as caught:
            sync(client, store, progress=False, give_up_after=30)
    assert isinstance(caught.value.__cause__, AnswerError) and not caught.value.__cause__.retryable
    assert store.sync_runs()["outcome"].tolist() == ["failed"]
    asked = truth(simulator, batches=0)["calls"]["GetBatchDelivery"]  # stopped once the batches refused pass the cap
    at_most = sync_module.REFUSED_BATCHES + 1 + 8 * sync_module.IN_FLIGHT_PER_WORKER  # and the pages then in flight
    assert asked <= at_most < store.sql("SELECT count(*) FROM batches").iloc[0, 0]
    assert not store.sql("SELECT count(*) FROM batches WHERE complete").iloc[0, 0]


def test_one_batchs_report_out_of_contract_leaves_it_open_and_every_other_report_is_read(make_simulator, tmp_path):
    """One batch whose report page answers a status that is text: waiting will not change it, so
    the run ends failed and names it, but only after every other report was read and stored (one
    batch's odd answer must not keep the others unread until they expire); the batch stays open,
    and the next sync, the answer mended, reads it."""
    from .test_sync import assert_store_equals_truth, panel_batch

    simulator, batch = panel_batch(make_simulator, 150)
    mended = {"on": False}

    def rewrite(operation: str, body: bytes) -> bytes:
        if operation == "GetBatchDelivery" and b"09120000000<" in body and not mended["on"]:
            return body.replace(b"<a:int>", b"<a:int>x", 1)
        return body

    with HostileServer({"/svc": forwarding(simulator, rewrite)}) as proxy:
        client = PanelClient("demo", "demo", wsdl="bundled", endpoint=proxy.url("svc"), max_retry_wait=0.05)
        store = Store(tmp_path / "p.duckdb")
        with pytest.raises(SyncError, match=f"1 batch\\(es\\).*batch {batch} first.*every other report was read"):
            sync(client, store, progress=False)
        assert store.sync_runs()["outcome"].tolist() == ["failed"]
        closed = store.sql("SELECT batch_id, complete FROM batches")
        assert closed.set_index("batch_id")["complete"].drop(batch).all()  # every other batch read in full
        assert not closed.set_index("batch_id")["complete"][batch]
        mended["on"] = True
        sync(client, store, progress=False)
    assert store.sync_runs()["outcome"].tolist() == ["failed", "ok"]
    assert_store_equals_truth(store, simulator)
