"""The store on real DuckDB files and real processes: transactions, claims, reads."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

import duckdb
import pytest

from payamak_analytics.client.pages import MESSAGE_COLUMNS, messages_frame
from payamak_analytics.dates import TEHRAN
from payamak_analytics.errors import InputError
from payamak_analytics.stopping import StopRequest
from payamak_analytics.store import Store, default_path


def campaign_row(name: str = "c") -> dict:
    return {
        "name": name,
        "line": "50001234",
        "text": "hello",
        "flash": False,
        "recipients": 200,
        "invalid_numbers": 0,
        "duplicates": 0,
        "blacklisted": None,
        "parts": 1,
        "encoding": "GSM-7",
        "created_at": datetime.now(TEHRAN),
    }


def test_a_transaction_that_fails_leaves_nothing_behind(tmp_path):
    store = Store(tmp_path / "p.duckdb")
    for failure in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(failure)), store.transaction() as con:
            con.execute("INSERT INTO store_meta VALUES ('account', 'half-written')")
            raise failure
    assert store.account() == {}
    with store.transaction() as con:  # and the store is usable afterwards
        con.execute("INSERT INTO store_meta VALUES ('account', 'whole')")
    assert store.account() == {"account": "whole"}


def test_a_campaign_with_a_name_in_use_is_refused_whole(tmp_path):
    store = Store(tmp_path / "p.duckdb")
    store.create_campaign(campaign_row(), [["09120000001"], ["09120000002"]])
    with pytest.raises(InputError, match="exists already"):
        store.create_campaign(campaign_row(), [["09120000003"]])
    assert store.sql("SELECT count(*) FROM campaign_chunks").iloc[0, 0] == 2


CLAIMER = """
import sys
from payamak_analytics.store import Store
store = Store(sys.argv[1])
won = [chunk for chunk in range(20) if store.move_chunk("c", chunk, "planned", "in_flight")]
print(",".join(map(str, won)))
"""


def test_two_processes_claiming_the_same_chunks_never_both_win_one(tmp_path):
    db = tmp_path / "p.duckdb"
    Store(db).create_campaign(campaign_row(), [[f"0912{k:07d}"] for k in range(20)])
    claimers = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, str(db)], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    won = [set(map(int, filter(None, p.communicate(timeout=120)[0].strip().split(",")))) for p in claimers]
    assert not won[0] & won[1] and won[0] | won[1] == set(range(20))


def test_every_spelling_of_a_direction_and_the_clients_dtypes(tmp_path):
    store = Store(tmp_path / "p.duckdb")
    for spelling in ("sent", "SENT", "out", 2, "received", "inbox", "in", 1):
        assert store.messages(spelling).empty
    with pytest.raises(InputError, match="'sent'"):
        store.messages("outbox")
    client_dtypes = messages_frame({c: [] for c in MESSAGE_COLUMNS.values()}).dtypes
    stored = store.messages().dtypes
    for column, dtype in client_dtypes.items():
        assert type(stored[column]) is type(dtype) and str(stored[column]).split("[")[0] == str(dtype).split("[")[0]


def test_a_bad_since_is_refused_listing_the_forms(tmp_path):
    with pytest.raises(InputError, match="Jalali"):
        Store(tmp_path / "p.duckdb").messages("sent", since="last tuesday")


def test_the_default_path_honours_payamak_store(tmp_path, monkeypatch):
    monkeypatch.setenv("PAYAMAK_STORE", str(tmp_path / "mine.duckdb"))
    assert default_path() == tmp_path / "mine.duckdb" and Store().path == tmp_path / "mine.duckdb"
    monkeypatch.delenv("PAYAMAK_STORE")
    assert default_path(tmp_path) == tmp_path / "data" / "payamak.duckdb"


def test_duckdb_spills_beside_the_store_not_in_the_working_directory(tmp_path, monkeypatch):
    """A temporary table bigger than the writer's 64 MB spills to `<store>.tmp`, as when DuckDB
    opened the file directly; a working directory DuckDB cannot use (here its `.tmp` is a file)
    is no matter. (A temporary table is evicted to disk block by block at any memory limit; a big
    sort or DISTINCT may instead run out of memory, which is not what this test is about.)"""
    work = tmp_path / "work"
    work.mkdir()
    (work / ".tmp").write_text("a file of the user's")
    monkeypatch.chdir(work)
    store = Store(tmp_path / "p.duckdb")
    with store.holding(), store.connect() as con:
        con.execute("CREATE TEMP TABLE spill AS SELECT md5(range::VARCHAR) h FROM range(3000000)")
        spilled = [f.name for f in (tmp_path / "p.duckdb.tmp").iterdir()]
        assert con.execute("SELECT count(*) FROM spill").fetchone() == (3_000_000,)
    assert any(name.endswith(".tmp") for name in spilled), spilled
    assert (work / ".tmp").read_text() == "a file of the user's"


def test_a_reader_in_the_syncs_own_process_is_not_held_to_the_syncs_memory_cap(tmp_path):
    """DuckDB's memory limit is shared by every connection of a process to the file: a
    notebook's query while a sync runs in a thread gets DuckDB's whole memory, and the sync's
    own connection stays capped."""
    writer, reader = Store(tmp_path / "s.duckdb"), Store(tmp_path / "s.duckdb")
    median = "SELECT median(h) m FROM (SELECT md5(range::VARCHAR) h FROM range(3000000))"  # far over 64 MB
    uncapped = reader.sql("SELECT current_setting('memory_limit') l").l[0]
    with writer.holding():
        with writer.connect() as held:
            capped = held.execute("SELECT current_setting('memory_limit')").fetchone()[0]
            assert capped != uncapped
            with pytest.raises(duckdb.OutOfMemoryException):
                held.execute(median)
        assert len(reader.sql(median).m[0]) == 32
        with writer.connect() as held:
            assert held.execute("SELECT current_setting('memory_limit')").fetchone()[0] == capped
    assert reader.sql("SELECT current_setting('memory_limit') l").l[0] == uncapped


def test_another_thread_reading_the_same_store_as_a_sync_neither_waits_for_it_nor_takes_its_cap(tmp_path):
    """A notebook runs sync(client, store) in a thread and reads through the same `store`: its
    queries get a connection of their own, not the sync's held one (on which they waited for
    the sync's transaction and ran out of its 64 MB)."""
    store = Store(tmp_path / "s.duckdb")
    median = "SELECT median(h) m FROM (SELECT md5(range::VARCHAR) h FROM range(3000000))"  # far over 64 MB
    writing, done = threading.Event(), threading.Event()

    def sync_in_a_thread():
        with store.holding(), store.transaction() as con:  # a long transaction of the sync
            con.execute("INSERT INTO store_meta VALUES ('k', 'v')")
            writing.set()
            done.wait(30)

    syncing = threading.Thread(target=sync_in_a_thread)
    syncing.start()
    try:
        writing.wait(30)
        started = time.monotonic()
        assert store.sql("SELECT count(*) n FROM store_meta").n[0] == 0  # the sync's transaction is not seen
        assert time.monotonic() - started < 1.0
        assert len(store.sql(median).m[0]) == 32
    finally:
        done.set()
        syncing.join()
    assert store.sql("SELECT count(*) n FROM store_meta").n[0] == 1


def test_stores_of_one_process_on_one_file_write_in_turn_as_two_processes_do(tmp_path):
    """Two syncs in two threads of a notebook, each with a Store of its own, write through one
    DuckDB database: their first migrations ("Table already exists"), accounts ("Duplicate
    key") and runs met head-on, and one failed, told to check the disk."""
    path, errors, runs = tmp_path / "s.duckdb", [], []
    together = threading.Barrier(4)

    def a_sync():
        try:
            together.wait(10)
            store = Store(path)
            together.wait(10)
            with store.holding():
                store.bind_account("demo", "http://127.0.0.1/SendService.svc")
                runs.append(store.start_sync_run(datetime.now(TEHRAN)))
        except Exception as error:  # noqa: BLE001 (told below)
            errors.append(repr(error))

    threads = [threading.Thread(target=a_sync) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(runs) == [1, 2, 3, 4]
    assert Store(path).account() == {"account": "demo", "address": "http://127.0.0.1/SendService.svc"}


def test_a_store_opened_by_a_relative_path_stays_the_same_file_after_a_change_of_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Store("s.duckdb")
    with store.transaction() as con:
        con.execute("INSERT INTO store_meta VALUES ('mark', 'here')")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a notebook's os.chdir
    assert store.sql("SELECT value FROM store_meta WHERE key = 'mark'").value.tolist() == ["here"]
    assert not (elsewhere / "s.duckdb").exists()


def test_one_service_address_however_it_is_spelt(tmp_path):
    """A host's case, the scheme's own port and a user-info part do not change which service
    answers: a store synced from one spelling takes the others, and still refuses another host,
    port or scheme. Stores recorded before (with "***@" for a user-info part) compare the same."""
    store = Store(tmp_path / "s.duckdb")
    store.bind_account("demo", "http://***@payamak-service.ir/SendService.svc")  # as an older version recorded it
    for same in (
        "http://payamak-service.ir/SendService.svc",
        "HTTP://Payamak-Service.IR:80/SendService.svc",
        "http://demo:secret-pw@payamak-service.ir/SendService.svc",
    ):
        store.check_account("demo", same)
        store.bind_account("demo", same)
    assert "secret-pw" not in str(store.account())
    for other in (
        "https://payamak-service.ir/SendService.svc",
        "http://payamak-service.ir:8080/SendService.svc",
        "http://payamak-service.com/SendService.svc",
    ):
        with pytest.raises(InputError, match="--new-address"):
            store.check_account("demo", other)
    store.bind_account("demo", "https://payamak-service.ir:443/SendService.svc", new_address=True)
    assert store.account()["address"] == "https://payamak-service.ir/SendService.svc"


@pytest.mark.parametrize("holding", [False, True])
def test_a_second_ctrl_c_during_a_write_ends_it_whole_then_interrupts(tmp_path, holding):
    """A second Ctrl-C (or SIGTERM) during a sync raises KeyboardInterrupt at once; landing while
    DuckDB runs a statement of a transaction, DuckDB turned it into `RuntimeError: Query
    interrupted` (no KeyboardInterrupt), or left the transaction aborted so that the next
    statement said "could not be written ... Check the disk": `payamak sync` ended with a
    traceback or a false disk error instead of its one line. A signal now waits for the end of
    the transaction (a few pages), which is kept; then it interrupts."""
    store = Store(tmp_path / "p.duckdb")
    stop = StopRequest()

    sent = threading.Event()

    def twice() -> None:
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)
        sent.set()

    with stop.on_signals(), store.holding() if holding else contextlib.nullcontext():
        sender = threading.Thread(target=twice)
        with pytest.raises(KeyboardInterrupt), store.transaction() as con:
            sender.start()
            while not sent.is_set():  # statements run until both signals came, however late the sender runs
                con.execute("CREATE OR REPLACE TEMP TABLE slow AS SELECT sum(i * i) s FROM range(20000000) t(i)")
            con.execute("INSERT INTO store_meta VALUES ('account', 'whole')")
            con.execute("DROP TABLE slow")
        sender.join()
        assert stop.signals == 2
        assert store.account() == {"account": "whole"}  # the transaction ended whole, then the interrupt
        with store.transaction() as con:  # and the store is usable afterwards
            con.execute("INSERT INTO store_meta VALUES ('address', 'x')")
    assert store.account() == {"account": "whole", "address": "x"}
