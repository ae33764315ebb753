"""The campaign journal: campaigns and their chunks.

A chunk changes state only by a conditional UPDATE (planned -> in_flight only while planned),
so two senders can never both claim it, and a move that does not apply raises: the one sender
(campaign.py holds a kernel lock per campaign) never goes on from a state it did not expect.
A batch id is taken by at most one chunk of any campaign, checked in the same UPDATE.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ..dates import TEHRAN
from ..errors import InputError, JournalConflictError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd


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

    def unfinished_twin(self, line: str, text: str, numbers: list[str]) -> str | None:
        """The name of a campaign not yet wholly sent with this line, text and set of numbers."""
        candidates = self.sql(
            """SELECT c.name, flatten(list(k.numbers)) AS numbers FROM campaigns c
               JOIN campaign_chunks k ON k.campaign = c.name
               WHERE c.line = ? AND c.text = ?
               GROUP BY c.name HAVING bool_or(k.state <> 'sent') ORDER BY c.name""",
            [line, text],
        )
        wanted = sorted(numbers)
        for name, theirs in candidates.itertuples(index=False):
            if sorted(theirs) == wanted:
                return name
        return None

    def campaign(self, name: str) -> dict:
        found = self.sql("SELECT * FROM campaigns WHERE name = ?", [name])
        if found.empty:
            raise NotFoundError(f"No campaign named {name!r} in {self.path}.", "کمپینی با این نام پیدا نشد")
        return found.iloc[0].to_dict()

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
        """One chunk from `from_state` to `to_state`, only if it is still in `from_state` and
        `batch_id` (if given) is no chunk's yet: an atomic claim; returns whether it moved."""
        with self.transaction() as con:
            moved = con.execute(
                """UPDATE campaign_chunks SET state = $to, batch_id = coalesce($batch, batch_id), code = $code,
                       updated_at = $now
                   WHERE campaign = $name AND chunk = $chunk AND state = $from
                     AND ($batch IS NULL OR NOT EXISTS (SELECT 1 FROM campaign_chunks WHERE batch_id = $batch))
                   RETURNING chunk""",
                {
                    "to": to_state,
                    "batch": None if batch_id is None else int(batch_id),
                    "code": code,
                    "now": _now(),
                    "name": name,
                    "chunk": int(chunk),
                    "from": from_state,
                },
            ).fetchall()
        return bool(moved)

    def journal_move(
        self, name: str, chunk: int, from_state: str, to_state: str, *, batch_id: int | None = None, code=None
    ) -> None:
        """`move_chunk` for the campaign's sender, which expects every move to apply: raises
        JournalConflictError when it does not (nothing is changed then)."""
        if not self.move_chunk(name, chunk, from_state, to_state, batch_id=batch_id, code=code):
            taken = "" if batch_id is None else f", or batch {batch_id} is already another chunk's"
            raise JournalConflictError(
                f"Chunk {chunk} of campaign {name!r} is no longer {from_state}{taken}: its journal was changed "
                f"outside this sender. Nothing more was sent; check `payamak campaign status {name}`.",
                "دفتر کمپین بیرون از این فرستنده تغییر کرده است؛ چیزی ارسال نشد",
            )

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
