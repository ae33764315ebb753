"""Campaign sends: a long list in chunks of 100, journaled in the store, never sent twice.

The plan is checked in full (line, text, numbers) before anything is written, then written
with every chunk. One sender at a time per campaign, by construction: a kernel lock (flock) on
`<store>.campaign-<name>.lock`, held from before the journal is written until the send or
resume ends, per open file (two threads exclude each other) and dropped when its process dies.
A chunk is claimed (planned -> in flight, only while still planned) and committed before its
send, then marked sent with its batchSmsId; a move that does not apply stops the campaign.
A send is "not sent" only when it provably never reached the service (the client's transport
error, a refusal code); anything else (a lost answer, a crash, any unexpected error) makes the
chunk "unknown": never resent on its own. `resume_campaign` looks for it among the account's
sent messages and takes a sent record as the chunk's only when that record's recipients (read
with GetBatchDelivery) are exactly the chunk's numbers; each record is taken by one chunk at
most, and a chunk that may be a record it cannot read is never offered for sending again.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from . import phone
from .client import DELIVERY_PAGE, MAX_RECIPIENTS, PanelClient
from .client.validate import items
from .dates import TEHRAN
from .errors import (
    AccountStateError,
    CampaignLockedError,
    ContentError,
    CredentialsError,
    CreditError,
    InputError,
    LimitError,
    NotSentError,
    PayamakError,
    SenderLineError,
    ServiceUnavailableError,
)
from .locks import HolderLock, holder_name
from .patience import RateLimiter
from .store import Store

log = logging.getLogger("payamak_analytics.campaign")
PLANNED, IN_FLIGHT, SENT, FAILED, UNKNOWN = "planned", "in_flight", "sent", "failed", "unknown"
LOOKBACK = 5000  # newest sent messages of the line searched for an unknown chunk's record
READS_PER_RESUME = 200  # reports (GetBatchDelivery) a resume reads at most: one left unread is a doubt
# When the search stops at LOOKBACK, a chunk with no record there counts as absent only if the
# messages read span the campaign's start with this much to spare on the older side (panels'
# clocks drift): the clock bounds how far to look, it never rules a record in or out, and a
# panel clock that does not agree with ours leaves the chunk in doubt.
LOOKBACK_MARGIN = pd.Timedelta(days=1)
TARIFF_RECORDS = 200  # newest sent records read for the tariff a part costs
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
    tariff: Decimal  # credit a part of this text costs, as the account's sent records show it

    @property
    def chunks(self) -> list[list[str]]:
        return [self.numbers[i : i + MAX_RECIPIENTS] for i in range(0, len(self.numbers), MAX_RECIPIENTS)]

    @property
    def messages(self) -> int:
        """SMS parts the campaign takes: what the credit pays for, at one credit a part."""
        return self.parts * len(self.numbers)

    @property
    def cost(self) -> Decimal:
        """Credit the campaign takes: its parts at the tariff the service charges."""
        return self.messages * self.tariff

    def __str__(self) -> str:
        blacklisted = "unknown" if self.blacklisted is None else f"{self.blacklisted:,}"
        return (
            f"campaign {self.name!r} from {self.from_number}: {len(self.numbers):,} recipients in "
            f"{len(self.chunks)} chunks, {len(self.invalid)} invalid and {self.duplicates} duplicate numbers left "
            f"out, {self.parts} part(s) {self.encoding} = {self.messages:,} SMS costing {self.cost:,.1f} at "
            f"{self.tariff} a part (credit {self.credit:,.0f}), "
            f"on the telecom blacklist: {blacklisted}, outside the number plan (still sent): {len(self.unallocated):,}"
        )

    @property
    def warning(self) -> str:
        """One line about the numbers outside the number plan, or "" when there are none."""
        return phone.unallocated_note(self.unallocated)


@dataclass(frozen=True)
class UnknownChunk:
    """A chunk that may have gone out: the sent record proven to be it, if any, and if none,
    why it cannot be told that it did not go out (then it is never offered for sending again)."""

    chunk: int
    numbers: list[str]
    match: int | None  # the batchSmsId of the one sent record whose recipients are this chunk's numbers
    doubt: str | None = None

    @property
    def resendable(self) -> bool:
        """Proven not among the sent messages: no record is it, and none that might be is left."""
        return self.match is None and self.doubt is None


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
    raws = [numbers] if isinstance(numbers, str) else items(numbers, "numbers")
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
        charged_per_part(client, checked.text_info.lang),
    )


def charged_per_part(client: PanelClient, lang: str) -> Decimal:
    """Credit the service takes for a part in `lang` ("FA" or "EN"), as the account's newest sent
    records show it: the highest tariff of those in that language, else of all of them (a panel
    may charge one language more than the other). Never under 1: credit is counted in SMS, and a
    tariff under it (a free send's, a hostile panel's) would let through what the credit cannot
    pay; 1 where no record says, or the deployment has no GetMessages."""
    if not client.has("GetMessages"):
        return Decimal(1)
    recent = client.messages_frame("sent", limit=TARIFF_RECORDS)
    known = recent[recent["tariff"].notna()]
    same = known[known["lang"].astype("string").str.upper() == lang]
    tariffs = (same if not same.empty else known)["tariff"]
    return Decimal(1) if tariffs.empty else max(Decimal(1), Decimal(str(tariffs.max())))


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
    same_as_unfinished: bool = False,
) -> CampaignPlan:
    """Plan, journal and send a campaign with SendBatchSms, 100 numbers a call.

    A dry run checks and returns the plan and sends nothing. Raises CreditError before any send
    when the credit cannot cover the campaign, and InputError when an unfinished campaign has
    the same line, text and numbers (resume that one; `same_as_unfinished=True` sends anyway).
    """
    if not isinstance(flash, bool):
        raise InputError(f"flash must be True or False, not {flash!r}.", "مقدار flash باید درست یا نادرست باشد")
    limiter = RateLimiter(rate)  # a bad rate is refused before anything is planned or written
    plan = plan_campaign(client, name=name, from_number=from_number, numbers=numbers, text=text)
    if dry_run:
        return plan
    if plan.credit < plan.cost:
        raise CreditError(
            f"The campaign needs about {plan.cost:,.1f} of credit ({plan.messages:,} SMS at {plan.tariff} a part) "
            f"and the account has {plan.credit:,.0f}: top up, or send to fewer numbers. Nothing was sent.",
            "اعتبار برای این کمپین کافی نیست",
            operation="SendBatchSms",
            code=8,
        )
    with sole_sender(store, plan.name):
        with _sole_creator(store, plan):  # two new names for one content: the second sees the first
            _refuse_twin(store, plan, same_as_unfinished)
            store.create_campaign(_campaign_row(plan, flash), plan.chunks)
        _send_planned(client, store, plan.name, limiter, progress)
    return plan


def _campaign_row(plan: CampaignPlan, flash: bool) -> dict:
    return {
        "name": plan.name,
        "line": plan.from_number,
        "text": plan.text,
        "flash": flash,
        "recipients": len(plan.numbers),
        "invalid_numbers": len(plan.invalid),
        "duplicates": plan.duplicates,
        "blacklisted": plan.blacklisted,
        "parts": plan.parts,
        "encoding": plan.encoding,
        "created_at": datetime.now(TEHRAN),
    }


def _refuse_twin(store: Store, plan: CampaignPlan, same_as_unfinished: bool) -> None:
    """A new name for a campaign that is not finished would send its sent chunks again."""
    twin = None if same_as_unfinished else store.unfinished_twin(plan.from_number, plan.text, plan.numbers)
    if twin is not None:
        raise InputError(
            f"Campaign {twin!r} has the same line, text and numbers and is not finished: resume it "
            f"(payamak campaign resume {twin}) instead of sending its numbers again under a new name. "
            "To send them all again anyway, pass same_as_unfinished=True (--same-as-unfinished). Nothing was sent.",
            f"کمپین {twin} با همین خط، متن و شماره‌ها تمام نشده است؛ آن را ادامه دهید",
        )


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

    Refused (CampaignLockedError) while another sender holds it. Chunks a dead sender left in
    flight become unknown. `decide` is asked about each unknown chunk that has a proven match
    (answer "sent" to take it as this chunk's send) or is proven absent from the sent messages
    (answer "resend"); "leave" (the default) keeps it unknown. A chunk that might be a sent
    record that cannot be read is not asked about: it stays unknown, with the reason.
    """
    limiter = RateLimiter(rate)  # a bad rate is refused before anything is written
    campaign = store.campaign(name)
    with sole_sender(store, name):
        store.move_chunks(name, IN_FLIGHT, UNKNOWN)  # their sender is gone: they may have gone out
        doubts = _settle_unknowns(client, store, name, campaign, decide)
        _send_planned(client, store, name, limiter, progress)
        if doubts:
            store.set_campaign_state(
                name,
                "stopped",
                "; ".join(doubts)
                + ". Resume does not offer them for sending while that holds: check them in the panel's sent messages.",
            )
    return store.campaign_status(name)


def _settle_unknowns(client: PanelClient, store: Store, name: str, campaign: dict, decide) -> list[str]:
    """Journal what `decide` answers for each chunk it may be asked about; the doubts of the rest."""
    doubts = []
    for unknown in unknown_chunks(client, store, name, campaign):
        if unknown.doubt is not None:
            log.warning("campaign %s chunk %d stays unknown: %s", name, unknown.chunk, unknown.doubt)
            doubts.append(f"chunk {unknown.chunk} stays unknown: {unknown.doubt}")
            continue
        choice = decide(unknown) if decide else "leave"
        if choice == "sent" and unknown.match is not None:
            store.journal_move(name, unknown.chunk, UNKNOWN, SENT, batch_id=unknown.match)
        elif choice == "resend" and unknown.resendable:
            store.journal_move(name, unknown.chunk, UNKNOWN, PLANNED)
    return doubts


def unknown_chunks(client: PanelClient, store: Store, name: str, campaign: dict | None = None) -> list[UnknownChunk]:
    """The chunks that may or may not have gone out, each with the sent record proven to be it:
    same line, text and count, not any chunk's yet, and GetBatchDelivery's numbers equal to the
    chunk's. A look-alike whose numbers cannot be read (or are only part of the chunk's) is a
    doubt; so is a search of the sent messages that may not reach back to the campaign."""
    campaign = campaign or store.campaign(name)
    chunks = store.chunks(name, UNKNOWN)
    if chunks.empty:
        return []
    recent = client.messages_frame("sent", [campaign["line"]], limit=LOOKBACK)
    reached = len(recent) < LOOKBACK or _spans(recent["action_datetime"], campaign["created_at"])
    same_text = recent["content"].map(lambda content: plain(content) == plain(campaign["text"]), na_action="ignore")
    unclaimed = recent.assign(same_text=same_text.fillna(False).astype(bool))
    unclaimed = unclaimed[~unclaimed["message_id"].isin(store.claimed_batches())]
    recipients = _Recipients(client)
    found = []
    for chunk, numbers in chunks.itertuples(index=False):
        # a record without a count may be this chunk; one whose text reads otherwise (the panel may
        # add a suffix or convert letters) is never taken as it, but keeps it in doubt
        maybe = unclaimed[unclaimed["count"].isna() | (unclaimed["count"] == len(numbers)).fillna(True).astype(bool)]
        ids = [int(i) for i in maybe.loc[maybe["same_text"], "message_id"]][::-1]  # oldest first
        match, doubtful = _prove(recipients, set(numbers), ids)
        if match is None and not doubtful:  # one record that may be it is doubt enough: newest first, read no more
            others = (int(i) for i in maybe.loc[~maybe["same_text"], "message_id"])
            suspect = next((batch for batch in others if _might_be(recipients(batch), set(numbers))), None)
            doubtful = [] if suspect is None else [suspect]
        doubt = None
        if match is None and doubtful:
            doubt = (
                f"sent record(s) {', '.join(map(str, doubtful))} may be it (their recipients could not be read "
                "or were left unread, or their text or count is not the chunk's as the panel keeps it)"
            )
        elif match is None and not reached:
            doubt = f"the newest {LOOKBACK:,} sent messages do not reach back to the campaign's start"
        if match is not None:
            unclaimed = unclaimed[unclaimed["message_id"] != match]
        found.append(UnknownChunk(int(chunk), list(numbers), match, doubt))
    return found


def plain(text: str) -> str:
    """A text as the panel may have stored it: NFC, one kind of line break, no outer spaces."""
    return unicodedata.normalize("NFC", str(text)).replace("\r\n", "\n").replace("\r", "\n").strip()


def _spans(times: pd.Series, start) -> bool:
    """Whether messages at `times` reach from before `start` (with the margin) to after it."""
    start = pd.Timestamp(start)
    oldest, newest = times.min(), times.max()
    return bool(pd.notna(start) and pd.notna(oldest) and oldest < start - LOOKBACK_MARGIN <= newest)


class _Recipients:
    """A sent record's recipients by GetBatchDelivery, read once; None where they cannot be read,
    or once READS_PER_RESUME reports were read (a line's thousands of sends may each be a chunk:
    the one not read stays a doubt)."""

    def __init__(self, client: PanelClient):
        self.client = client
        self.known: dict[int, frozenset[str] | None] = {}

    def __call__(self, batch: int) -> frozenset[str] | None:
        if batch not in self.known and len(self.known) >= READS_PER_RESUME:
            return None
        if batch not in self.known:
            try:
                page = self.client.get_batch_delivery(batch, 1, DELIVERY_PAGE)
                self.known[batch] = frozenset(phone.normalize_many(page.numbers)[0])
            except PayamakError:
                self.known[batch] = None
        return self.known[batch]


def _prove(recipients: _Recipients, wanted: set[str], candidates: list[int]) -> tuple[int | None, list[int]]:
    """(the candidate whose recipients are exactly `wanted`, the candidates that might still be it)."""
    doubtful = []
    for batch in candidates:
        got = recipients(batch)
        if got == wanted:
            return batch, []
        if _might_be(got, wanted):
            doubtful.append(batch)
    return None, doubtful


def _might_be(got: frozenset[str] | None, wanted: set[str]) -> bool:
    """Whether a record with recipients `got` may be the send to `wanted`: unreadable, or a report
    still partial (or whole)."""
    return got is None or got <= wanted


def campaign_status(store: Store, name: str) -> pd.DataFrame:
    """Chunks and recipients by state (planned, in_flight, sent, failed, unknown)."""
    return store.campaign_status(name)


def sole_sender(store: Store, name: str) -> HolderLock:
    """The kernel lock that makes its holder the campaign's only sender (CampaignLockedError
    naming the holder otherwise). Its file is named by a digest: any name is a safe file name."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return HolderLock(
        f"{Path(store.path).resolve()}.campaign-{digest}.lock",
        lambda written: CampaignLockedError(
            f"Campaign {name!r} is being sent by another process or thread ({holder_name(written)}). Wait for it "
            "to finish, or stop it, then resume.",
            f"کمپین در حال ارسال توسط فرایند دیگری است ({holder_name(written)})",
        ),
    )


def _sole_creator(store: Store, plan: CampaignPlan) -> HolderLock:
    """A lock on the campaign's content (line, text, numbers) while it is checked and written."""
    content = "\n".join([plan.from_number, plan.text, *sorted(plan.numbers)])
    digest = hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return HolderLock(
        f"{Path(store.path).resolve()}.content-{digest}.lock",
        lambda written: CampaignLockedError(
            f"A campaign with the same line, text and numbers is being written now ({holder_name(written)}): "
            "wait for it, then resume it instead. Nothing was sent.",
            "کمپینی با همین خط، متن و شماره‌ها هم اکنون در حال ثبت است",
        ),
    )


def send_outcome(error: BaseException) -> str:
    """What a failed send means for its chunk: planned (provably not sent; try again later),
    failed (the service refused it) or unknown (anything else: it may have gone out)."""
    if isinstance(error, NOT_SENT_RETRY):
        return PLANNED
    if isinstance(error, NOT_SENT_REFUSED):
        return FAILED
    return UNKNOWN


def _send_planned(client: PanelClient, store: Store, name: str, limiter: RateLimiter, progress: bool) -> None:
    """Send the planned chunks in order; any failure stops the campaign, its chunk journaled."""
    campaign = store.campaign(name)
    planned = store.chunks(name, PLANNED)
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
        store.journal_move(name, chunk, PLANNED, IN_FLIGHT)
        try:
            result = client.send_batch_sms(
                campaign["line"], list(numbers), campaign["text"], flash=bool(campaign["flash"])
            )
        except BaseException as error:
            _journal_failure(store, name, int(chunk), error)
            raise
        store.journal_move(name, chunk, IN_FLIGHT, SENT, batch_id=result.batch_sms_id)
    left = store.chunks_not_sent(name)
    store.set_campaign_state(
        name,
        "done" if left == 0 else "stopped",
        None if left == 0 else f"{left} chunk(s) not sent: see payamak campaign status {name}",
    )


def _journal_failure(store: Store, name: str, chunk: int, error: BaseException) -> None:
    """Record what the failed send means; a store that cannot be written then leaves the chunk
    in flight (resume counts it unknown) and never hides the send's own error."""
    outcome = send_outcome(error)
    code = getattr(error, "code", None) if outcome == FAILED else None
    advice = {
        UNKNOWN: "it may have gone out: run resume to check it against the sent messages",
        PLANNED: "it was not sent: run resume to go on",
        FAILED: "the service refused it",
    }[outcome]
    detail = (  # an unknown outcome in words of its own: the transport's advice (try again) does not fit it
        f"no answer proves whether it went out ({type(error).__name__})"
        if outcome == UNKNOWN
        else getattr(error, "message_en", None) or type(error).__name__
    )
    try:
        store.journal_move(name, chunk, IN_FLIGHT, outcome, code=code)
        store.set_campaign_state(name, "stopped", f"chunk {chunk}: {detail} ({advice}).")
    except PayamakError as journal:
        error.add_note(
            f"The journal could not record chunk {chunk} as {outcome} ({journal}); resume counts it unknown."
        )
