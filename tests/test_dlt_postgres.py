"""The dlt source into a real PostgreSQL server, started here on a loopback port and stopped after."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

dlt = pytest.importorskip("dlt", reason="the dlt extra is not installed: pip install 'payamak_analytics[dlt]'")

from payamak_analytics import PanelClient, analytics, dlt_source
from payamak_analytics.dates import TEHRAN
from payamak_analytics.store import Store
from payamak_analytics.sync import sync
from payamak_analytics.warehouse.destination import DestinationStore

from .conftest import START, world_config
from .test_dlt import assert_equals_truth, calls, client_of, live_world, pending_pages

BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _as_server_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
    return [runuser, "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """(host, port, user, password) of a fresh server in a temporary folder."""
    if not BINARIES or not (BINARIES[0] / "initdb").exists():
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    if os.geteuid() == 0:
        try:
            import pwd

            server_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no `postgres` user to run the server as")
    folder = Path(tempfile.mkdtemp(prefix="payamak-pg-"))
    password = secrets.token_hex(12)
    (folder / "pw").write_text(password)
    if os.geteuid() == 0:
        for path in (folder, folder / "pw"):
            os.chown(path, server_user.pw_uid, server_user.pw_gid)
    data, port = folder / "data", _free_port()
    bin_dir = BINARIES[0]
    subprocess.run(
        _as_server_user(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "loader", "--auth=scram-sha-256", f"--pwfile={folder}/pw"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield "127.0.0.1", port, "loader", password
    finally:
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), check=False
        )
        shutil.rmtree(folder, ignore_errors=True)


def test_a_load_into_postgres_equals_the_truth_and_the_next_one_is_incremental(postgres, make_simulator, tmp_path):
    host, port, user, password = postgres
    simulator = make_simulator(live_world(start=START), threads=16)  # 19:30 in Tehran: batches in flight
    pipeline = dlt.pipeline(
        pipeline_name="payamak_pg",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.postgres(f"postgresql://{user}:{password}@{host}:{port}/postgres"),
        dataset_name="sms",
    )
    first = datetime.fromtimestamp(START, TEHRAN)
    pipeline.run(dlt_source(client_of(simulator), now=lambda: first))
    assert_equals_truth(pipeline, simulator)

    second = first + timedelta(seconds=1)
    before, young = calls(simulator), pending_pages(pipeline, sent_after=second - timedelta(hours=6))
    pipeline.run(dlt_source(client_of(simulator), now=lambda: second))
    after = calls(simulator)
    assert after["GetMessages"] - before["GetMessages"] == 2
    assert after["GetBatchDelivery"] - before["GetBatchDelivery"] == young
    assert_equals_truth(pipeline, simulator)


def _postgres_extension() -> str | None:
    """None when DuckDB can load its postgres extension here (installing it once if it can), else why not."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("INSTALL postgres")
        con.execute("LOAD postgres")
        return None
    except duckdb.Error as error:
        return str(error).splitlines()[0][:200]
    finally:
        con.close()


def test_reports_read_a_postgres_destination_back(postgres, make_simulator, tmp_path):
    """The report functions on the loaded PostgreSQL tables, through DuckDB's postgres extension,
    equal the same reports on a local store synced from the same service at the same moment."""
    missing = _postgres_extension()
    if missing:
        pytest.skip(f"DuckDB's postgres extension cannot be loaded here (it is fetched from the network): {missing}")
    host, port, user, password = postgres
    address = f"postgresql://{user}:{password}@{host}:{port}/postgres"
    simulator = make_simulator(world_config(messages=1500), threads=16)
    client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url)
    now = datetime(2025, 11, 24, 12, tzinfo=TEHRAN)
    store = Store(tmp_path / "local.duckdb")
    sync(client, store, progress=False, now=lambda: now)
    pipeline = dlt.pipeline(
        pipeline_name="payamak_pg_back",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.postgres(address),
        dataset_name="back",
    )
    pipeline.run(dlt_source(client, account="shop", now=lambda: now))
    warehouse = DestinationStore(address, dataset="back", accounts=["shop"])
    for by in (["operator"], ["month", "line"]):
        local = analytics.delivery_report(store, by=by, now=now)
        assert len(local) and local["recipients"].sum() > 0
        pd.testing.assert_frame_equal(local, analytics.delivery_report(warehouse, by=by, now=now), check_dtype=False)
