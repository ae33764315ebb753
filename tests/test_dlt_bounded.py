"""Bounded loads (`rows_per_load`) that must still end, and end caught up: young reports in
flight larger than a load, a source narrowed to one account, messages sent while a round was
left midway, and an account done while another still loads."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

dlt = pytest.importorskip("dlt", reason="the dlt extra is not installed: pip install 'payamak_analytics[dlt]'")

from payamak_analytics import dlt_source
from payamak_analytics.dates import TEHRAN
from payamak_analytics.warehouse.loading import finish_and_run

from .conftest import truth
from .test_dlt import accounts_toml, assert_equals_truth, client_of, duckdb_pipeline, live_world, rows


def at_most(pipeline, loads: int):
    """The pipeline, failing the test once `run` is called more than `loads` times (a round that never ends)."""
    real, count = pipeline.run, itertools.count(1)

    def run(*args, **kwargs):
        assert next(count) <= loads, f"{loads} loads and the round still wants more"
        return real(*args, **kwargs)

    pipeline.run = run
    return pipeline


def ticking(start: datetime, step=timedelta(seconds=1)):
    """A clock that moves a little at every reading, as the real one does."""
    clock = [start]

    def now():
        clock[0] += step
        return clock[0]

    return now


def test_young_reports_in_flight_larger_than_a_load_still_end_the_round(make_simulator, tmp_path):
    """Young batches with recipients in flight are due at every load; a round of loads smaller
    than them reads each once and goes on to the new batches, instead of reading them forever."""
    simulator = make_simulator(live_world(messages=2500), threads=16)
    client = client_of(simulator)
    pipeline = duckdb_pipeline(tmp_path)
    start = datetime.now(TEHRAN)
    pipeline.run(dlt_source(client, now=ticking(start)))  # a pipeline loaded before without a bound
    assert rows(pipeline, "SELECT count(*) FROM {deliveries} WHERE NOT final")[0][0] > 50
    for _ in range(5):
        client.send_batch_sms("50001234", [f"0912{i:07d}" for i in range(100)], "new")
    at_most(pipeline, 30)
    finish_and_run(pipeline, dlt_source(client, rows_per_load=50, workers=1, now=ticking(start + timedelta(minutes=1))))
    assert_equals_truth(pipeline, simulator)


def two_accounts(tmp_path, monkeypatch, north, south) -> object:
    config = accounts_toml(tmp_path, {"north": ("demo", north.wsdl_url), "south": ("demo", south.wsdl_url)})
    monkeypatch.setenv("PAYAMAK_PASSWORD_NORTH", "demo")
    monkeypatch.setenv("PAYAMAK_PASSWORD_SOUTH", "demo")
    return config


def test_a_source_narrowed_to_one_account_ends_though_another_was_left_midway(make_simulator, tmp_path, monkeypatch):
    north, south = make_simulator(live_world(messages=2500, seed=3)), make_simulator(live_world(messages=2500, seed=4))
    config = two_accounts(tmp_path, monkeypatch, north, south)
    pipeline = duckdb_pipeline(tmp_path)
    pipeline.run(dlt_source(accounts=config, rows_per_load=100, deliveries=False))  # one load: both left midway
    at_most(pipeline, 15)
    finish_and_run(
        pipeline, dlt_source(accounts=config, rows_per_load=100, deliveries=False).with_resources("account_north")
    )
    assert rows(pipeline, "SELECT count(*) FROM {sync_runs} WHERE account = 'north'")[0][0] >= 2


def test_messages_sent_while_a_round_was_left_midway_are_loaded_when_it_ends(make_simulator, tmp_path):
    simulator = make_simulator(live_world(messages=2500), threads=16)
    client = client_of(simulator)
    pipeline = duckdb_pipeline(tmp_path)
    pipeline.run(dlt_source(client, rows_per_load=100, deliveries=False))  # the first load of a round, then stopped
    for k in range(5):
        client.send_sms("50001234", ["09121234567"], f"late {k}")
    finish_and_run(pipeline, dlt_source(client, rows_per_load=100, deliveries=False))
    told = truth(simulator, batches=0)["messages"]
    assert dict(rows(pipeline, "SELECT message_type, count(*) FROM {messages} GROUP BY 1")) == {
        "Out": told["sent"],
        "In": told["received"],
    }


def test_an_account_done_waits_while_another_account_loads_on(make_simulator, tmp_path, monkeypatch):
    north, south = make_simulator(live_world(messages=300, seed=3)), make_simulator(live_world(messages=3300, seed=4))
    config = two_accounts(tmp_path, monkeypatch, north, south)
    pipeline = duckdb_pipeline(tmp_path)
    finish_and_run(pipeline, dlt_source(accounts=config, rows_per_load=300, deliveries=False))
    runs = dict(rows(pipeline, "SELECT account, count(*) FROM {sync_runs} GROUP BY 1"))
    assert runs["south"] >= 3 and runs["north"] == 1
