"""Campaign sends: a long list in chunks of 100, journaled in the store, never sent twice.

The plan is checked in full (line, text, numbers) before anything is written, then written
with every chunk. One process at a time may send a campaign (a holder claimed in the store,
naming its host and pid; a dead holder is replaced). A chunk is claimed (planned -> in flight,
only while still planned) and committed before its send, then marked sent with its batchSmsId.
A send is "not sent" only when it provably never reached the service (the client's transport
error, a refusal code); anything else (a lost answer, a crash, any unexpected error) makes the
chunk "unknown": never resent on its own, `resume_campaign` matches it against the account's
newest sent messages and asks the person what to do.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from tqdm.auto import tqdm

from . import phone
from .client import MAX_RECIPIENTS, PanelClient
from .dates import TEHRAN
from .errors import (
    AccountStateError,
    ContentError,
    CredentialsError,
    CreditError,
    InputError,
    LimitError,
    NotSentError,
    SenderLineError,
    ServiceUnavailableError,
)
from .patience import RateLimiter
from .store import Store

PLANNED, IN_FLIGHT, SENT, FAILED, UNKNOWN = "planned", "in_flight", "sent", "failed", "unknown"
HEARTBEAT_SECONDS = 20.0  # the holder renews its claim this often (its lease is longer)
# Proven not sent, and worth trying again later: the client never reached the service, or the
# service refused for now (a limit, an update). Proven not sent, for good: the service refused.
NOT_SENT_RETRY = (NotSentError, InputError, LimitError, ServiceUnavailableError)
NOT_SENT_REFUSED = (CreditError, SenderLineError, ContentError, AccountStateError, CredentialsError)


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
    unallocated: list[str]  # numbers libphonenumber calls invalid: still sent, worth a check

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
            f"on the telecom blacklist: {blacklisted}, outside the number plan (still sent): {len(self.unallocated):,}"
        )

    @property
    def warning(self) -> str:
        """One line about the numbers outside the number plan, or "" when there are none."""
        return phone.unallocated_note(self.unallocated)


@dataclass(frozen=True)
class UnknownChunk:
    """A chunk that may have gone out, and the sent record that looks like it, if any."""

    chunk: int
    numbers: list[str]
    match: int | None  # the batchSmsId of a sent record with the same line, text and count


def check_text(text) -> None:
    """Refuse, before anything is written, a text the service cannot carry: not a string, empty,
    with a control character (other than a line break or tab) or a lone surrogate."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("The campaign's text is empty: write the message to send.", "متن پیامک خالی است")
    for position, character in enumerate(text):
        if character in "\n\r\t":
            continue
        if unicodedata.category(character) in ("Cc", "Cs"):
            raise InputError(
                f"The text holds an invisible control character (U+{ord(character):04X}) at position {position + 1}: "
                "remove it (it often comes from a copy and paste) and try again. Nothing was written or sent.",
                "متن پیامک یک نویسه کنترلی نامرئی دارد؛ آن را حذف کنید",
            )


def plan_campaign(client: PanelClient, *, name: str, from_number, numbers: Iterable, text: str) -> CampaignPlan:
    """Check everything that can be checked before a send, and call nothing that sends."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("A campaign needs a name, to resume it and to find it in reports.", "کمپین نام ندارد")
    check_text(text)
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
        phone.unallocated(valid),
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
    row = {
        "name": plan.name,
        "line": plan.from_number,
        "text": plan.text,
        "flash": bool(flash),
        "recipients": len(plan.numbers),
        "invalid_numbers": len(plan.invalid),
        "duplicates": plan.duplicates,
        "blacklisted": plan.blacklisted,
        "parts": plan.parts,
        "encoding": plan.encoding,
        "created_at": datetime.now(TEHRAN),
    }
    store.create_campaign(row, plan.chunks)
    with _sole_sender(store, plan.name):
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

    Refused (CampaignLockedError) while another live process sends it. Chunks a dead sender
    left in flight become unknown. For each unknown chunk `decide` is asked, given the chunk and
    the sent record that matches it by line, text and count (if any), and answers "sent" (take
    the match as this chunk), "resend", or "leave" (the default: it stays unknown and is reported).
    """
    campaign = store.campaign(name)
    with _sole_sender(store, name):
        store.move_chunks(name, IN_FLIGHT, UNKNOWN)  # their sender is gone: they may have gone out
        _settle_unknowns(client, store, name, campaign, decide)
        _send_planned(client, store, name, rate, progress)
    return store.campaign_status(name)


def _settle_unknowns(client: PanelClient, store: Store, name: str, campaign: dict, decide) -> None:
    for unknown in unknown_chunks(client, store, name, campaign):
        choice = decide(unknown) if decide else "leave"
        if choice == "sent" and unknown.match is not None:
            store.move_chunk(name, unknown.chunk, UNKNOWN, SENT, batch_id=unknown.match)
        elif choice == "resend":
            store.move_chunk(name, unknown.chunk, UNKNOWN, PLANNED)


def unknown_chunks(client: PanelClient, store: Store, name: str, campaign: dict | None = None) -> list[UnknownChunk]:
    """The chunks that may or may not have gone out, each with its likely match among the
    account's newest sent messages (same line, same text, same count, not claimed by a chunk)."""
    campaign = campaign or store.campaign(name)
    chunks = store.chunks(name, UNKNOWN)
    if chunks.empty:
        return []
    claimed = store.claimed_batches()
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
    return store.campaign_status(name)


@contextmanager
def _sole_sender(store: Store, name: str) -> Iterator[None]:
    """This process as the campaign's only sender, renewing its claim until the block ends."""
    store.claim_campaign(name)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            store.renew_campaign_claim(name)

    heartbeat = threading.Thread(target=renew, name=f"campaign-{name}-heartbeat", daemon=True)
    heartbeat.start()
    try:
        yield
    finally:
        stop.set()
        heartbeat.join()
        store.release_campaign(name)


def _outcome_of(error: BaseException) -> str:
    """What a failed send means for its chunk: planned (provably not sent; try again later),
    failed (the service refused it) or unknown (anything else: it may have gone out)."""
    if isinstance(error, NOT_SENT_RETRY):
        return PLANNED
    if isinstance(error, NOT_SENT_REFUSED):
        return FAILED
    return UNKNOWN


def _send_planned(client: PanelClient, store: Store, name: str, rate: float | None, progress: bool) -> None:
    """Send the planned chunks in order; any failure stops the campaign, its chunk journaled."""
    campaign = store.campaign(name)
    planned = store.chunks(name, PLANNED)
    limiter = RateLimiter(rate)
    store.set_campaign_state(name, "sending")
    chunks = tqdm(
        planned.itertuples(index=False),
        total=len(planned),
        desc=f"campaign {name}",
        unit=" chunks",
        disable=not progress,
        leave=False,
    )
    for chunk, numbers in chunks:
        limiter.wait()
        if not store.move_chunk(name, chunk, PLANNED, IN_FLIGHT):
            continue  # no longer planned: another state was recorded for it
        try:
            result = client.send_batch_sms(
                campaign["line"], list(numbers), campaign["text"], flash=bool(campaign["flash"])
            )
        except BaseException as error:
            _journal_failure(store, name, int(chunk), error)
            raise
        store.move_chunk(name, chunk, IN_FLIGHT, SENT, batch_id=result.batch_sms_id)
    left = store.chunks_not_sent(name)
    store.set_campaign_state(
        name,
        "done" if left == 0 else "stopped",
        None if left == 0 else f"{left} chunk(s) not sent: see payamak campaign status {name}",
    )


def _journal_failure(store: Store, name: str, chunk: int, error: BaseException) -> None:
    outcome = _outcome_of(error)
    code = getattr(error, "code", None) if outcome == FAILED else None
    store.move_chunk(name, chunk, IN_FLIGHT, outcome, code=code)
    advice = {
        UNKNOWN: "it may have gone out: run resume to check it against the sent messages",
        PLANNED: "it was not sent: run resume to go on",
        FAILED: "the service refused it",
    }[outcome]
    detail = getattr(error, "message_en", None) or type(error).__name__
    store.set_campaign_state(name, "stopped", f"chunk {chunk}: {detail} ({advice}).")
