"""Parquet copies of the store, for Spark, Trino or DuckDB itself to read."""

from __future__ import annotations

from pathlib import Path

from ..errors import StoreError

_PARTITIONED = {
    "messages": "SELECT *, year(action_datetime) AS year, month(action_datetime) AS month FROM messages",
    "batches": "SELECT *, year(sent_at) AS year, month(sent_at) AS month FROM batches",
    "deliveries": """SELECT d.*, year(b.sent_at) AS year, month(b.sent_at) AS month
                     FROM deliveries d JOIN batches b USING (batch_id)""",
    "delivery_events": "SELECT *, year(observed_at) AS year, month(observed_at) AS month FROM delivery_events",
}
_WHOLE = ("sync_runs", "sync_state")


def export_parquet(store, folder: str | Path) -> list[Path]:
    """Write every table as Parquet under `folder`, the big ones partitioned by month
    (year=YYYY/month=M). `folder` must be a folder or not exist yet."""
    folder = Path(folder)
    for path in (folder, *folder.parents):
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path} is a file: give export a folder (new, or one it wrote before).")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with store.connect() as con:
        for table, query in _PARTITIONED.items():
            target = folder / table
            con.execute(
                f"COPY ({query}) TO '{_quoted(target)}' (FORMAT PARQUET, PARTITION_BY (year, month), OVERWRITE_OR_IGNORE)"
            )
            written.append(target)
        for table in _WHOLE:
            target = folder / f"{table}.parquet"
            con.execute(f"COPY {table} TO '{_quoted(target)}' (FORMAT PARQUET)")
            written.append(target)
    return written


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
