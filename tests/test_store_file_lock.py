"""A second Store on a file this process already holds keeps DuckDB's lock on it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from contextlib import suppress

import duckdb
import pytest

from payamak_analytics.errors import StoreError
from payamak_analytics.store import Store
from payamak_analytics.store.schema import MIGRATIONS


def _another_process_opens(path) -> bool:
    probe = f"import duckdb; duckdb.connect({str(path)!r}); print('opened')"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    return "opened" in done.stdout


def test_opening_the_store_again_in_this_process_keeps_other_processes_out(tmp_path):
    path = tmp_path / "s.duckdb"
    store = Store(path)
    with store.holding(), store.transaction():  # a sync holds the file
        assert not _another_process_opens(path)
        Store(path).sql("SELECT 1")  # a notebook cell in the same process, meanwhile
        assert not _another_process_opens(path)  # DuckDB's lock still holds the file


def test_a_users_sql_cannot_detach_the_file_a_sync_holds(tmp_path):
    """The file is the only catalog of this process's connections to it, as when DuckDB opened
    it directly: no `USE` leads away from it, so no `DETACH` lets go of it under the sync."""
    path = tmp_path / "s.duckdb"
    store = Store(path)
    with store.holding():
        with store.transaction() as con:
            con.execute("INSERT INTO store_meta VALUES ('before', 'x')")
        with suppress(duckdb.Error):
            Store(path).sql("USE memory; DETACH store")  # a notebook cell, meanwhile
        assert not _another_process_opens(path)
        with store.transaction() as con:  # the sync goes on
            con.execute("INSERT INTO store_meta VALUES ('after', 'x')")
    assert sorted(store.sql("SELECT key FROM store_meta WHERE value = 'x'").key) == ["after", "before"]


def test_looks_of_one_process_at_the_same_moment_never_see_a_waiting_process(tmp_path):
    """The watcher and the transactions of a sync both look whether another process waits for
    the file: looking at the same moment, they must not take each other for one (each time they
    did, the sync closed the file and spent tens of milliseconds opening it again)."""
    store = Store(tmp_path / "s.duckdb")
    seen = []

    def look() -> None:
        seen.extend(store._someone_waits() for _ in range(5000))

    lookers = [threading.Thread(target=look) for _ in range(2)]
    for looker in lookers:
        looker.start()
    for looker in lookers:
        looker.join()
    assert len(seen) == 10_000 and not any(seen)


def test_a_reader_that_comes_by_a_symlink_gets_the_file_from_a_sync(tmp_path):
    """A notebook may open the store through a link to it: the sync must see it waiting (the
    `.wait` file lies beside the file itself) and let go, as for any reader."""
    path = tmp_path / "s.duckdb"
    link = tmp_path / "link.duckdb"
    store = Store(path)
    link.symlink_to(path)
    reader = (
        "from payamak_analytics.store import Store; "
        f"print(Store({str(link)!r}, lock_wait=5).sql('SELECT count(*) AS n FROM store_meta').n[0])"
    )
    with store.holding():  # a sync holds the file
        done = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-500:]


def test_a_hard_link_to_the_store_is_the_same_store_in_this_process(tmp_path):
    """Two names of one file: opened under both while a sync holds it, DuckDB would attach the
    file twice, and one database's writes would overwrite the other's."""
    store = Store(tmp_path / "s.duckdb")
    os.link(tmp_path / "s.duckdb", tmp_path / "same.duckdb")
    other = Store(tmp_path / "same.duckdb")
    with store.holding():  # a sync holds the file
        with store.transaction() as con:
            con.execute("INSERT INTO store_meta VALUES ('by', 'its name')")
        with other.transaction() as con:
            con.execute("INSERT INTO store_meta VALUES ('through', 'the link')")
    kept = Store(tmp_path / "s.duckdb").sql("SELECT key FROM store_meta WHERE key IN ('by', 'through')")
    assert sorted(kept.key) == ["by", "through"]


def test_a_file_this_process_opened_with_duckdb_itself_is_a_store_error_saying_what_to_do(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path)
    own = duckdb.connect(str(path))  # a notebook's own connection to the file
    try:
        with pytest.raises(StoreError, match="Close that connection"):
            Store(path)
    finally:
        own.close()
    assert Store(path).schema_version >= 1  # once closed, the store opens as ever


def test_a_store_moved_while_a_sync_holds_it_is_refused_under_its_new_name(tmp_path):
    """Renamed while held, the file is still attached under its old name: opened under the new
    one, DuckDB attached it a second time, which read none of the held writes and whose own
    writes were overwritten."""
    store = Store(tmp_path / "s.duckdb")
    with store.holding():  # a sync holds the file
        with store.transaction() as con:
            con.execute("INSERT INTO store_meta VALUES ('before', 'the move')")
        os.rename(tmp_path / "s.duckdb", tmp_path / "moved.duckdb")
        with pytest.raises(StoreError, match="no longer leads to it"):
            Store(tmp_path / "moved.duckdb")
    kept = Store(tmp_path / "moved.duckdb").sql("SELECT key FROM store_meta WHERE key = 'before'")
    assert list(kept.key) == ["before"]


def _making_a_store(path, *, killed: bool) -> subprocess.CompletedProcess:
    """`Store(path)` in a process whose files may not grow past 1000 bytes: DuckDB's header is
    cut short there, as by a kill (`killed`: SIGXFSZ ends the process) or a full disk."""
    probe = (
        "import resource, signal; from payamak_analytics.store import Store; "
        + ("signal.signal(signal.SIGXFSZ, signal.SIG_DFL); " if killed else "")
        + f"resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000)); Store({str(path)!r})"
    )
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)


def test_a_process_killed_while_it_makes_the_store_leaves_the_next_one_a_store(tmp_path):
    """A kill while DuckDB wrote the new file's header left a file cut short at the store's
    path, which every later sync refused (DuckDB cannot read it either)."""
    path = tmp_path / "s.duckdb"
    assert _making_a_store(path, killed=True).returncode == -signal.SIGXFSZ
    assert Store(path).schema_version == len(MIGRATIONS)


def test_a_disk_too_full_to_make_the_store_is_a_store_error_and_nothing_is_kept(tmp_path):
    done = _making_a_store(tmp_path / "s.duckdb", killed=False)
    assert "StoreError" in done.stderr and "the disk has room" in done.stderr, done.stderr[-500:]
    assert list(tmp_path.iterdir()) == []


def test_a_store_whose_folder_cannot_be_made_is_a_store_error_saying_so():
    """A folder that cannot be made (read-only, or a place no folder goes) was a bare OSError."""
    with pytest.raises(StoreError, match="could not be created .*may write in its folder"):
        Store("/proc/self/no-such-folder/s.duckdb")


def test_a_store_made_through_a_symlink_to_a_missing_file_is_made_whole_before_it_is_there(tmp_path, monkeypatch):
    """A store path that is a symlink to a file not made yet (a data folder linked elsewhere):
    the store is made under a hidden name beside the file the link leads to and linked there.
    The link was taken for a store made meanwhile, and the file made in place: a kill while
    DuckDB wrote its header left a file every later sync refused."""
    from payamak_analytics.store import core

    migrate, found = core.StoreFile._migrate, []

    def opened(self, con, existed) -> None:
        found.append({name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()})
        migrate(self, con, existed)

    monkeypatch.setattr(core.StoreFile, "_migrate", opened)
    (tmp_path / "elsewhere").mkdir()
    path = tmp_path / "s.duckdb"
    path.symlink_to(tmp_path / "elsewhere" / "s.duckdb")
    assert Store(path).schema_version == len(MIGRATIONS)
    assert "schema_version" in found[-1]  # whole when first opened by its name
    assert path.is_symlink() and sorted(os.listdir(tmp_path / "elsewhere")) == ["s.duckdb", "s.duckdb.wait"]
