"""The panel's state: accounts, lines, credit, limits, the clock, sends made at run time.

Every operation of the service is a method here taking plain Python values and returning the
values the service answers with; `soap.py` turns them into and out of XML. What an admin may
change (the clock, outages, incidents, forgotten batches) is checked here, so that a refused
change leaves the state as it was.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import numpy as np

from .. import text as sms_text
from ..dates import TEHRAN
from ..errors import InputError
from ..wsdl.contract import DEFAULT_GENERATION, GENERATIONS
from . import latest
from .history import (
    FINAL_STATUSES,
    IN,
    LINES,
    NOT_SENT,
    OPERATOR_PREFIXES,
    OPT_OUT_TEXTS,
    OUT,
    Course,
    History,
    HistoryConfig,
    Incident,
    delivery_course,
    is_blacklisted,
    operator_named,
)
from .messages import USER_ID, Tariffs, history_rows, runtime_row, scheduled_rows, tehran_times
from .truth import account_truth

REC_ID_ROWS = 1000  # a recId is message id * 1000 + row
LATEST_CLOCK = 4_102_444_800.0  # 2100-01-01: a clock beyond it is a mistake
MAX_ADVANCE = 3660 * 86400.0  # ten years in one step
MAX_ACCOUNTS = 100
MAX_RECORDS = 10_000_000  # history records over all accounts
MAX_DARK_SECONDS = 86400.0
MAX_INCIDENTS = 1000
MAX_REPLIES = 1_000_000
MAX_FORGET_TIMES = 100_000
SCHEDULE, USANCE = 3, 4


def _refuse(text: str) -> InputError:
    return InputError(text, "مقدار نامعتبر برای شبیه ساز")


class Clock:
    """The simulator's time: real time times `speed`, plus whatever an admin advanced it by."""

    def __init__(self, start: float | None = None, speed: float = 1.0):
        self.start = time.time() if start is None else start
        self.speed = speed
        self._origin = time.monotonic()
        self._advanced = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._origin) * self.speed + self._advanced

    def advance(self, seconds: float) -> None:
        """Move the clock forward; it never goes back, and never past 2100."""
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and 0 <= seconds <= MAX_ADVANCE):
            raise _refuse(
                f"advance must be a number of seconds from 0 to {MAX_ADVANCE:.0f} (ten years), not {seconds!r}"
            )
        with self._lock:
            if self.now() + seconds > LATEST_CLOCK:
                raise _refuse("that advance would take the clock past 2100-01-01; restart the simulator instead")
            self._advanced += seconds


@dataclass
class Account:
    username: str
    password: str
    credit: Decimal
    state: str = "active"  # active, inactive (GetCredit -2), blocked (sends answer 2)
    lines: tuple[str, ...] = LINES
    daily_limit: int = 100_000
    sent_on: dict[str, int] = field(default_factory=dict)  # recipients sent per Tehran day


@dataclass
class Send:
    """A send made while the simulator runs (the history's sends live in `History`)."""

    message_id: int
    t: float
    username: str
    line: str
    texts: list[str]  # one text, or one per recipient (like-to-like)
    numbers: list[str]
    valid: list[bool]
    flash: bool
    bulk: bool
    parts: int
    persian: bool
    tariff: Decimal
    incidents: tuple[Incident, ...] = ()  # those running when it was sent
    many_to_many: bool = False  # a like-to-like send: one text per recipient
    _not_sent: int | None = field(default=None, repr=False, compare=False)

    def course(self, seed: int) -> Course:
        """The course of every recipient; a number that was not a mobile was never sent (11)."""
        ints = np.array([int(n[-10:]) if ok else 0 for n, ok in zip(self.numbers, self.valid)], dtype=np.int64)
        rows = np.arange(len(self.numbers))
        course = delivery_course(seed, self.message_id, rows, ints, self.bulk, self.t, 0, (self.line,), self.incidents)
        valid = np.asarray(self.valid)
        final = np.where(valid, course.final, 11).astype(np.int32)
        return dataclasses.replace(course, final=final, final_after=np.where(valid, course.final_after, 0.0))

    def statuses(self, seed: int, now: float) -> np.ndarray:
        return np.where(self.valid, self.course(seed).status(now - self.t), 11).astype(np.int32)

    def not_sent(self, seed: int) -> int:
        """Recipients never sent (10, 11): decided at the send, so counted once (every page of
        GetMessages shows it)."""
        if self._not_sent is None:
            self._not_sent = int(np.isin(self.course(seed).final, NOT_SENT).sum())
        return self._not_sent


@dataclass(frozen=True)
class Reply:
    """A message a recipient of a run-time send wrote back to its line (staged by an admin)."""

    message_id: int
    t: float
    username: str
    line: str
    sender: str
    text: str

    def row(self) -> tuple:
        """Its MessageInfo row, as a received history record's (unread)."""
        when = tehran_times(np.array([int(self.t)]))[0]
        return (when, self.text, "0", "1", None, "false", "false", "FA", str(self.message_id), "In", "false") + (
            "0", "1", self.line, "None", "None", self.sender, "0", "None", "0", None, str(USER_ID),
        )  # fmt: skip


@dataclass
class WorldConfig:
    history: HistoryConfig = field(default_factory=HistoryConfig)
    start: float | None = None  # epoch seconds of the clock's start; default now
    clock_speed: float = 1.0
    max_recipients: int = 100
    daily_limit: int = 100_000
    tariff_fa: Decimal = Decimal("1.0")  # credit per part
    tariff_en: Decimal = Decimal("1.3")
    filtered_words: tuple[str, ...] = ("قمار", "شرط بندی", "casino")
    # Where the history ends (epoch seconds); default the clock's start. A later end gives a
    # clock that lives through its history: the service shows each record once the clock reaches it.
    history_end: float | None = None
    accounts: int = 0  # extra accounts demo1..demoN (password = user name), each with its own history


def normalize_number(raw: str) -> str | None:
    """The simulator's own reading of a recipient: 09xxxxxxxxx, or None if it is no mobile."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    for prefix in ("0098", "98", "0"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 10:
            digits = digits[len(prefix) :]
            break
    return "0" + digits if len(digits) == 10 and digits.startswith("9") else None


def _check_config(config: WorldConfig) -> None:
    for name in ("start", "history_end"):
        value = getattr(config, name)
        if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= LATEST_CLOCK):
            raise _refuse(f"WorldConfig.{name} must be epoch seconds between 1970 and 2100, not {value!r}")
    speed = config.clock_speed
    if not (isinstance(speed, (int, float)) and math.isfinite(speed) and 0 <= speed <= 1_000_000):
        raise _refuse(f"WorldConfig.clock_speed must be a number from 0 (frozen) to 1000000, not {speed!r}")
    if not (isinstance(config.accounts, int) and 0 <= config.accounts <= MAX_ACCOUNTS):
        raise _refuse(f"WorldConfig.accounts must be a whole number from 0 to {MAX_ACCOUNTS}, not {config.accounts!r}")
    history = config.history
    if not (isinstance(history.days, int) and 1 <= history.days <= 3650):
        raise _refuse(f"HistoryConfig.days must be a whole number from 1 to 3650, not {history.days!r}")
    if not (isinstance(history.messages, int) and 0 <= history.messages * (config.accounts + 1) <= MAX_RECORDS):
        raise _refuse(
            f"HistoryConfig.messages times the accounts must be a whole number from 0 to {MAX_RECORDS}, "
            f"not {history.messages!r} x {config.accounts + 1}: lower the messages or the accounts"
        )


def extra_account_lines(k: int) -> tuple[str, str]:
    """The service and promotional lines of account demo<k>."""
    return f"2000{k:04d}", f"5000{k:04d}"


class World:
    def __init__(self, config: WorldConfig | None = None, generation: str = DEFAULT_GENERATION):
        self.config = config or WorldConfig()
        _check_config(self.config)
        if generation not in GENERATIONS:
            raise _refuse(f"no contract generation {generation!r}; choose one of {', '.join(GENERATIONS)}")
        self.generation = generation  # the contract generation whose values the world produces
        self.seed = self.config.history.seed
        self.clock = Clock(self.config.start, self.config.clock_speed)
        limit = self.config.daily_limit
        end = self.clock.start if self.config.history_end is None else self.config.history_end
        self.accounts = {"demo": Account("demo", "demo", Decimal(1_000_000), daily_limit=limit)}
        self.histories = {"demo": History(self.config.history, end)}
        for k in range(1, self.config.accounts + 1):
            name, previous = f"demo{k}", self.histories[f"demo{k - 1}" if k > 1 else "demo"]
            self.accounts[name] = Account(
                name, name, Decimal(1_000_000), lines=extra_account_lines(k), daily_limit=limit
            )
            seed = (self.seed * 1_000_003 + k) % 2**63
            history = dataclasses.replace(self.config.history, seed=seed)
            self.histories[name] = History(history, end, previous.first_id + len(previous))
        self.history = self.histories["demo"]
        for account in (
            Account("inactive", "inactive-pw", Decimal(500), state="inactive", daily_limit=limit),
            Account("blocked", "blocked-pw", Decimal(500), state="blocked", daily_limit=limit),
            Account("nocredit", "nocredit-pw", Decimal(0), daily_limit=limit),
        ):
            self.accounts[account.username] = account
        self.inactive_lines = {"30001111"}
        self.system_updating = False  # sends answer 9
        self.webservice_disabled = False  # sends answer 10
        self.sends: dict[int, Send] = {}
        self.replies: list[Reply] = []  # staged by an admin: recipients writing back
        last = list(self.histories.values())[-1]
        self.next_id = last.first_id + len(last)
        self.calls: Counter[str] = Counter()
        self.lock = threading.RLock()
        self.tariffs = Tariffs(self.config.tariff_fa, self.config.tariff_en)
        self.incidents: tuple[Incident, ...] = ()
        self.forgotten: dict[int, int] = {}  # batch id -> GetBatchDelivery calls still answered -2
        self._dark_until = 0.0  # time.monotonic() until which the service answers 503
        self.dark_documents = False  # whether the WSDL and schemas answer 503 too

    # --- accounts -------------------------------------------------------------------------
    def account(self, username: str | None, password: str | None) -> Account | None:
        found = self.accounts.get(username or "")
        return found if found is not None and found.password == password else None

    def get_credit(self, username, password) -> Decimal | int:
        account = self.account(username, password)
        if account is None:
            return -1
        if account.state == "inactive":
            return -2
        return account.credit

    def get_sender_numbers(self, username, password) -> str:
        account = self.account(username, password)
        return ",".join(account.lines) if account else "-1"

    # --- sending --------------------------------------------------------------------------
    def _send(
        self, username, password, line, numbers, texts, flash, bulk, many_to_many=False
    ) -> tuple[int, Send | None]:
        account = self.account(username, password)
        if account is None:
            return 1, None
        if self.system_updating:
            return 9, None
        if self.webservice_disabled:
            return 10, None
        if account.state != "active":
            return 2, None
        numbers = list(numbers or [])
        if not 1 <= len(numbers) <= self.config.max_recipients:
            return 5, None
        if line not in account.lines:
            return 3, None
        if line in self.inactive_lines:
            return 6, None
        if any(word in t.casefold() for t in texts for word in self.config.filtered_words):
            return 7, None
        normalized = [normalize_number(n) for n in numbers]
        valid = [n is not None for n in normalized]
        infos = [sms_text.analyze(t) for t in texts]
        per_recipient = infos if len(infos) == len(numbers) else infos * len(numbers)
        parts = max(i.parts for i in infos)
        persian = any(i.lang == "FA" for i in infos)
        tariff = self.config.tariff_fa if persian else self.config.tariff_en
        cost = sum(i.parts for i, ok in zip(per_recipient, valid) if ok) * tariff
        with self.lock:
            now = self.clock.now()
            day = datetime.fromtimestamp(now, TEHRAN).date().isoformat()
            if account.sent_on.get(day, 0) + sum(valid) > account.daily_limit:
                return 4, None
            if account.credit < cost:
                return 8, None
            account.credit -= cost
            account.sent_on[day] = account.sent_on.get(day, 0) + sum(valid)
            send = Send(
                self.next_id,
                now,
                account.username,
                line,
                list(texts),
                [n or raw for n, raw in zip(normalized, numbers)],
                valid,
                bool(flash),
                bulk,
                parts,
                persian,
                tariff,
                tuple(i for i in self.incidents if i.running),
                many_to_many,
            )
            self.sends[send.message_id] = send
            self.next_id += 1
        return 0, send

    def send_sms(self, username, password, line, numbers, text, flash) -> tuple[int, list[int], bytes]:
        code, send = self._send(username, password, line, numbers, [text or ""], flash, bulk=False)
        if send is None:
            return code, [], b""
        rec_ids = [send.message_id * REC_ID_ROWS + row if ok else 0 for row, ok in enumerate(send.valid)]
        return code, rec_ids, bytes(int(ok) for ok in send.valid)

    def send_batch_sms(self, username, password, line, numbers, text, flash) -> tuple[int, int]:
        code, send = self._send(username, password, line, numbers, [text or ""], flash, bulk=True)
        return code, send.message_id if send else 0

    def send_like_to_like(self, username, password, line, numbers, texts, flash) -> tuple[int, int]:
        texts = list(texts or [])
        if len(texts) != len(numbers or []):
            return 5, 0
        code, send = self._send(username, password, line, numbers, texts, flash, bulk=True, many_to_many=True)
        return code, send.message_id if send else 0

    # --- delivery -------------------------------------------------------------------------
    def _history_record(self, account: Account, message_id: int, now: float) -> tuple[History, int] | None:
        """(history, index) of a sent record of this account that the clock has reached."""
        h = self.histories.get(account.username)
        if h is None:
            return None
        i = message_id - h.first_id
        return (h, i) if 0 <= i < h.visible(now) and h.direction[i] == OUT else None

    def _owned(self, account: Account, message_id: int, now: float) -> bool:
        """Whether `message_id` is a sent record of this account, as of `now`."""
        send = self.sends.get(message_id)
        if send is not None:
            return send.username == account.username
        return self._history_record(account, message_id, now) is not None

    def recipients(
        self, account: Account, message_id: int, now: float, rows: slice = slice(None)
    ) -> tuple[list[str], np.ndarray]:
        """Numbers and statuses at `now` of the recipients (`rows`, by default all of them) of a
        sent record the account owns; a page's worth is worked out, not the whole batch's."""
        send = self.sends.get(message_id)
        if send is not None:
            row = np.arange(len(send.numbers))[rows]
            return send.numbers[rows], self.reported(message_id, row, send.statuses(self.seed, now)[rows])
        h, i = self._history_record(account, message_id, now)
        owner, row = (part[rows] for part in h.expand(np.array([i])))
        numbers = h.numbers(owner, row)
        statuses = h.statuses(owner, row, now, self.incidents, account.lines, numbers=numbers)
        return ["0" + str(n) for n in numbers], self.reported(message_id, row, statuses)

    def reported(self, message_id, row, statuses: np.ndarray) -> np.ndarray:
        """Delivery statuses as a deployment of the world's generation reports them."""
        if self.generation != latest.GENERATION:
            return statuses
        return latest.delivery_statuses(self.seed, message_id, row, statuses)

    def _forgets(self, batch_id: int) -> bool:
        """Whether this call for the batch is one of those an admin asked to answer -2."""
        with self.lock:
            left = self.forgotten.get(batch_id, 0)
            if left <= 0:
                return False
            if left == 1:
                del self.forgotten[batch_id]
            else:
                self.forgotten[batch_id] = left - 1
            return True

    def _batch_report(self, username, password, batch_id, index, count, forgettable):
        account = self.account(username, password)
        if account is None:
            return -1, [], []
        now = self.clock.now()
        if not self._owned(account, batch_id, now) or (forgettable and self._forgets(batch_id)):
            return -2, [], []
        begin = max(index, 1) - 1
        numbers, statuses = self.recipients(account, batch_id, now, slice(begin, begin + max(min(count, 100), 0)))
        return 0, numbers, statuses.tolist()

    def get_batch_delivery(self, username, password, batch_id, index, count) -> tuple[int, list[str], list[int]]:
        return self._batch_report(username, password, batch_id, index, count, forgettable=True)

    def get_delivery_like_to_like(self, username, password, sms_id) -> tuple[int, list[str], list[int]]:
        return self._batch_report(username, password, sms_id, 1, self.config.max_recipients, forgettable=False)

    def get_delivery(self, username, password, rec_id) -> int:
        account = self.account(username, password)
        if account is None:
            return -1
        now = self.clock.now()
        message_id, row = divmod(rec_id, REC_ID_ROWS)
        if rec_id <= 0 or not self._owned(account, message_id, now):
            return -2
        numbers, statuses = self.recipients(account, message_id, now)
        return int(statuses[row]) if row < len(numbers) else -2

    # --- messages -------------------------------------------------------------------------
    def _history_index(self, account: Account, direction: int, lines: tuple[str, ...], now: float) -> np.ndarray:
        h = self.histories.get(account.username)
        if h is None or direction not in (IN, OUT, SCHEDULE):
            return np.zeros(0, dtype=np.int64)
        order = h.scheduled(now) if direction == SCHEDULE else h.newest_first(direction, now)
        if not lines:
            return order
        wanted = [account.lines.index(line) for line in lines if line in account.lines]
        return order[np.isin(h.line[order], wanted)]

    def _rows(self, account: Account, direction: int, index: np.ndarray, now: float) -> list[tuple]:
        if len(index) == 0:
            return []
        h = self.histories[account.username]
        newer = self.generation == latest.GENERATION
        if direction == SCHEDULE:
            return scheduled_rows(h, account.lines, index, self.tariffs, newer)
        return history_rows(h, account.lines, index, now, self.incidents, self.tariffs, newer)

    def _runtime_sends(self, account: Account, direction: int, lines: tuple[str, ...]) -> list[Send | Reply]:
        if direction == IN:
            with self.lock:
                now = self.clock.now()
                replies = [
                    r for r in self.replies
                    if r.username == account.username and r.t <= now and (not lines or r.line in lines)
                ]  # fmt: skip
            return sorted(replies, key=lambda r: -r.message_id)
        if direction != OUT:
            return []
        with self.lock:
            sends = [
                s for s in self.sends.values() if s.username == account.username and (not lines or s.line in lines)
            ]
        return sorted(sends, key=lambda s: -s.message_id)

    def runtime_row(self, send: Send | Reply) -> tuple:
        if isinstance(send, Reply):
            return send.row()
        newer = self.generation == latest.GENERATION
        return runtime_row(send, send.not_sent(self.seed), self.clock.now(), newer)

    def get_messages(self, username, password, direction, lines, index, count) -> list[tuple] | None:
        """A page of MessageInfo rows, newest first: received (1), sent (2), scheduled (3) or
        usance (4, none in this panel) messages; None: wrong credentials."""
        account = self.account(username, password)
        if account is None:
            return None
        now = self.clock.now()
        lines = tuple(lines or ())
        begin = max(index, 1) - 1
        count = max(min(count, 1000), 0)
        runtime = self._runtime_sends(account, direction, lines)
        rows = [self.runtime_row(s) for s in runtime[begin : begin + count]]
        if len(rows) < count:
            history = self._history_index(account, direction, lines, now)
            start = max(begin - len(runtime), 0)
            rows += self._rows(account, direction, history[start : start + count - len(rows)], now)
        return rows

    def get_messages_by_date_range(self, username, password, direction, lines, since, until) -> list[tuple] | None:
        account = self.account(username, password)
        if account is None:
            return None
        now = self.clock.now()
        lines = tuple(lines or ())
        since, until = (d.replace(tzinfo=d.tzinfo or TEHRAN).timestamp() for d in (since, until))
        rows = [self.runtime_row(s) for s in self._runtime_sends(account, direction, lines) if since <= s.t <= until]
        history = self._history_index(account, direction, lines, now)
        if len(history):
            t = self.histories[account.username].t[history]
            rows += self._rows(account, direction, history[(t >= since) & (t <= until)], now)
        return rows

    def get_inbox_count(self, username, password, is_read) -> int:
        account = self.account(username, password)
        if account is None:
            return -1
        h = self.histories.get(account.username)
        if h is None:
            return 0
        now = self.clock.now()
        shown = h.visible(now)
        inbox = h.direction[:shown] == IN
        return int((inbox & ((h.read_at[:shown] <= now) == bool(is_read))).sum())

    # --- what an admin changes --------------------------------------------------------------
    def dark_seconds_left(self) -> float:
        """Wall-clock seconds the service still answers 503 to everything (0: it is up)."""
        return max(0.0, self._dark_until - time.monotonic())

    def go_dark(self, seconds: float, documents: bool = False) -> None:
        """For `seconds` of wall time every SOAP call answers 503; with `documents`, the WSDL too."""
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and 0 < seconds <= MAX_DARK_SECONDS):
            raise _refuse(f"seconds must be more than 0 and at most {MAX_DARK_SECONDS:.0f} (a day), not {seconds!r}")
        with self.lock:
            self._dark_until = time.monotonic() + seconds
            self.dark_documents = bool(documents)

    def end_dark(self) -> None:
        with self.lock:
            self._dark_until = 0.0

    def batch_exists(self, batch_id: int) -> bool:
        """Whether any account sent (or, by its history, will send) a record with this id."""
        if batch_id in self.sends:
            return True
        for h in self.histories.values():
            i = batch_id - h.first_id
            if 0 <= i < len(h):
                return bool(h.direction[i] == OUT)
        return False

    def forget(self, batch_id: int, times: int) -> None:
        """The next `times` GetBatchDelivery calls for this batch answer -2 (0 cancels)."""
        _check_whole("times", times, 0, MAX_FORGET_TIMES)
        _check_whole("batch_id", batch_id, 1, 2**31 - 1)
        if not self.batch_exists(batch_id):
            raise _refuse(f"no sent record has the id {batch_id}; forget one that GetMessages lists")
        with self.lock:
            if times:
                self.forgotten[batch_id] = times
            else:
                self.forgotten.pop(batch_id, None)

    def all_lines(self) -> list[str]:
        return sorted({line for account in self.accounts.values() for line in account.lines})

    def start_incident(self, operator: str, status: int, rate: float, line: str | None = None) -> Incident:
        """From the clock's now on, `rate` of new sends to `operator` (on `line`) end in `status`."""
        name = operator_named(operator or "")
        if name is None:
            raise _refuse(f"unknown operator {operator!r}; name one of {', '.join(OPERATOR_PREFIXES)} (any case)")
        _check_whole("status", status, FINAL_STATUSES[0], FINAL_STATUSES[-1])
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0 < rate <= 1):
            raise _refuse(f"rate must be a fraction more than 0 and at most 1, not {rate!r}")
        if line is not None and line not in self.all_lines():
            raise _refuse(f"no account has the line {line!r}; lines: {', '.join(self.all_lines())}")
        with self.lock:
            if len(self.incidents) >= MAX_INCIDENTS:
                raise _refuse(f"at most {MAX_INCIDENTS} incidents over a simulator's life; restart it for more")
            incident = Incident(name, status, float(rate), line, self.clock.now())
            self.incidents = self.incidents + (incident,)
        return incident

    def stage_replies(self, batch_id: int, share: float, text: str | None = None) -> int:
        """From the clock's now on, `share` of the recipients of run-time send `batch_id` write
        back to its line, one a minute apart: `text`, or by default the opt-out words people use
        (لغو, 11, لغو۱۱, ۱۱ in turn). Returns how many replies were staged."""
        if not (isinstance(share, (int, float)) and math.isfinite(share) and 0 < share <= 1):
            raise _refuse(f"share must be a fraction more than 0 and at most 1, not {share!r}")
        with self.lock:
            send = self.sends.get(batch_id)
            if send is None:
                raise _refuse(f"no send made while the simulator runs has the id {batch_id}; reply to one of those")
            numbers = [n for n, ok in zip(send.numbers, send.valid) if ok]
            chosen = numbers[: round(share * len(numbers))]
            if len(self.replies) + len(chosen) > MAX_REPLIES:
                raise _refuse(f"at most {MAX_REPLIES} staged replies over a simulator's life; restart it for more")
            now = self.clock.now()
            for k, number in enumerate(chosen):
                words = text if text is not None else OPT_OUT_TEXTS[k % len(OPT_OUT_TEXTS)]
                self.replies.append(Reply(self.next_id, now + 60 * k, send.username, send.line, number, words))
                self.next_id += 1
        return len(chosen)

    def end_incidents(self) -> int:
        """Ends every running incident now; the sends they already touched keep their fate."""
        with self.lock:
            now = self.clock.now()
            running = sum(i.running for i in self.incidents)
            self.incidents = tuple(dataclasses.replace(i, end=now) if i.running else i for i in self.incidents)
        return running

    # --- blacklist and content ------------------------------------------------------------
    def number_in_blacklist(self, username, password, number) -> int:
        account = self.account(username, password)
        if account is None:
            return -1
        if account.state != "active":
            return -2
        normalized = normalize_number(number or "")
        if normalized is None:
            return -3
        return int(is_blacklisted(self.seed, int(normalized[1:]))[0])

    def extract_blacklist(self, username, password, numbers) -> tuple[int, list[str]]:
        account = self.account(username, password)
        if account is None:
            return -1, []
        if account.state != "active":
            return -2, []
        candidates = [normalize_number(n) for n in (numbers or "").split(",")]
        candidates = [n for n in candidates if n]
        if not candidates:
            return -3, []
        flags = is_blacklisted(self.seed, np.array([int(n[1:]) for n in candidates]))
        return 0, [n for n, bad in zip(candidates, flags) if bad]

    def check_sms_content(self, username, password, message) -> int:
        if self.account(username, password) is None:
            return -1
        lowered = (message or "").casefold()
        return 1 if any(word in lowered for word in self.config.filtered_words) else 0

    # --- truth ----------------------------------------------------------------------------
    def truth(self, username: str = "demo", with_batches: bool = True, with_numbers: bool = False) -> dict:
        """What a correct sync of `username` must reproduce, at the current clock."""
        if username not in self.accounts:
            raise _refuse(f"no account {username!r}; accounts: {', '.join(self.accounts)}")
        found = account_truth(self, username, with_batches, with_numbers)
        with self.lock:
            now = self.clock.now()
            replies = sum(r.username == username and r.t <= now for r in self.replies)
        found["messages"]["received"] += replies  # staged replies are never read
        found["messages"]["received_unread"] += replies
        return found


def _check_whole(name: str, value, low: int, high: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise _refuse(f"{name} must be a whole number from {low} to {high}, not {value!r}")
