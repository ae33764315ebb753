"""The local copy of an account's history: a DuckDB file, read as pandas DataFrames.

Connections are short-lived: a reader opens, reads and closes; the sync holds its connection
for a second or two at a time. So a notebook reading and a CLI syncing take turns instead of
locking each other out, and when the file is held for longer the error says by whom.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

import duckdb
import pandas as pd

from .errors import PayamakError

DEFAULT_PATH = Path("data/payamak.duckdb")

# Each entry moves the schema one version up; applied in order, each in its own transaction.
MIGRATIONS = (
    """
    CREATE TABLE messages (
        message_id BIGINT PRIMARY KEY,
        action_datetime TIMESTAMPTZ,
        message_type VARCHAR,
        sender VARCHAR,
        receiver VARCHAR,
        content VARCHAR,
        pages INTEGER,
        lang VARCHAR,
        flash BOOLEAN,
        count INTEGER,
        sent INTEGER,
        not_sent INTEGER,
        status VARCHAR,
        send_status VARCHAR,
        send_method VARCHAR,
        cost DOUBLE,
        tariff DOUBLE,
        title VARCHAR,
        "desc" VARCHAR,
        is_read BOOLEAN,
        money_is_refunded BOOLEAN,
        user_id BIGINT,
        synced_at TIMESTAMPTZ
    );
    CREATE TABLE batches (
        batch_id BIGINT PRIMARY KEY,
        line VARCHAR,
        text VARCHAR,
        recipients INTEGER,
        sent_at TIMESTAMPTZ,
        campaign VARCHAR,
        complete BOOLEAN DEFAULT false,   -- every page of its report has been stored once
        pending INTEGER,                  -- recipients whose status may still change
        last_checked TIMESTAMPTZ
    );
    CREATE TABLE deliveries (
        batch_id BIGINT,
        "row" INTEGER,                    -- 1-based, as GetBatchDelivery's index
        number VARCHAR,
        operator VARCHAR,
        status INTEGER,                   -- the last real status seen (-3 only if never seen before)
        final BOOLEAN,
        expired BOOLEAN DEFAULT false,    -- the service answered -3: the report window has passed
        first_seen TIMESTAMPTZ,
        last_checked TIMESTAMPTZ,
        PRIMARY KEY (batch_id, "row")
    );
    CREATE TABLE delivery_events (
        batch_id BIGINT,
        "row" INTEGER,
        status INTEGER,
        observed_at TIMESTAMPTZ           -- the poll that first saw this status: an upper bound
    );
    CREATE TABLE sync_runs (
        run_id INTEGER PRIMARY KEY,
        started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        outcome VARCHAR,                  -- running, ok, failed, interrupted
        calls INTEGER,
        pages INTEGER,
        rows_new BIGINT,
        rows_updated BIGINT,
        retries INTEGER,
        error VARCHAR
    );
    CREATE TABLE sync_state (
        key VARCHAR PRIMARY KEY,
        value JSON
    );
    """,
    """
    CREATE TABLE campaigns (
        name VARCHAR PRIMARY KEY,
        line VARCHAR,
        text VARCHAR,
        flash BOOLEAN,
        recipients INTEGER,
        invalid_numbers INTEGER,
        duplicates INTEGER,
        blacklisted INTEGER,              -- NULL: the deployment cannot tell
        parts INTEGER,
        encoding VARCHAR,
        created_at TIMESTAMPTZ,
        state VARCHAR,                    -- sending, stopped, done
        stop_reason VARCHAR
    );
    CREATE TABLE campaign_chunks (
        campaign VARCHAR,
        chunk INTEGER,
        numbers VARCHAR[],
        state VARCHAR,                    -- planned, in_flight, sent, failed, unknown
        batch_id BIGINT,
        code INTEGER,
        updated_at TIMESTAMPTZ,
        PRIMARY KEY (campaign, chunk)
    );
    """,
    """
    CREATE TABLE alerts (
        alert_id INTEGER PRIMARY KEY,
        incident VARCHAR,                 -- what the incident is about: one open row per incident
        kind VARCHAR,                     -- delivery_drop, code_surge, credit, line_inactive, service, ...
        severity VARCHAR,                 -- warning, critical
        operator VARCHAR,
        line VARCHAR,
        code INTEGER,
        title VARCHAR,
        title_fa VARCHAR,
        evidence JSON,                    -- counts, rates with intervals, baseline used, codes that moved
        first_seen TIMESTAMPTZ,
        last_seen TIMESTAMPTZ,
        ended_at TIMESTAMPTZ              -- NULL while the incident lasts
    );
    CREATE TABLE watch_cycles (
        cycle_id INTEGER PRIMARY KEY,
        clock TIMESTAMPTZ,                -- the cycle's "now" (the service's clock)
        outcome VARCHAR,                  -- ok, failed
        code INTEGER,                     -- the service's code when it refused (9 updating, 10 disabled)
        error VARCHAR,
        calls INTEGER,
        rows_new BIGINT,
        rows_updated BIGINT,
        urgent_pages INTEGER,             -- report pages read first because they were closest to day 7
        unreadable BIGINT,                -- recipients whose report expired unread since the cycle before
        at_risk BIGINT,                   -- recipients whose report expires within a day, still unread
        raised INTEGER,
        ended INTEGER,
        elapsed DOUBLE
    );
    CREATE TABLE alert_sms (
        sent_at TIMESTAMPTZ,              -- wall clock: the hourly cap is about people's phones
        number VARCHAR,
        alert_id INTEGER,
        dry_run BOOLEAN
    );
    """,
)

MESSAGE_COLUMNS = (
    "message_id",
    "action_datetime",
    "message_type",
    "sender",
    "receiver",
    "content",
    "pages",
    "lang",
    "flash",
    "count",
    "sent",
    "not_sent",
    "status",
    "send_status",
    "send_method",
    "cost",
    "tariff",
    "title",
    "desc",
    "is_read",
    "money_is_refunded",
    "user_id",
)
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


class StoreLockedError(PayamakError):
    """Another process holds the DuckDB file."""


class Store:
    """The DuckDB file at `path`, created and migrated on first use."""

    def __init__(self, path: str | Path = DEFAULT_PATH, *, lock_wait: float = 10.0):
        self.path = Path(path)
        self.lock_wait = lock_wait
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            self._migrate(con)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # --- connections ----------------------------------------------------------------------
    def open(self) -> duckdb.DuckDBPyConnection:
        """A new connection; waits up to `lock_wait` seconds for another process to let go."""
        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                con = duckdb.connect(str(self.path))
                con.execute("SET TimeZone = 'Asia/Tehran'")
                return con
            except duckdb.IOException as error:
                holder = _LOCK_HOLDER.search(str(error))
                if holder is None:
                    raise
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"{self.path} is in use by another process (PID {holder['pid']}, {holder['program']}) and "
                        f"was not released within {self.lock_wait:g} s. Wait for it to finish (a sync?) or stop "
                        "it, then try again.",
                        f"پایگاه داده در دست فرایند دیگری است (PID {holder['pid']})",
                    ) from None
                time.sleep(0.05)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self.open()
        try:
            yield con
        finally:
            con.close()

    @staticmethod
    def _migrate(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        current = row[0] or 0
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            con.execute("BEGIN")
            con.execute(script)
            con.execute("INSERT INTO schema_version VALUES (?)", [version])
            con.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        with self.connect() as con:
            return con.execute("SELECT max(version) FROM schema_version").fetchone()[0]

    # --- reading --------------------------------------------------------------------------
    def sql(self, query: str, params: list | dict | None = None) -> pd.DataFrame:
        """Any SQL over the store's tables, as a DataFrame."""
        with self.connect() as con:
            return con.execute(query, params).df()

    def messages(
        self,
        direction: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        lines: tuple[str, ...] = (),
    ) -> pd.DataFrame:
        """Stored messages, newest first; `direction` is "sent" or "received"."""
        where, params = [], []
        if direction is not None:
            where.append("message_type = ?")
            params.append({"sent": "Out", "received": "In"}[direction])
        if since is not None:
            where.append("action_datetime >= ?")
            params.append(since)
        if until is not None:
            where.append("action_datetime < ?")
            params.append(until)
        if lines:
            where.append("(CASE WHEN message_type = 'In' THEN receiver ELSE sender END) IN (SELECT unnest(?))")
            params.append(list(lines))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.sql(f"SELECT * FROM messages {clause} ORDER BY message_id DESC", params)

    def batches(self) -> pd.DataFrame:
        return self.sql("SELECT * FROM batches ORDER BY batch_id DESC")

    def deliveries(self, batch_id: int | None = None) -> pd.DataFrame:
        """Every recipient of every stored batch, with its current status and the batch's line and time."""
        clause, params = ("WHERE d.batch_id = ?", [batch_id]) if batch_id is not None else ("", [])
        return self.sql(
            f"""
            SELECT d.*, b.line, b.sent_at, b.campaign
            FROM deliveries d JOIN batches b USING (batch_id) {clause}
            ORDER BY d.batch_id, d."row" """,
            params,
        )

    def sync_runs(self) -> pd.DataFrame:
        return self.sql("SELECT * FROM sync_runs ORDER BY run_id")


# --- writing, inside a transaction the caller holds -----------------------------------------------
def read_state(con: duckdb.DuckDBPyConnection, key: str) -> dict | None:
    row = con.execute("SELECT value FROM sync_state WHERE key = ?", [key]).fetchone()
    return json.loads(row[0]) if row else None


def write_state(con: duckdb.DuckDBPyConnection, key: str, value: dict) -> None:
    con.execute(
        "INSERT INTO sync_state VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, json.dumps(value)],
    )


def upsert_messages(con: duckdb.DuckDBPyConnection, page: pd.DataFrame, synced_at: datetime) -> tuple[int, int]:
    """Insert or refresh a page of messages; returns (new rows, updated rows).

    Most rows of a page are new, and a plain insert costs half an upsert: only the rows already
    stored go through ON CONFLICT. Pages fetched while new messages arrive overlap (each new
    message pushes every row one place down), so a row read twice is kept once, as last read.
    """
    if not page["message_id"].is_unique:
        page = page.drop_duplicates("message_id", keep="last")
    columns = ", ".join(f'"{c}"' for c in MESSAGE_COLUMNS)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in MESSAGE_COLUMNS[1:])
    con.register("page", page)
    try:
        updated = con.execute("SELECT count(*) FROM page SEMI JOIN messages USING (message_id)").fetchone()[0]
        if updated:
            con.execute(
                f"""INSERT INTO messages ({columns}, synced_at) SELECT {columns}, ? FROM page
                    SEMI JOIN messages USING (message_id)
                    ON CONFLICT (message_id) DO UPDATE SET {updates}, synced_at = excluded.synced_at""",
                [synced_at],
            )
        con.execute(
            f"""INSERT INTO messages ({columns}, synced_at) SELECT {columns}, ? FROM page
                {"ANTI JOIN messages USING (message_id)" if updated else ""}""",
            [synced_at],
        )
    finally:
        con.unregister("page")
    return len(page) - updated, updated


def add_batches_from_messages(con: duckdb.DuckDBPyConnection) -> None:
    """Every sent record with recipients is a batch (its MessageId is its batchSmsId); batches
    sent by send_campaign carry their campaign's name."""
    con.execute("""
        INSERT INTO batches (batch_id, line, text, recipients, sent_at, complete)
        SELECT message_id, sender, content, count, action_datetime, false
        FROM messages WHERE message_type = 'Out' AND count > 0
        ON CONFLICT (batch_id) DO NOTHING""")
    con.execute("""
        UPDATE batches SET campaign = c.campaign FROM campaign_chunks c
        WHERE c.batch_id = batches.batch_id AND batches.campaign IS NULL""")


def upsert_deliveries(con: duckdb.DuckDBPyConnection, page: pd.DataFrame, observed_at: datetime) -> tuple[int, int]:
    """Merge a page of (batch_id, row, number, operator, status, final) with what is stored.

    -3 (report expired) freezes the last status seen; -1 (provider error) keeps it; a change
    of status is written to delivery_events with the time of this poll.
    """
    con.register("page", page)
    try:
        con.execute(
            """
            INSERT INTO delivery_events
            SELECT p.batch_id, p."row", p.status, ?
            FROM page p LEFT JOIN deliveries d ON d.batch_id = p.batch_id AND d."row" = p."row"
            WHERE p.status <> -1 AND (d.status IS NULL OR (p.status <> -3 AND p.status <> d.status))""",
            [observed_at],
        )
        new = con.execute("""
            SELECT count(*) FROM page p ANTI JOIN deliveries d ON d.batch_id = p.batch_id AND d."row" = p."row"
            """).fetchone()[0]
        con.execute(
            """
            INSERT INTO deliveries (batch_id, "row", number, operator, status, final, expired, first_seen, last_checked)
            SELECT batch_id, "row", number, operator, status, final, status = -3, ?, ? FROM page
            ON CONFLICT (batch_id, "row") DO UPDATE SET
                number = excluded.number,
                operator = excluded.operator,
                status = CASE WHEN excluded.status IN (-3, -1) THEN deliveries.status ELSE excluded.status END,
                final = CASE WHEN excluded.status = -3 THEN true
                             WHEN excluded.status = -1 THEN deliveries.final ELSE excluded.final END,
                expired = deliveries.expired OR excluded.status = -3,
                last_checked = excluded.last_checked""",
            [observed_at, observed_at],
        )
    finally:
        con.unregister("page")
    return new, len(page) - new


def close_batches(con: duckdb.DuckDBPyConnection, batch_ids: list[int], checked_at: datetime) -> None:
    """Record that these batches' reports were read in full, and how many rows may still change."""
    if not batch_ids:
        return
    con.execute(
        """
        UPDATE batches SET complete = true, last_checked = ?,
            pending = (SELECT count(*) FROM deliveries d WHERE d.batch_id = batches.batch_id AND NOT d.final)
        WHERE batch_id IN (SELECT unnest(?))""",
        [checked_at, batch_ids],
    )


class Writer:
    """The sync's connection: one transaction a page, handed back every `hold_seconds`.

    Opening a DuckDB file costs tens of milliseconds, too much for every 100-row page; holding
    it for a whole sync would lock a notebook out. Reopening every second or so does neither.
    """

    def __init__(self, store: Store, hold_seconds: float = 1.0):
        self.store = store
        self.hold_seconds = hold_seconds
        self._con: duckdb.DuckDBPyConnection | None = None
        self._opened = 0.0

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._con is not None and time.monotonic() - self._opened > self.hold_seconds:
            self.close()
        if self._con is None:
            self._con, self._opened = self.store.open(), time.monotonic()
        self._con.execute("BEGIN")
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def export_parquet(store: Store, folder: str | Path) -> list[Path]:
    """Write every table as Parquet under `folder`, the big ones partitioned by month
    (year=YYYY/month=M), for Spark, Trino or DuckDB itself to read."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    partitioned = {
        "messages": "SELECT *, year(action_datetime) AS year, month(action_datetime) AS month FROM messages",
        "batches": "SELECT *, year(sent_at) AS year, month(sent_at) AS month FROM batches",
        "deliveries": """SELECT d.*, year(b.sent_at) AS year, month(b.sent_at) AS month
                         FROM deliveries d JOIN batches b USING (batch_id)""",
        "delivery_events": """SELECT *, year(observed_at) AS year, month(observed_at) AS month FROM delivery_events""",
    }
    written = []
    with store.connect() as con:
        for table, query in partitioned.items():
            target = folder / table
            con.execute(
                f"COPY ({query}) TO '{target}' (FORMAT PARQUET, PARTITION_BY (year, month), OVERWRITE_OR_IGNORE)"
            )
            written.append(target)
        for table in ("sync_runs", "sync_state"):
            target = folder / f"{table}.parquet"
            con.execute(f"COPY {table} TO '{target}' (FORMAT PARQUET)")
            written.append(target)
    return written


# --- alerts and the watch's cycles (payamak_analytics.watch, .alerts, .sinks) ------------------
ALERT_COLUMNS = (
    "incident",
    "kind",
    "severity",
    "operator",
    "line",
    "code",
    "title",
    "title_fa",
    "evidence",
    "first_seen",
    "last_seen",
    "ended_at",
)


@contextmanager
def _transaction(store: Store) -> Iterator[duckdb.DuckDBPyConnection]:
    with store.connect() as con:
        con.execute("BEGIN")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def read_alerts(store: Store, *, active: bool = False, since: datetime | None = None) -> pd.DataFrame:
    """Stored alerts, newest first; `active`: only incidents that have not ended."""
    where = ["ended_at IS NULL"] if active else []
    params: list = []
    if since is not None:
        where.append("coalesce(ended_at, last_seen) >= ?")
        params.append(since)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return store.sql(f"SELECT * FROM alerts {clause} ORDER BY first_seen DESC, alert_id DESC", params)


def save_incidents(store: Store, opened: list[dict], seen: list[dict], ended: list[int], now: datetime) -> list[int]:
    """One cycle's incident changes in one transaction: new incidents (returns their ids), fresh
    evidence for those still open, and the end of those that cleared. An incident already open is
    never opened twice: the check and the insert share the transaction."""
    ids = []
    with _transaction(store) as con:
        for alert in opened:
            found = con.execute(
                "SELECT alert_id FROM alerts WHERE incident = ? AND ended_at IS NULL", [alert["incident"]]
            ).fetchone()
            if found:
                ids.append(None)
                continue
            alert_id = con.execute("SELECT coalesce(max(alert_id), 0) + 1 FROM alerts").fetchone()[0]
            values = [alert.get(c) for c in ALERT_COLUMNS]
            values[ALERT_COLUMNS.index("evidence")] = json.dumps(alert["evidence"], ensure_ascii=False)
            con.execute(
                f"INSERT INTO alerts (alert_id, {', '.join(ALERT_COLUMNS)}) VALUES ({', '.join('?' * 13)})",
                [alert_id, *values],
            )
            ids.append(alert_id)
        for alert in seen:
            con.execute(
                """UPDATE alerts SET last_seen = ?, severity = ?, kind = ?, title = ?, title_fa = ?, evidence = ?
                   WHERE alert_id = ?""",
                [
                    now,
                    alert["severity"],
                    alert["kind"],
                    alert["title"],
                    alert["title_fa"],
                    json.dumps(alert["evidence"], ensure_ascii=False),
                    alert["alert_id"],
                ],
            )
        if ended:
            con.execute(
                "UPDATE alerts SET ended_at = ? WHERE alert_id IN (SELECT unnest(?)) AND ended_at IS NULL", [now, ended]
            )
    return ids


def record_watch_cycle(store: Store, cycle: dict) -> int:
    """Append one watch cycle; returns its number."""
    with _transaction(store) as con:
        cycle_id = con.execute("SELECT coalesce(max(cycle_id), 0) + 1 FROM watch_cycles").fetchone()[0]
        columns = ["cycle_id", *cycle]
        con.execute(
            f"INSERT INTO watch_cycles ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [cycle_id, *cycle.values()],
        )
    return cycle_id


def read_watch_cycles(store: Store, last: int = 100) -> pd.DataFrame:
    """The newest `last` watch cycles, oldest first."""
    return store.sql(
        "SELECT * FROM (SELECT * FROM watch_cycles ORDER BY cycle_id DESC LIMIT ?) ORDER BY cycle_id", [last]
    )


def urgent_batches(store: Store, now: datetime, older_than: timedelta, window: timedelta) -> pd.DataFrame:
    """Batches whose report is still readable (younger than `window`) but older than `older_than`,
    with recipients whose status may still change: (batch_id, recipients, complete, pages to read),
    those closest to expiry first. A batch never read has every page to read; every stored sent
    message is a batch."""
    with _transaction(store) as con:
        add_batches_from_messages(con)
    return store.sql(
        """
        SELECT b.batch_id, b.recipients, b.complete, b.sent_at,
               CASE WHEN b.complete THEN (SELECT list(DISTINCT ((d."row" - 1) // 100) * 100 + 1 ORDER BY 1)
                                          FROM deliveries d WHERE d.batch_id = b.batch_id AND NOT d.final)
                    ELSE range(1, greatest(b.recipients, 1) + 1, 100) END AS pages
        FROM batches b
        WHERE b.sent_at > ? AND b.sent_at <= ? AND (NOT b.complete OR b.pending > 0)
        ORDER BY b.sent_at, b.batch_id""",
        [now - window, now - older_than],
    )


def save_delivery_pages(store: Store, page: pd.DataFrame, closed: list[int], observed_at: datetime) -> None:
    """Delivery rows read outside a sync, stored exactly as a sync stores them, in one transaction."""
    with _transaction(store) as con:
        if len(page):
            upsert_deliveries(con, page, observed_at)
        close_batches(con, closed, observed_at)


def report_risk(
    store: Store, now: datetime, previous: datetime, window: timedelta, margin: timedelta, stale: timedelta
) -> dict:
    """Recipients whose report expired between `previous` and `now` without the store having read
    it in the `stale` before (lost for good), and those whose report expires within `margin` that
    the store has not read for `stale` (at risk). A batch never read counts all its recipients."""
    unread = """CASE WHEN NOT b.complete THEN b.recipients
                     WHEN b.last_checked < least(b.sent_at + $window, $now) - $stale THEN b.pending ELSE 0 END"""
    row = store.sql(
        f"""
        SELECT coalesce(sum(CASE WHEN b.sent_at <= $lost_to THEN {unread} END), 0) AS unreadable,
               coalesce(sum(CASE WHEN b.sent_at > $lost_to THEN {unread} END), 0) AS at_risk
        FROM batches b WHERE b.sent_at > $lost_from AND b.sent_at <= $risk_to""",
        {
            "lost_from": previous - window,
            "lost_to": now - window,
            "risk_to": now - window + margin,
            "window": window,
            "now": now,
            "stale": stale,
        },
    ).iloc[0]
    return {"unreadable": int(row["unreadable"]), "at_risk": int(row["at_risk"])}


def claim_alert_sms(store: Store, numbers: list[str], alert_id: int, dry_run: bool, cap: int, now: datetime) -> list[str]:
    """The numbers that may get this alert's SMS without the last hour's count passing `cap`;
    they are recorded before the send (a crash after the claim costs a message, never the cap)."""
    with _transaction(store) as con:
        used = con.execute(
            "SELECT count(*) FROM alert_sms WHERE sent_at > ? AND dry_run = ?", [now - timedelta(hours=1), dry_run]
        ).fetchone()[0]
        granted = numbers[: max(cap - used, 0)]
        for number in granted:
            con.execute("INSERT INTO alert_sms VALUES (?, ?, ?, ?)", [now, number, alert_id, dry_run])
    return granted
