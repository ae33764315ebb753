"""What the sync writes: messages, batches, deliveries, its cursor and its runs.

Each method is one transaction, so the rows of a page and the cursor that says they are
stored commit together or not at all.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import duckdb
import numpy as np

from .. import phone, recheck
from ..client.rows import Rows
from ..errors import StoreError
from .processes import ProcessId
from .schema import MESSAGE_COLUMNS

RUN_COUNTERS = (
    "calls",
    "pages",
    "rows_new",
    "rows_updated",
    "retries",
    "requeued",
    "pauses",
    "paused_seconds",
    "batches_unreadable",
    "recipients_unreadable",
)
# Recipients of young, fully read batches that may still change, whose pages are due again.
_PENDING = f"""FROM deliveries d JOIN batches b USING (batch_id)
              WHERE b.complete AND NOT b.gone AND NOT d.final AND b.sent_at > $young_after
              AND {recheck.due_sql("b.sent_at", "b.last_checked", "$now")}"""


LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORTS = {"http": 80, "https": 443}
# The records of this process's runs not written when they ended (another program held their
# store's file past the wait, or a Ctrl-C came during the write): the next run of the process on
# the file writes them first. {(file, run_id): (finished_at, outcome, error, counters)}
_UNWRITTEN: dict[tuple[str, int], tuple] = {}


def service_address(endpoint: str) -> str:
    """The address a store records: the endpoint without what does not change the service that
    answers (a user-info part, the host's case, the scheme's own port), and without the port for
    a service on this machine (the built-in simulator listens on a new port at each start)."""
    parts = urlsplit(endpoint)
    try:
        port = parts.port
    except ValueError:  # no port a call could reach: compared as written
        return endpoint
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname or ""
    if port is not None and parts.hostname not in LOOPBACK and port != DEFAULT_PORTS.get(parts.scheme):
        host += f":{port}"
    return urlunsplit(parts._replace(netloc=host))


class SyncTables:
    """Named writes and planning reads of the sync."""

    # --- whose store ----------------------------------------------------------------------
    def check_account(self, username: str, address: str, *, new_address: bool = False) -> None:
        """Refuse a sync of another account or address than the one this store records (none
        recorded: any); writes nothing. `new_address` accepts a new address for the same account."""
        with self.connect() as con:
            known = dict(con.execute("SELECT key, value FROM store_meta").fetchall())
        self._refuse_another(known, username, service_address(address), new_address)

    def bind_account(self, username: str, address: str, *, new_address: bool = False) -> None:
        """Record the account and service address of the first sync; refuse another one later.

        `new_address` accepts a new address for the same account (the service moved)."""
        address = service_address(address)
        with self.transaction() as con:
            known = dict(con.execute("SELECT key, value FROM store_meta").fetchall())
            if not known:
                con.executemany("INSERT INTO store_meta VALUES (?, ?)", [["account", username], ["address", address]])
                return
            self._refuse_another(known, username, address, new_address)
            if service_address(known.get("address") or "") != address:
                con.execute("UPDATE store_meta SET value = ? WHERE key = 'address'", [address])

    def _refuse_another(self, known: dict, username: str, address: str, new_address: bool) -> None:
        if not known:
            return
        if known.get("account") != username:
            raise StoreError(
                f"{self.path} holds the history of account {known.get('account')!r}, not {username!r}: "
                "give each account its own store (--db or PAYAMAK_STORE).",
                "این پایگاه داده متعلق به حساب دیگری است",
            )
        if service_address(known.get("address") or "") != address and not new_address:  # as recorded before too
            raise StoreError(
                f"{self.path} was synced from {known.get('address')}, not {address}: use another store "
                "(--db) for another service, or, if the service has moved, run the sync with "
                "--new-address (new_address=True) to record its new address.",
                "این پایگاه داده از نشانی دیگری همگام شده است",
            )

    # --- runs -----------------------------------------------------------------------------
    def start_sync_run(self, started_at: datetime) -> int:
        """A new run, recorded as running; runs left running by a process that has died are
        marked killed first."""
        me = ProcessId.current()
        unwritten = {run: record for (file, run), record in _UNWRITTEN.items() if file == str(self._file)}
        with self.transaction() as con:
            for run, record in unwritten.items():
                _write_run(con, run, *record)
            running = con.execute(
                "SELECT run_id, host, pid, process_start FROM sync_runs WHERE outcome = 'running'"
            ).fetchall()
            dead = [run for run, host, pid, start in running if ProcessId(host or "", pid or 0, start).alive() is False]
            if dead:
                con.execute(
                    "UPDATE sync_runs SET outcome = 'killed', error = 'the process ended without finishing' "
                    "WHERE run_id IN (SELECT unnest(?))",
                    [dead],
                )
            run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM sync_runs").fetchone()[0]
            con.execute(
                "INSERT INTO sync_runs (run_id, started_at, outcome, host, pid, process_start) "
                "VALUES (?, ?, 'running', ?, ?, ?)",
                [run_id, started_at, me.host, me.pid, me.start],
            )
        for run in unwritten:
            _UNWRITTEN.pop((str(self._file), run), None)
        return run_id

    def finish_sync_run(
        self,
        run_id: int,
        finished_at: datetime,
        outcome: str,
        counters: dict,
        error: str | None,
        *,
        later: bool = False,
    ) -> None:
        """Record how a run ended; `later`: another program holds the file, so the next run of
        this process on it writes the record. Kept until written: a write that fails (the file
        held past the wait, a Ctrl-C meanwhile) leaves it to the next run, not `running` for good."""
        key = (str(self._file), run_id)
        record = _UNWRITTEN[key] = (finished_at, outcome, error, [counters.get(name, 0) for name in RUN_COUNTERS])
        if later:
            return
        with self.transaction() as con:
            _write_run(con, run_id, *record)
        _UNWRITTEN.pop(key, None)  # the next run of another thread may have written it first

    def gone_untold(self) -> dict[int, int]:
        """{batch_id: recipients} of the batches retired as gone that no watch cycle has counted
        yet, whichever process retired them and whether or not its run was recorded; a cycle
        marks them counted when it records itself (`record_watch_cycle`)."""
        with self.connect() as con:
            found = con.execute("SELECT batch_id, recipients FROM batches WHERE gone_untold").fetchall()
        return {batch: n or 0 for batch, n in found}

    # --- messages -------------------------------------------------------------------------
    def walk_state(self, key: str) -> dict | None:
        """The saved state of the message walk `key` (see walk.MessageWalk)."""
        with self.connect() as con:
            row = con.execute("SELECT value FROM sync_state WHERE key = ?", [key]).fetchone()
        return json.loads(row[0]) if row else None

    def save_message_page(self, key: str, rows: Rows, state: dict, synced_at: datetime) -> tuple[int, int]:
        """Store a page of messages and the walk's state in one transaction; (new, updated)."""
        with self.transaction() as con:
            counts = _upsert_messages(con, rows, synced_at) if len(rows) else (0, 0)
            con.execute(
                "INSERT INTO sync_state VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, json.dumps(state)],
            )
        return counts

    # --- batches and deliveries -----------------------------------------------------------
    def add_batches_from_messages(self) -> None:
        """Every sent record with recipients is a batch (its MessageId is its batchSmsId);
        batches sent by a campaign carry its name."""
        with self.transaction() as con:
            con.execute("""
                INSERT INTO batches (batch_id, line, text, recipients, sent_at, complete)
                SELECT message_id, sender, content, count, action_datetime, false
                FROM messages WHERE message_type = 'Out' AND count > 0
                ON CONFLICT (batch_id) DO NOTHING""")
            con.execute("""
                UPDATE batches SET campaign = c.campaign FROM campaign_chunks c
                WHERE c.batch_id = batches.batch_id AND batches.campaign IS NULL""")

    def delivery_pages_due(self, young_after: datetime, now: datetime) -> int:
        """How many report pages this run expects to read (for the progress bar)."""
        with self.connect() as con:
            return con.execute(
                f"""SELECT (SELECT coalesce(sum(greatest(ceil(recipients / 100.0), 1)), 0)
                            FROM batches WHERE NOT complete AND NOT gone)
                         + (SELECT count(DISTINCT (d.batch_id, (d."row" - 1) // 100)) {_PENDING})""",
                {"young_after": young_after, "now": now},
            ).fetchone()[0]

    def known_batches(self, lowest: int, highest: int) -> dict[int, tuple[int | None, bool]]:
        """{batch_id: (recipients, settled)} of the stored batches from `lowest` to `highest`;
        settled: its report is read in full, or it was closed as gone."""
        with self.connect() as con:
            found = con.execute(
                "SELECT batch_id, recipients, complete OR gone FROM batches WHERE batch_id BETWEEN ? AND ?",
                [lowest, highest],
            ).fetchall()
        return {batch: (recipients, settled) for batch, recipients, settled in found}

    def unread_batches(self, after: int, limit: int) -> list[tuple[int, int]]:
        """(batch_id, recipients) of batches whose report has not been read in full, by id."""
        with self.connect() as con:
            return con.execute(
                "SELECT batch_id, recipients FROM batches WHERE NOT complete AND NOT gone AND batch_id > ? "
                "ORDER BY batch_id LIMIT ?",
                [after, limit],
            ).fetchall()

    def pending_pages(
        self,
        young_after: datetime,
        now: datetime,
        after: int,
        limit: int,
        read_between: tuple[datetime, datetime],
    ):
        """(batch_id, recipients, [page indexes]) of young batches with recipients still in flight,
        whose pages are due to be asked again at `now` (see `recheck`). `read_between`: a run's
        start and the time it plans at; a batch read in that span is this run's read, not one of
        a clock that was ahead (which `recheck` asks again), and is not due again."""
        read_from, read_to = read_between
        with self.connect() as con:
            return con.execute(
                f"""SELECT d.batch_id, any_value(b.recipients),
                           list(DISTINCT ((d."row" - 1) // 100) * 100 + 1 ORDER BY 1) {_PENDING}
                    AND NOT coalesce(b.last_checked BETWEEN $read_from AND $read_to, false)
                    AND d.batch_id > $after GROUP BY d.batch_id ORDER BY d.batch_id LIMIT $limit""",
                {
                    "young_after": young_after,
                    "now": now,
                    "after": after,
                    "limit": limit,
                    "read_from": read_from,
                    "read_to": read_to,
                },
            ).fetchall()

    def save_delivery_pages(
        self, rows: Rows | None, finished: list[int], unknown: list[int], observed_at: datetime
    ) -> tuple[int, int, list[int], list[int]]:
        """Merge report rows; close the `finished` batches whose stored rows add up to their
        recipients; note the `unknown` ones (answered -2, or read no further after a short page)
        and the short ones. Returns (new, updated, not adding up, strangers): a stranger's rows
        named other recipients than those stored, and none of them was taken (`_upsert_deliveries`)."""
        with self.transaction() as con:
            new, updated, strangers = 0, 0, []
            if rows is not None and len(rows):
                new, updated, strangers = _upsert_deliveries(con, rows, observed_at)
            short = _close_batches(con, [b for b in finished if b not in strangers], observed_at)
            if unknown or short:  # asked again later; closed as gone only after the grace period
                con.execute(
                    "UPDATE batches SET unknown_since = coalesce(unknown_since, ?) WHERE batch_id IN (SELECT unnest(?))",
                    [observed_at, unknown + short],
                )
        return new, updated, short, strangers

    def retire_unknown_batches(self, unknown_before: datetime, retired_at: datetime) -> tuple[int, int]:
        """Close as gone the batches the service has called unknown since before `unknown_before`;
        returns (batches, recipients) closed."""
        with self.transaction() as con:
            found = con.execute(
                f"""UPDATE batches SET gone = true, complete = true,
                       -- a report already past its week was counted as expired unread (report_risk)
                       gone_untold = sent_at > ?::TIMESTAMPTZ - INTERVAL {recheck.REPORT_WINDOW.days} DAY
                   WHERE NOT complete AND NOT gone AND unknown_since < ? RETURNING recipients""",
                [retired_at, unknown_before],
            ).fetchall()
        return len(found), sum(n or 0 for (n,) in found)


def _upsert_messages(con: duckdb.DuckDBPyConnection, page: Rows, synced_at: datetime) -> tuple[int, int]:
    """Insert or refresh a page of messages; returns (new rows, updated rows).

    Most rows of a page are new, and a plain insert costs half an upsert: only the rows already
    stored go through ON CONFLICT. A row read twice (pages overlap) is kept once, as last read.
    """
    ids = np.ma.getdata(page["message_id"])
    if len(np.unique(ids)) < len(ids):  # each id's last reading: its first from the end
        firsts_from_end = np.unique(ids[::-1], return_index=True)[1]
        page = page.take(np.sort(len(ids) - 1 - firsts_from_end))
    columns = ", ".join(f'"{c}"' for c in MESSAGE_COLUMNS)
    # the page's times are UTC without a zone (client/rows.py)
    values = columns.replace('"action_datetime"', "timezone('UTC', \"action_datetime\")")
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in MESSAGE_COLUMNS[1:])
    con.register("page", page.columns)
    try:
        updated = con.execute("SELECT count(*) FROM page SEMI JOIN messages USING (message_id)").fetchone()[0]
        if updated:
            con.execute(
                f"""INSERT INTO messages ({columns}, synced_at) SELECT {values}, ? FROM page
                    SEMI JOIN messages USING (message_id)
                    ON CONFLICT (message_id) DO UPDATE SET {updates}, synced_at = excluded.synced_at""",
                [synced_at],
            )
        con.execute(
            f"""INSERT INTO messages ({columns}, synced_at) SELECT {values}, ? FROM page
                {"ANTI JOIN messages USING (message_id)" if updated else ""}""",
            [synced_at],
        )
    finally:
        con.unregister("page")
    return len(page) - updated, updated


def _upsert_deliveries(con: duckdb.DuckDBPyConnection, page: Rows, observed_at: datetime) -> tuple[int, int, list[int]]:
    """Merge (batch_id, row, number, operator, status, final) rows with what is stored; returns
    (new, updated, strangers).

    -3 (report expired) freezes the last status seen; -1 (provider error) keeps it, and so does
    a status in flight after a final one (a final status does not change: taken back, it would
    be lost for good once the report expires); a change of status is written to delivery_events
    with the time of this poll. A row of a batch holds one recipient for good: rows naming
    another at a stored row (however each is written: `phone.same_recipient`) are not the
    batch's answer (a stale or misrouted page, as a caching proxy may serve), and none of that
    batch's rows here is taken. The page is matched with the stored rows once; new rows are
    inserted plainly, known ones updated.
    """
    con.register("page", page.columns)
    try:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE merged AS
            SELECT p.*, d.status AS old_status, d.batch_id IS NOT NULL AS known,
                   p.status IN (-3, -1) OR (d.final AND NOT p.final) AS kept, d.number AS old_number
            FROM page p LEFT JOIN deliveries d ON d.batch_id = p.batch_id AND d."row" = p."row" """)
        strangers = sorted(
            {
                batch
                for batch, number, old in con.execute(
                    "SELECT batch_id, number, old_number FROM merged WHERE known AND number IS DISTINCT FROM old_number"
                ).fetchall()
                if not phone.same_recipient(number, old)
            }
        )
        if strangers:
            con.execute("DELETE FROM merged WHERE batch_id IN (SELECT unnest(?))", [strangers])
        taken = con.execute("SELECT count(*) FROM merged").fetchone()[0]
        con.execute(
            """INSERT INTO delivery_events SELECT batch_id, "row", status, ? FROM merged
               WHERE status <> -1 AND (NOT known OR (NOT kept AND status <> old_status))""",
            [observed_at],
        )
        new = con.execute(
            """INSERT INTO deliveries (batch_id, "row", number, operator, status, final, expired, first_seen, last_checked)
               SELECT batch_id, "row", number, operator, status, final, status = -3, ?, ? FROM merged WHERE NOT known""",
            [observed_at, observed_at],
        ).fetchone()[0]
        if new < taken:
            con.execute(
                """UPDATE deliveries SET operator = m.operator,
                       status = CASE WHEN m.kept THEN deliveries.status ELSE m.status END,
                       final = CASE WHEN m.status = -3 THEN true WHEN m.kept THEN deliveries.final ELSE m.final END,
                       expired = deliveries.expired OR m.status = -3, last_checked = ?
                   FROM merged m
                   WHERE m.known AND deliveries.batch_id = m.batch_id AND deliveries."row" = m."row" """,
                [observed_at],
            )
        con.execute("DROP TABLE merged")
    finally:
        con.unregister("page")
    return new, taken - new, strangers


def _close_batches(con: duckdb.DuckDBPyConnection, batch_ids: list[int], checked_at: datetime) -> list[int]:
    """Mark read in full the batches whose stored rows cover their recipients; the others
    (a page came back shorter than the batch says) stay open, to be read again. Returns those."""
    if not batch_ids:
        return []
    closed = con.execute(
        """
        WITH stored AS (
            SELECT batch_id, count(*) AS n, count(*) FILTER (NOT final) AS pending
            FROM deliveries WHERE batch_id IN (SELECT unnest($ids)) GROUP BY batch_id)
        UPDATE batches SET complete = true, last_checked = $at, unknown_since = NULL, pending = coalesce(s.pending, 0)
        FROM (SELECT b.batch_id, s.pending FROM batches b LEFT JOIN stored s USING (batch_id)
              WHERE b.batch_id IN (SELECT unnest($ids)) AND coalesce(s.n, 0) >= coalesce(b.recipients, 0)) s
        WHERE batches.batch_id = s.batch_id
        RETURNING batches.batch_id""",
        {"ids": batch_ids, "at": checked_at},
    ).fetchall()
    return sorted(set(batch_ids) - {b for (b,) in closed})


def _write_run(
    con: duckdb.DuckDBPyConnection, run_id: int, finished_at: datetime, outcome: str, error: str | None, counters: list
) -> None:
    assignments = ", ".join(f"{name} = ?" for name in RUN_COUNTERS)
    con.execute(
        f"UPDATE sync_runs SET finished_at = ?, outcome = ?, error = ?, {assignments} WHERE run_id = ?",
        [finished_at, outcome, error, *counters, run_id],
    )
