"""The panel's state: accounts, lines, credit, limits, the clock, sends made at run time.

Every operation of the service is a method here taking plain Python values and returning the
values the service answers with; `soap.py` turns them into and out of XML.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import numpy as np

from .. import text as sms_text
from ..dates import TEHRAN
from .history import (
    CAMPAIGN,
    FIRST_MESSAGE_ID,
    IN,
    LINES,
    NOT_SENT,
    OUT,
    History,
    HistoryConfig,
    delivery_statuses,
    is_blacklisted,
    recipient_numbers,
)

REC_ID_ROWS = 1000  # a recId is message id * 1000 + row
USER_ID = 48213


class Clock:
    """The simulator's time: real time times `speed`, plus whatever an admin advanced it by."""

    def __init__(self, start: float | None = None, speed: float = 1.0):
        self.start = time.time() if start is None else start
        self.speed = speed
        self._origin = time.monotonic()
        self._advanced = 0.0

    def now(self) -> float:
        return self.start + (time.monotonic() - self._origin) * self.speed + self._advanced

    def advance(self, seconds: float) -> None:
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

    def statuses(self, seed: int, now: float) -> np.ndarray:
        ints = np.array([int(n[-10:]) if ok else 0 for n, ok in zip(self.numbers, self.valid)], dtype=np.int64)
        rows = np.arange(len(self.numbers))
        found = delivery_statuses(seed, self.message_id, rows, ints, self.bulk, self.parts, now - self.t)
        return np.where(self.valid, found, 11)

    def not_sent(self, seed: int) -> int:
        return int(np.isin(self.statuses(seed, self.t + 6 * 86400), NOT_SENT).sum())


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


def normalize_number(raw: str) -> str | None:
    """The simulator's own reading of a recipient: 09xxxxxxxxx, or None if it is no mobile."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    for prefix in ("0098", "98", "0"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 10:
            digits = digits[len(prefix) :]
            break
    return "0" + digits if len(digits) == 10 and digits.startswith("9") else None


class World:
    def __init__(self, config: WorldConfig | None = None):
        self.config = config or WorldConfig()
        self.seed = self.config.history.seed
        self.clock = Clock(self.config.start, self.config.clock_speed)
        self.history = History(self.config.history, self.clock.start)
        limit = self.config.daily_limit
        self.accounts = {
            a.username: a
            for a in (
                Account("demo", "demo", Decimal(1_000_000), daily_limit=limit),
                Account("inactive", "inactive", Decimal(500), state="inactive", daily_limit=limit),
                Account("blocked", "blocked", Decimal(500), state="blocked", daily_limit=limit),
                Account("nocredit", "nocredit", Decimal(0), daily_limit=limit),
            )
        }
        self.inactive_lines = {"30001111"}
        self.system_updating = False  # sends answer 9
        self.webservice_disabled = False  # sends answer 10
        self.sends: dict[int, Send] = {}
        self.next_id = FIRST_MESSAGE_ID + len(self.history)
        self.calls: Counter[str] = Counter()
        self.lock = threading.RLock()

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
    def _send(self, username, password, line, numbers, texts, flash, bulk) -> tuple[int, Send | None]:
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
        code, send = self._send(username, password, line, numbers, texts, flash, bulk=True)
        return code, send.message_id if send else 0

    # --- delivery -------------------------------------------------------------------------
    def _owned(self, account: Account, message_id: int) -> bool:
        """Whether `message_id` is a sent record of this account."""
        send = self.sends.get(message_id)
        if send is not None:
            return send.username == account.username
        i = message_id - FIRST_MESSAGE_ID
        return account.username == "demo" and 0 <= i < len(self.history) and self.history.direction[i] == OUT

    def recipients(self, message_id: int) -> tuple[list[str], np.ndarray]:
        """Numbers and current statuses of every recipient of a sent record."""
        now = self.clock.now()
        send = self.sends.get(message_id)
        if send is not None:
            return send.numbers, send.statuses(self.seed, now)
        owner, row = self.history.expand(np.array([message_id - FIRST_MESSAGE_ID]))
        numbers = ["0" + str(n) for n in self.history.numbers(owner, row)]
        return numbers, self.history.statuses(owner, row, now)

    def get_batch_delivery(self, username, password, batch_id, index, count) -> tuple[int, list[str], list[int]]:
        account = self.account(username, password)
        if account is None:
            return -1, [], []
        if not self._owned(account, batch_id):
            return -2, [], []
        numbers, statuses = self.recipients(batch_id)
        begin = max(index, 1) - 1
        end = begin + max(min(count, 100), 0)
        return 0, numbers[begin:end], [int(s) for s in statuses[begin:end]]

    def get_delivery_like_to_like(self, username, password, sms_id) -> tuple[int, list[str], list[int]]:
        return self.get_batch_delivery(username, password, sms_id, 1, self.config.max_recipients)

    def get_delivery(self, username, password, rec_id) -> int:
        account = self.account(username, password)
        if account is None:
            return -1
        message_id, row = divmod(rec_id, REC_ID_ROWS)
        if rec_id <= 0 or not self._owned(account, message_id):
            return -2
        numbers, statuses = self.recipients(message_id)
        return int(statuses[row]) if row < len(numbers) else -2

    # --- messages -------------------------------------------------------------------------
    def _history_index(self, direction: int, lines: tuple[str, ...]) -> np.ndarray:
        order = self.history.newest_first[direction]
        if not lines:
            return order
        wanted = [LINES.index(line) for line in lines if line in LINES]
        return order[np.isin(self.history.line[order], wanted)]

    def _runtime_sends(self, account: Account, direction: int, lines: tuple[str, ...]) -> list[Send]:
        if direction != OUT:
            return []
        with self.lock:
            sends = [
                s for s in self.sends.values() if s.username == account.username and (not lines or s.line in lines)
            ]
        return sorted(sends, key=lambda s: -s.message_id)

    def get_messages(self, username, password, direction, lines, index, count) -> list[tuple] | None:
        """A page of MessageInfo rows (see `message_rows`), newest first; None: wrong credentials."""
        account = self.account(username, password)
        if account is None:
            return None
        lines = tuple(lines or ())
        begin = max(index, 1) - 1
        count = max(min(count, 1000), 0)
        runtime = self._runtime_sends(account, direction, lines)
        rows = [self.runtime_row(s) for s in runtime[begin : begin + count]]
        if account.username == "demo" and len(rows) < count:
            history = self._history_index(direction, lines)
            start = max(begin - len(runtime), 0)
            rows += self.message_rows(history[start : start + count - len(rows)])
        return rows

    def get_messages_by_date_range(self, username, password, direction, lines, since, until) -> list[tuple] | None:
        account = self.account(username, password)
        if account is None:
            return None
        lines = tuple(lines or ())
        since, until = (d.replace(tzinfo=d.tzinfo or TEHRAN).timestamp() for d in (since, until))
        rows = [self.runtime_row(s) for s in self._runtime_sends(account, direction, lines) if since <= s.t <= until]
        if account.username == "demo":
            history = self._history_index(direction, lines)
            t = self.history.t[history]
            rows += self.message_rows(history[(t >= since) & (t <= until)])
        return rows

    def get_inbox_count(self, username, password, is_read) -> int:
        account = self.account(username, password)
        if account is None:
            return -1
        if account.username != "demo":
            return 0
        inbox = self.history.direction == IN
        return int((inbox & (self.history.read == bool(is_read))).sum())

    # MessageInfo rows: a tuple of values in the contract's element order (None = nil).
    def message_rows(self, index: np.ndarray) -> list[tuple]:
        h = self.history
        if len(index) == 0:
            return []
        when = tehran_times(h.t[index])
        contents = h.contents(index)
        single = recipient_numbers(self.seed, FIRST_MESSAGE_ID + index, 0)
        rows = []
        for k, i in enumerate(index.tolist()):
            kind, content, line = int(h.kind[i]), contents[k], LINES[h.line[i]]
            tariff = self.config.tariff_fa if h.persian[i] else self.config.tariff_en
            if h.direction[i] == OUT:
                count = int(h.recipients[i])
                sent = count - int(h.not_sent[i])
                rows.append(
                    (
                        when[k],
                        content,
                        str(sent * int(h.parts[i]) * tariff),
                        str(count),
                        None,
                        "false",
                        "true",
                        "FA" if h.persian[i] else "EN",
                        str(FIRST_MESSAGE_ID + i),
                        "Out",
                        "false",
                        str(count - sent),
                        str(int(h.parts[i])),
                        "0" + str(single[k]) if count == 1 else None,
                        "Group" if kind == CAMPAIGN else "WebService",
                        "Sent",
                        line,
                        str(sent),
                        "Sent",
                        str(tariff),
                        f"Campaign {int(h.campaign[i]) + 1}" if kind == CAMPAIGN else None,
                        str(USER_ID),
                    )
                )
            else:
                rows.append(
                    (
                        when[k],
                        content,
                        "0",
                        "1",
                        None,
                        "false",
                        "true" if h.read[i] else "false",
                        "FA",
                        str(FIRST_MESSAGE_ID + i),
                        "In",
                        "false",
                        "0",
                        "1",
                        line,
                        "None",
                        "None",
                        "0" + str(h.peer[i]),
                        "0",
                        "None",
                        "0",
                        None,
                        str(USER_ID),
                    )
                )
        return rows

    def runtime_row(self, send: Send) -> tuple:
        count = len(send.numbers)
        not_sent = send.not_sent(self.seed)
        sent = count - not_sent
        return (
            tehran_times(np.array([int(send.t)]))[0],
            send.texts[0],
            str(sent * send.parts * send.tariff),
            str(count),
            None,
            "true" if send.flash else "false",
            "true",
            "FA" if send.persian else "EN",
            str(send.message_id),
            "Out",
            "false",
            str(not_sent),
            str(send.parts),
            send.numbers[0] if count == 1 else None,
            "WebService",
            "Sent",
            send.line,
            str(sent),
            "Sent",
            str(send.tariff),
            None,
            str(USER_ID),
        )

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
    def truth(self, username: str = "demo", with_batches: bool = True) -> dict:
        """What a correct sync of `username` must reproduce, at the current clock."""
        now = self.clock.now()
        h = self.history
        own_history = username == "demo"
        runtime = [s for s in self.sends.values() if s.username == username]
        inbox = (h.direction == IN) if own_history else np.zeros(0, dtype=bool)
        by_status: Counter[int] = Counter()
        batches: dict[str, dict] = {}
        sent_index = np.flatnonzero(h.direction == OUT) if own_history else np.zeros(0, dtype=np.int64)
        for begin in range(0, len(sent_index), 20_000):
            index = sent_index[begin : begin + 20_000]
            owner, row = h.expand(index)
            statuses = h.statuses(owner, row, now)
            by_status.update(dict(zip(*[a.tolist() for a in np.unique(statuses, return_counts=True)])))
            if with_batches:
                keys = (owner.astype(np.int64) * 32) + (statuses + 8)
                unique, counts = np.unique(keys, return_counts=True)
                for key, n in zip(unique.tolist(), counts.tolist()):
                    i, status = divmod(key, 32)
                    entry = batches.setdefault(
                        str(FIRST_MESSAGE_ID + i),
                        {"count": int(h.recipients[i]), "not_sent": int(h.not_sent[i]), "statuses": {}},
                    )
                    entry["statuses"][str(status - 8)] = n
        for send in runtime:
            statuses = send.statuses(self.seed, now)
            by_status.update(statuses.tolist())
            if with_batches:
                values, counts = np.unique(statuses, return_counts=True)
                batches[str(send.message_id)] = {
                    "count": len(send.numbers),
                    "not_sent": send.not_sent(self.seed),
                    "statuses": {str(v): int(n) for v, n in zip(values.tolist(), counts.tolist())},
                }
        truth = {
            "clock": datetime.fromtimestamp(now, TEHRAN).isoformat(),
            "account": username,
            "messages": {
                "sent": len(sent_index) + len(runtime),
                "received": int(inbox.sum()),
                "received_read": int((inbox & h.read).sum()) if own_history else 0,
                "received_unread": int((inbox & ~h.read).sum()) if own_history else 0,
            },
            "recipients": int(sum(by_status.values())),
            "recipients_by_status": {str(k): v for k, v in sorted(by_status.items())},
            "calls": dict(self.calls),
        }
        if with_batches:
            truth["batches"] = batches
        return truth


def tehran_times(epoch_seconds: np.ndarray) -> list[str]:
    """Tehran wall-clock times without an offset, the way a WCF service writes a local DateTime."""
    t = np.asarray(epoch_seconds, dtype=np.int64)
    offsets = {datetime.fromtimestamp(int(x), TEHRAN).utcoffset() for x in (t.min(), t.max())}
    if len(offsets) == 1:
        local = (t + int(offsets.pop().total_seconds())).astype("datetime64[s]")
        return np.datetime_as_string(local).tolist()
    return [datetime.fromtimestamp(int(x), TEHRAN).replace(tzinfo=None).isoformat() for x in t]
