"""A second Store on a file this process already holds keeps DuckDB's lock on it."""

from __future__ import annotations

import subprocess
import sys

from payamak_analytics.store import Store


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
