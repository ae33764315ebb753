"""The accounts file, the optional import of dlt, reports read from a loaded destination, and
delivery reports as a service answers them that the source must read as the sync does."""

from __future__ import annotations

import subprocess
import sys
import traceback
from datetime import datetime, timedelta

import pandas as pd
import pytest

from payamak_analytics import analytics
from payamak_analytics.accounts import load_accounts, parse_accounts
from payamak_analytics.dates import TEHRAN
from payamak_analytics.errors import AnswerError, CredentialsError, InputError, NotFoundError, SyncError
from payamak_analytics.simulator import HistoryConfig, WorldConfig
from payamak_analytics.store import Store
from payamak_analytics.sync import PAST_LIST_PAGES, PROBE_INDEX, sync

from .conftest import strict_zeep, truth, world_config
from .hostile_server import (
    HostileServer,
    delivered_taken_back,
    endless_report,
    first_page_always,
    forwarding,
    listed_count,
    proxied,
    report_pages_asked,
)
from .test_sync import panel_batch

dlt = pytest.importorskip("dlt", reason="the dlt extra is not installed: pip install 'payamak_analytics[dlt]'")

from dlt.pipeline.exceptions import PipelineStepFailed

from payamak_analytics import PanelClient, dlt_source
from payamak_analytics.warehouse.destination import DestinationStore

from .test_dlt import assert_equals_truth, client_of, duckdb_pipeline, live_world, rows

SECRET = "hunter2-of-the-panel"


def test_importing_the_toolkit_does_not_import_dlt():
    probe = "import sys, payamak_analytics; print('dlt' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "lists no accounts"),
        ("[accounts.shop]\nusername = 'u'\npassword = 'x'\n", "holds a password"),
        ("[accounts.shop]\nusername = 'u'\nendpiont = 'http://x'\n", "unknown keys ['endpiont']"),
        ("[accounts.shop]\nwsdl = 'bundled'\n", "has no username"),
        ("[accounts.'a b']\nusername = 'u'\n", "letters, digits"),
        ("[accounts.shop]\nusername = 'u'\nlines = '1000'\n", "must be a list"),
        ("[accounts.a]\nusername = 'u'\n[accounts.b]\nusername = 'u'\n", "same panel account"),
        ("[accounts.shop\nusername = 'u'", "not valid TOML"),
    ],
)
def test_a_bad_accounts_file_says_what_to_fix(text, says):
    with pytest.raises(InputError) as caught:
        parse_accounts(text, "accounts.toml")
    assert says in str(caught.value)


def test_a_password_in_the_file_is_refused_and_never_echoed(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text(f"[accounts.shop]\nusername = 'u'\npassword = '{SECRET}'\n")
    with pytest.raises(InputError) as caught:
        load_accounts(path)
    assert SECRET not in "".join(traceback.format_exception(caught.value)) and "PAYAMAK_PASSWORD_SHOP" in str(
        caught.value
    )


def test_passwords_come_from_the_environment_only(simulator, tmp_path, monkeypatch):
    (tmp_path / "accounts.toml").write_text(f"[accounts.shop-1]\nusername = 'demo'\nwsdl = '{simulator.wsdl_url}'\n")
    (account,) = load_accounts(tmp_path / "accounts.toml")
    monkeypatch.delenv("PAYAMAK_PASSWORD_SHOP_1", raising=False)
    monkeypatch.chdir(tmp_path)  # no .dlt/secrets.toml here
    with pytest.raises(CredentialsError) as caught:
        account.client()
    assert "PAYAMAK_PASSWORD_SHOP_1" in str(caught.value) and "secrets.toml" in str(caught.value)
    monkeypatch.setenv("PAYAMAK_PASSWORD_SHOP_1", "demo")
    client = account.client()
    assert client.get_credit() > 0 and "demo" not in repr(account).replace("username='demo'", "")


def test_source_arguments_are_checked(client):
    for kwargs in ({}, {"workers": 0}, {"account": "no spaces please"}, {"since": "someday"}):
        with pytest.raises(InputError):
            dlt_source(**({"client": client} if kwargs else {}), **kwargs)
    with pytest.raises(InputError):
        dlt_source(accounts=[{"name": "shop"}])


def test_reports_on_the_destination_equal_reports_on_the_local_store(make_simulator, tmp_path):
    simulator = make_simulator(world_config(messages=1500), threads=16)
    client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url)
    now = datetime(2025, 11, 24, 12, tzinfo=TEHRAN)
    store = Store(tmp_path / "local.duckdb")
    sync(client, store, progress=False, now=lambda: now)
    pipeline = duckdb_pipeline(tmp_path)
    pipeline.run(dlt_source(client, account="shop", now=lambda: now))
    pipeline.run(dlt_source(PanelClient("demo", "demo", wsdl=simulator.wsdl_url), account="other", now=lambda: now))
    warehouse = DestinationStore(tmp_path / "warehouse.duckdb", accounts=["shop"])

    for by in (["operator"], ["month", "line"], ["parts", "encoding"], ["hour"]):
        local = analytics.delivery_report(store, by=by, now=now)
        remote = analytics.delivery_report(warehouse, by=by, now=now)
        pd.testing.assert_frame_equal(local, remote, check_dtype=False)
    both = DestinationStore(tmp_path / "warehouse.duckdb").sql("SELECT account, count(*) n FROM deliveries GROUP BY 1")
    assert sorted(both["account"]) == ["other", "shop"] and both["n"].nunique() == 1
    assert "password" not in repr(DestinationStore("postgresql://loader:pw@127.0.0.1/x")) and "pw@" not in repr(
        DestinationStore("postgresql://loader:pw@127.0.0.1/x")
    )
    with pytest.raises(NotFoundError):
        DestinationStore(tmp_path / "nothing.duckdb").sql("SELECT 1")


def test_parquet_files_of_the_filesystem_destination_read_back_once_per_row(make_simulator, tmp_path):
    simulator = make_simulator(world_config(messages=1200), threads=16)
    client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url)
    pipeline = dlt.pipeline(
        pipeline_name="lake",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=str(tmp_path / "lake")),
        dataset_name="sms",
    )
    for _ in range(2):  # files are only ever added: the second load repeats the first page of each stream
        pipeline.run(dlt_source(client), loader_file_format="parquet")
    lake = DestinationStore(tmp_path / "lake")
    t = truth(simulator)
    counts = lake.sql("SELECT (SELECT count(*) FROM messages) m, (SELECT count(*) FROM deliveries) d").iloc[0]
    assert counts.tolist() == [t["messages"]["sent"] + t["messages"]["received"], t["recipients"]]
    by_status = lake.sql("SELECT status, count(*) n FROM deliveries GROUP BY 1")
    assert {str(s): n for s, n in by_status.values.tolist()} == t["recipients_by_status"]
    assert analytics.delivery_report(lake, by=["operator"])["recipients"].sum() == t["recipients"]


def test_a_final_status_is_not_taken_back_by_a_later_answer_in_flight(make_simulator, tmp_path):
    """The sync's rule (a final status does not change): a service answering "sent to the telecom"
    for recipients it reported delivered leaves them delivered, and no event says they went back."""
    simulator = make_simulator(live_world(), threads=16)
    backwards = {"on": False}
    start, pipeline = datetime.now(TEHRAN), duckdb_pipeline(tmp_path)
    with HostileServer({"/svc": forwarding(simulator, delivered_taken_back(backwards))}) as proxy:
        pipeline.run(dlt_source(proxied(proxy), now=lambda: start))
        delivered = set(rows(pipeline, 'SELECT batch_id, "row" FROM {deliveries} WHERE status = 1'))
        backwards["on"] = True
        pipeline.run(dlt_source(proxied(proxy), now=lambda: start + timedelta(hours=6)))
    reread = rows(pipeline, "SELECT delivery_pages FROM {sync_runs} ORDER BY started_at")[1][0]
    assert reread > 0 and delivered  # pages holding delivered recipients were read again
    now_delivered = set(rows(pipeline, 'SELECT batch_id, "row" FROM {deliveries} WHERE status = 1 AND final'))
    assert now_delivered == delivered
    went_back = f"SELECT count(*) FROM {{delivery_events}} WHERE status = 0 AND observed_at > '{start.isoformat()}'"
    assert rows(pipeline, went_back)[0][0] == 0


def test_a_batch_listed_with_fewer_recipients_than_its_report_holds_is_read_to_the_end(make_simulator, tmp_path):
    """A list whose Count says 120 for a batch of 250: its page at row 101 comes back full where 20
    rows were due, so the report goes on (`sync.goes_on`), and the batch is closed as read in full
    only with its rows 201 to 250."""
    recipients = 250
    simulator, batch = panel_batch(make_simulator, recipients)
    pipeline = duckdb_pipeline(tmp_path)
    with HostileServer({"/svc": forwarding(simulator, lambda op, body: listed_count(op, body, batch, 120))}) as proxy:
        pipeline.run(dlt_source(proxied(proxy)))
    stored = rows(pipeline, f"SELECT count(*), count(DISTINCT number) FROM {{deliveries}} WHERE batch_id = {batch}")
    assert stored == [(recipients, recipients)]
    assert rows(pipeline, f"SELECT complete FROM {{batches}} WHERE batch_id = {batch}") == [(True,)]


@pytest.mark.timeout(120)
def test_a_report_without_end_is_read_at_most_a_bounded_way_past_its_list(make_simulator, tmp_path):
    """A report of a batch listed with 120 recipients that goes on with full pages of new numbers
    at every index: a load reads PAST_LIST_PAGES pages past the list at most, and the batch is
    not closed as read in full."""
    simulator, batch = panel_batch(make_simulator, 200)
    pipeline = duckdb_pipeline(tmp_path)
    with HostileServer({"/svc": endless_report(simulator, batch)}) as proxy:
        pipeline.run(dlt_source(proxied(proxy)))
    assert 3 < len(report_pages_asked(proxy, batch)) <= 2 + PAST_LIST_PAGES
    assert rows(pipeline, f"SELECT complete FROM {{batches}} WHERE batch_id = {batch}") == [(False,)]


@pytest.mark.timeout(120)
def test_a_service_that_ignores_the_report_index_fails_the_load_before_a_row_is_doubled(make_simulator, tmp_path):
    """Every report page answering the batch's first hundred: loaded, each page would add the same
    numbers at new rows (and a report going on past its list would be read for a hundred pages).
    A page repeating another of its batch fails the load with the sync's error (`sync.refuse_repeat`),
    and nothing of the load is committed."""
    simulator, batch = panel_batch(make_simulator, 250)
    pipeline = duckdb_pipeline(tmp_path)
    with HostileServer({"/svc": first_page_always(simulator)}) as proxy:
        with pytest.raises(PipelineStepFailed) as caught:
            pipeline.run(dlt_source(proxied(proxy)))
        asked = report_pages_asked(proxy, batch) - {PROBE_INDEX}  # asked once a page repeats
        assert len(asked) <= 4  # its three pages and one past them, at most
    error = caught.value
    while error is not None and not isinstance(error, SyncError):
        error = error.__cause__ or error.__context__
    assert "repeats" in str(error) and isinstance(error.__cause__, AnswerError) and not error.__cause__.retryable
    assert not pipeline.has_data  # nothing of the load was committed


def test_a_batch_sent_to_the_same_numbers_twice_is_read_in_full_and_the_load_goes_on(make_simulator, tmp_path):
    """A batch whose list holds the same 100 numbers twice: its page at row 101 holds the numbers of
    its page at row 1, as a service ignoring the index would answer; the service answers no rows
    past the report (`sync.refuse_repeat` asks it), so the batch is read, and the load ends."""
    world = WorldConfig(history=HistoryConfig(messages=300, days=10), clock_speed=0.0, max_recipients=1000)
    simulator = make_simulator(world, threads=16)
    to = {"string": [f"0912{i:07d}" for i in range(100)] * 2}
    batch = strict_zeep(simulator).service.SendBatchSms("demo", "demo", "50001234", to, "twice", False)["batchSmsId"]
    pipeline = duckdb_pipeline(tmp_path)
    pipeline.run(dlt_source(client_of(simulator)))
    stored = rows(pipeline, f"SELECT count(*), count(DISTINCT number) FROM {{deliveries}} WHERE batch_id = {batch}")
    assert stored == [(200, 100)]
    assert_equals_truth(pipeline, simulator)
