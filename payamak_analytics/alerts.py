"""What is wrong with the account right now: detection rules and the life of an incident.

After each watch cycle, `evaluate` looks at the store and says which conditions hold (firing)
and which were checked and found normal (clear); `track` turns that into incidents in the
`alerts` table: a condition that starts firing opens ONE incident (one notice), later cycles
only refresh its evidence and last-seen time, and it ends (one "ended" notice) once it is found
clear: at once for the service, the credit and expiring reports, after `clear_after` (30 min)
of calm for rates, which hover near their threshold as an incident fades. A subject with too few messages to judge is neither: its incident stays
open, because unknown is not recovered.

Delivery rate, per operator and then per line (the rule and its defaults):
- the rate is delivered / recipients the telecom answered for with a known outcome (statuses
  1, 2, 3, 9, 12; 4 and 8 say nothing of delivery, and every report leaves them out too), over
  the sends of the last `window` (60 min). Outcomes decided before the telecom (6 not
  received by the telecom, 7 blocked, 10 cancelled, 11 not sent) are known within minutes,
  the telecom's answers later and at the same pace whether good or bad, so a window of young
  sends compares fairly with old ones; those early codes are watched as code surges instead;
- the baseline is the account's own rate in the same hours of the week over the last four weeks
  (`hour_of_week`); with fewer than `min_baseline` (300) answers there, the same hours of the
  day over the last seven days (`hour_of_day`), then all hours of those days (`recent`, at least
  `min_volume`), and only for a subject with no such history the other operators (or lines) in
  the same window (`others`). These fallbacks may differ from the window in hour (delivery dips
  at night), in mix (bulk campaigns lose blacklisted numbers before the telecom, so their
  answers look better than single sends') or in operator, so they need twice the drop (and
  twice the code rise) to alert; the alert says which baseline was used;
- raised when the window has at least `min_volume` (100) answers, the drop is at least `drop`
  (10 points), a one-sided two-proportion z-test gives z >= `z` (4.0, p < 0.00004: one
  false alarm in tens of thousands of tests, about what four subjects checked every 15 minutes
  for a year amount to) and the exact binomial tail against the baseline's rate is as small
  (the z-test's normal tail is far too thin for a few tens of answers and a share of a few
  percent). Every rate carries its count and a 95% Wilson interval;
- a failure code surges when its share rises by `surge` (5 points) with the same z and volume
  (early codes over recipients past the queue, telecom codes over the telecom's answers);
  codes that moved with a rate drop are that alert's evidence, not an alert of their own;
- the newest half of the window (the sends of the last 30 min) is judged the same way against
  the same baseline, with half the volume, three times the drop and the rise and z >= 6
  (LANES): a large incident (half of an operator's sends rejected) is raised a cycle sooner,
  while the smaller sample cannot raise a small one by chance; it only raises, and an incident
  ends only when the whole window is clear;
- a line is judged without the operators already alerting, so one operator's trouble raises
  one alert, not one more per line it passes through.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import pandas as pd

from . import codes, estimates
from .analytics import CAMPAIGN_BATCHES, OPT_OUT_REPLIES
from .dates import TEHRAN, moment
from .errors import InputError
from .i18n import persian_digits
from .store import Store

EARLY_CODES = (6, 7, 10, 11)  # decided before the telecom holds the message
# reported back by the telecom, good or bad, at its own pace, with a known outcome (codes): a
# status saying nothing of delivery counted here would count as a failure, as no report counts it
TELECOM_ANSWERS = tuple(
    code
    for code, status in codes.DELIVERY_STATUSES.items()
    if status.outcome in codes.FINAL_OUTCOMES and code not in EARLY_CODES
)
NOT_PAST_QUEUE = (-5, -4, -3, -1, 0, 13)  # no decision yet (or none ever seen)
SURGE_CODES = (2, 3, 6, 7, 9, 10, 11)
# Each window judged: (share of `min_volume` it needs, times the drop or rise, times z). The
# window's newest half holds the first answers of an incident a cycle sooner; it has fewer of
# them, so it alerts only on a large change: three times the drop or rise, at z >= 6.
LANES = {"window": (1.0, 1.0, 1.0), "newest": (0.5, 3.0, 1.5)}
MIX_SHARE = 0.1  # a line with this share of a window's sends must be known to its baseline
SEVERITIES = ("warning", "critical")
SETTLING = ("delivery/", "opt_out/")  # rates near a threshold: these end only after `clear_after` of calm


@dataclass(frozen=True)
class AlertRules:
    """The thresholds; the defaults are meant not to wake anyone on a normal week."""

    window: timedelta = timedelta(minutes=60)
    min_volume: int = 100  # telecom answers in the window, per subject
    min_baseline: int = 300  # answers the same-hours baseline needs before it is used
    drop: float = 0.10  # delivery-rate drop, in points of 1
    surge: float = 0.05  # rise of a failure code's share
    z: float = 4.0  # one-sided two-proportion z-test
    clear_after: timedelta = timedelta(minutes=30)  # clear this long before an incident ends
    credit_days: float = 3.0  # credit that runs out sooner at the last week's pace
    expiry_margin: timedelta = timedelta(hours=24)  # reports expiring this soon and still unread
    opt_out_rise: float = 0.01  # opt-out share after a campaign, above the account's usual
    opt_out_min: int = 300  # recipients a campaign needs to be judged

    def __post_init__(self) -> None:
        for name in ("window", "clear_after", "expiry_margin"):
            if getattr(self, name) <= timedelta(0):
                raise InputError(f"{name} must be a positive duration.", f"{name} باید مثبت باشد")
        for name in ("min_volume", "min_baseline", "opt_out_min"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"{name} must be a whole number of at least 1.", f"{name} باید عدد صحیح مثبت باشد")
        for name in ("drop", "surge", "opt_out_rise"):
            if not 0 < getattr(self, name) < 1:
                raise InputError(f"{name} must be a share between 0 and 1, e.g. 0.1.", f"{name} باید بین ۰ و ۱ باشد")
        if not (math.isfinite(self.z) and self.z > 0) or not (math.isfinite(self.credit_days) and self.credit_days > 0):
            raise InputError("z and credit_days must be positive numbers.", "z و credit_days باید مثبت باشند")


@dataclass
class Alert:
    """One condition that holds now; `incident` names it across cycles."""

    incident: str
    kind: str
    severity: str
    title: str
    title_fa: str
    evidence: dict
    operator: str | None = None
    line: str | None = None
    code: int | None = None
    alert_id: int | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    ended_at: datetime | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Notice:
    """What a sink is told: an incident was raised, or it ended."""

    event: str  # raised, ended
    alert: Alert


@dataclass
class Context:
    """What the cycle knows beside the store: the service's clock and answers."""

    now: datetime
    every: timedelta
    credit: Decimal | None = None
    failing: list[tuple[datetime, int | None]] = field(default_factory=list)  # this failing streak: (clock, code)
    at_risk: int = 0  # recipients whose report expires soon, not read lately
    unreadable: int = 0  # recipients whose report expired unread, or the service forgot, since the cycle before


# --- statistics -------------------------------------------------------------------------------
def wilson(successes: float, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion; (0, 1) with no data."""
    if n <= 0:
        return 0.0, 1.0
    low, high = estimates.wilson(successes, n)
    return float(low), float(high)


def z_score(x_base: int, n_base: int, x_now: int, n_now: int) -> float:
    """How many standard errors the window's share lies below the baseline's (pooled two-proportion test)."""
    if n_base <= 0 or n_now <= 0:
        return 0.0
    pooled = (x_base + x_now) / (n_base + n_now)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_base + 1 / n_now))
    if se == 0:
        return 0.0
    return (x_base / n_base - x_now / n_now) / se


def upper_tail(x: float, n: int, p: float) -> float:
    """P(X >= x) for X ~ Binomial(n, p), exact (log space): the chance of a window at least this
    bad if nothing changed. The pooled z-test's normal tail is far too thin for a few tens of
    answers and a share of a few percent (z >= 6 at 50 answers and 3%: 1.6e-5, not 1e-9)."""
    x, n = math.ceil(x - 1e-9), int(n)
    if x <= 0 or p >= 1:
        return 1.0
    if x > n or p <= 0:
        return 0.0
    lp, lq, terms, top = math.log(p), math.log1p(-p), [], -math.inf
    for k in range(x, n + 1):
        term = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq
        terms.append(term)
        top = max(top, term)
        if k > n * p and term < top - 50:
            break  # past the mode the terms only fall: the rest add less than e^-50 of the sum
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


def unlikely(x: float, n: int, p: float, z_needed: float) -> bool:
    """At least `x` of `n` as rare by chance as the one-sided normal tail beyond `z_needed`."""
    return upper_tail(x, n, p) <= 0.5 * math.erfc(z_needed / math.sqrt(2))


def rate(successes: float, n: int) -> dict:
    """A share with its Wilson interval; `successes` may be a baseline reweighted to the window."""
    low, high = wilson(successes, n)
    return {"count": round(successes), "of": int(n), "rate": successes / n if n else None, "interval95": [low, high]}


# --- delivery: rates and codes, per operator and per line -------------------------------------------
def _cells(store: Store, now: datetime, rules: AlertRules) -> pd.DataFrame:
    """Counts per (period, operator, line): the window, the same hours of the week over four
    weeks, and the last seven days (both bases stop a day before now, so an incident that has
    lasted a while does not become its own baseline)."""
    hours, moment = set(), now - rules.window
    while moment < now + timedelta(minutes=1):
        local = moment.astimezone(TEHRAN)
        hours.add((local.isoweekday() % 7) * 24 + local.hour)
        moment += timedelta(minutes=30)
    hours_of_day = sorted({h % 24 for h in hours})
    code_columns = ", ".join(f"count(*) FILTER (status = {c}) AS c{c}" for c in SURGE_CODES)
    return store.sql(
        f"""
        WITH r AS (SELECT d.operator, b.line, d.status, b.sent_at FROM deliveries d JOIN batches b USING (batch_id)
                   WHERE b.sent_at >= $base_from AND b.sent_at < $now),
        tagged AS (
            SELECT 'window' AS period, * FROM r WHERE sent_at >= $window_from
            UNION ALL SELECT 'newest', * FROM r WHERE sent_at >= $newest_from
            UNION ALL SELECT 'hour_of_week', * FROM r
                WHERE sent_at < $base_to AND list_contains($hours, (isodow(sent_at) % 7) * 24 + hour(sent_at))
            UNION ALL SELECT 'hour_of_day', * FROM r
                WHERE sent_at >= $recent_from AND sent_at < $base_to AND list_contains($hours_of_day, hour(sent_at))
            UNION ALL SELECT 'recent', * FROM r WHERE sent_at >= $recent_from AND sent_at < $base_to)
        SELECT period, operator, line,
               count(*) FILTER (status NOT IN {NOT_PAST_QUEUE}) AS past_queue,
               count(*) FILTER (status IN {TELECOM_ANSWERS}) AS answered,
               count(*) FILTER (status = 1) AS delivered, {code_columns}
        FROM tagged GROUP BY ALL""",
        {
            "now": now,
            "window_from": now - rules.window,
            "newest_from": now - rules.window / 2,
            "base_from": now - timedelta(days=28) - rules.window,
            "base_to": now - timedelta(days=1),
            "recent_from": now - timedelta(days=7),
            "hours": sorted(hours),
            "hours_of_day": hours_of_day,
        },
    )


def _sums(frame: pd.DataFrame) -> dict:
    columns = ["past_queue", "answered", "delivered"] + [f"c{c}" for c in SURGE_CODES]
    return {c: int(frame[c].sum()) if len(frame) else 0 for c in columns}


def _baseline(cells: pd.DataFrame, mine, others, period: str, rules: AlertRules) -> tuple[str, dict] | None:
    """The first baseline with enough answers: the same hours of the week, the same hours of the
    last days, all hours of the last days, the others now. The subject's own baselines are taken
    in the mix of lines of the window `period` names (see _in_the_window_mix)."""
    window = cells[(cells["period"] == period) & mine]
    for basis, needed in (
        ("hour_of_week", rules.min_baseline),
        ("hour_of_day", rules.min_baseline),
        ("recent", rules.min_volume),
    ):
        base = cells[(cells["period"] == basis) & mine]
        counts = _sums(base)
        mixed = _in_the_window_mix(base, window, counts, rules) if counts["answered"] >= needed else None
        if mixed is not None:
            return basis, mixed
    counts = _sums(cells[(cells["period"] == period) & others])
    return ("others", counts) if counts["answered"] >= rules.min_volume else None


def _in_the_window_mix(base: pd.DataFrame, window: pd.DataFrame, pooled: dict, rules: AlertRules) -> dict | None:
    """The baseline's counts as if its sends had been split between lines as the window's are, or
    None when a line with at least MIX_SHARE of the window's sends has fewer than `min_volume`
    answers in it (a smaller line takes the baseline's pooled shares).

    Lines deliver differently (a campaign line's bulk sends lose their blacklisted numbers early,
    so the rest deliver more often than one-time codes do), and an hour's mix of lines changes
    from week to week: pooled, an hour of codes alone against weeks of codes and campaigns reads
    as a drop. Each line's shares come from its own baseline; the totals stay the baseline's.
    """
    by_line = base.groupby("line", dropna=False)[list(pooled)].sum()
    mixed = dict(pooled)
    for over, columns in (
        ("answered", ["delivered"] + [f"c{c}" for c in SURGE_CODES if c not in EARLY_CODES]),
        ("past_queue", [f"c{c}" for c in EARLY_CODES if c in SURGE_CODES]),
    ):
        weights = window.groupby("line", dropna=False)[over].sum()
        weights = weights[weights > 0]
        if not pooled[over] or weights.empty:
            continue
        weights, known = weights / weights.sum(), by_line[over].reindex(weights.index).fillna(0)
        if (known[weights >= MIX_SHARE] < rules.min_volume).any():
            return None  # not this baseline: the next one knows the window's lines
        for column in columns:
            shares = [
                by_line.loc[line, column] / known[line] if known[line] >= rules.min_volume else None
                for line in weights.index
            ]
            pooled_share = pooled[column] / pooled[over]
            mixed[column] = pooled[over] * sum(
                w * (pooled_share if share is None else share) for w, share in zip(weights, shares)
            )
    return mixed


def _moved_codes(now: dict, base: dict, rules: AlertRules, margin: float, volume: int, z_needed: float) -> list[dict]:
    moved = []
    for code in SURGE_CODES:
        of = "past_queue" if code in EARLY_CODES else "answered"
        x_now, n_now, x_base, n_base = now[f"c{code}"], now[of], base[f"c{code}"], base[of]
        if n_now < volume or n_base < rules.min_volume:
            continue
        z = -z_score(x_base, n_base, x_now, n_now)
        rise = x_now / n_now - x_base / n_base
        if rise >= rules.surge * margin and z >= z_needed and unlikely(x_now, n_now, x_base / n_base, z_needed):
            status = codes.delivery_status(code)
            moved.append(
                {"code": code, "name": status.name, "meaning": status.en, "meaning_fa": status.fa, "over": of}
                | {"window": rate(x_now, n_now), "baseline": rate(x_base, n_base), "rise": rise, "z": z}
            )
    return moved


def _judge(cells: pd.DataFrame, mine, others, subject: dict, rules: AlertRules, now: datetime):
    """An Alert, "clear", or None (too few messages to tell) for one operator or line: the
    window first, then its newest half (see LANES)."""
    verdicts = {period: _look(cells, mine, others, period, rules) for period in LANES}
    for verdict in verdicts.values():
        if isinstance(verdict, _Finding):
            return _alert(verdict, subject, rules, now)
    # only the whole window can say "clear": the newest half, blind to a small change (three
    # times the drop, z >= 6), raises sooner but never ends an incident the window cannot judge
    return verdicts["window"]


@dataclass
class _Finding:
    """A window whose delivery rate dropped or whose failure codes rose against its baseline."""

    period: str
    window: dict
    basis: str
    base: dict
    margin: float
    z_needed: float
    drop: float
    z: float
    dropped: bool
    moved: list[dict]


def _look(cells: pd.DataFrame, mine, others, period: str, rules: AlertRules) -> _Finding | str | None:
    window = _sums(cells[(cells["period"] == period) & mine])
    share, times, z_times = LANES[period]
    volume, z_needed = math.ceil(rules.min_volume * share), rules.z * z_times
    if window["answered"] < volume and window["past_queue"] < volume:
        return None
    found = _baseline(cells, mine, others, period, rules)
    if found is None:
        return None
    basis, base = found
    z = z_score(base["delivered"], base["answered"], window["delivered"], window["answered"])
    drop = (
        (base["delivered"] / base["answered"] - window["delivered"] / window["answered"]) if window["answered"] else 0
    )
    margin = BASELINES[basis][2] * times
    dropped = (
        window["answered"] >= volume
        and drop >= rules.drop * margin
        and z >= z_needed
        and unlikely(
            window["answered"] - window["delivered"],
            window["answered"],
            1 - base["delivered"] / base["answered"],
            z_needed,
        )
    )
    moved = _moved_codes(window, base, rules, margin, volume, z_needed)
    if not dropped and not moved:
        return "clear"
    return _Finding(period, window, basis, base, margin, z_needed, drop, z, dropped, moved)


def _alert(found: _Finding, subject: dict, rules: AlertRules, now: datetime) -> Alert:
    window, base, dropped, moved = found.window, found.base, found.dropped, found.moved
    span = rules.window / 2 if found.period == "newest" else rules.window
    (kind, name), value = next(iter(subject.items())), None
    evidence = {
        "rule": f"{'delivery rate drop' if dropped else 'failure code surge'}, z >= {found.z_needed:g}",
        "window": {"from": (now - span).isoformat(), "to": now.isoformat()}
        | rate(window["delivered"], window["answered"]),
        "baseline": {"kind": found.basis, "description": BASELINES[found.basis][0], "margin": found.margin}
        | ({"weighted": "to the window's mix of lines"} if found.basis != "others" else {})
        | rate(base["delivered"], base["answered"]),
        "drop": found.drop,
        "z": found.z,
        "codes": moved,
    }
    if dropped:
        value = f"{window['delivered'] / window['answered']:.0%} vs {base['delivered'] / base['answered']:.0%}"
    title, title_fa = _delivery_titles(kind, name, dropped, moved, value)
    severe = (dropped and found.drop >= 2 * rules.drop) or any(m["rise"] >= 4 * rules.surge for m in moved)
    return Alert(
        incident=f"delivery/{kind}={name}",
        kind="delivery_drop" if dropped else "code_surge",
        severity="critical" if severe else "warning",
        title=title,
        title_fa=title_fa,
        evidence=evidence,
        code=moved[0]["code"] if moved else None,
        **subject,
    )


# (description, in Persian, margin): only the same hours of the week match the window's hour and
# mix of sends (campaigns in the morning, codes and notices all day); a fallback baseline needs
# twice the drop or rise before it alerts.
BASELINES = {
    "hour_of_week": (
        "the same hours of the week over the last four weeks", "همین ساعت های هفته در چهار هفته گذشته", 1.0
    ),
    "hour_of_day": ("the same hours of the day over the last seven days", "همین ساعت های روز در هفت روز گذشته", 2.0),
    "recent": ("the account's known outcomes of the last seven days, all hours", "نتیجه های هفت روز گذشته", 2.0),
    "others": ("the other operators (or lines) in the same window", "اپراتورها یا خط های دیگر در همین بازه", 2.0),
}  # fmt: skip


def _delivery_titles(kind: str, name: str, dropped: bool, moved: list[dict], value: str | None) -> tuple[str, str]:
    where = f"{'operator' if kind == 'operator' else 'line'} {name}"
    where_fa = f"{'اپراتور' if kind == 'operator' else 'خط'} {persian_digits(name)}"
    moved_text = ", ".join(f"{m['code']} {m['name']} {m['window']['rate']:.0%}" for m in moved)
    moved_fa = "، ".join(f"{persian_digits(m['code'])} {m['meaning_fa']}" for m in moved)
    if dropped:
        title = f"Delivery rate dropped on {where}: {value}" + (f" ({moved_text})" if moved else "")
        title_fa = f"افت نرخ تحویل در {where_fa}: {persian_digits(value)}" + (f" ({moved_fa})" if moved else "")
    else:
        title = f"Failure codes surging on {where}: {moved_text}"
        title_fa = f"افزایش خطا در {where_fa}: {moved_fa}"
    return title, title_fa


def delivery_alerts(store: Store, now: datetime, rules: AlertRules) -> tuple[list[Alert], set[str]]:
    """Operators first; then lines, judged without the operators already alerting."""
    cells = _cells(store, now, rules)
    firing, clear = [], set()
    if cells.empty:
        return firing, clear
    flagged = []
    for operator in sorted(cells["operator"].dropna().unique()):
        mine, others = cells["operator"] == operator, cells["operator"] != operator
        verdict = _judge(cells, mine, others, {"operator": operator}, rules, now)
        if isinstance(verdict, Alert):
            firing.append(verdict)
            flagged.append(operator)
        elif verdict == "clear":
            clear.add(f"delivery/operator={operator}")
    rest = cells[~cells["operator"].isin(flagged)]
    for line in sorted(rest["line"].dropna().unique()):
        mine, others = rest["line"] == line, rest["line"] != line
        verdict = _judge(rest, mine, others, {"line": line}, rules, now)
        if isinstance(verdict, Alert):
            verdict.evidence["operators_left_out"] = flagged
            firing.append(verdict)
        elif verdict == "clear":
            clear.add(f"delivery/line={line}")
    return firing, clear


# --- the account and the service ---------------------------------------------------------------------
def credit_alert(store: Store, context: Context, rules: AlertRules) -> Alert | str | None:
    """Credit that runs out within `credit_days` at the last seven days' spending."""
    if context.credit is None:
        return None
    spent = store.sql(
        "SELECT coalesce(sum(cost), 0) AS spent FROM messages WHERE message_type = 'Out' AND action_datetime >= ?",
        [context.now - timedelta(days=7)],
    ).iloc[0]["spent"]
    per_day = float(spent) / 7
    if per_day <= 0:
        return "clear"
    days = float(context.credit) / per_day
    if days >= rules.credit_days:
        return "clear"
    days_fa = persian_digits(f"{days:.1f}")
    return Alert(
        incident="credit",
        kind="credit",
        severity="critical" if days < 1 else "warning",
        title=f"Credit runs out in about {days:.1f} days at the last week's pace ({float(context.credit):,.0f} left)",
        title_fa=f"اعتبار با آهنگ هفته گذشته حدود {days_fa} روز دیگر تمام می شود",
        evidence={
            "credit": float(context.credit),
            "spent_last_7_days": float(spent),
            "per_day": per_day,
            "days_left": days,
            "threshold_days": rules.credit_days,
        },
    )


def line_alerts(store: Store, context: Context) -> tuple[list[Alert], set[str]]:
    """Lines that answered 6 (inactive) to a campaign chunk in the last day."""
    found = store.sql(
        """SELECT c.line, count(*) AS chunks, max(k.updated_at) AS last
           FROM campaign_chunks k JOIN campaigns c ON c.name = k.campaign
           WHERE k.code = 6 AND k.updated_at >= ? GROUP BY c.line ORDER BY c.line""",
        [context.now - timedelta(days=1)],
    )
    firing = [
        Alert(
            incident=f"line_inactive/line={row.line}",
            kind="line_inactive",
            severity="critical",
            title=f"Line {row.line} answers 6: the sender line is inactive ({row.chunks} chunks refused)",
            title_fa=f"خط {persian_digits(row.line)} غیرفعال است (کد ۶)",
            evidence={"chunks_refused": int(row.chunks), "last_refusal": row.last.isoformat(), "code": 6},
            line=row.line,
            code=6,
        )
        for row in found.itertuples()
    ]
    known = store.sql("SELECT DISTINCT line FROM batches WHERE line IS NOT NULL")["line"]
    return firing, {f"line_inactive/line={line}" for line in known if line not in set(found["line"])}


SERVICE_STATES = {
    9: ("the system is being updated (9)", "سامانه در حال به روزرسانی است (۹)"),
    10: ("the web service is disabled (10)", "وب سرویس غیرفعال است (۱۰)"),
    None: ("the service does not answer", "سرویس پاسخ نمی دهد"),
}


def service_alert(context: Context) -> Alert | str:
    """The service refusing (9, 10) or silent for longer than a cycle; clear on the first good cycle."""
    if not context.failing:
        return "clear"
    since, code = context.failing[0][0], context.failing[-1][1]
    if len(context.failing) < 2 or context.now - since < context.every:
        return "pending"
    en, fa = SERVICE_STATES.get(code, (f"the service refuses with code {code}", f"سرویس کد {code} برمی گرداند"))
    minutes = (context.now - since).total_seconds() / 60
    return Alert(
        incident="service",
        kind="service",
        severity="critical",
        title=f"For {minutes:.0f} minutes {en}: the store is not being updated",
        title_fa=f"{persian_digits(f'{minutes:.0f}')} دقیقه است که {fa}",
        evidence={"since": since.isoformat(), "cycles": len(context.failing), "code": code},
        code=code,
    )


def expiry_alert(context: Context, rules: AlertRules) -> Alert | str:
    """Reports that expire within `expiry_margin` and that the store has not read lately, or
    that could no longer be read since the cycle before (expired unread, or batches the service
    no longer knows); clear once neither is so."""
    if context.at_risk <= 0 and context.unreadable <= 0:
        return "clear"
    hours = rules.expiry_margin.total_seconds() / 3600
    lost, lost_fa = "", ""
    if context.unreadable:
        lost = f"{context.unreadable:,} recipients' delivery reports could no longer be read since the last cycle; "
        lost_fa = f"گزارش {persian_digits(f'{context.unreadable:,}')} گیرنده دیگر خواندنی نیست؛ "
    return Alert(
        incident="reports_expiring",
        kind="reports_expiring",
        severity="critical" if context.failing or context.unreadable else "warning",
        title=f"{lost}{context.at_risk:,} recipients' reports expire within {hours:g} h unread: the store is behind",
        title_fa=f"{lost_fa}گزارش تحویل {persian_digits(f'{context.at_risk:,}')} گیرنده تا "
        f"{persian_digits(f'{hours:g}')} ساعت دیگر خوانده نشده منقضی می شود",
        evidence={"at_risk": context.at_risk, "within_hours": hours, "expired_unread": context.unreadable},
    )


def opt_out_alerts(store: Store, now: datetime, rules: AlertRules) -> tuple[list[Alert], set[str]]:
    """Campaigns of the last two days whose recipients opt out (لغو, 11, stop) more than usual."""
    frame = _campaign_opt_outs(store, now)
    if frame.empty:
        return [], set()
    recent = frame[frame["first_sent"] >= now - timedelta(days=2)]
    past = frame[frame["first_sent"] < now - timedelta(days=2)]
    base_n, base_x = int(past["recipients"].sum()), int(past["opt_outs"].sum())
    firing, clear = [], {f"opt_out/campaign={c}" for c in past["campaign_id"]}  # judged only in their first two days
    for row in recent.itertuples():
        incident = f"opt_out/campaign={row.campaign_id}"
        if row.recipients < rules.opt_out_min or base_n < rules.min_baseline:
            continue
        rise = row.opt_outs / row.recipients - base_x / base_n
        z = -z_score(base_x, base_n, int(row.opt_outs), int(row.recipients))
        if rise < rules.opt_out_rise or z < rules.z:
            clear.add(incident)
            continue
        share = row.opt_outs / row.recipients
        firing.append(
            Alert(
                incident=incident,
                kind="opt_out_surge",
                severity="warning",
                title=f"Opt-outs after campaign {row.campaign_id} on line {row.line}: {share:.1%} "
                f"({int(row.opt_outs)} of {int(row.recipients)}) against {base_x / base_n:.1%} usually",
                title_fa=f"لغو عضویت پس از کمپین {row.campaign_id}: {persian_digits(f'{share:.1%}')}",
                evidence={
                    "campaign": row.campaign_id,
                    "first_sent": row.first_sent.isoformat(),
                    "window": rate(int(row.opt_outs), int(row.recipients)),
                    "baseline": {"kind": "campaigns of the last 60 days"} | rate(base_x, base_n),
                    "z": z,
                },
                line=row.line,
            )
        )
    return firing, clear


def _campaign_opt_outs(store: Store, now: datetime) -> pd.DataFrame:
    """Campaigns of the last 60 days of 100 recipients or more: recipients and opt-outs within 48 h."""
    latin = "translate(content, '۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩', '01234567890123456789')"
    cleaned = f"regexp_replace(lower({latin}), '\\s+', '', 'g')"
    return store.sql(
        f"""
        WITH cb AS ({CAMPAIGN_BATCHES}),
        camp AS (SELECT c.campaign_id, any_value(b.line) AS line, min(b.sent_at) AS first_sent,
                        sum(b.recipients) AS recipients
                 FROM cb c JOIN batches b USING (batch_id) GROUP BY 1
                 HAVING min(b.sent_at) >= $since AND min(b.sent_at) < $now AND sum(b.recipients) >= 100),
        nums AS (SELECT DISTINCT c.campaign_id, d.number FROM cb c JOIN deliveries d USING (batch_id)
                 WHERE c.campaign_id IN (SELECT campaign_id FROM camp)),
        outs AS (SELECT sender AS number, receiver AS line, action_datetime AS t FROM messages
                 WHERE message_type = 'In' AND action_datetime >= $since
                   AND ({cleaned} IN (SELECT unnest($words)) OR starts_with({cleaned}, 'لغو')))
        SELECT camp.campaign_id, camp.line, camp.first_sent, camp.recipients, count(DISTINCT o.number) AS opt_outs
        FROM camp LEFT JOIN nums USING (campaign_id)
        LEFT JOIN outs o ON o.number = nums.number AND o.line = camp.line
             AND o.t >= camp.first_sent AND o.t < camp.first_sent + INTERVAL 48 HOUR
        GROUP BY ALL ORDER BY camp.first_sent""",
        {"since": now - timedelta(days=60), "now": now, "words": list(OPT_OUT_REPLIES)},
    )


# --- every rule, and the life of an incident ------------------------------------------------------------
def evaluate(store: Store, context: Context, rules: AlertRules | None = None) -> tuple[list[Alert], set[str]]:
    """Every rule at `context.now`: the alerts that fire, and the incidents checked and found clear."""
    rules = rules or AlertRules()
    firing, clear = delivery_alerts(store, context.now, rules)
    for alerts, cleared in (line_alerts(store, context), opt_out_alerts(store, context.now, rules)):
        firing += alerts
        clear |= cleared
    singles = {
        "credit": credit_alert(store, context, rules),
        "service": service_alert(context),
        "reports_expiring": expiry_alert(context, rules),
    }
    for incident, verdict in singles.items():
        if isinstance(verdict, Alert):
            firing.append(verdict)
        elif verdict == "clear":
            clear.add(incident)
    return firing, clear


def track(store: Store, firing: list[Alert], clear: set[str], now: datetime, rules: AlertRules) -> list[Notice]:
    """Open, refresh and end incidents; returns the notices to send (raised and ended only)."""
    open_rows = store.read_alerts(active=True)
    by_incident = {row.incident: row for row in open_rows.itertuples()}
    opened, seen = [], []
    for alert in firing:
        row = by_incident.get(alert.incident)
        if row is None:
            opened.append(alert)
        else:
            alert.alert_id, alert.first_seen = int(row.alert_id), row.first_seen
            seen.append(alert)
    ending = [
        row
        for row in open_rows.itertuples()
        if row.incident in clear and (now - row.last_seen >= rules.clear_after or not row.incident.startswith(SETTLING))
    ]
    for alert in opened:
        alert.first_seen = alert.last_seen = now
    ids = store.save_incidents(
        [a.as_dict() for a in opened],
        [a.as_dict() for a in seen],
        [int(row.alert_id) for row in ending],
        now,
    )
    notices = []
    for alert, alert_id in zip(opened, ids):
        if alert_id is not None:
            alert.alert_id = alert_id
            notices.append(Notice("raised", alert))
    for row in ending:
        ended = _from_row(row)
        ended.ended_at = now
        notices.append(Notice("ended", ended))
    return notices


def _from_row(row) -> Alert:
    evidence = row.evidence if isinstance(row.evidence, dict) else json.loads(row.evidence or "{}")
    return Alert(
        incident=row.incident,
        kind=row.kind,
        severity=row.severity,
        title=row.title,
        title_fa=row.title_fa,
        evidence=evidence,
        operator=None if pd.isna(row.operator) else row.operator,
        line=None if pd.isna(row.line) else row.line,
        code=None if pd.isna(row.code) else int(row.code),
        alert_id=int(row.alert_id),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        ended_at=None if pd.isna(row.ended_at) else row.ended_at,
    )


# --- reading alerts back ----------------------------------------------------------------------------------
def alerts(store: Store, active: bool = False, since=None) -> pd.DataFrame:
    """The stored alerts as a DataFrame, newest first (`active`: incidents not yet ended)."""
    return store.read_alerts(active=active, since=None if since is None else moment(since))


def alerts_html(store: Store, *, lang: str = "en", active: bool = False, limit: int = 50) -> str:
    """The alerts section of the HTML report: one table, newest first, escaped."""
    if lang not in ("en", "fa"):
        raise InputError(f"lang must be 'en' or 'fa', not {lang!r}.", "زبان باید en یا fa باشد")
    frame = alerts(store, active=active).head(limit)
    fa = lang == "fa"
    heading = ("هشدارها", "هشداری ثبت نشده است") if fa else ("Alerts", "No alert has been raised.")
    if frame.empty:
        return f'<section id="alerts"><h2>{heading[0]}</h2><p>{heading[1]}</p></section>'
    names = ("شدت", "موضوع", "از", "تا", "وضعیت") if fa else ("Severity", "What", "First seen", "Last seen", "State")
    rows = []
    for row in frame.itertuples():
        state = ("ادامه دارد" if fa else "active") if pd.isna(row.ended_at) else _when(row.ended_at, fa)
        cells = (row.severity, row.title_fa if fa else row.title, _when(row.first_seen, fa), _when(row.last_seen, fa))
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (*cells, state)) + "</tr>")
    head = "".join(f"<th>{n}</th>" for n in names)
    direction = ' dir="rtl"' if fa else ""
    return (
        f'<section id="alerts"{direction}><h2>{heading[0]}</h2><table class="alerts"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _when(value, fa: bool) -> str:
    text = pd.Timestamp(value).tz_convert(TEHRAN).strftime("%Y-%m-%d %H:%M")
    return persian_digits(text) if fa else text
