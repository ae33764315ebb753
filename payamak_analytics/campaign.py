"""Campaign sends: a long list in chunks of 100, journaled in the store, never sent twice.

The plan (every chunk and its numbers) is written before the first send. Each chunk is marked
in flight, committed, sent, then marked sent with its batchSmsId. A chunk found in flight after
a crash, or whose answer was lost, may or may not have gone out: it becomes "unknown" and is
never resent on its own; `resume_campaign` matches it against the account's newest sent
messages and asks the person what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable

import pandas as pd
from tqdm.auto import tqdm

from . import phone
from .client import PanelClient
from .client.panel import MAX_RECIPIENTS
from .dates import TEHRAN
from .errors import (
    CreditError,
    InputError,
    LimitError,
    NotFoundError,
    PayamakError,
    SendOutcomeUnknownError,
    TransportError,
)
from .store import Store
from .sync import RateLimiter

PLANNED, IN_FLIGHT, SENT, FAILED, UNKNOWN = "planned", "in_flight", "sent", "failed", "unknown"


@dataclass(frozen=True)
class CampaignPlan:
    """What a campaign will send, checked before anything goes out."""

    name: str
    from_number: str
    text: str
    numbers: list[str]
    invalid: list[str]  # the inputs that are not mobile numbers: never sent
    duplicates: int
    parts: int
    encoding: str
    credit: float
    blacklisted: int | None  # None where the deployment has no ExtractTelecomBlacklistNumbers

    @property
    def chunks(self) -> list[list[str]]:
        return [self.numbers[i : i + MAX_RECIPIENTS] for i in range(0, len(self.numbers), MAX_RECIPIENTS)]

    @property
    def messages(self) -> int:
        """SMS parts the campaign takes: what the credit pays for, at one credit a part."""
        return self.parts * len(self.numbers)

    def __str__(self) -> str:
        blacklisted = "unknown" if self.blacklisted is None else f"{self.blacklisted:,}"
        return (
            f"campaign {self.name!r} from {self.from_number}: {len(self.numbers):,} recipients in "
            f"{len(self.chunks)} chunks, {len(self.invalid)} invalid and {self.duplicates} duplicate numbers left "
            f"out, {self.parts} part(s) {self.encoding} = {self.messages:,} SMS (credit {self.credit:,.0f}), "
            f"on the telecom blacklist: {blacklisted}"
        )


@dataclass(frozen=True)
class UnknownChunk:
    """A chunk that may have gone out, and the sent record that looks like it, if any."""

    chunk: int
    numbers: list[str]
    match: int | None  # the batchSmsId of a sent record with the same line, text and count


def plan_campaign(client: PanelClient, *, name: str, from_number, numbers: Iterable, text: str) -> CampaignPlan:
    """Check everything that can be checked before a send, and call nothing that sends."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("A campaign needs a name, to resume it and to find it in reports.", "کمپین نام ندارد")
    raws = [numbers] if isinstance(numbers, str) else list(numbers)
    valid, invalid = phone.normalize_many(raws)
    if not valid:
        raise InputError(
            f"None of the {len(raws)} numbers is an Iranian mobile number; nothing to send.",
            "هیچ شماره معتبری وجود ندارد",
        )
    checked = client.plan_send(from_number, valid[:1], text)
    blacklisted = None
    if client.has("ExtractTelecomBlacklistNumbers"):
        blacklisted = sum(
            len(client.extract_telecom_blacklist(valid[i : i + 1000])) for i in range(0, len(valid), 1000)
        )
    return CampaignPlan(
        name.strip(),
        checked.from_number,
        text,
        valid,
        invalid,
        len(raws) - len(valid) - len(invalid),
        checked.text_info.parts,
        checked.text_info.encoding,
        float(client.get_credit()),
        blacklisted,
    )


def send_campaign(
    client: PanelClient,
    store: Store,
    *,
    name: str,
    from_number,
    numbers: Iterable,
    text: str,
    flash: bool = False,
    rate: float | None = 2.0,
    dry_run: bool = False,
    progress: bool = True,
) -> CampaignPlan:
    """Plan, journal and send a campaign with SendBatchSms, 100 numbers a call.

    A dry run checks and returns the plan and sends nothing. Raises CreditError before any send
    when the credit cannot cover the campaign.
    """
    plan = plan_campaign(client, name=name, from_number=from_number, numbers=numbers, text=text)
    if dry_run:
        return plan
    if plan.credit < plan.messages:
        raise CreditError(
            f"The campaign needs about {plan.messages:,} SMS of credit and the account has "
            f"{plan.credit:,.0f}: top up, or send to fewer numbers. Nothing was sent.",
            "اعتبار برای این کمپین کافی نیست",
            operation="SendBatchSms",
            code=8,
        )
    now = datetime.now(TEHRAN)
    with store.connect() as con:
        if con.execute("SELECT 1 FROM campaigns WHERE name = ?", [plan.name]).fetchone():
            raise InputError(
                f"A campaign named {plan.name!r} exists already: resume it (payamak campaign resume) "
                "or choose another name.",
                "کمپینی با این نام وجود دارد",
            )
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO campaigns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'sending', NULL)",
            [
                plan.name,
                plan.from_number,
                plan.text,
                flash,
                len(plan.numbers),
                len(plan.invalid),
                plan.duplicates,
                plan.blacklisted,
                plan.parts,
                plan.encoding,
                now,
            ],
        )
        con.executemany(
            "INSERT INTO campaign_chunks VALUES (?, ?, ?, 'planned', NULL, NULL, ?)",
            [[plan.name, k, chunk, now] for k, chunk in enumerate(plan.chunks)],
        )
        con.execute("COMMIT")
    _send_planned(client, store, plan.name, rate, progress)
    return plan


def resume_campaign(
    client: PanelClient,
    store: Store,
    name: str,
    *,
    decide: Callable[[UnknownChunk], str] | None = None,
    rate: float | None = 2.0,
    progress: bool = True,
) -> pd.DataFrame:
    """Go on with a stopped campaign from its first planned chunk; returns its status.

    Chunks left in flight by a crash become unknown. For each unknown chunk `decide` is asked,
    given the chunk and the sent record that matches it by line, text and count (if any), and
    answers "sent" (take the match as this chunk), "resend", or "leave" (the default: it stays
    unknown and is reported).
    """
    campaign = _campaign(store, name)
    with store.connect() as con:
        con.execute(
            "UPDATE campaign_chunks SET state = 'unknown', updated_at = ? WHERE campaign = ? AND state = ?",
            [datetime.now(TEHRAN), name, IN_FLIGHT],
        )
    for unknown in unknown_chunks(client, store, name, campaign):
        choice = decide(unknown) if decide else "leave"
        if choice == "sent" and unknown.match is not None:
            _mark(store, name, unknown.chunk, SENT, batch_id=unknown.match)
        elif choice == "resend":
            _mark(store, name, unknown.chunk, PLANNED)
    _send_planned(client, store, name, rate, progress)
    return campaign_status(store, name)


def unknown_chunks(client: PanelClient, store: Store, name: str, campaign: dict | None = None) -> list[UnknownChunk]:
    """The chunks that may or may not have gone out, each with its likely match among the
    account's newest sent messages (same line, same text, same count, not claimed by a chunk)."""
    campaign = campaign or _campaign(store, name)
    chunks = store.sql(
        "SELECT chunk, numbers FROM campaign_chunks WHERE campaign = ? AND state = 'unknown' ORDER BY chunk", [name]
    )
    if chunks.empty:
        return []
    claimed = set(store.sql("SELECT batch_id FROM campaign_chunks WHERE batch_id IS NOT NULL")["batch_id"])
    recent = client.messages_frame("sent", [campaign["line"]], limit=3000)
    since = pd.Timestamp(campaign["created_at"]) - pd.Timedelta(minutes=10)  # the panel's clock may differ a little
    recent = recent[
        (recent["content"] == campaign["text"])
        & (recent["action_datetime"] >= since)
        & ~recent["message_id"].isin(claimed)
    ]
    found = []
    for chunk, numbers in chunks.itertuples(index=False):
        candidates = recent[recent["count"] == len(numbers)]
        match = int(candidates["message_id"].iloc[-1]) if len(candidates) else None  # the oldest unclaimed one
        if match is not None:
            recent = recent[recent["message_id"] != match]
        found.append(UnknownChunk(int(chunk), list(numbers), match))
    return found


def campaign_status(store: Store, name: str) -> pd.DataFrame:
    """Chunks and recipients by state (planned, in_flight, sent, failed, unknown)."""
    _campaign(store, name)
    return store.sql(
        """SELECT state, count(*) AS chunks, sum(len(numbers)) AS recipients,
                               list(batch_id ORDER BY chunk) FILTER (batch_id IS NOT NULL) AS batch_ids
                        FROM campaign_chunks WHERE campaign = ? GROUP BY state ORDER BY state""",
        [name],
    )


def _campaign(store: Store, name: str) -> dict:
    found = store.sql("SELECT * FROM campaigns WHERE name = ?", [name])
    if found.empty:
        raise NotFoundError(f"No campaign named {name!r} in {store.path}.", "کمپینی با این نام پیدا نشد")
    return found.iloc[0].to_dict()


def _mark(
    store: Store, name: str, chunk: int, state: str, *, batch_id: int | None = None, code: int | None = None
) -> None:
    with store.connect() as con:
        con.execute(
            """UPDATE campaign_chunks SET state = ?, batch_id = coalesce(?, batch_id), code = ?,
                       updated_at = ? WHERE campaign = ? AND chunk = ?""",
            [state, batch_id, code, datetime.now(TEHRAN), name, chunk],
        )


def _stop(store: Store, name: str, state: str, reason: str | None) -> None:
    with store.connect() as con:
        con.execute("UPDATE campaigns SET state = ?, stop_reason = ? WHERE name = ?", [state, reason, name])


def _send_planned(client: PanelClient, store: Store, name: str, rate: float | None, progress: bool) -> None:
    """Send the planned chunks in order; a lost answer or a refusal stops the campaign."""
    campaign = _campaign(store, name)
    planned = store.sql(
        "SELECT chunk, numbers FROM campaign_chunks WHERE campaign = ? AND state = 'planned' ORDER BY chunk", [name]
    )
    limiter = RateLimiter(rate)
    _stop(store, name, "sending", None)
    for chunk, numbers in tqdm(
        planned.itertuples(index=False),
        total=len(planned),
        desc=f"campaign {name}",
        unit=" chunks",
        disable=not progress,
        leave=False,
    ):
        limiter.wait()
        _mark(store, name, chunk, IN_FLIGHT)
        try:
            result = client.send_batch_sms(
                campaign["line"], list(numbers), campaign["text"], flash=bool(campaign["flash"])
            )
        except SendOutcomeUnknownError as error:
            _mark(store, name, chunk, UNKNOWN)
            _stop(store, name, "stopped", f"chunk {chunk}: {error.message_en} Run resume to check it.")
            raise
        except (TransportError, LimitError) as error:  # not sent, and worth trying again later
            _mark(store, name, chunk, PLANNED)
            _stop(store, name, "stopped", f"chunk {chunk}: {error}")
            raise
        except PayamakError as error:  # the panel refused: credit, account, line, content
            _mark(store, name, chunk, FAILED, code=error.code)
            _stop(store, name, "stopped", f"chunk {chunk}: {error}")
            raise
        _mark(store, name, chunk, SENT, batch_id=result.batch_sms_id)
    left = store.sql("SELECT count(*) AS n FROM campaign_chunks WHERE campaign = ? AND state <> 'sent'", [name])["n"][0]
    _stop(
        store,
        name,
        "done" if left == 0 else "stopped",
        None if left == 0 else f"{left} chunk(s) not sent: see payamak campaign status {name}",
    )
