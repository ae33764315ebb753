"""The campaign journal: campaigns, their chunks, and the one process allowed to send each.

A chunk changes state only by a conditional UPDATE (planned -> in_flight only while planned),
so two senders can never both claim it; and a campaign has one holder at a time, claimed in
a transaction (DuckDB lets one process write the file at a time, so the claim is atomic).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from ..dates import TEHRAN
from ..errors import CampaignLockedError, InputError, NotFoundError
from .processes import ProcessId

LEASE = timedelta(minutes=2)  # a holder on another host that has not renewed for this long is dead


def _now() -> datetime:
    return datetime.now(TEHRAN)


class CampaignTables:
    """Named writes and reads of the campaign journal."""

    def create_campaign(self, row: dict, chunks: list[list[str]]) -> None:
        """The campaign and every chunk, planned, in one transaction; refuses a name in use."""
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM campaigns WHERE name = ?", [row["name"]]).fetchone():
                raise InputError(
                    f"A campaign named {row['name']!r} exists already: resume it (payamak campaign resume) "
                    "or choose another name.",
                    "کمپینی با این نام وجود دارد",
                )
            con.execute(
                """INSERT INTO campaigns (name, line, text, flash, recipients, invalid_numbers, duplicates,
                       blacklisted, parts, encoding, created_at, state, stop_reason)
                   VALUES ($name, $line, $text, $flash, $recipients, $invalid_numbers, $duplicates,
                       $blacklisted, $parts, $encoding, $created_at, 'stopped', 'not started')""",
                row,
            )
            con.executemany(
                "INSERT INTO campaign_chunks VALUES (?, ?, ?, 'planned', NULL, NULL, ?)",
                [[row["name"], k, chunk, row["created_at"]] for k, chunk in enumerate(chunks)],
            )

    def campaign(self, name: str) -> dict:
        found = self.sql("SELECT * FROM campaigns WHERE name = ?", [name])
        if found.empty:
            raise NotFoundError(f"No campaign named {name!r} in {self.path}.", "کمپینی با این نام پیدا نشد")
        return found.iloc[0].to_dict()

    # --- one sender at a time -------------------------------------------------------------
    def claim_campaign(self, name: str) -> None:
        """Make this process the campaign's only sender, or raise CampaignLockedError naming
        the live holder. A holder whose process has ended (same host) or whose lease ran out
        (another host) is replaced."""
        me, now = ProcessId.current(), _now()
        with self.transaction() as con:
            held = con.execute(
                "SELECT host, pid, process_start, heartbeat FROM campaign_holders WHERE campaign = ?", [name]
            ).fetchone()
            if held is not None:
                holder = ProcessId(held[0], held[1], held[2])
                alive = holder.alive()
                if holder != me and (alive or (alive is None and held[3] > now - LEASE)):
                    raise CampaignLockedError(
                        f"Campaign {name!r} is being sent by {holder} (since {held[3]:%Y-%m-%d %H:%M:%S}). "
                        "Wait for it to finish, or stop that process, then resume.",
                        f"کمپین در حال ارسال توسط فرایند دیگری است ({holder})",
                    )
            con.execute(
                """INSERT INTO campaign_holders VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (campaign) DO UPDATE SET
                   host = excluded.host, pid = excluded.pid, process_start = excluded.process_start,
                   claimed_at = excluded.claimed_at, heartbeat = excluded.heartbeat""",
                [name, me.host, me.pid, me.start, now, now],
            )

    def renew_campaign_claim(self, name: str) -> None:
        me = ProcessId.current()
        with self.transaction() as con:
            con.execute(
                "UPDATE campaign_holders SET heartbeat = ? WHERE campaign = ? AND host = ? AND pid = ?",
                [_now(), name, me.host, me.pid],
            )

    def release_campaign(self, name: str) -> None:
        me = ProcessId.current()
        with self.transaction() as con:
            con.execute(
                "DELETE FROM campaign_holders WHERE campaign = ? AND host = ? AND pid = ?", [name, me.host, me.pid]
            )

    # --- chunks ---------------------------------------------------------------------------
    def chunks(self, name: str, state: str) -> pd.DataFrame:
        """(chunk, numbers) of the campaign's chunks in `state`, in order."""
        return self.sql(
            "SELECT chunk, numbers FROM campaign_chunks WHERE campaign = ? AND state = ? ORDER BY chunk", [name, state]
        )

    def move_chunks(self, name: str, from_state: str, to_state: str) -> int:
        """Every chunk of the campaign in `from_state` to `to_state`; returns how many."""
        with self.transaction() as con:
            moved = con.execute(
                "UPDATE campaign_chunks SET state = ?, updated_at = ? WHERE campaign = ? AND state = ? RETURNING chunk",
                [to_state, _now(), name, from_state],
            ).fetchall()
        return len(moved)

    def move_chunk(
        self, name: str, chunk: int, from_state: str, to_state: str, *, batch_id: int | None = None, code=None
    ) -> bool:
        """One chunk from `from_state` to `to_state`, only if it is still in `from_state`
        (an atomic claim); returns whether it moved."""
        with self.transaction() as con:
            moved = con.execute(
                """UPDATE campaign_chunks SET state = ?, batch_id = coalesce(?, batch_id), code = ?, updated_at = ?
                   WHERE campaign = ? AND chunk = ? AND state = ? RETURNING chunk""",
                [to_state, batch_id, code, _now(), name, int(chunk), from_state],
            ).fetchall()
        return bool(moved)

    def set_campaign_state(self, name: str, state: str, reason: str | None = None) -> None:
        with self.transaction() as con:
            con.execute("UPDATE campaigns SET state = ?, stop_reason = ? WHERE name = ?", [state, reason, name])

    def chunks_not_sent(self, name: str) -> int:
        return int(
            self.sql("SELECT count(*) AS n FROM campaign_chunks WHERE campaign = ? AND state <> 'sent'", [name])["n"][0]
        )

    def claimed_batches(self) -> set[int]:
        """Batch ids already taken as some chunk's send."""
        return set(self.sql("SELECT batch_id FROM campaign_chunks WHERE batch_id IS NOT NULL")["batch_id"])

    def campaign_status(self, name: str) -> pd.DataFrame:
        """Chunks and recipients by state (planned, in_flight, sent, failed, unknown)."""
        self.campaign(name)
        return self.sql(
            """SELECT state, count(*) AS chunks, sum(len(numbers)) AS recipients,
                      list(batch_id ORDER BY chunk) FILTER (batch_id IS NOT NULL) AS batch_ids
               FROM campaign_chunks WHERE campaign = ? GROUP BY state ORDER BY state""",
            [name],
        )
