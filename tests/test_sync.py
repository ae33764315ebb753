"""Sync into a real DuckDB file from the simulator over loopback, compared with /_sim/truth."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import jdatetime
import pandas as pd
import pytest
import requests

from payamak_analytics import PanelClient
from payamak_analytics.dates import TEHRAN
from payamak_analytics.errors import AnswerError, InputError, StoreError
from payamak_analytics.simulator import FaultConfig, HistoryConfig, Simulator, WorldConfig
from payamak_analytics.store import Store, StoreLockedError, export_parquet
from payamak_analytics.store.schema import MIGRATIONS
from payamak_analytics.sync import IN_FLIGHT_PER_WORKER, PAST_LIST_PAGES, PROBE_INDEX, SyncError, sync

from .conftest import START, admin_post, kill_during, strict_zeep, truth
from .hostile_server import (
    HostileServer,
    Request,
    delivered_taken_back,
    endless_report,
    first_page_always,
    forwarding,
    http,
    index_rewritten,
    listed_count,
    proxied,
    report_pages_asked,
)


def live_world(messages: int = 1200, days: int = 10) -> WorldConfig:
    """A history ending now, on a clock that stands still until a test advances it."""
    return WorldConfig(history=HistoryConfig(messages=messages, days=days), clock_speed=0.0)


def client_of(simulator: Simulator, **kwargs) -> PanelClient:
    return PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05, **kwargs)


def assert_store_equals_truth(store: Store, simulator: Simulator) -> None:
    t = truth(simulator)
    by_type = dict(store.sql("SELECT message_type, count(*) FROM messages GROUP BY 1").values.tolist())
    assert by_type.get("Out", 0) == t["messages"]["sent"]
    assert by_type.get("In", 0) == t["messages"]["received"]
    assert (
        store.sql("SELECT count(*) FILTER (is_read) FROM messages WHERE message_type = 'In'").iloc[0, 0]
        == t["messages"]["received_read"]
    )
    statuses = store.sql("SELECT status, count(*) n FROM deliveries GROUP BY 1")
    assert {str(s): n for s, n in statuses.values.tolist()} == t["recipients_by_status"]
    per_batch = store.sql("SELECT batch_id, status, count(*) n FROM deliveries GROUP BY 1, 2")
    ours: dict[str, dict[str, int]] = {}
    for batch, status, n in per_batch.values.tolist():
        ours.setdefault(str(batch), {})[str(status)] = n
    assert ours == {batch: totals["statuses"] for batch, totals in t["batches"].items()}
    assert store.sql("SELECT count(*) = count(DISTINCT message_id) FROM messages").iloc[0, 0]
    assert store.sql("SELECT bool_and(complete) FROM batches").iloc[0, 0]


@pytest.fixture
def live_simulator(make_simulator):
    return make_simulator(live_world(), threads=16)


def test_sync_equals_truth_and_a_second_sync_is_cheap(live_simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    start = datetime.now(TEHRAN)
    first = sync(client_of(live_simulator), store, progress=False, now=lambda: start)
    assert_store_equals_truth(store, live_simulator)
    assert first.rows_new > 0 and first.pages <= first.calls <= first.pages + 8  # a little read-ahead

    before = truth(live_simulator, batches=0)["calls"]
    later = start + timedelta(hours=6)  # a page in flight is due again after 6 h at most
    pending_pages = store.sql(
        """SELECT count(DISTINCT (batch_id, ("row" - 1) // 100)) FROM deliveries JOIN batches USING (batch_id)
           WHERE NOT final AND sent_at > ?""",  # still within the service's seven days then
        [later - timedelta(days=7)],
    ).iloc[0, 0]
    second = sync(client_of(live_simulator), store, progress=False, now=lambda: start)
    after = truth(live_simulator, batches=0)["calls"]
    assert after["GetMessages"] - before["GetMessages"] == 2  # one call per stream: sent, received
    # every page was read at this very moment: none is due again yet
    assert after["GetBatchDelivery"] == before["GetBatchDelivery"] and second.calls == 2

    third = sync(client_of(live_simulator), store, progress=False, now=lambda: later)
    last = truth(live_simulator, batches=0)["calls"]
    # only pages holding a recipient still in flight are asked again; final batches never are
    assert 0 < last["GetBatchDelivery"] - after["GetBatchDelivery"] == pending_pages == third.calls - 2
    assert second.rows_new == third.rows_new == 0
    runs = store.sync_runs()
    assert runs["outcome"].tolist() == ["ok"] * 3 and runs["calls"].tolist() == [first.calls, second.calls, third.calls]


def test_each_report_page_is_read_once_when_the_batches_were_stored_before_their_reports(live_simulator, tmp_path):
    """A sync without reports, then one with them: the batches of the sent walk's last pages are
    asked for before those pages are stored, the older ones from the store's list, and no page
    is asked twice."""
    store = Store(tmp_path / "p.duckdb")
    sync(client_of(live_simulator), store, progress=False, deliveries=False)
    assert "GetBatchDelivery" not in truth(live_simulator, batches=0)["calls"]
    summary = sync(client_of(live_simulator), store, progress=False)
    asked = truth(live_simulator, batches=0)["calls"]["GetBatchDelivery"]
    pages = sum(max(-(-n // 100), 1) for n in store.sql("SELECT recipients FROM batches")["recipients"])
    assert asked == summary.by_stream["deliveries"] == pages
    assert_store_equals_truth(store, live_simulator)


def test_a_run_whose_reports_outlast_the_clock_slack_does_not_read_its_own_pages_again(make_simulator, tmp_path):
    """A read stamped more than CLOCK_SLACK (ten minutes) after `now` is taken for one made by a
    clock that was ahead (recheck): a run whose reports take longer than that must not take the
    pages it has just read for such, and read them a second time in its pending pass."""
    simulator = make_simulator(live_world(messages=1200, days=2), FaultConfig(latency_ms=5, seed=1), threads=16)
    store = Store(tmp_path / "p.duckdb")
    began, base, speed = time.monotonic(), datetime.now(TEHRAN), 6000  # 100 minutes a second
    summary = sync(
        client_of(simulator),
        store,
        progress=False,
        now=lambda: base + timedelta(seconds=(time.monotonic() - began) * speed),
    )
    assert summary.elapsed * speed > 3 * 600  # the run lasted three times CLOCK_SLACK by that clock
    asked = truth(simulator, batches=0)["calls"]["GetBatchDelivery"]
    pages = sum(max(-(-n // 100), 1) for n in store.sql("SELECT recipients FROM batches")["recipients"])
    assert asked == summary.by_stream["deliveries"] == pages
    assert_store_equals_truth(store, simulator)


def test_pages_in_flight_are_asked_again_by_their_age_and_before_their_report_expires(make_simulator, tmp_path):
    """Due at every run for the first 6 h; then once a quarter of the batch's age has passed since
    its last read, at most 6 h, and at most half of what is left of the service's seven days."""
    early = START + 9 * 3600  # 04:30 in Tehran: the batches near day 7 were sent in a busy morning
    live_simulator = make_simulator(
        WorldConfig(history=HistoryConfig(messages=1200, days=10), start=early, clock_speed=0.0), threads=16
    )
    store = Store(tmp_path / "p.duckdb")
    client = client_of(live_simulator)
    start = datetime.fromtimestamp(early, TEHRAN)
    sync(client, store, progress=False, now=lambda: start)
    later = start + timedelta(hours=2.5)
    pages = store.sql("""SELECT DISTINCT batch_id, ("row" - 1) // 100 AS page, b.sent_at, b.last_checked
                         FROM deliveries JOIN batches b USING (batch_id) WHERE NOT final""")
    pages = pages[pages["sent_at"] > later - timedelta(days=7)]
    age, left = later - pages["sent_at"], pages["sent_at"] + timedelta(days=7) - later
    by_age = (age / 4).clip(upper=timedelta(hours=6)).where(age >= timedelta(hours=6), timedelta(0))
    due = pages["last_checked"] <= later - pd.concat([by_age, left / 2], axis=1).min(axis=1)
    assert 0 < due.sum() < len(pages)  # this world has batches on both sides of the rule
    assert (due & (pages["last_checked"] > later - by_age)).any()  # due only because their report expires soon
    before = truth(live_simulator, batches=0)["calls"]["GetBatchDelivery"]
    sync(client, store, progress=False, now=lambda: later.replace(tzinfo=None))  # a clock without offset: Tehran
    assert truth(live_simulator, batches=0)["calls"]["GetBatchDelivery"] - before == due.sum()


def test_after_the_clock_moves_only_pending_batches_are_read_and_events_recorded(live_simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    client = client_of(live_simulator)
    client.send_batch_sms("50001234", [f"0912{i:07d}" for i in range(100)], "fresh")
    sync(client, store, progress=False)
    fresh = store.sql("SELECT max(batch_id) FROM batches").iloc[0, 0]
    assert set(store.deliveries(int(fresh))["status"]) == {-5}
    pending = set(store.sql("SELECT batch_id FROM batches WHERE pending > 0")["batch_id"])
    events_before = store.sql("SELECT count(*) FROM delivery_events").iloc[0, 0]

    settled = store.sql(
        'SELECT batch_id, "row", status FROM deliveries WHERE batch_id NOT IN '
        "(SELECT batch_id FROM batches WHERE pending > 0) ORDER BY 1, 2"
    )

    admin_post(live_simulator, "clock", advance=6 * 3600)
    before = truth(live_simulator, batches=0)["calls"]["GetBatchDelivery"]
    sync(client, store, progress=False, now=lambda: datetime.now(TEHRAN) + timedelta(hours=6))  # the service's clock
    asked = truth(live_simulator, batches=0)["calls"]["GetBatchDelivery"] - before
    assert 0 < asked <= len(pending) + 1  # one page each (the fresh batch fits in one)
    now_true = truth(live_simulator)["batches"]
    for batch in pending:
        if "-3" in now_true[str(batch)]["statuses"]:
            continue  # crossed the week since: its last status stays frozen (see the next test)
        statuses = store.sql(f"SELECT status, count(*) FROM deliveries WHERE batch_id = {batch} GROUP BY 1").values
        assert {str(s): n for s, n in statuses.tolist()} == now_true[str(batch)]["statuses"]
    unchanged = store.sql(
        'SELECT batch_id, "row", status FROM deliveries WHERE batch_id IN '
        f"(SELECT unnest({sorted(set(settled['batch_id']))})) ORDER BY 1, 2"
    )
    assert unchanged.equals(settled)  # final statuses were not asked for again
    events = store.sql(f"SELECT status FROM delivery_events WHERE batch_id = {fresh} ORDER BY observed_at")
    assert store.sql("SELECT count(*) FROM delivery_events").iloc[0, 0] > events_before
    assert -5 in set(events["status"]) and set(events["status"]) - {-5, -4, 0, 5}  # -5 first, then a final one


def test_expired_reports_freeze_the_last_status(live_simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    client = client_of(live_simulator)
    client.send_batch_sms("50001234", [f"0935{i:07d}" for i in range(50)], "hello")
    admin_post(live_simulator, "clock", advance=86400)
    sync(client, store, progress=False)
    batch = int(store.sql("SELECT max(batch_id) FROM batches").iloc[0, 0])
    seen = store.deliveries(batch)[["row", "status"]].values.tolist()
    store.sql(f"UPDATE deliveries SET final = false WHERE batch_id = {batch}")  # ask again, as if still in flight
    admin_post(live_simulator, "clock", advance=7 * 86400)
    # by the local clock, six hours on, the batch is still young and due: it is asked again
    sync(client, store, progress=False, now=lambda: datetime.now(TEHRAN) + timedelta(hours=6))
    after = store.deliveries(batch)
    assert after[["row", "status"]].values.tolist() == seen  # -3 did not overwrite them
    assert after["expired"].all() and after["final"].all()
    assert set(client.batch_delivery_frame(batch)["status"]) == {-3}


def test_sync_survives_a_bad_network(make_simulator, tmp_path):
    simulator = make_simulator(
        live_world(messages=800),
        FaultConfig(fail_rate=0.1, drop_rate=0.03, fault_rate=0.02, slow_rate=0.02, slow_seconds=1.0, seed=9),
        threads=16,
    )
    store = Store(tmp_path / "p.duckdb")
    summary = sync(client_of(simulator, timeout=0.5), store, progress=False)  # one run, the client's defaults
    assert summary.retries > 0
    assert_store_equals_truth(store, simulator)
    assert store.sync_runs()["outcome"].tolist() == ["ok"]


def test_messages_sent_while_a_sync_walks_are_neither_lost_nor_doubled(make_simulator, tmp_path):
    """Each new send pushes every row one place down, so pages fetched a moment apart overlap."""
    quick = make_simulator(live_world(messages=12_000), threads=4)  # the sender's way in: no latency
    simulator = make_simulator(quick.world, FaultConfig(latency_ms=40, seed=1), threads=16)
    store, sending = Store(tmp_path / "p.duckdb"), threading.Event()
    sender = client_of(quick)

    def send_until_stopped() -> None:
        while not sending.is_set():
            sender.send_sms("10002188", ["09121234567"], "during the walk")

    thread = threading.Thread(target=send_until_stopped)
    thread.start()
    try:
        summary = sync(client_of(simulator), store, deliveries=False, progress=False)
    finally:
        sending.set()
        thread.join()
    assert summary.rows_new > 10_000
    sync(client_of(simulator), store, deliveries=False, progress=False)
    t = truth(simulator, batches=0)["messages"]
    counts = store.sql(
        "SELECT count(*) FILTER (message_type = 'Out'), count(*), count(DISTINCT message_id) FROM messages"
    )
    assert counts.iloc[0].tolist() == [t["sent"], t["sent"] + t["received"], t["sent"] + t["received"]]
    assert store.sql("SELECT count(*) FROM messages WHERE content = 'during the walk'").iloc[0, 0] > 0


def test_pages_that_fail_after_the_clients_retries_are_requeued_and_one_run_finishes(make_simulator, tmp_path):
    simulator = make_simulator(live_world(messages=800), FaultConfig(fail_rate=0.3, seed=2), threads=16)
    store = Store(tmp_path / "p.duckdb")
    summary = sync(client_of(simulator, read_attempts=1), store, progress=False)
    assert summary.requeued > 0
    assert_store_equals_truth(store, simulator)
    runs = store.sync_runs()
    assert runs["outcome"].tolist() == ["ok"] and runs["requeued"].tolist() == [summary.requeued]


def test_a_non_transient_answer_stops_at_once_with_one_readable_error(simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    with pytest.raises(SyncError, match="run the sync again") as caught:
        sync(PanelClient("demo", "wrong", wsdl=simulator.wsdl_url), store, progress=False)
    assert caught.value.__cause__ is not None and "wrong" not in str(caught.value).replace("is wrong", "")
    runs = store.sync_runs()
    assert runs["outcome"].tolist() == ["failed"]


def test_a_sync_killed_at_random_points_resumes_to_the_truth(make_simulator, tmp_path):
    simulator = make_simulator(live_world(messages=1500), threads=16)
    db = tmp_path / "p.duckdb"
    env = {**os.environ, "PAYAMAK_USERNAME": "demo", "PAYAMAK_PASSWORD": "demo", "PAYAMAK_WSDL": simulator.wsdl_url}
    rng = random.Random(4)
    for _ in range(3):
        process = subprocess.Popen(
            [sys.executable, "-m", "payamak_analytics.cli", "sync", "--db", str(db)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert kill_during(process, "delivery reports", rng, window=1.5)  # killed while reading reports
    store = Store(db)
    partial = store.sql("SELECT count(*) FROM deliveries").iloc[0, 0]
    # each start marks the runs a killed process left running; the last one is marked by the next
    assert store.sync_runs()["outcome"].tolist() == ["killed", "killed", "running"]
    sync(client_of(simulator), store, progress=False)
    assert store.sync_runs()["outcome"].tolist() == ["killed", "killed", "killed", "ok"]
    assert_store_equals_truth(store, simulator)
    assert 0 < partial < store.sql("SELECT count(*) FROM deliveries").iloc[0, 0]


def test_since_limits_the_first_sync(live_simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    since = datetime.now().astimezone() - timedelta(days=2)
    sync(client_of(live_simulator), store, progress=False, deliveries=False, since=since)
    oldest = store.sql("SELECT min(action_datetime) FROM messages").iloc[0, 0]
    assert oldest.to_pydatetime() >= since
    assert store.sql("SELECT count(*) FROM messages").iloc[0, 0] < truth(live_simulator, batches=0)["messages"]["sent"]


def test_a_locked_database_says_who_holds_it(tmp_path):
    db = tmp_path / "p.duckdb"
    Store(db)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ready', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError) as caught:
            Store(db, lock_wait=0.3).messages()
        assert f"PID {holder.pid}" in str(caught.value) and "try again" in str(caught.value)
    finally:
        holder.kill()
        holder.wait()
    assert Store(db, lock_wait=5).messages().empty  # released: readable again


def test_reads_and_export(live_simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    sync(client_of(live_simulator), store, progress=False)
    sent = store.messages("sent")
    assert (
        len(sent) == truth(live_simulator, batches=0)["messages"]["sent"] and sent["message_id"].is_monotonic_decreasing
    )
    assert str(sent["action_datetime"].dt.tz) == "Asia/Tehran"
    promo = store.messages("sent", lines=("50001234",))
    assert len(promo) and set(promo["sender"]) == {"50001234"}
    deliveries = store.deliveries()
    assert {"batch_id", "row", "number", "operator", "status", "final", "line", "sent_at"} <= set(deliveries.columns)
    assert store.sql("SELECT count(*) AS n FROM batches WHERE recipients > ?", [50])["n"][0] > 0
    assert store.schema_version == len(MIGRATIONS)
    paths = export_parquet(store, tmp_path / "parquet")
    assert (tmp_path / "parquet" / "messages").is_dir()
    months = list((tmp_path / "parquet" / "messages").glob("year=*/month=*/*.parquet"))
    assert months
    n = (
        duckdb.connect()
        .execute(f"SELECT count(*) FROM read_parquet('{tmp_path}/parquet/deliveries/*/*/*.parquet')")
        .fetchone()[0]
    )
    assert n == len(deliveries) and len(paths) == 6


def test_the_service_going_dark_for_30_seconds_mid_sync_does_not_end_it(make_simulator, tmp_path):
    simulator = make_simulator(live_world(messages=1500), threads=16)
    store = Store(tmp_path / "p.duckdb")
    darkness = threading.Timer(1.0, admin_post, (simulator, "dark"), {"seconds": 30})
    darkness.start()
    try:
        summary = sync(client_of(simulator), store, progress=False)
    finally:
        darkness.cancel()
    assert summary.pauses > 0 and summary.paused_seconds > 0
    assert_store_equals_truth(store, simulator)
    run = store.sync_runs().iloc[-1]
    assert run["outcome"] == "ok" and run["pauses"] == summary.pauses


def test_an_outage_longer_than_the_budget_ends_the_run_saying_so(make_simulator, tmp_path):
    simulator = make_simulator(live_world(messages=300), threads=8)
    store = Store(tmp_path / "p.duckdb")
    admin_post(simulator, "dark", seconds=60)
    with pytest.raises(SyncError) as caught:
        sync(client_of(simulator), store, progress=False, give_up_after=3)
    message = str(caught.value)
    assert "no successful answer for" in message and "outage budget is 3 s" in message
    assert "run the sync again" in message
    assert store.sync_runs()["outcome"].tolist() == ["failed"]


def test_a_batch_the_service_forgets_once_is_read_later_and_nothing_is_lost(live_simulator, tmp_path):
    batches = sorted(int(b) for b in truth(live_simulator)["batches"])
    for batch in batches[:3] + batches[-3:]:
        admin_post(live_simulator, "forget", batch_id=batch, times=1)
    store = Store(tmp_path / "p.duckdb")
    summary = sync(client_of(live_simulator), store, progress=False)
    assert summary.batches_unknown == 0 and summary.batches_unreadable == 0
    assert_store_equals_truth(store, live_simulator)


def panel_batch(make_simulator, recipients: int, messages: int = 300) -> tuple[Simulator, int]:
    """A simulator whose account sent one batch of `recipients` numbers (the client sends 100 at
    most, a panel's batch may hold more); the simulator and the batch's id."""
    world = WorldConfig(history=HistoryConfig(messages=messages, days=10), clock_speed=0.0, max_recipients=1000)
    simulator = make_simulator(world, threads=16)
    to = {"string": [f"0912{i:07d}" for i in range(recipients)]}
    return simulator, strict_zeep(simulator).service.SendBatchSms("demo", "demo", "50001234", to, "big", False)[
        "batchSmsId"
    ]


def test_a_batch_listed_with_fewer_recipients_than_stored_is_still_read_in_full(make_simulator, tmp_path):
    """The batches of the sent walk's last pages are planned from those pages; one the store
    already holds, not read in full, has its pages from what the store recorded, as the store's
    own plan would: a list that now shows a smaller Count must not leave its last report pages
    unread (and the batch closed as gone a day later)."""
    recipients = 250  # three report pages; the client sends 100 at most, the service more
    simulator, batch = panel_batch(make_simulator, recipients, messages=1200)
    shown = {"count": recipients}

    def smaller_count(operation: str, body: bytes) -> bytes:
        return listed_count(operation, body, batch, shown["count"])

    admin_post(simulator, "forget", batch_id=batch, times=9)  # three pages, three times: the first run cannot
    with HostileServer({"/svc": forwarding(simulator, smaller_count)}) as proxy:
        client = proxied(proxy)
        store = Store(tmp_path / "p.duckdb")
        sync(client, store, progress=False)
        stored = store.sql(f"SELECT recipients, complete FROM batches WHERE batch_id = {batch}").values.tolist()
        assert stored == [[recipients, False]]
        shown["count"] = 120  # two pages' worth
        sync(client, store, progress=False)
        sync(client, store, progress=False, now=lambda: datetime.now(TEHRAN) + timedelta(days=2))
    assert store.sql(f"SELECT complete, gone FROM batches WHERE batch_id = {batch}").values.tolist() == [[True, False]]
    assert store.sql(f"SELECT count(*) FROM deliveries WHERE batch_id = {batch}").iloc[0, 0] == recipients


@pytest.mark.timeout(120)
def test_a_batch_listed_with_two_billion_recipients_costs_only_the_pages_it_holds(make_simulator, tmp_path):
    """A service (or a proxy) whose list says 2,147,483,647 recipients for a batch of 250: each
    run asks for the pages that hold rows and the pages in flight when the first short one came
    back, not 21 million pages; the batch stays open (not read in full), with every real
    recipient stored."""
    recipients, workers = 250, 8
    simulator, batch = panel_batch(make_simulator, recipients)

    def huge_count(operation: str, body: bytes) -> bytes:
        return listed_count(operation, body, batch, 2147483647)

    with HostileServer({"/svc": forwarding(simulator, huge_count)}) as proxy:
        client = proxied(proxy)
        store = Store(tmp_path / "p.duckdb")
        for _ in range(2):
            summary = sync(client, store, workers=workers, progress=False)
            asked = {
                re.search(rb"index>(\d+)<", request.body).group(1)
                for request in proxy.requests
                if request.operation == "GetBatchDelivery" and re.search(rb"batchSmsId>%d<" % batch, request.body)
            }
            assert 3 <= len(asked) <= 3 + workers * IN_FLIGHT_PER_WORKER
            assert summary.batches_open >= 1 and "not read in full" in str(summary)
            proxy.requests.clear()
    stored = store.sql(f"SELECT count(*) FROM deliveries WHERE batch_id = {batch}").iloc[0, 0]
    assert stored == recipients
    assert store.sql(f"SELECT complete, gone FROM batches WHERE batch_id = {batch}").values.tolist() == [[False, False]]


def _huge_count_proxy(make_simulator, recipients: int) -> tuple[Simulator, int, Callable]:
    """A batch of `recipients` that the list (through the proxy returned) says has 2,147,483,647."""
    simulator, batch = panel_batch(make_simulator, recipients)
    return simulator, batch, forwarding(simulator, lambda op, body: listed_count(op, body, batch, 2147483647))


@pytest.mark.timeout(120)
def test_a_batch_cut_short_is_closed_as_gone_after_the_grace_period_like_any_short_batch(make_simulator, tmp_path):
    """A batch whose reading a short page ended, with pages never asked, is short all the same:
    its grace period starts, and a day later it is closed as gone, not read at every run forever."""
    _, batch, proxy_behaviour = _huge_count_proxy(make_simulator, 250)
    with HostileServer({"/svc": proxy_behaviour}) as proxy:
        client = proxied(proxy)
        store = Store(tmp_path / "p.duckdb")
        sync(client, store, progress=False)
        assert store.sql(f"SELECT unknown_since IS NOT NULL FROM batches WHERE batch_id = {batch}").iloc[0, 0]
        later = sync(client, store, progress=False, now=lambda: datetime.now(TEHRAN) + timedelta(days=2))
    assert later.batches_unreadable == 1
    assert store.sql(f"SELECT complete, gone FROM batches WHERE batch_id = {batch}").values.tolist() == [[True, True]]
    assert store.sql(f"SELECT count(*) FROM deliveries WHERE batch_id = {batch}").iloc[0, 0] == 250


@pytest.mark.timeout(120)
def test_a_batch_cut_short_and_not_found_once_is_counted_once(make_simulator, tmp_path):
    """A batch asked again after a -2 is counted by how its last reading of the run went: once,
    not once a reading."""
    simulator, batch, proxy_behaviour = _huge_count_proxy(make_simulator, 250)
    admin_post(simulator, "forget", batch_id=batch, times=1)
    with HostileServer({"/svc": proxy_behaviour}) as proxy:
        client = proxied(proxy)
        store = Store(tmp_path / "p.duckdb")
        summary = sync(client, store, progress=False)
    assert (summary.batches_open, summary.batches_unknown) == (1, 0)
    assert store.sql(f"SELECT count(*) FROM deliveries WHERE batch_id = {batch}").iloc[0, 0] == 250


@pytest.mark.timeout(120)
def test_a_service_that_ignores_the_report_index_stops_the_sync_before_a_row_is_doubled(make_simulator, tmp_path):
    """Every report page answering the batch's first hundred: stored, each page would add the
    same numbers at new rows (a batch of 250 closed with 100 recipients three times over, and
    one listed with two billion read page after page for hours). A page repeating another of
    its batch ends the sync with a typed error, as a messages page that repeats does."""
    simulator, batch = panel_batch(make_simulator, 250)
    with HostileServer({"/svc": first_page_always(simulator)}) as proxy:
        client = proxied(proxy)
        store = Store(tmp_path / "p.duckdb")
        with pytest.raises(SyncError, match="repeats") as caught:
            sync(client, store, progress=False)
    assert isinstance(caught.value.__cause__, AnswerError) and not caught.value.__cause__.retryable
    rows = store.sql(f"SELECT count(*), count(DISTINCT number) FROM deliveries WHERE batch_id = {batch}")
    assert rows.iloc[0, 0] == rows.iloc[0, 1]  # no number stored twice
    assert not store.sql(f"SELECT complete FROM batches WHERE batch_id = {batch}").iloc[0, 0]
    assert store.sync_runs()["outcome"].tolist() == ["failed"]


def probe_not_found(simulator) -> Callable:
    """A proxy in front of the simulator that answers "no such batch" (-2) to a report asked at a
    row no report reaches, as a service may for an index past the end; other calls pass on."""

    def behaviour(request: Request, connection) -> None:
        body = request.body
        if request.operation == "GetBatchDelivery" and b">%d<" % PROBE_INDEX in body:
            body = re.sub(rb"(<[\w:]*batchSmsId>)\d+(</)", rb"\g<1>999999999\g<2>", body)
        headers = {"Content-Type": request.headers["content-type"], "SOAPAction": request.headers["soapaction"]}
        answer = requests.post(simulator.url, data=body, headers=headers, timeout=30)
        connection.sendall(http(f"{answer.status_code} {answer.reason}", answer.content))

    return behaviour


@pytest.mark.parametrize("probe", ["empty", "no such batch"])
def test_a_batch_sent_to_the_same_numbers_twice_is_read_in_full_and_the_sync_goes_on(make_simulator, tmp_path, probe):
    """A batch whose list holds the same 100 numbers twice (the service does not drop repeats):
    its page at row 101 holds the numbers of its page at row 1, as a service that ignores the index
    would answer; it is read all the same, and the sync ends, with every other report, not stopped
    at this batch at every run. A service answering the probe past the end "no such batch" heeds
    the index too: taken for one that ignores it, it stopped every sync at this batch."""
    world = WorldConfig(history=HistoryConfig(messages=300, days=10), clock_speed=0.0, max_recipients=1000)
    simulator = make_simulator(world, threads=16)
    to = {"string": [f"0912{i:07d}" for i in range(100)] * 2}
    batch = strict_zeep(simulator).service.SendBatchSms("demo", "demo", "50001234", to, "twice", False)["batchSmsId"]
    store = Store(tmp_path / "p.duckdb")
    if probe == "empty":
        sync(client_of(simulator), store, progress=False)
    else:
        with HostileServer({"/svc": probe_not_found(simulator)}) as proxy:
            client = proxied(proxy)
            sync(client, store, progress=False)
    assert store.sync_runs()["outcome"].tolist() == ["ok"]
    rows = store.sql(f"SELECT count(*), count(DISTINCT number) FROM deliveries WHERE batch_id = {batch}")
    assert rows.iloc[0].tolist() == [200, 100]
    assert_store_equals_truth(store, simulator)


def test_a_final_status_is_not_taken_back_by_a_later_answer_in_flight(make_simulator, tmp_path):
    """A service that answers "sent to the telecom" for recipients it reported delivered: a final
    status does not change (codes), so the delivered one is kept, and no event says it went back.
    Taken, the report would be lost for good once it expires (-3 freezes the status in flight)."""
    simulator = make_simulator(live_world(), threads=16)
    backwards = {"on": False}
    start = datetime.now(TEHRAN)
    with HostileServer({"/svc": forwarding(simulator, delivered_taken_back(backwards))}) as proxy:
        client = proxied(proxy)
        store = Store(tmp_path / "p.duckdb")
        sync(client, store, progress=False, now=lambda: start)
        delivered = store.sql('SELECT batch_id, "row" FROM deliveries WHERE status = 1')
        backwards["on"] = True
        summary = sync(client, store, progress=False, now=lambda: start + timedelta(hours=6))
    assert summary.rows_updated > 0  # pages holding delivered recipients were read again
    kept = delivered.merge(store.sql('SELECT batch_id, "row", status, final FROM deliveries'), on=["batch_id", "row"])
    assert len(kept) == len(delivered) > 0 and (kept["status"] == 1).all() and kept["final"].all()
    assert (
        store.sql("SELECT count(*) FROM delivery_events WHERE status = 0 AND observed_at > ?", [start]).iloc[0, 0] == 0
    )


def test_a_stale_report_page_from_a_caching_proxy_is_refused_not_stored_over_the_batchs_rows(make_simulator, tmp_path):
    """A proxy that answers every report call with the first report body it cached: the pages
    read again name other recipients than those stored for their rows. They are not the batch's
    answer: nothing of them is taken (numbers and statuses stay as stored), the batches stay
    open, the run ends failed naming them, and the next sync through an honest path reads them."""
    simulator = make_simulator(live_world(), threads=16)
    cached: dict[str, bytes] = {}

    def stale(operation: str, body: bytes) -> bytes:
        if operation == "GetBatchDelivery" and "on" in cached:
            return cached.setdefault("body", body)
        return body

    start = datetime.now(TEHRAN)
    with HostileServer({"/svc": forwarding(simulator, stale)}) as proxy:
        client = proxied(proxy)
        store = Store(tmp_path / "p.duckdb")
        sync(client, store, progress=False, now=lambda: start)
        before = store.sql('SELECT batch_id, "row", number, status FROM deliveries ORDER BY 1, 2')
        cached["on"] = b""
        with pytest.raises(SyncError, match="other recipients than those stored"):
            sync(client, store, progress=False, now=lambda: start + timedelta(hours=6))
        after = store.sql('SELECT batch_id, "row", number, status FROM deliveries ORDER BY 1, 2')
        assert (after["number"] == before["number"]).all()  # no recipient written over
        changed = after[after["status"] != before["status"]]
        assert changed["batch_id"].nunique() <= 1  # only the batch whose own page the proxy cached
        del cached["on"], cached["body"]
        sync(client, store, progress=False, now=lambda: start + timedelta(hours=6))
    assert store.sync_runs()["outcome"].tolist() == ["ok", "failed", "ok"]
    assert_store_equals_truth(store, simulator)


def test_a_messages_page_the_service_skips_every_time_loses_no_message(make_simulator, tmp_path):
    """GetMessages at row 1000 answers what row 1999 holds, every time: the page starts below
    the row the page before ended on, and the walk reads from further up until one reaches it."""
    simulator = make_simulator(live_world(messages=6000))

    def skipping(operation: str, index: int) -> int:
        return 1999 if operation == "GetMessages" and index == 1000 else index

    with HostileServer({"/svc": index_rewritten(simulator, skipping)}) as proxy:
        client = proxied(proxy)
        store = Store(tmp_path / "p.duckdb")
        sync(client, store, progress=False, deliveries=False)
    t = truth(simulator, batches=0)["messages"]
    assert store.sql("SELECT count(*) FROM messages").iloc[0, 0] == t["sent"] + t["received"]
    assert store.sync_runs()["outcome"].tolist() == ["ok"]


def test_a_batch_listed_with_fewer_recipients_than_its_report_holds_is_read_to_the_end(make_simulator, tmp_path):
    """A list whose Count says 120 for a batch of 250: its last planned page (row 101) comes back
    full where 20 rows were due, so the report goes on; the pages after it are asked until one
    comes back short, and no recipient is left unread in a batch closed as read in full."""
    recipients = 250
    simulator, batch = panel_batch(make_simulator, recipients)

    def smaller_count(operation: str, body: bytes) -> bytes:
        return listed_count(operation, body, batch, 120)

    with HostileServer({"/svc": forwarding(simulator, smaller_count)}) as proxy:
        client = proxied(proxy)
        store = Store(tmp_path / "p.duckdb")
        sync(client, store, progress=False)
    stored = store.sql(f"SELECT count(*), count(DISTINCT number) FROM deliveries WHERE batch_id = {batch}")
    assert stored.iloc[0].tolist() == [recipients, recipients]
    assert store.sql(f"SELECT complete FROM batches WHERE batch_id = {batch}").iloc[0, 0]


@pytest.mark.timeout(120)
def test_a_report_without_end_is_read_at_most_a_bounded_way_past_its_list(make_simulator, tmp_path):
    """A service whose report of a batch listed with 120 recipients goes on with full pages of new
    numbers at every index: each run reads PAST_LIST_PAGES pages past the list at most, and the
    batch stays open (it is never closed as read in full with made-up recipients)."""
    simulator, batch = panel_batch(make_simulator, 200)
    with HostileServer({"/svc": endless_report(simulator, batch)}) as proxy:
        client = proxied(proxy)
        store = Store(tmp_path / "p.duckdb")
        summary = sync(client, store, progress=False)
    assert 3 < len(report_pages_asked(proxy, batch)) <= 2 + PAST_LIST_PAGES + 1
    assert summary.batches_open >= 1
    assert not store.sql(f"SELECT complete FROM batches WHERE batch_id = {batch}").iloc[0, 0]


def test_a_batch_unknown_for_longer_than_the_grace_period_is_closed_as_gone_and_counted(live_simulator, tmp_path):
    batch = max(int(b) for b in truth(live_simulator)["batches"])
    recipients = truth(live_simulator)["batches"][str(batch)]["count"]
    admin_post(live_simulator, "forget", batch_id=batch, times=1000)
    store = Store(tmp_path / "p.duckdb")
    first = sync(client_of(live_simulator), store, progress=False)
    assert first.batches_unknown == 1 and "not found by the service" in str(first)
    assert not store.sql(f"SELECT complete FROM batches WHERE batch_id = {batch}").iloc[0, 0]  # asked again later
    later = datetime.now(TEHRAN) + timedelta(days=2)
    second = sync(client_of(live_simulator), store, progress=False, now=lambda: later)
    assert (second.batches_unreadable, second.recipients_unreadable) == (1, recipients)
    assert "unreadable" in str(second)
    runs = store.sync_runs()
    assert runs["batches_unreadable"].tolist()[-1] == 1


def test_a_notebook_reading_in_another_process_during_a_sync_never_fails(make_simulator, tmp_path):
    simulator = make_simulator(live_world(messages=1200), FaultConfig(latency_ms=5, seed=3), threads=16)
    db, stop = tmp_path / "p.duckdb", tmp_path / "stop"
    Store(db)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import json, os, time
from payamak_analytics.store import Store
store = Store({str(db)!r}, create=False)
while not os.path.exists({str(stop)!r}):
    started = time.monotonic()
    try:
        n = int(store.sql("SELECT count(*) AS n FROM deliveries")["n"][0])
        print(json.dumps({{"ok": True, "n": n, "wait": time.monotonic() - started}}), flush=True)
    except Exception as error:
        print(json.dumps({{"ok": False, "error": repr(error)}}), flush=True)
    time.sleep(0.1)
""",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    first = reader.stdout.readline()  # the reader is up (its imports take a second or more): the sync starts
    try:
        sync(client_of(simulator), store := Store(db), progress=False)
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=60)
    reads = [json.loads(line) for line in [first, *out.splitlines()]]
    assert len(reads) >= 10 and all(r["ok"] for r in reads), [r for r in reads if not r["ok"]][:3]
    assert len({r["n"] for r in reads}) > 2  # it read while the rows were arriving
    assert_store_equals_truth(store, simulator)


def test_a_program_holding_the_file_mid_sync_ends_it_after_one_wait_not_two(make_simulator, tmp_path, monkeypatch):
    """Another process keeps the file (a reader's query that runs for long, or a plain DuckDB
    connection left open) past the held writer's wait: the sync ends with StoreLockedError after
    that one wait. Recording the run waited as long again, and its error replaced the first; the
    record is now written by the next run of the process."""
    from payamak_analytics.store import core

    monkeypatch.setattr(core, "WRITER_WAIT", 3.0)
    simulator = make_simulator(live_world(messages=1200), FaultConfig(latency_ms=100, seed=3), threads=16)
    db = tmp_path / "p.duckdb"
    Store(db)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import time
from payamak_analytics.store import Store
store = Store({str(db)!r}, create=False, lock_wait=60)
print("ready", flush=True)
while not store.sql("SELECT count(*) AS n FROM messages")["n"][0]:
    time.sleep(0.05)
with store.connect() as con:
    print(time.time(), flush=True)
    time.sleep(10)
""",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError):
            sync(client_of(simulator), Store(db, lock_wait=1), progress=False, workers=2)
        ended = time.time()
        held_from = float(holder.stdout.readline())
    finally:
        holder.kill()
        holder.wait()
    assert ended - held_from < 2 * core.WRITER_WAIT  # one wait (3 s), not two
    store = Store(db)
    sync(client_of(simulator), store, progress=False)  # it resumes, and first writes how the run before ended
    runs = store.sync_runs()
    assert runs["outcome"].tolist() == ["failed", "ok"] and runs["error"][0].startswith("StoreLockedError")
    assert_store_equals_truth(store, simulator)


def test_another_account_or_address_is_refused_and_a_moved_service_is_accepted_on_purpose(make_simulator, tmp_path):
    first = make_simulator(live_world(messages=200), threads=8)
    store = Store(tmp_path / "p.duckdb")
    sync(client_of(first), store, progress=False)
    rows = store.sql("SELECT count(*) FROM messages").iloc[0, 0]
    with pytest.raises(StoreError, match="account 'demo', not 'nocredit'"):
        sync(PanelClient("nocredit", "nocredit-pw", wsdl=first.wsdl_url), store, progress=False)
    restarted = make_simulator(first.world, threads=8)  # this machine, another port: the same service
    sync(client_of(restarted), store, progress=False)
    port = first.url.split("/")[2].split(":")[1]
    moved = client_of(first, endpoint=f"http://localhost:{port}/SendService.svc")  # another address
    with pytest.raises(StoreError, match="--new-address") as caught:
        sync(moved, store, progress=False)
    assert "127.0.0.1" in str(caught.value) and "nocredit" not in str(caught.value)
    assert store.sql("SELECT count(*) FROM messages").iloc[0, 0] == rows
    assert store.account() == {"account": "demo", "address": "http://127.0.0.1/SendService.svc"}
    sync(moved, store, progress=False, new_address=True)
    assert store.account()["address"] == "http://localhost/SendService.svc"


def test_two_accounts_syncing_a_new_store_at_once_one_is_refused_as_another_account(
    make_simulator, tmp_path, monkeypatch
):
    """Both find the store nobody's; the first page stored gives it to one, and the other is
    refused then. It was a SyncError blaming the service ("waiting will not change") and saying
    to run the sync again, which is refused again: the same StoreError as when one comes later."""
    simulator = make_simulator(live_world(messages=200), FaultConfig(latency_ms=20, seed=1), threads=8)
    Store(tmp_path / "p.duckdb")
    both_checked = threading.Barrier(2, timeout=30)
    check = Store.check_account
    monkeypatch.setattr(Store, "check_account", lambda *a, **k: (check(*a, **k), both_checked.wait()))
    ended = {}

    def one(client: PanelClient) -> None:
        try:
            sync(client, Store(tmp_path / "p.duckdb"), progress=False)
            ended[client.username] = "ok"
        except Exception as error:  # noqa: BLE001 (told below)
            ended[client.username] = error

    clients = [client_of(simulator), PanelClient("nocredit", "nocredit-pw", wsdl=simulator.wsdl_url)]
    threads = [threading.Thread(target=one, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    owner = Store(tmp_path / "p.duckdb").account()["account"]
    other = "nocredit" if owner == "demo" else "demo"
    assert ended[owner] == "ok"
    assert type(ended[other]) is StoreError, ended[other]
    assert f"account {owner!r}, not {other!r}" in str(ended[other]) and "own store" in str(ended[other])


def test_a_first_sync_the_service_refuses_leaves_the_store_to_no_account(make_simulator, tmp_path):
    """A mistyped user name or address on a store's first sync is refused by the service: the
    store stays nobody's, and the sync with the right ones is not refused as another account."""
    simulator = make_simulator(live_world(messages=200), threads=8)
    store = Store(tmp_path / "p.duckdb")
    with pytest.raises(SyncError, match="user name or password"):
        sync(PanelClient("dmeo", "demo", wsdl=simulator.wsdl_url), store, progress=False)
    with HostileServer({}) as nowhere, pytest.raises(SyncError, match="404"):  # no service at that path
        sync(client_of(simulator, endpoint=nowhere.url("Send.svc")), store, progress=False, give_up_after=2)
    assert store.account() == {} and store.sync_runs()["outcome"].tolist() == ["failed", "failed"]
    sync(client_of(simulator), store, progress=False)
    assert store.account() == {"account": "demo", "address": "http://127.0.0.1/SendService.svc"}
    assert_store_equals_truth(store, simulator)


def _date_forms(now: datetime) -> list:
    two_days = now - timedelta(days=2)
    jalali = jdatetime.date.fromgregorian(date=two_days.date())
    return [
        "2d",
        "48h",
        "yesterday",
        two_days.strftime("%Y-%m-%d"),
        f"{jalali.year:04d}-{jalali.month:02d}-{jalali.day:02d}",
        two_days.replace(tzinfo=None).isoformat(timespec="minutes"),
        two_days.astimezone(TEHRAN).isoformat(),
        two_days.replace(tzinfo=None),
        two_days.astimezone(TEHRAN),
    ]


@pytest.mark.parametrize("form", range(9))
def test_each_date_form_works_on_a_fresh_store(live_simulator, tmp_path, form):
    since = _date_forms(datetime.now(TEHRAN))[form]
    store = Store(tmp_path / "p.duckdb")
    sync(client_of(live_simulator), store, progress=False, deliveries=False, since=since)
    oldest = store.sql("SELECT min(action_datetime) FROM messages").iloc[0, 0].to_pydatetime()
    assert datetime.now(TEHRAN) - timedelta(days=3) < oldest
    assert store.sql("SELECT count(*) FROM messages").iloc[0, 0] < truth(live_simulator, batches=0)["messages"]["sent"]


@pytest.mark.parametrize(
    "since",
    ["the day before", "99999999d", "1" * 30 + "d", "1" * 5000 + "d", pd.NaT],  # spans past the calendar; no time
    ids=["words", "too far back", "too long a number", "too many digits", "NaT"],
)
def test_a_bad_date_is_refused_listing_the_forms_and_nothing_is_written(live_simulator, tmp_path, since):
    store = Store(tmp_path / "p.duckdb")
    with pytest.raises(InputError, match="Jalali"):
        sync(client_of(live_simulator), store, progress=False, since=since)
    assert store.sync_runs().empty and store.account() == {}


@pytest.mark.parametrize(
    "options",
    [
        {"workers": 0},
        {"workers": 10_000},
        {"workers": True},
        {"give_up_after": 0},
        {"rate": "2"},  # a TypeError once the store was bound to the account
        {"rate": float("nan")},  # these were no cap at all
        {"rate": -1},
        {"rate": True},
        {"lines": "10002188,abc"},
    ],
)
def test_bad_sync_options_are_refused_before_anything_is_asked_or_written(live_simulator, tmp_path, options):
    """Ten thousand workers would be ten thousand threads and 80,000 pages in flight at a service."""
    store = Store(tmp_path / "p.duckdb")
    client = client_of(live_simulator)
    with pytest.raises(InputError, match="workers|give_up_after|rate|sender line"):
        sync(client, store, progress=False, **options)
    assert sum(client.calls.values()) == 0
    assert store.sync_runs().empty and store.account() == {}


def test_lines_given_as_a_text_are_the_lines_it_names(live_simulator, tmp_path):
    """As the client takes them: a text of lines is not a sequence of one-digit lines (a sync
    ended, blaming the service, that '1' is not a sender line)."""
    listed, written = Store(tmp_path / "l.duckdb"), Store(tmp_path / "t.duckdb")
    sync(client_of(live_simulator), listed, progress=False, deliveries=False, lines=["10002188"])
    sync(client_of(live_simulator), written, progress=False, deliveries=False, lines="10002188")
    query = "SELECT message_id FROM messages ORDER BY 1"
    assert written.sql(query).equals(listed.sql(query)) and len(written.sql(query))
    assert written.sql("SELECT DISTINCT sender FROM messages WHERE message_type = 'Out'").sender.tolist() == [
        "10002188"
    ]


def _syncing_command(simulator, db) -> tuple[subprocess.Popen, bytes]:
    """`payamak sync` in a process of its own, once it reads delivery reports; what it printed so far."""
    env = {**os.environ, "PAYAMAK_USERNAME": "demo", "PAYAMAK_PASSWORD": "demo", "PAYAMAK_WSDL": simulator.wsdl_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "payamak_analytics.cli", "sync", "--db", str(db)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen = b""
    while b"delivery reports" not in seen and process.poll() is None:
        seen += process.stderr.read1(4096)
    return process, seen


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_ends_a_sync_with_one_line_and_the_next_run_resumes(make_simulator, tmp_path, stop_signal):
    simulator = make_simulator(live_world(messages=1500), FaultConfig(latency_ms=10, seed=5), threads=16)
    db = tmp_path / "p.duckdb"
    process, seen = _syncing_command(simulator, db)
    time.sleep(0.5)
    process.send_signal(stop_signal)
    _, rest = process.communicate(timeout=60)
    lines = [line for line in (seen + rest).decode().replace("\r", "\n").splitlines() if line.strip()]
    assert process.returncode == 130
    assert "Traceback" not in (seen + rest).decode()
    assert lines[-1].startswith("interrupted; ") and lines[-1].endswith("pages kept; run the sync again to resume")
    store = Store(db)
    assert store.sync_runs()["outcome"].tolist() == ["interrupted"]
    sync(client_of(simulator), store, progress=False)
    assert_store_equals_truth(store, simulator)


def test_ctrl_c_ends_a_sync_at_once_while_calls_hang_and_the_run_is_recorded_interrupted(make_simulator, tmp_path):
    """The answers of the calls in flight are not wanted once a stop is asked: a sync waited for
    them (up to a call's budget), and a second Ctrl-C meanwhile left its run recorded as running."""
    simulator = make_simulator(
        live_world(messages=300), FaultConfig(slow_rate=1.0, slow_seconds=20, operations=("GetBatchDelivery",))
    )
    client, store = client_of(simulator), Store(tmp_path / "p.duckdb")
    asked = []

    def ctrl_c_once_reports_hang():
        while not client.calls["GetBatchDelivery"]:
            time.sleep(0.05)
        time.sleep(0.5)
        asked.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c_once_reports_hang, daemon=True).start()
    with pytest.raises(KeyboardInterrupt, match="pages kept; run the sync again to resume"):
        sync(client, store, progress=False)
    assert time.monotonic() - asked[0] < 3.0
    assert store.sync_runs()["outcome"].tolist() == ["interrupted"]


def test_the_command_ends_at_once_on_ctrl_c_while_calls_hang(make_simulator, tmp_path):
    """`payamak sync` stopped while every report call hangs: one line, the run recorded as
    interrupted, and the process gone at once, not when the calls in flight time out (a minute);
    a second Ctrl-C a moment later finds nothing to interrupt."""
    simulator = make_simulator(
        live_world(messages=300), FaultConfig(slow_rate=1.0, slow_seconds=30, operations=("GetBatchDelivery",))
    )
    db = tmp_path / "p.duckdb"
    process, seen = _syncing_command(simulator, db)
    time.sleep(1.0)  # the report calls are in flight
    process.send_signal(signal.SIGINT)
    asked = time.monotonic()
    time.sleep(1.0)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    took = time.monotonic() - asked
    shown = (seen + rest).decode()
    assert process.returncode == 130 and took < 10, (took, shown[-2000:])
    assert "Traceback" not in shown and "Exception ignored" not in shown
    assert shown.replace("\r", "\n").strip().splitlines()[-1].startswith("interrupted; ")
    assert Store(db).sync_runs()["outcome"].tolist() == ["interrupted"]


def test_ctrl_c_while_the_command_waits_for_a_store_another_program_holds_is_one_line(tmp_path):
    """A notebook's own duckdb.connect holds the store: `payamak sync` waits for it, and a Ctrl-C
    meanwhile ended the command with no word at all."""
    db = tmp_path / "p.duckdb"
    Store(db)
    hold = f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ready', flush=True); time.sleep(30)"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    env = {
        **os.environ,
        "PAYAMAK_USERNAME": "demo",
        "PAYAMAK_PASSWORD": "demo",
        "PAYAMAK_WSDL": "bundled",
        "PAYAMAK_ENDPOINT": "http://127.0.0.1:9/SendService.svc",
    }
    try:
        assert holder.stdout.readline().strip() == "ready"
        command = subprocess.Popen(
            [sys.executable, "-m", "payamak_analytics.cli", "sync", "--db", str(db)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        _until_someone_waits_for(db)  # the command waits for the file (up to 10 s)
        command.send_signal(signal.SIGINT)
        _, shown = command.communicate(timeout=60)
    finally:
        holder.kill()
        holder.wait()
    assert command.returncode == 130, shown
    assert shown.strip().splitlines() == ["interrupted; run the sync again to resume"], shown


def _until_someone_waits_for(db: Path, within: float = 60.0) -> None:
    """Return once a process waits for the store: a waiting reader holds a shared lock on its
    `.wait` file (store/core.py), so an exclusive one cannot be had."""
    deadline = time.monotonic() + within
    with open(f"{db}.wait", "a") as gate:
        while time.monotonic() < deadline:
            try:
                fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(gate, fcntl.LOCK_UN)
            except BlockingIOError:
                return
            time.sleep(0.02)
    raise AssertionError(f"no process waited for {db} within {within:g} s")


def test_the_command_line_sets_a_lean_heap_on_glibc(make_simulator, tmp_path, monkeypatch):
    """`payamak sync` caps glibc's arenas before it starts (see allocator.py); where the C library
    is glibc the setting must take, or the sync's memory figures no longer hold."""
    from payamak_analytics import allocator, cli

    if platform.libc_ver()[0] != "glibc":
        pytest.skip(f"the C library here is {platform.libc_ver()[0] or 'not glibc'}: mallopt is glibc's")
    probe = "from payamak_analytics.allocator import lean_heap; print(lean_heap())"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
    asked = []
    monkeypatch.setattr(allocator, "lean_heap", lambda: asked.append("lean") or True)
    monkeypatch.setenv("PAYAMAK_USERNAME", "demo")
    monkeypatch.setenv("PAYAMAK_PASSWORD", "demo")
    simulator = make_simulator(live_world(messages=200))
    assert cli.main(["--wsdl", simulator.wsdl_url, "sync", "--db", str(tmp_path / "s.duckdb"), "--workers", "2"]) == 0
    assert len(asked) == 1


def test_a_report_read_again_with_its_numbers_written_another_way_is_taken(make_simulator, tmp_path):
    """A service that writes a report's numbers as +98912... where an earlier, honest read wrote
    0912... (a panel updated, another of its servers): the same recipients at the same rows, so
    the page is the batch's answer and taken; refused as naming other recipients, every batch
    read again stayed unread until its report expired, and every run ended failed."""
    simulator = make_simulator(live_world(), threads=16)
    written = {"on": False}

    def international(operation: str, body: bytes) -> bytes:
        if operation == "GetBatchDelivery" and written["on"]:
            return re.sub(rb">0(9\d{9})<", rb">+98\1<", body)
        return body

    start = datetime.now(TEHRAN)
    with HostileServer({"/svc": forwarding(simulator, international)}) as proxy:
        client = proxied(proxy)
        store = Store(tmp_path / "p.duckdb")
        sync(client, store, progress=False, now=lambda: start)
        written["on"] = True
        summary = sync(client, store, progress=False, now=lambda: start + timedelta(hours=6))
    assert summary.rows_updated > 0
    assert store.sync_runs()["outcome"].tolist() == ["ok", "ok"]
    assert_store_equals_truth(store, simulator)


def test_a_run_whose_record_meets_a_held_file_is_recorded_by_the_next_run(make_simulator, tmp_path, monkeypatch):
    """Another program takes the file just as a run ends, and keeps it past the wait of the run's
    record: the run ends with StoreLockedError, and the next run of the process writes how it
    ended. The record was dropped: the run stayed `running` while the process lived (a notebook, a
    watch that syncs every cycle), and was called killed once it ended."""
    from payamak_analytics.errors import StoreLockedError as Locked
    from payamak_analytics.store import sync_tables

    simulator = make_simulator(live_world(messages=200), threads=8)
    store = Store(tmp_path / "p.duckdb")
    write_run = sync_tables._write_run

    def held(*args) -> None:
        raise Locked("held by another process", "در دست فرایند دیگری است")

    monkeypatch.setattr(sync_tables, "_write_run", held)
    with pytest.raises(Locked):
        sync(client_of(simulator), store, progress=False)
    monkeypatch.setattr(sync_tables, "_write_run", write_run)
    sync(client_of(simulator), store, progress=False)
    assert store.sync_runs()["outcome"].tolist() == ["ok", "ok"]
