"""What the watch writes and reads: alerts (one open row per incident), its cycles, the alert
SMS it claimed (so the hourly cap holds across cron runs and processes), and the outbox of
notices each sink still has to deliver (so a sink that is down loses nothing, across restarts)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .. import recheck
from ..recheck import REPORT_WINDOW

if TYPE_CHECKING:
    import pandas as pd

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


class AlertTables:
    """Named writes and reads of the watch's tables."""

    def read_alerts(self, *, active: bool = False, since: datetime | None = None) -> pd.DataFrame:
        """Stored alerts, newest first; `active`: only incidents that have not ended."""
        where = ["ended_at IS NULL"] if active else []
        params: list = []
        if since is not None:
            where.append("coalesce(ended_at, last_seen) >= ?")
            params.append(since)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.sql(f"SELECT * FROM alerts {clause} ORDER BY first_seen DESC, alert_id DESC", params)

    def save_incidents(self, opened: list[dict], seen: list[dict], ended: list[int], now: datetime) -> list[int]:
        """One cycle's incident changes in one transaction: new incidents (their ids; None for one
        already open, as the check and the insert share the transaction), fresh evidence for those
        still open, and the end of those that cleared."""
        ids = []
        with self.transaction() as con:
            for alert in opened:
                ids.append(_open_incident(con, alert))
            for alert in seen:
                con.execute(
                    """UPDATE alerts SET last_seen = ?, severity = ?, kind = ?, title = ?, title_fa = ?, evidence = ?
                       WHERE alert_id = ?""",
                    [now, alert["severity"], alert["kind"], alert["title"], alert["title_fa"],
                     json.dumps(alert["evidence"], ensure_ascii=False), alert["alert_id"]],
                )  # fmt: skip
            if ended:
                con.execute(
                    "UPDATE alerts SET ended_at = ? WHERE alert_id IN (SELECT unnest(?)) AND ended_at IS NULL",
                    [now, ended],
                )
        return ids

    def record_watch_cycle(self, cycle: dict, counted_gone: list[int] | None = None) -> int:
        """Append one watch cycle; returns its number. The gone batches it counted
        (`gone_untold`) are marked counted in the same transaction: a cycle that never got
        recorded leaves them to the next one."""
        with self.transaction() as con:
            if counted_gone:
                con.execute(
                    "UPDATE batches SET gone_untold = false WHERE batch_id IN (SELECT unnest(?))", [counted_gone]
                )
            cycle_id = con.execute("SELECT coalesce(max(cycle_id), 0) + 1 FROM watch_cycles").fetchone()[0]
            columns = ["cycle_id", *cycle]
            con.execute(
                f"INSERT INTO watch_cycles ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [cycle_id, *cycle.values()],
            )
        return cycle_id

    def read_watch_cycles(self, last: int = 100) -> pd.DataFrame:
        """The newest `last` watch cycles, oldest first."""
        return self.sql(
            "SELECT * FROM (SELECT * FROM watch_cycles ORDER BY cycle_id DESC LIMIT ?) ORDER BY cycle_id", [last]
        )

    def urgent_batches(self, now: datetime, older_than: timedelta) -> pd.DataFrame:
        """Batches whose report is still readable but older than `older_than`, not read in full or
        with recipients in flight whose pages are due again (`recheck`): (batch_id, recipients,
        complete, sent_at, pages to read), those closest to expiry first."""
        self.add_batches_from_messages()
        return self.sql(
            f"""
            SELECT b.batch_id, b.recipients, b.complete, b.sent_at,
                   CASE WHEN b.complete THEN (SELECT list(DISTINCT ((d."row" - 1) // 100) * 100 + 1 ORDER BY 1)
                                              FROM deliveries d WHERE d.batch_id = b.batch_id AND NOT d.final)
                        ELSE range(1, greatest(b.recipients, 1) + 1, 100) END AS pages
            FROM batches b
            WHERE b.sent_at > $now - INTERVAL {REPORT_WINDOW.days} DAY AND b.sent_at <= $older AND NOT b.gone
              AND (NOT b.complete OR (b.pending > 0 AND {recheck.due_sql("b.sent_at", "b.last_checked", "$now")}))
            ORDER BY b.sent_at, b.batch_id""",
            {"now": now, "older": now - older_than},
        )

    def report_risk(self, now: datetime, previous: datetime, margin: timedelta, late: timedelta) -> dict:
        """Recipients whose report expired between `previous` and `now` unread (lost for good),
        and those whose report expires within `margin` (at risk): in batches never read in full,
        or whose pages in flight were due again (`recheck`) more than `late` ago (or whose last
        read is stamped in the future)."""
        expiry = f"least(b.sent_at + INTERVAL {REPORT_WINDOW.days} DAY, $now)"
        overdue = f"{expiry} - to_seconds({recheck.wait_sql('b.sent_at', expiry)}) - $late"
        unread = f"""CASE WHEN NOT b.complete THEN b.recipients
                          WHEN b.last_checked IS NULL OR b.last_checked < {overdue}
                               OR b.last_checked > $now + INTERVAL {recheck.CLOCK_SLACK.seconds} SECOND
                          THEN b.pending ELSE 0 END"""
        row = self.sql(
            f"""
            SELECT coalesce(sum(CASE WHEN b.sent_at <= $lost_to THEN {unread} END), 0) AS unreadable,
                   coalesce(sum(CASE WHEN b.sent_at > $lost_to THEN {unread} END), 0) AS at_risk
            FROM batches b WHERE b.sent_at > $lost_from AND b.sent_at <= $risk_to""",
            {
                "lost_from": previous - REPORT_WINDOW,
                "lost_to": now - REPORT_WINDOW,
                "risk_to": now - REPORT_WINDOW + margin,
                "now": now,
                "late": late,
            },
        ).iloc[0]
        return {"unreadable": int(row["unreadable"]), "at_risk": int(row["at_risk"])}

    def claim_alert_sms(
        self, numbers: list[str], alert_id: int, event: str, dry_run: bool, cap: int, now: datetime
    ) -> tuple[list[str], int]:
        """(the numbers that may get this notice's SMS, how many others the cap held back): not
        claimed for it before (a send may have gone out before a crash or a lost answer), and
        without the last hour's count passing `cap`; recorded before the send (a crash after the
        claim costs a message, never a second)."""
        with self.transaction() as con:
            used = con.execute(
                "SELECT count(*) FROM alert_sms WHERE sent_at > ? AND dry_run = ?", [now - timedelta(hours=1), dry_run]
            ).fetchone()[0]
            claimed = {
                number
                for (number,) in con.execute(
                    "SELECT number FROM alert_sms WHERE alert_id = ? AND event = ? AND dry_run = ?",
                    [alert_id, event, dry_run],
                ).fetchall()
            }
            unclaimed = [number for number in numbers if number not in claimed]
            granted = unclaimed[: max(cap - used, 0)]
            for number in granted:
                con.execute(
                    "INSERT INTO alert_sms (sent_at, number, alert_id, dry_run, event) VALUES (?, ?, ?, ?, ?)",
                    [now, number, alert_id, dry_run, event],
                )
        return granted, len(unclaimed) - len(granted)

    def release_alert_sms(self, numbers: list[str], alert_id: int, event: str, now: datetime) -> None:
        """Give back the claims of a send that provably never went out: the notice may try them again."""
        with self.transaction() as con:
            for number in numbers:
                con.execute(
                    "DELETE FROM alert_sms WHERE number = ? AND alert_id = ? AND event = ? AND sent_at = ?",
                    [number, alert_id, event, now],
                )

    def queue_notices(self, rows: list[dict], now: datetime) -> int:
        """Queue (alert_id, event, sink, notice) rows for delivery; one already queued is left as
        it is (a notice goes to a sink once). Returns how many were queued."""
        with self.transaction() as con:
            queued = 0
            for row in rows:
                key = [row["alert_id"], row["event"], row["sink"]]
                if con.execute(
                    "SELECT 1 FROM alert_outbox WHERE alert_id = ? AND event = ? AND sink = ?", key
                ).fetchone():
                    continue
                delivery_id = con.execute("SELECT coalesce(max(delivery_id), 0) + 1 FROM alert_outbox").fetchone()[0]
                con.execute(
                    "INSERT INTO alert_outbox VALUES (?, ?, ?, ?, ?, ?, 'waiting', 0, NULL, NULL)",
                    [delivery_id, *key, row["notice"], now],
                )
                queued += 1
        return queued

    def waiting_notices(self, sinks: list[str]) -> pd.DataFrame:
        """Notices these sinks have not delivered yet, oldest first."""
        return self.sql(
            """SELECT delivery_id, alert_id, event, sink, notice, attempts FROM alert_outbox
               WHERE state = 'waiting' AND list_contains(?, sink) ORDER BY delivery_id""",
            [sinks],
        )

    def record_deliveries(self, outcomes: list[tuple[int, str, str | None]], now: datetime) -> None:
        """(delivery_id, state, error) of the attempts made: delivered, refused, or waiting again."""
        if not outcomes:
            return
        with self.transaction() as con:
            for delivery_id, state, error in outcomes:
                con.execute(
                    """UPDATE alert_outbox SET state = ?, attempts = attempts + 1, last_error = ?,
                              done_at = CASE WHEN ? = 'waiting' THEN NULL ELSE ? END
                       WHERE delivery_id = ? AND state = 'waiting'""",
                    [state, error, state, now, delivery_id],
                )

    def read_outbox(self) -> pd.DataFrame:
        """Every notice queued for a sink and what became of it, newest first."""
        return self.sql("SELECT * EXCLUDE (notice) FROM alert_outbox ORDER BY delivery_id DESC")


def _open_incident(con, alert: dict) -> int | None:
    """Insert an incident unless one with its key is open; its new id, or None."""
    if con.execute("SELECT 1 FROM alerts WHERE incident = ? AND ended_at IS NULL", [alert["incident"]]).fetchone():
        return None
    alert_id = con.execute("SELECT coalesce(max(alert_id), 0) + 1 FROM alerts").fetchone()[0]
    values = [alert.get(c) for c in ALERT_COLUMNS]
    values[ALERT_COLUMNS.index("evidence")] = json.dumps(alert["evidence"], ensure_ascii=False)
    placeholders = ", ".join("?" * (len(ALERT_COLUMNS) + 1))
    con.execute(
        f"INSERT INTO alerts (alert_id, {', '.join(ALERT_COLUMNS)}) VALUES ({placeholders})", [alert_id, *values]
    )
    return alert_id
