"""Reading a loaded destination back as the tables the report queries read.

DuckDB reads a dlt destination where it lies: a DuckDB (or MotherDuck) file, Parquet files of
dlt's filesystem destination, or PostgreSQL (through DuckDB's postgres extension). `attach_destination`
attaches it read-only to a DuckDB connection and names, as temporary views, `messages`,
`batches`, `deliveries` and `delivery_events` with the columns of the local store (plus
`account`), limited to the accounts asked for. `DestinationStore` wraps that in the two methods
the report functions call on a Store (`connect()` and `sql()`), so they run unchanged on a
warehouse:

    analytics.delivery_report(DestinationStore("warehouse.duckdb", accounts=["shop"]), by=["operator"])
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from ..errors import InputError, NotFoundError, TransportError, UnsupportedOperationError

ALIAS = "payamak_destination"
TABLES = ("messages", "deliveries", "delivery_events", "batches", "sync_runs")
_KEYS = {
    "messages": "message_id",
    "deliveries": 'batch_id, "row"',
    "delivery_events": 'batch_id, "row", status',
    "batches": "batch_id",
    "sync_runs": "run_id",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def attach_destination(
    con: duckdb.DuckDBPyConnection,
    location: str | Path,
    *,
    dataset: str = "sms",
    accounts: Sequence[str] = (),
) -> duckdb.DuckDBPyConnection:
    """Attach the destination at `location` (a .duckdb file, a folder of Parquet files written by
    dlt's filesystem destination, or a postgresql:// address) and create the report views."""
    if not _IDENTIFIER.fullmatch(dataset):
        raise InputError(f"The dataset name {dataset!r} is not a plain identifier.", "نام مجموعه داده نامعتبر است")
    sources = _sources(con, str(location), dataset)
    wanted = ", ".join("'" + str(a).replace("'", "''") + "'" for a in accounts)
    where = f"WHERE account IN ({wanted})" if wanted else ""
    con.execute("SET TimeZone = 'Asia/Tehran'")  # days and hours of the reports are Tehran's
    for statement in _views({table: f"(SELECT * FROM {source} {where})" for table, source in sources.items()}):
        con.execute(statement)
    return con


def _sources(con: duckdb.DuckDBPyConnection, location: str, dataset: str) -> dict[str, str]:
    """FROM clauses of the loaded tables, each row once (Parquet files are appended, never merged)."""
    if location.startswith(("postgresql://", "postgres://")):
        try:
            con.execute("LOAD postgres")
        except duckdb.Error:
            raise UnsupportedOperationError(
                "DuckDB's postgres extension is not installed: run INSTALL postgres once with network access.",
                "افزونه postgres برای DuckDB نصب نیست",
            ) from None
        try:
            con.execute(f"ATTACH '{location}' AS {ALIAS} (TYPE postgres, READ_ONLY)")
        except duckdb.Error as error:  # its text may hold the address, password and all
            raise TransportError(
                f"Could not attach the PostgreSQL destination ({type(error).__name__}); check the address and the server.",
                "اتصال به PostgreSQL برقرار نشد",
            ) from None
        return {t: f"{ALIAS}.{dataset}.{t}" for t in TABLES}
    path = Path(location)
    if path.is_dir():
        return {t: _latest_parquet(path / dataset / t, t) for t in TABLES if (path / dataset / t).is_dir()}
    if not path.is_file():
        raise NotFoundError(
            f"No destination at {location}: give a .duckdb file, a Parquet folder or a postgresql:// address.",
            "مقصد پیدا نشد",
        )
    con.execute(f"ATTACH '{path}' AS {ALIAS} (READ_ONLY)")
    present = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ?", [ALIAS, dataset]
        ).fetchall()
    }
    return {t: f"{ALIAS}.{dataset}.{t}" for t in TABLES if t in present}


def _latest_parquet(folder: Path, table: str) -> str:
    """The newest copy of each row: dlt names each file after its load, so the greatest file name wins."""
    pattern = str(folder / "*.parquet").replace("'", "''")
    return f"""(SELECT * EXCLUDE (filename) FROM read_parquet('{pattern}', filename = true, union_by_name = true)
               QUALIFY row_number() OVER (PARTITION BY account, {_KEYS[table]} ORDER BY filename DESC) = 1)"""


def _views(tables: dict[str, str]) -> list[str]:
    """The store's tables over the loaded ones; a table nothing was loaded into reads as empty."""
    if "messages" not in tables:
        raise NotFoundError(
            "The destination holds no messages table: run the pipeline first (or check dataset=).",
            "جدول پیام ها در مقصد نیست",
        )
    events = tables.get(
        "delivery_events",
        '(SELECT NULL::VARCHAR account, NULL::BIGINT batch_id, NULL::BIGINT "row", '
        "NULL::BIGINT status, NULL::TIMESTAMPTZ observed_at WHERE false)",
    )
    deliveries = tables.get(
        "deliveries",
        '(SELECT NULL::VARCHAR account, NULL::BIGINT batch_id, NULL::BIGINT "row", '
        "NULL::VARCHAR number, NULL::VARCHAR operator, NULL::BIGINT status, NULL::BOOLEAN final, "
        "NULL::BOOLEAN expired, NULL::TIMESTAMPTZ last_checked WHERE false)",
    )
    batches = tables.get(
        "batches",
        "(SELECT NULL::VARCHAR account, NULL::BIGINT batch_id, NULL::VARCHAR line, "
        "NULL::BIGINT recipients, NULL::TIMESTAMPTZ sent_at, NULL::BOOLEAN complete, "
        "NULL::BIGINT pending, NULL::TIMESTAMPTZ last_checked WHERE false)",
    )
    return [
        f"CREATE OR REPLACE TEMP VIEW messages AS SELECT * FROM {tables['messages']}",
        f'CREATE OR REPLACE TEMP VIEW delivery_events AS SELECT account, batch_id, "row", status, observed_at FROM {events}',
        f"""CREATE OR REPLACE TEMP VIEW batches AS
            SELECT b.batch_id, b.line, m.content AS text, b.recipients, b.sent_at, NULL::VARCHAR AS campaign,
                   b.complete, b.pending, b.last_checked, b.account
            FROM {batches} b LEFT JOIN messages m ON m.account = b.account AND m.message_id = b.batch_id""",
        f"""CREATE OR REPLACE TEMP VIEW deliveries AS
            SELECT d.batch_id, d."row", d.number, d.operator, d.status, d.final, d.expired,
                   e.first_seen, d.last_checked, d.account
            FROM {deliveries} d LEFT JOIN (SELECT account, batch_id, "row", min(observed_at) AS first_seen
                                           FROM delivery_events GROUP BY ALL) e USING (account, batch_id, "row")""",
    ]


class DestinationStore:
    """A loaded destination, read like a Store by the report functions (`connect()`, `sql()`)."""

    def __init__(self, location: str | Path, *, dataset: str = "sms", accounts: Sequence[str] = ()):
        self.location, self.dataset, self.accounts = str(location), dataset, tuple(accounts)
        self.path = Path(self.location) if "://" not in self.location else self.location

    def __repr__(self) -> str:
        shown = re.sub(r"//[^@/]*@", "//***@", self.location)  # never a password of a postgresql:// address
        return f"DestinationStore({shown!r}, dataset={self.dataset!r}, accounts={list(self.accounts)})"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = duckdb.connect()
        try:
            yield attach_destination(con, self.location, dataset=self.dataset, accounts=self.accounts)
        finally:
            con.close()

    def sql(self, query: str, params: list | dict | None = None) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(query, params).df()
