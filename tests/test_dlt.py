"""The dlt source into real destinations (a DuckDB file, a PostgreSQL server), compared with /_sim/truth."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

dlt = pytest.importorskip("dlt", reason="the dlt extra is not installed: pip install 'payamak_analytics[dlt]'")

from payamak_analytics import PanelClient, dlt_source
from payamak_analytics.client import MESSAGES_PAGE
from payamak_analytics.dates import TEHRAN
from payamak_analytics.simulator import HistoryConfig, Simulator, WorldConfig
from payamak_analytics.warehouse.loading import finish_and_run

from .conftest import START, admin_post, kill_during, truth

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
KEYS = {
    "messages": ("message_id",),
    "deliveries": ("batch_id", "row"),
    "delivery_events": ("batch_id", "row", "status"),
    "batches": ("batch_id",),
    "sync_runs": ("run_id",),
}


def live_world(messages: int = 1200, seed: int = 7, accounts: int = 0, start: float | None = None) -> WorldConfig:
    """A history ending now (or at `start`), on a clock that stands still until a test advances it."""
    history = HistoryConfig(messages=messages, days=10, seed=seed)
    return WorldConfig(history=history, clock_speed=0.0, accounts=accounts, start=start)


def client_of(simulator: Simulator) -> PanelClient:
    return PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05)


def duckdb_pipeline(tmp_path, name: str = "payamak", settings: dict | None = None):
    database = str(tmp_path / "warehouse.duckdb")
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(
            {"database": database, "global_config": settings} if settings else database
        ),
        dataset_name="sms",
    )


def accounts_toml(tmp_path, accounts: dict[str, tuple[str, ...]]):
    """An accounts file at tmp_path/accounts.toml: {name: (username, wsdl[, password_env])}."""
    sections = []
    for name, (username, wsdl, *password_env) in accounts.items():
        lines = [f"[accounts.{name}]", f'username = "{username}"', f'wsdl = "{wsdl}"']
        lines += [f'password_env = "{variable}"' for variable in password_env]
        sections.append("\n".join(lines))
    config = tmp_path / "accounts.toml"
    config.write_text("\n\n".join(sections) + "\n")
    return config


def rows(pipeline, sql: str) -> list[tuple]:
    """`sql` over the destination, with {table} names qualified by the pipeline's dataset."""
    with pipeline.sql_client() as client:
        names = {table: client.make_qualified_table_name(table) for table in KEYS}
        return [tuple(row) for row in client.execute_sql(sql.format(**names))]


def assert_equals_truth(pipeline, simulator: Simulator, account: str = "demo", username: str = "demo") -> None:
    t = truth(simulator, username=username)
    where = f"WHERE account = '{account}'"
    by_type = dict(rows(pipeline, f"SELECT message_type, count(*) FROM {{messages}} {where} GROUP BY 1"))
    assert by_type.get("Out", 0) == t["messages"]["sent"] and by_type.get("In", 0) == t["messages"]["received"]
    read = rows(pipeline, f"SELECT count(*) FROM {{messages}} {where} AND message_type = 'In' AND is_read")[0][0]
    assert read == t["messages"]["received_read"]
    ours = statuses_by_batch(pipeline, account)
    assert ours == {batch: totals["statuses"] for batch, totals in t["batches"].items()}
    assert rows(pipeline, f"SELECT bool_and(complete), count(*) FROM {{batches}} {where}")[0] == (True, len(ours))
    assert_nothing_doubled(pipeline)


def statuses_by_batch(pipeline, account: str = "demo") -> dict[str, dict[str, int]]:
    ours: dict[str, dict[str, int]] = {}
    query = f"SELECT batch_id, status, count(*) FROM {{deliveries}} WHERE account = '{account}' GROUP BY 1, 2"
    for batch, status, n in rows(pipeline, query):
        ours.setdefault(str(batch), {})[str(status)] = n
    return ours


def assert_nothing_doubled(pipeline) -> None:
    for table, key in KEYS.items():
        columns = ", ".join(f'"{c}"' for c in ("account", *key))
        total, distinct = rows(pipeline, f"SELECT count(*), count(DISTINCT ({columns})) FROM {{{table}}}")[0]
        assert total == distinct, table


def calls(simulator: Simulator) -> dict:
    return truth(simulator, batches=0)["calls"]


def pending_pages(pipeline, account: str = "demo", sent_after: datetime | None = None) -> int:
    """Report pages with a recipient in flight (of batches sent after `sent_after`)."""
    after = f"AND b.sent_at > '{sent_after.isoformat()}'" if sent_after else ""
    return rows(
        pipeline,
        f"""SELECT count(DISTINCT (d.batch_id, floor((d."row" - 1) / 100.0)))
            FROM {{deliveries}} d JOIN {{batches}} b ON b.account = d.account AND b.batch_id = d.batch_id
            WHERE d.account = '{account}' AND NOT d.final {after}""",
    )[0][0]


@pytest.fixture
def live_simulator(make_simulator):
    return make_simulator(live_world(), threads=16)


def test_a_load_into_duckdb_equals_the_truth_and_the_next_one_is_incremental(make_simulator, tmp_path):
    # 19:30 in Tehran: the last six hours of the afternoon hold batches still in flight
    live_simulator = make_simulator(live_world(start=START), threads=16)
    pipeline, first = duckdb_pipeline(tmp_path), datetime.fromtimestamp(START, TEHRAN)
    pipeline.run(dlt_source(client_of(live_simulator), now=lambda: first))
    assert_equals_truth(pipeline, live_simulator)
    assert rows(pipeline, "SELECT count(*) FROM {delivery_events}")[0][0] == truth(live_simulator)["recipients"]

    second = first + timedelta(seconds=1)
    before, young = calls(live_simulator), pending_pages(pipeline, sent_after=second - timedelta(hours=6))
    assert 0 < young < pending_pages(pipeline)  # this world has batches in flight on both sides of 6 h
    pipeline.run(dlt_source(client_of(live_simulator), now=lambda: second))
    after = calls(live_simulator)
    assert after["GetMessages"] - before["GetMessages"] == 2  # one call per stream: sent, received
    # a second later only pages in flight of batches under 6 h old are due again; final batches never are
    assert after["GetBatchDelivery"] - before["GetBatchDelivery"] == young
    assert_equals_truth(pipeline, live_simulator)
    runs = rows(pipeline, "SELECT messages, delivery_pages FROM {sync_runs} ORDER BY started_at")
    assert len(runs) == 2 and runs[1][1] == young
    assert (
        runs[1][0] <= 1000 + truth(live_simulator, batches=0)["messages"]["received"]
    )  # the first page of each stream


def test_a_history_larger_than_one_load_is_loaded_in_several_bounded_loads(make_simulator, tmp_path):
    simulator = make_simulator(live_world(messages=2500), threads=16)
    recipe = {"memory_limit": "64MB", "threads": 2, "max_vacuum_tasks": 0}  # the README's DuckDB settings
    pipeline = duckdb_pipeline(tmp_path, settings=recipe)
    source = dlt_source(client_of(simulator), deliveries=False, rows_per_load=500)
    finish_and_run(pipeline, source)
    told = truth(simulator, batches=0)["messages"]
    assert dict(rows(pipeline, "SELECT message_type, count(*) FROM {messages} GROUP BY 1")) == {
        "Out": told["sent"],
        "In": told["received"],
    }
    assert rows(pipeline, "SELECT count(*) - count(DISTINCT message_id) FROM {messages}") == [(0,)]
    loads = [n for (n,) in rows(pipeline, "SELECT messages FROM {sync_runs}")]
    assert len(loads) >= 3  # past its bound a walk stops, though each stream takes a page:
    assert max(loads) <= 500 + 2 * MESSAGES_PAGE

    before = calls(simulator)["GetMessages"]
    finish_and_run(pipeline, source)
    assert calls(simulator)["GetMessages"] == before + 2  # nothing left: one load, one page a stream


def test_status_changes_become_events_and_an_expired_report_freezes_the_last_status(live_simulator, tmp_path):
    client = client_of(live_simulator)
    fresh = client.send_batch_sms("50001234", [f"0912{i:07d}" for i in range(100)], "fresh").batch_sms_id
    pipeline, clock = duckdb_pipeline(tmp_path), [datetime.fromisoformat(admin_post(live_simulator, "clock")["clock"])]
    pipeline.run(dlt_source(client, now=lambda: clock[0]))
    first = dict(rows(pipeline, f'SELECT "row", status FROM {{deliveries}} WHERE batch_id = {fresh}'))
    assert set(first.values()) == {-5}  # asked too early

    admin_post(live_simulator, "clock", advance=6 * 3600)
    clock[0] += timedelta(hours=6)  # every page in flight is due again (`recheck.LONGEST_WAIT`)
    pipeline.run(dlt_source(client, now=lambda: clock[0]))
    ours = statuses_by_batch(pipeline)
    for batch, totals in truth(live_simulator)["batches"].items():
        if "-3" not in totals["statuses"]:  # a report that crossed the week keeps its last status (below)
            assert ours[batch] == totals["statuses"]
    assert_nothing_doubled(pipeline)
    events = rows(pipeline, f'SELECT "row", status FROM {{delivery_events}} WHERE batch_id = {fresh} ORDER BY 1')
    assert {row for row, status in events if status == -5} == set(first)
    settled = dict(rows(pipeline, f'SELECT "row", status FROM {{deliveries}} WHERE batch_id = {fresh}'))
    assert len(events) == 100 + sum(status != -5 for status in settled.values())

    admin_post(live_simulator, "clock", advance=8 * 86400)  # the service now answers -3 for every report
    clock[0] += timedelta(hours=6)  # by the loader's clock the batches are young: in-flight pages are asked again
    pipeline.run(dlt_source(client, now=lambda: clock[0]))
    assert dict(rows(pipeline, f'SELECT "row", status FROM {{deliveries}} WHERE batch_id = {fresh}')) == settled
    young = f"b.sent_at > '{(clock[0] - timedelta(days=7)).isoformat()}'"  # older ones the loader forgets unasked
    still_open = rows(
        pipeline,
        f"""SELECT count(*) FROM {{deliveries}} d JOIN {{batches}} b USING (account, batch_id)
            WHERE {young} AND (NOT d.final OR d.status = -3 AND NOT d.expired)""",
    )
    assert still_open[0][0] == 0
    asked = calls(live_simulator)["GetBatchDelivery"]
    clock[0] += timedelta(hours=6)
    pipeline.run(dlt_source(client, now=lambda: clock[0]))  # nothing is left in flight: no report is asked for
    assert calls(live_simulator)["GetBatchDelivery"] == asked


def test_accounts_land_side_by_side_and_stay_apart(make_simulator, tmp_path, monkeypatch):
    agency, other = (
        make_simulator(live_world(messages=800, accounts=2)),
        make_simulator(live_world(messages=1600, seed=2)),
    )
    config = accounts_toml(
        tmp_path,
        {
            "north": ("demo1", agency.wsdl_url),
            "south": ("demo2", agency.wsdl_url, "SOUTH_SECRET"),
            "east": ("demo", other.wsdl_url),
        },
    )
    for variable, password in (
        ("PAYAMAK_PASSWORD_NORTH", "demo1"),
        ("SOUTH_SECRET", "demo2"),
        ("PAYAMAK_PASSWORD_EAST", "demo"),
    ):
        monkeypatch.setenv(variable, password)
    pipeline = duckdb_pipeline(tmp_path)
    pipeline.run(dlt_source(accounts=config))
    expected = (("north", agency, "demo1"), ("south", agency, "demo2"), ("east", other, "demo"))
    for account, simulator, username in expected:
        assert_equals_truth(pipeline, simulator, account, username)
    assert rows(pipeline, "SELECT count(DISTINCT account) FROM {deliveries}")[0][0] == 3
    same_ids = """SELECT count(*) FROM {messages} a JOIN {messages} b USING (message_id)
                  WHERE a.account = 'north' AND b.account = 'east' AND a.content IS DISTINCT FROM b.content"""
    assert rows(pipeline, same_ids)[0][0] > 0  # one id, two services, two messages: both kept

    before = calls(agency)["GetMessages"], calls(other)["GetMessages"]
    pipeline.run(dlt_source(accounts=config))
    assert (calls(agency)["GetMessages"], calls(other)["GetMessages"]) == (before[0] + 4, before[1] + 2)
    for account, simulator, username in expected:
        assert_equals_truth(pipeline, simulator, account, username)


LOADER = """
import sys, dlt
from payamak_analytics import PanelClient, dlt_source
from payamak_analytics.warehouse.loading import finish_and_run
wsdl, folder, stage, bound = sys.argv[1:]
pipeline = dlt.pipeline(pipeline_name="payamak", pipelines_dir=folder + "/pipelines",
                        destination=dlt.destinations.duckdb(folder + "/warehouse.duckdb"), dataset_name="sms")
source = dlt_source(PanelClient("demo", "demo", wsdl=wsdl), workers=2, rows_per_load=int(bound) or None)
if stage == "extract":
    print("extracting", file=sys.stderr, flush=True)
    finish_and_run(pipeline, source)
else:  # the same steps one by one, to be killed while the package is normalized and loaded
    pipeline.extract(source)
    print("loading", file=sys.stderr, flush=True)
    pipeline.normalize()
    pipeline.load()
"""


@pytest.mark.parametrize("rows_per_load", [0, 10_000], ids=["whole", "bounded"])
def test_a_load_killed_with_sigkill_and_run_again_equals_the_truth(make_simulator, tmp_path, rows_per_load):
    """Bounded, the kills land within loads and between them, and every run resumes the last."""
    simulator = make_simulator(live_world(messages=2500), threads=16)
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    rng = random.Random(5)
    for stage, window in (("extract", 1.0), ("load", 0.5), ("extract", 4.0), ("load", 1.5), ("load", 3.0)):
        process = subprocess.Popen(
            [sys.executable, "-c", LOADER, simulator.wsdl_url, str(tmp_path), stage, str(rows_per_load)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert kill_during(process, "loading" if stage == "load" else "extracting", rng, window=window)
    pipeline = duckdb_pipeline(tmp_path)
    finish_and_run(pipeline, dlt_source(client_of(simulator), rows_per_load=rows_per_load or None))
    assert_equals_truth(pipeline, simulator)
    assert rows(pipeline, "SELECT count(*) FROM {delivery_events}")[0][0] == truth(simulator)["recipients"]
