"""A seeded account history, held as numpy columns and expanded only when asked.

Nothing per recipient is stored: a recipient's number and the course of its delivery status
are pure functions of (seed, message id, row), so a million-record history costs a few dozen
megabytes, a page costs microseconds a row, and every answer is the same on every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .. import text as sms_text

WEEK = 7 * 86400
TEHRAN_OFFSET = 12_600  # seconds east of UTC: Iran has kept +03:30 all year since 2022
FIRST_MESSAGE_ID = 10_000_000
OUT, IN = 2, 1
OTP, TRANSACTIONAL, CAMPAIGN, REPLY, OPT_OUT, INBOUND = range(6)
LINES = ("10002188", "50001234", "30001111")  # index 2 is the inactive line
SERVICE_LINE, PROMO_LINE = 0, 1

# Operators by the three digits after the leading 0, and weights of the simulated subscriber mix.
# The table is the simulator's own, but it draws only from whole ranges that libphonenumber's
# carrier data gives to the same operator (and calls valid), so that every operator breakdown of
# a simulated history can be checked against the library the toolkit reads operators from.
OPERATOR_PREFIXES = {
    "MCI": (910, 911, 912, 913, 914, 915, 916, 917, 918, 919, 990, 991, 992, 993, 994),
    "Irancell": (901, 902, 903, 904, 905, 930, 933, 935, 936, 937, 938, 939),
    "Rightel": (920, 921, 922, 923),
}
OPERATOR_WEIGHTS = (0.57, 0.36, 0.07)
OPERATOR_ALIASES = {
    "mci": "MCI",
    "ir mci": "MCI",
    "hamrah e aval": "MCI",
    "hamrahe aval": "MCI",
    "hamrah aval": "MCI",
    "irancell": "Irancell",
    "mtn irancell": "Irancell",
    "rightel": "Rightel",
}
DELIVERY_RATE = np.array([0.93, 0.90, 0.85, 0.75])  # by operator index; last: a prefix not in the table
BLACKLIST_RATE = 0.04
# Where the undelivered rest ends, as (status, weight); 5 here means "never leaves the telecom".
FAILURES = ((2, 0.45), (3, 0.08), (6, 0.07), (9, 0.08), (11, 0.08), (4, 0.04), (8, 0.04), (10, 0.03), (5, 0.13))
FAILURE_CODES = np.array([s for s, _ in FAILURES])
FAILURE_CDF = np.cumsum([w for _, w in FAILURES])
FINAL_STATUSES = tuple(range(1, 12))
SETTLES_AT_QUEUE = (6, 7, 10, 11)  # outcomes decided before the telecom holds the message
NOT_SENT = (10, 11)

CAMPAIGN_TEXTS = (
    "حراج زمستانه مدیا شاپ! تا ۴۰٪ تخفیف فقط تا جمعه.\nلغو۱۱",
    "مشتری گرامی، به مناسبت یلدا همه محصولات با ارسال رایگان. کد تخفیف: YALDA\nmediashop.ir\nلغو۱۱",
    (
        "باشگاه مشتریان مدیا شاپ: امتیازهای شما تا پایان ماه معتبر است. با خرید بالای ۵۰۰ هزار تومان "
        "دو برابر امتیاز بگیرید و در قرعه کشی سفر کیش شرکت کنید.\nلغو۱۱"
    ),
    (
        "نوروز مبارک! به پاس همراهی شما، کد تخفیف NOWRUZ را در سبد خرید وارد کنید و تا ۳۰٪ تخفیف بگیرید. "
        "این کد تا ۱۳ فروردین و برای همه دسته ها معتبر است. ارسال رایگان برای سفارش های بالای ۳۰۰ هزار تومان. "
        "برای دیدن محصولات به mediashop.ir سر بزنید.\nلغو۱۱"
    ),
    "Media Shop winter sale: up to 40% off until Friday. mediashop.ir  Stop: 11",
    "فروش ویژه کالای دیجیتال امروز از ساعت ۱۸.\nلغو۱۱",
)
OTP_TEXTS = ("کد تایید شما: {code}\nمدیا شاپ", "Your Media Shop code: {code}")
TRANSACTIONAL_TEXTS = (
    "سفارش {code} شما ارسال شد. پیگیری: mediashop.ir/t",
    "Order {code} has shipped. Track: mediashop.ir/t",
)
REPLY_TEXTS = ("ممنون", "قیمت چنده؟", "کی تموم میشه؟", "ارسال به شهرستان دارید؟")
OPT_OUT_TEXTS = ("لغو", "11", "لغو۱۱", "۱۱")
INBOUND_TEXTS = ("سلام، کد رو نگرفتم", "سفارشم کی میرسه؟", "hi")
TEXTS_BY_KIND = {
    CAMPAIGN: CAMPAIGN_TEXTS,
    OTP: OTP_TEXTS,
    TRANSACTIONAL: TRANSACTIONAL_TEXTS,
    REPLY: REPLY_TEXTS,
    OPT_OUT: OPT_OUT_TEXTS,
    INBOUND: INBOUND_TEXTS,
}

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 of each element. `x` is an array: numpy wraps its integers around silently
    (only arithmetic on a lone numpy scalar warns of the overflow the hash relies on)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def stable_hash(seed: int, *keys) -> np.ndarray:
    """A 64-bit hash of the seed and integer keys (arrays broadcast), the same on every run."""
    h = _splitmix(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    for key in keys:
        h = _splitmix(h ^ np.asarray(key).astype(np.uint64))
    return h


def unit(h: np.ndarray, salt: int) -> np.ndarray:
    """A uniform float in [0, 1) drawn from hash `h`; different salts give independent draws."""
    return (_splitmix(h ^ np.uint64(salt)) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _prefix_tables() -> tuple[np.ndarray, np.ndarray]:
    operator_of = np.full(1000, len(OPERATOR_PREFIXES), dtype=np.int8)
    draw = []
    for index, (prefixes, weight) in enumerate(zip(OPERATOR_PREFIXES.values(), OPERATOR_WEIGHTS)):
        operator_of[list(prefixes)] = index
        draw += [(p, weight / len(prefixes)) for p in prefixes]
    cumulative = np.cumsum([w for _, w in draw])
    return operator_of, np.array([p for p, _ in draw]), cumulative / cumulative[-1]


OPERATOR_OF_PREFIX, _DRAW_PREFIX, _DRAW_CUMULATIVE = _prefix_tables()


def recipient_numbers(seed: int, message_id, row) -> np.ndarray:
    """The mobile numbers (as int 9xxxxxxxxx) of history recipients."""
    h = stable_hash(seed, message_id, row)
    prefix = _DRAW_PREFIX[np.searchsorted(_DRAW_CUMULATIVE, unit(h, 1), side="right")]
    return prefix.astype(np.int64) * 10_000_000 + (h % np.uint64(10_000_000)).astype(np.int64)


def is_blacklisted(seed: int, numbers) -> np.ndarray:
    return unit(stable_hash(seed ^ 0xB1AC, numbers), 0) < BLACKLIST_RATE


def operator_named(name: str) -> str | None:
    """The table's name of an operator written in any common English form, or None."""
    return OPERATOR_ALIASES.get(" ".join(name.replace("-", " ").split()).casefold())


def operator_of(numbers: np.ndarray) -> np.ndarray:
    """Index in OPERATOR_PREFIXES of each number's operator (len(OPERATOR_PREFIXES): unknown)."""
    return OPERATOR_OF_PREFIX[(np.asarray(numbers, dtype=np.int64) // 10_000_000) % 1000]


def hour_of_week(t: np.ndarray) -> np.ndarray:
    """Hours since Saturday 00:00 in Tehran (Saturday opens the Iranian week)."""
    local = np.asarray(t, dtype=np.int64) + TEHRAN_OFFSET
    return ((local // 86400 + 5) % 7) * 24 + (local % 86400) // 3600  # 1970-01-01 was a Thursday


def _hour_of_week_dip() -> np.ndarray:
    """Fewer deliveries between 01:00 and 07:00, when more handsets are off; every day alike."""
    hour = np.arange(168) % 24
    return np.where((hour >= 1) & (hour < 7), 0.04, 0.0)


HOUR_OF_WEEK_DIP = _hour_of_week_dip()


def _lowest_not_sent_draw() -> float:
    """Below this delivery draw no recipient ends as not sent (unless an incident says so)."""
    lowest_p = float(DELIVERY_RATE.min() - HOUR_OF_WEEK_DIP.max())
    first = min(float(cdf - weight) for (code, weight), cdf in zip(FAILURES, FAILURE_CDF) if code in NOT_SENT)
    return lowest_p + first * (1 - lowest_p)


NOT_SENT_FROM = _lowest_not_sent_draw()


@dataclass(frozen=True)
class Incident:
    """A share of the sends to one operator (and line) that end in one status, from `start` to `end`."""

    operator: str
    status: int
    rate: float
    line: str | None
    start: float
    end: float = math.inf

    @property
    def running(self) -> bool:
        return math.isinf(self.end)

    def as_dict(self) -> dict:
        return {
            "operator": self.operator,
            "status": self.status,
            "rate": self.rate,
            "line": self.line,
            "start": self.start,
            "end": None if self.running else self.end,
        }


@dataclass(frozen=True)
class Course:
    """Where each recipient's delivery goes and when, in seconds after its send."""

    final: np.ndarray
    queued: np.ndarray  # the status while queued: -4 or 0
    queued_until: np.ndarray
    final_after: np.ndarray

    def status(self, age) -> np.ndarray:
        """-5 in the first minute, -4 or 0 while queued, 5 once the telecom holds it, then the
        final status; -3 once the send is older than a week."""
        age = np.asarray(age, dtype=np.float64)
        status = np.select(
            [age < 60, age < self.queued_until, age < self.final_after, age >= WEEK],
            [-5, self.queued, 5, -3],
            default=self.final,
        )
        return status.astype(np.int32)


def delivery_course(seed: int, message_id, row, numbers, bulk, sent_at, line=0, lines=(), incidents=()) -> Course:
    """Each recipient's fate: a pure function of the seed, the recipient and the send.

    The delivered share depends on the operator and the hour of the week only: bulk sends lose
    the blacklisted numbers (status 7) but deliver as often overall, so a day of campaigns and
    a day of one-time codes look alike. Incidents then override a share of their sends.
    """
    h = stable_hash(seed, message_id, row)
    numbers = np.asarray(numbers, dtype=np.int64)
    operator = operator_of(numbers)
    bulk = np.asarray(bulk, dtype=bool)
    sent_at = np.asarray(sent_at, dtype=np.float64)
    p_deliver = DELIVERY_RATE[operator] - HOUR_OF_WEEK_DIP[hour_of_week(sent_at)]
    p_deliver = np.where(bulk, p_deliver / (1 - BLACKLIST_RATE), p_deliver)
    u = unit(h, 2)
    rest = (u - p_deliver) / (1 - p_deliver)
    failed = FAILURE_CODES[np.minimum(np.searchsorted(FAILURE_CDF, rest, side="right"), len(FAILURES) - 1)]
    final = np.where(u < p_deliver, 1, failed)
    final = np.where(bulk & is_blacklisted(seed, numbers), 7, final)
    if incidents:
        final = _overlay(incidents, final, operator, sent_at, np.asarray(line), tuple(lines), unit(h, 6))
    queued_until = 60 + unit(h, 3) * 600
    held_for = -np.log1p(-unit(h, 4)) * 3600
    final_after = np.where(np.isin(final, SETTLES_AT_QUEUE), queued_until, queued_until + held_for)
    queued = np.where(unit(h, 5) < 0.3, -4, 0)
    return Course(final.astype(np.int32), queued, queued_until, final_after)


def _overlay(incidents, final, operator, sent_at, line, lines, draw) -> np.ndarray:
    """The newest incident wins where several cover the same send."""
    names = list(OPERATOR_PREFIXES)
    earliest, latest = float(sent_at.min()), float(sent_at.max())
    for incident in incidents:
        if incident.end <= earliest or incident.start > latest:
            continue
        hit = (operator == names.index(incident.operator)) & (sent_at >= incident.start) & (sent_at < incident.end)
        if incident.line is not None:
            hit &= line == (lines.index(incident.line) if incident.line in lines else -1)
        final = np.where(hit & (draw < incident.rate), incident.status, final)
    return final


def _concatenate(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0)


def _text_table(texts: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    infos = [sms_text.analyze(t.format(code="12345")) for t in texts]
    return np.array([i.parts for i in infos], dtype=np.int8), np.array([i.lang == "FA" for i in infos])


@dataclass(frozen=True)
class HistoryConfig:
    seed: int = 7
    days: int = 90
    messages: int = 20_000
    received_share: float = 0.08
    campaign_share: float = 0.3  # of sent records, each a chunk of up to 100 recipients


class History:
    """The columns of every history record of one account, oldest first.

    The history covers the `days` before `end`; record k has message id `first_id + k`. What a
    caller may see of it at a moment (`visible`) is the records sent by then.
    """

    def __init__(self, config: HistoryConfig, end: float, first_id: int = FIRST_MESSAGE_ID):
        self.config = config
        self.end = end
        self.first_id = first_id
        rng = np.random.default_rng(config.seed)
        n_received = int(config.messages * config.received_share)
        n_sent = config.messages - n_received
        n_chunks = int(n_sent * config.campaign_share)
        start = end - config.days * 86400

        chunk_t, chunk_n, chunk_line, chunk_text, chunk_campaign = self._campaigns(rng, n_chunks, start, end)
        n_single = n_sent - len(chunk_t)
        single_kind = np.where(rng.random(n_single) < 0.6, OTP, TRANSACTIONAL)
        single_t = rng.uniform(start, end - 120, n_single)

        n_replies = int(n_received * 0.7) if len(chunk_t) else 0
        source = rng.integers(0, max(len(chunk_t), 1), n_replies)
        reply_t = (
            np.minimum(chunk_t[source] + rng.exponential(3 * 3600, n_replies), end - 1) if n_replies else np.zeros(0)
        )
        reply_kind = np.where(rng.random(n_replies) < 0.4, OPT_OUT, REPLY)
        n_inbound = n_received - n_replies
        inbound_t = rng.uniform(start, end - 1, n_inbound)

        kind = np.concatenate([np.full(len(chunk_t), CAMPAIGN), single_kind, reply_kind, np.full(n_inbound, INBOUND)])
        t = np.concatenate([chunk_t, single_t, reply_t, inbound_t])
        order = np.argsort(t, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))

        self.t = t[order].astype(np.int64)
        self.kind = kind[order].astype(np.int8)
        n = len(order)
        self.direction = np.where(self.kind >= REPLY, IN, OUT).astype(np.int8)
        recipients = np.concatenate([chunk_n, np.ones(n_single), np.zeros(n_received)])
        self.recipients = recipients[order].astype(np.int16)
        line = np.concatenate(
            [
                chunk_line,
                np.full(n_single, SERVICE_LINE),
                chunk_line[source] if n_replies else [],
                np.full(n_inbound, SERVICE_LINE),
            ]
        )
        self.line = line[order].astype(np.int8)
        template = np.concatenate(
            [
                chunk_text,
                rng.integers(0, 2, n_single),
                rng.integers(0, 1000, n_replies)
                % np.where(reply_kind == OPT_OUT, len(OPT_OUT_TEXTS), len(REPLY_TEXTS)),
                rng.integers(0, len(INBOUND_TEXTS), n_inbound),
            ]
        )
        self.template = template[order].astype(np.int16)
        campaign = np.concatenate([chunk_campaign, np.full(n_single + n_received, -1)])
        self.campaign = campaign[order].astype(np.int32)
        # Who wrote a received message: a campaign recipient replying, or any number.
        peer = np.zeros(n, dtype=np.int64)
        if n_replies:
            source_id = first_id + rank[source]
            rows = (rng.random(n_replies) * chunk_n[source]).astype(np.int64)
            peer[rank[n_sent : n_sent + n_replies]] = recipient_numbers(config.seed, source_id, rows)
        if n_inbound:
            peer[rank[n_sent + n_replies :]] = recipient_numbers(config.seed ^ 0x1B, np.arange(n_inbound), 0)
        self.peer = peer
        self.read_at = self._read_times()
        self.scheduled_from = self._schedule_times()
        self.parts, self.persian = self._text_columns()
        self.not_sent = self._count_not_sent()

    def _read_times(self) -> np.ndarray:
        """When the account's user read each received message (inf: never, or not received)."""
        h = stable_hash(self.config.seed ^ 0x2EAD, self.first_id + np.arange(len(self.t)))
        delay = -np.log1p(-unit(h, 0)) * 12 * 3600
        read = (self.direction == IN) & (unit(h, 1) < 0.9)
        return np.where(read, self.t + delay, np.inf)

    def _schedule_times(self) -> np.ndarray:
        """From when each campaign record waited in the panel as scheduled (inf: never scheduled).

        About a third of the campaigns were scheduled two hours to three days ahead."""
        h = stable_hash(self.config.seed ^ 0x5C4E, self.campaign)
        lead = 2 * 3600 + unit(h, 1) * 70 * 3600
        return np.where((self.kind == CAMPAIGN) & (unit(h, 0) < 0.3), self.t - lead, np.inf)

    @staticmethod
    def _campaigns(rng, n_chunks: int, start: float, end: float):
        sizes = []
        while sum(sizes) < n_chunks:
            sizes.append(int(rng.integers(5, 61)))
        if sizes:
            sizes[-1] -= sum(sizes) - n_chunks
            sizes = [s for s in sizes if s > 0]
        times, counts, lines, texts, ids = [], [], [], [], []
        first_midnight = (start + TEHRAN_OFFSET) // 86400 * 86400 - TEHRAN_OFFSET  # campaigns go out in daytime
        for campaign, size in enumerate(sizes):
            day = first_midnight + rng.integers(0, max(int((end - start) // 86400), 1)) * 86400
            begin = min(max(day + rng.uniform(9, 20) * 3600, start), end - size * 3 - 120)
            last = int(rng.integers(1, 101))
            times.append(begin + 3.0 * np.arange(size))
            counts.append(np.r_[np.full(size - 1, 100), last])
            lines += [PROMO_LINE if rng.random() < 0.8 else SERVICE_LINE] * size
            texts += [int(rng.integers(0, len(CAMPAIGN_TEXTS)))] * size
            ids += [campaign] * size
        return (
            _concatenate(times),
            _concatenate(counts),
            np.array(lines, dtype=np.int8),
            np.array(texts),
            np.array(ids),
        )

    def _text_columns(self) -> tuple[np.ndarray, np.ndarray]:
        parts = np.ones(len(self.t), dtype=np.int8)
        persian = np.ones(len(self.t), dtype=bool)
        for kind, texts in ((CAMPAIGN, CAMPAIGN_TEXTS), (OTP, OTP_TEXTS), (TRANSACTIONAL, TRANSACTIONAL_TEXTS)):
            mask = self.kind == kind
            table_parts, table_fa = _text_table(texts)
            parts[mask] = table_parts[self.template[mask]]
            persian[mask] = table_fa[self.template[mask]]
        return parts, persian

    def _count_not_sent(self, block: int = 20_000) -> np.ndarray:
        """Per sent record, the recipients whose send ends as not sent (10 or 11): its NotSent."""
        not_sent = np.zeros(len(self.t), dtype=np.int16)
        for begin in range(0, len(self.t), block):
            index = np.arange(begin, min(begin + block, len(self.t)))
            not_sent[index] = self.count_not_sent(index)
        return not_sent

    def count_not_sent(self, index: np.ndarray, incidents=()) -> np.ndarray:
        """NotSent of the given records, under these incidents."""
        index = np.asarray(index, dtype=np.int64)
        sent = index[self.recipients[index] > 0]
        if len(sent) == 0:
            return np.zeros(len(index), dtype=np.int16)
        owner, row = self.expand(sent)
        flags = np.zeros(len(owner), dtype=bool)
        maybe = slice(None) if incidents else unit(self._hash(owner, row), 2) >= NOT_SENT_FROM
        flags[maybe] = np.isin(self.course(owner[maybe], row[maybe], incidents).final, NOT_SENT)
        return np.bincount(_positions(index, owner), weights=flags, minlength=len(index)).astype(np.int16)

    def not_sent_of(self, index: np.ndarray, incidents=()) -> np.ndarray:
        """NotSent of the given records: counted again only where an incident covers them."""
        counts = self.not_sent[index]
        if not incidents:
            return counts
        t = self.t[index]
        covered = np.zeros(len(index), dtype=bool)
        for incident in incidents:
            covered |= (t >= incident.start) & (t < incident.end)
        if covered.any():
            counts = counts.copy()
            counts[covered] = self.count_not_sent(index[covered], incidents)
        return counts

    def expand(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(record, row) for every recipient of the given sent records."""
        counts = self.recipients[index].astype(np.int64)
        owner = np.repeat(index, counts)
        starts = np.cumsum(counts) - counts
        row = np.arange(counts.sum()) - np.repeat(starts, counts)
        return owner, row

    def _hash(self, owner: np.ndarray, row: np.ndarray) -> np.ndarray:
        return stable_hash(self.config.seed, self.first_id + owner, row)

    def numbers(self, owner: np.ndarray, row: np.ndarray) -> np.ndarray:
        return recipient_numbers(self.config.seed, self.first_id + owner, row)

    def course(
        self, owner: np.ndarray, row: np.ndarray, incidents=(), lines: tuple[str, ...] = LINES, numbers=None
    ) -> Course:
        return delivery_course(
            self.config.seed,
            self.first_id + owner,
            row,
            self.numbers(owner, row) if numbers is None else numbers,
            self.kind[owner] == CAMPAIGN,
            self.t[owner],
            self.line[owner],
            lines,
            incidents,
        )

    def statuses(
        self, owner: np.ndarray, row: np.ndarray, now: float, incidents=(), lines=LINES, numbers=None
    ) -> np.ndarray:
        return self.course(owner, row, incidents, lines, numbers).status(now - self.t[owner])

    def __len__(self) -> int:
        return len(self.t)

    def visible(self, now: float) -> int:
        """How many records (the oldest ones) were sent or received by `now`."""
        return int(np.searchsorted(self.t, now, side="right"))

    @cached_property
    def _by_direction(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {
            d: (np.flatnonzero(self.direction == d)[::-1], np.r_[0, np.cumsum(self.direction == d)]) for d in (IN, OUT)
        }

    def newest_first(self, direction: int, now: float) -> np.ndarray:
        """Record indices of one direction sent by `now`, newest first: the order GetMessages pages in."""
        order, seen = self._by_direction[direction]
        return order[len(order) - int(seen[self.visible(now)]) :]

    def scheduled(self, now: float) -> np.ndarray:
        """Records waiting as scheduled at `now` (scheduled already, not yet sent), soonest last."""
        waiting = np.flatnonzero(self.scheduled_from <= now)
        return waiting[self.t[waiting] > now][::-1]

    def contents(self, index: np.ndarray) -> list[str]:
        """The texts of the given records; one-time codes and order numbers come from the hash."""
        codes = stable_hash(self.config.seed, self.first_id + index) % np.uint64(900_000) + np.uint64(100_000)
        texts = []
        for i, code in zip(index.tolist(), codes.tolist(), strict=True):
            text = TEXTS_BY_KIND[int(self.kind[i])][self.template[i]]
            texts.append(text.format(code=code) if self.kind[i] in (OTP, TRANSACTIONAL) else text)
        return texts


def _positions(index: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Where each owner sits in the index (a run of consecutive records, or any order)."""
    if index[-1] - index[0] == len(index) - 1 and np.all(np.diff(index) == 1):
        return owner - index[0]
    order = np.argsort(index, kind="stable")
    return order[np.searchsorted(index[order], owner)]
