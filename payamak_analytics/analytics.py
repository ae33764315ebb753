"""Delivery-rate reports, campaign summaries and post-mortems, computed in DuckDB over the store.

Each recipient has one outcome (codes.OUTCOMES): that of its last known status, except that a
status still in flight past `in_flight_cutoff` is "delivery_unknown" and a report that expired
before any status was seen is "expired". A rate is only ever taken over the recipients whose
outcome is known (final): an expired report or a status still in flight is unknown, not a
failure, and is counted beside the rate, never under it. Every rate comes with its count (`known`)
and a 95% Wilson score interval (`rate_low`, `rate_high`): right at 0% and 100% and for small
counts, where the normal approximation is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import jdatetime
import numpy as np
import pandas as pd

from . import codes, estimates, i18n
from .dates import TEHRAN, window
from .errors import InputError, NotFoundError
from .i18n import latin_digits
from .store import Store

DIMENSIONS = ("day", "week", "month", "line", "operator", "parts", "encoding", "flash", "hour")
CAMPAIGN_GAP = timedelta(hours=6)  # sends of one text from one line closer than this are one campaign
OPT_OUT_REPLIES = ("لغو", "11", "لغو11", "stop", "cancel")
REACHED_TELECOM = (1, 2, 4, 5, 7, 8, 12)  # statuses the telecom reported back on
MIN_KNOWN = 30  # below this many known outcomes a group's rate is drawn faded and called too small
BY_VOLUME = ("line", "operator", "encoding")  # categories shown largest first; the rest in their own order

# Every batch with its campaign: the name given at send time, else "auto-<first batch>" for sends
# of the same text from the same line with no gap longer than CAMPAIGN_GAP.
CAMPAIGN_BATCHES = f"""
    SELECT batch_id, coalesce(campaign, 'auto-' || CAST(first_value(batch_id) OVER run AS VARCHAR)) AS campaign_id
    FROM (SELECT *, sum(starts) OVER (PARTITION BY line, text ORDER BY sent_at, batch_id) AS run_number
          FROM (SELECT *, CASE WHEN sent_at - lag(sent_at) OVER (PARTITION BY line, text ORDER BY sent_at, batch_id)
                                    <= INTERVAL {int(CAMPAIGN_GAP.total_seconds())} SECOND THEN 0 ELSE 1 END AS starts
                FROM batches))
    WINDOW run AS (PARTITION BY line, text, run_number ORDER BY sent_at, batch_id)"""


def _recipients_sql(cutoff: timedelta | None, *, campaigns: bool = False, messages: bool = True) -> str:
    """One row a recipient: its outcome and the dimensions a report groups by. The campaign (a
    window over every batch) and the message's parts, encoding and flash (a join) only when asked."""
    past_cutoff = (
        f"WHEN o.outcome = 'in_flight' AND b.sent_at < $now - INTERVAL {int(cutoff.total_seconds())} "
        "SECOND THEN 'delivery_unknown'"
        if cutoff
        else ""
    )
    return f"""
        SELECT d.batch_id, d."row", d.number, d.operator, d.status,
               CASE WHEN d.status = -3 THEN 'expired' {past_cutoff} ELSE o.outcome END AS outcome,
               b.line, b.text, b.sent_at, {"c.campaign_id" if campaigns else "NULL AS campaign_id"},
               CAST(b.sent_at AS DATE) AS day, hour(b.sent_at) AS hour,
               {
        "m.pages AS parts, CASE WHEN m.lang = 'EN' THEN 'GSM-7' ELSE 'UCS-2' END AS encoding, m.flash"
        if messages
        else "NULL AS parts, NULL AS encoding, NULL AS flash"
    }
        FROM deliveries d
        JOIN batches b USING (batch_id)
        {f"JOIN ({CAMPAIGN_BATCHES}) c USING (batch_id)" if campaigns else ""}
        {"LEFT JOIN messages m ON m.message_id = d.batch_id" if messages else ""}
        JOIN (SELECT status, {codes.outcome_sql()} AS outcome FROM (SELECT DISTINCT status FROM deliveries)) o
             ON o.status = d.status
        WHERE b.sent_at >= $since AND b.sent_at < $until AND (len($lines) = 0 OR list_contains($lines, b.line))"""


def _parameters(since, until, lines, now, cutoff: timedelta | None) -> dict:
    """Query parameters; `since` and `until` in any form dates.moment reads (Jalali, relative ...)."""
    now = now or datetime.now(TEHRAN)
    since, until = window(since, until, now=now)
    parameters = {
        "since": since or datetime(2000, 1, 1, tzinfo=TEHRAN),
        "until": until or now + timedelta(days=1),
        "lines": list(lines),
    }
    return parameters | ({"now": now} if cutoff else {})


def _outcome_columns() -> str:
    """Outcome counts over rows of (outcome, n): recipients counted per outcome first."""
    final = " OR ".join(f"outcome = '{name}'" for name in codes.FINAL_OUTCOMES)
    counts = ", ".join(
        f"CAST(coalesce(sum(n) FILTER (outcome = '{name}'), 0) AS BIGINT) AS {name}" for name in codes.OUTCOMES
    )
    return f"""CAST(sum(n) AS BIGINT) AS recipients, {counts},
               CAST(coalesce(sum(n) FILTER ({final}), 0) AS BIGINT) AS known"""


def with_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the delivered rate over known outcomes, its 95% Wilson interval, how many are unknown,
    and whether the group is large enough (MIN_KNOWN) to be read on its own."""
    frame = frame.copy()
    known = frame["known"].astype(float)
    frame["unknown_total"] = (frame["recipients"] - frame["known"]).astype("int64")
    frame["delivered_rate"] = np.where(known > 0, frame["delivered"] / known.where(known > 0, 1), np.nan)
    frame["rate_low"], frame["rate_high"] = estimates.wilson(frame["delivered"], known)
    frame["share_unknown"] = frame["unknown_total"] / frame["recipients"].where(frame["recipients"] > 0)
    frame["enough"] = frame["known"] >= MIN_KNOWN
    return frame


def jalali_day(day: date) -> str:
    j = jdatetime.date.fromgregorian(date=day)
    return f"{j.year:04d}-{j.month:02d}-{j.day:02d}"


def jalali_month(day: date) -> str:
    """The Jalali month of a Gregorian day: 2025-03-21 is "1404-01"."""
    return jalali_day(day)[:7]


def _register_calendar(con: duckdb.DuckDBPyConnection, calendar: str) -> None:
    """A table `cal` labelling every day that has sends: its day, week (from Saturday) and month."""
    days = [row[0] for row in con.execute("SELECT DISTINCT CAST(sent_at AS DATE) FROM batches").fetchall()]
    weeks = [d - timedelta(days=(d.weekday() - 5) % 7) for d in days]  # Python's Saturday is 5
    if calendar == "jalali":
        labels = {
            "day_label": [jalali_day(d) for d in days],
            "week_label": [jalali_day(w) for w in weeks],
            "month_label": [jalali_month(d) for d in days],
        }
    else:
        labels = {
            "day_label": [d.isoformat() for d in days],
            "week_label": [w.isoformat() for w in weeks],
            "month_label": [d.isoformat()[:7] for d in days],
        }
    con.register("cal", pd.DataFrame({"day": pd.to_datetime(days).date if days else [], **labels}))


def delivery_report(
    store: Store,
    *,
    by=("day",),
    since: datetime | None = None,
    until: datetime | None = None,
    lines: tuple[str, ...] = (),
    calendar: str = "jalali",
    in_flight_cutoff: timedelta | None = timedelta(hours=72),
    now: datetime | None = None,
) -> pd.DataFrame:
    """Recipients per outcome and the delivered rate over known outcomes (with its interval),
    grouped by any of DIMENSIONS; lines, operators and encodings largest first.

    "day", "week" (starting on Saturday) and "month" are labelled in the Jalali or Gregorian
    calendar; "hour" is the send hour in Asia/Tehran; "operator" is the operator that issued the
    number, by prefix.
    """
    by = [by] if isinstance(by, str) else list(by)
    if any(d not in DIMENSIONS for d in by) or calendar not in ("jalali", "gregorian"):
        raise InputError(
            f"Group by some of {', '.join(DIMENSIONS)} (not {by}), with calendar 'jalali' or "
            f"'gregorian' (not {calendar!r}).",
            "گروه بندی یا تقویم نامعتبر است",
        )
    columns = [f"cal.{d}_label AS {d}" if d in ("day", "week", "month") else d for d in by]
    group = ", ".join(str(i + 1) for i in range(len(by)))
    dated = any(d in ("day", "week", "month") for d in by)
    source = _recipients_sql(in_flight_cutoff, messages=any(d in ("parts", "encoding", "flash") for d in by))
    raw = dict.fromkeys("day" if d in ("day", "week", "month") else d for d in by)  # week, month: from the day
    keys = "".join(f"{d}, " for d in raw)
    query = f"""WITH counted AS (SELECT {keys}outcome, count(*) AS n FROM ({source}) r GROUP BY ALL)
                SELECT {"".join(c + ", " for c in columns)}{_outcome_columns()}
                FROM counted {"JOIN cal USING (day)" if dated else ""}
                {f"GROUP BY {group} ORDER BY {group}" if by else ""}"""
    with store.connect() as con:
        if dated:
            _register_calendar(con, calendar)
        frame = with_rates(con.execute(query, _parameters(since, until, lines, now, in_flight_cutoff)).df())
    volume = [d for d in by if d in BY_VOLUME]
    if len(by) == 1 and volume:
        frame = frame.sort_values("recipients", ascending=False, kind="stable", ignore_index=True)
    return frame


def recipients(
    store: Store,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    lines: tuple[str, ...] = (),
    in_flight_cutoff: timedelta | None = timedelta(hours=72),
    now: datetime | None = None,
    campaign: str | None = None,
) -> pd.DataFrame:
    """One row a recipient, with its outcome, dimensions and campaign: what the reports aggregate."""
    query = f"SELECT * FROM ({_recipients_sql(in_flight_cutoff, campaigns=True)}) r"
    parameters = _parameters(since, until, lines, now, in_flight_cutoff)
    if campaign is not None:
        query += " WHERE campaign_id = $campaign"
        parameters["campaign"] = campaign
    with store.connect() as con:
        return con.execute(query, parameters).df()


def lines(store: Store) -> list[str]:
    """The sender lines that have sends in the store."""
    return store.sql("SELECT DISTINCT line FROM batches ORDER BY 1")["line"].tolist()


def campaigns(store: Store) -> pd.DataFrame:
    """Campaigns, newest first: tagged at send time, or found in the history (one text, one line,
    no long gap), each with a readable `name` (an auto-found one: line, Jalali date, first words)."""
    found = store.sql(f"""
        SELECT c.campaign_id AS campaign, bool_or(b.campaign IS NOT NULL) AS tagged, any_value(b.line) AS line,
               any_value(b.text) AS text, min(b.sent_at) AS first_send, max(b.sent_at) AS last_send,
               count(*) AS batches, CAST(sum(b.recipients) AS BIGINT) AS recipients
        FROM batches b JOIN ({CAMPAIGN_BATCHES}) c USING (batch_id)
        GROUP BY 1 HAVING count(*) > 1 OR bool_or(b.campaign IS NOT NULL)
        ORDER BY first_send DESC""")
    found.insert(1, "name", [_readable_name(r) for r in found.itertuples()])
    return found


def _readable_name(row) -> str:
    if row.tagged:
        return row.campaign
    words = " ".join((row.text or "").split()[:4])
    more = "…" if len((row.text or "").split()) > 4 else ""
    return f"{row.line} · {jalali_day(row.first_send.date())} · {words}{more}"


class CampaignSummary(pd.DataFrame):
    """campaign_summary's frame: a DataFrame (its slices are plain ones) that shows itself in a
    notebook as a table for people."""

    SHOWN = (
        "name",
        "first_send",
        "recipients",
        "known",
        "delivered_rate",
        "rate_low",
        "rate_high",
        "share_unknown",
        "replies",
        "opt_outs",
        "cost_per_delivered",
    )

    @property
    def _constructor(self):
        return pd.DataFrame

    def _repr_html_(self) -> str:
        return i18n.styled(pd.DataFrame(self)[list(self.SHOWN)]).to_html()


SUMMARY_SORTS = ("first_send", "delivered_rate", "recipients", "share_unknown", "cost_per_delivered", "opt_outs")


def campaign_summary(
    store: Store,
    *,
    since=None,
    until=None,
    sort: str = "first_send",
    in_flight_cutoff: timedelta | None = timedelta(hours=72),
    reply_window: timedelta = timedelta(hours=72),
    now: datetime | None = None,
) -> pd.DataFrame:
    """One row a campaign first sent in the window: its delivered rate over known outcomes with
    the interval, how many are unknown, replies, opt-outs and the credit spent per delivered SMS.
    `sort` is one of SUMMARY_SORTS (rates and costs best last, so the weakest comes first)."""
    if sort not in SUMMARY_SORTS:
        raise InputError(f"Sort campaigns by one of {', '.join(SUMMARY_SORTS)}, not {sort!r}.", "ترتیب نامعتبر است")
    listed = campaigns(store)
    parameters = _parameters(None, None, (), now, in_flight_cutoff)
    source = _recipients_sql(in_flight_cutoff, campaigns=True, messages=False)
    with store.connect() as con:
        counts = con.execute(
            f"""WITH counted AS (SELECT campaign_id, outcome, count(*) AS n FROM ({source}) r GROUP BY ALL)
                SELECT campaign_id AS campaign, {_outcome_columns()} FROM counted GROUP BY 1""",
            parameters,
        ).df()
        extras = con.execute(
            f"""WITH r AS ({source}),
                c AS (SELECT campaign_id, any_value(line) AS line, min(sent_at) AS first, max(sent_at) AS last
                      FROM r GROUP BY 1)
                SELECT c.campaign_id AS campaign, list(m.content) FILTER (m.message_id IS NOT NULL) AS texts
                FROM c LEFT JOIN (SELECT DISTINCT campaign_id, number FROM r) n USING (campaign_id)
                LEFT JOIN messages m ON m.message_type = 'In' AND m.receiver = c.line AND m.sender = n.number
                     AND m.action_datetime BETWEEN c.first AND c.last + INTERVAL {int(reply_window.total_seconds())} SECOND
                GROUP BY 1""",
            parameters,
        ).df()
        spent = con.execute(
            f"""SELECT c.campaign_id AS campaign, coalesce(sum(m.cost), 0) AS credit_spent
                FROM ({CAMPAIGN_BATCHES}) c LEFT JOIN messages m ON m.message_id = c.batch_id GROUP BY 1"""
        ).df()
    extras["replies"] = [len(t) if isinstance(t, (list, np.ndarray)) else 0 for t in extras["texts"]]
    extras["opt_outs"] = [
        sum(_is_opt_out(x) for x in t) if isinstance(t, (list, np.ndarray)) else 0 for t in extras["texts"]
    ]
    table = listed[["campaign", "name", "line", "first_send", "last_send", "batches"]].merge(counts, on="campaign")
    table = with_rates(table).merge(extras[["campaign", "replies", "opt_outs"]], on="campaign", how="left")
    table = table.merge(spent, on="campaign", how="left")
    table["cost_per_delivered"] = table["credit_spent"] / table["delivered"].where(table["delivered"] > 0)
    start, end = window(since, until, now=now)
    if start is not None:
        table = table[table["first_send"] >= pd.Timestamp(start)]
    if end is not None:
        table = table[table["first_send"] < pd.Timestamp(end)]
    ascending = sort in ("delivered_rate",)
    return CampaignSummary(
        table.sort_values(sort, ascending=ascending, na_position="last", kind="stable", ignore_index=True)
    )


# A recipient's lower bound is the last read of its page (100 rows) proven by a change recorded
# on that page before it was seen final: a sync that did not read the page (another line, no
# deliveries, stopped early) can never narrow the interval past the truth.
TIMES_SQL = """
    WITH mine AS (SELECT d.batch_id, d."row", d.operator, d.status, d.expired, d.last_checked, b.sent_at
                  FROM deliveries d JOIN batches b USING (batch_id)
                  WHERE d.batch_id IN (SELECT unnest($batches))),
    seen AS (SELECT e.batch_id, e."row",
                    min(e.observed_at) FILTER (e.status IN (SELECT unnest($final))) AS final_at,
                    min(e.observed_at) AS first_seen
             FROM delivery_events e WHERE e.batch_id IN (SELECT unnest($batches)) AND e.status <> -3 GROUP BY 1, 2),
    page_reads AS (SELECT DISTINCT e.batch_id, (e."row" - 1) // 100 AS page, e.observed_at
                   FROM delivery_events e WHERE e.batch_id IN (SELECT unnest($batches))),
    flying AS (SELECT e.batch_id, e."row", max(e.observed_at) AS flying_at
               FROM delivery_events e JOIN seen s USING (batch_id, "row")
               WHERE e.status NOT IN (SELECT unnest($final)) AND e.status NOT IN (-3, -1)
                 AND (s.final_at IS NULL OR e.observed_at < s.final_at) GROUP BY 1, 2)
    SELECT m.batch_id, m."row", m.operator, m.sent_at, s.final_at, s.first_seen, f.flying_at, m.expired, m.last_checked,
           (SELECT max(p.observed_at) FROM page_reads p
            WHERE p.batch_id = m.batch_id AND p.page = (m."row" - 1) // 100 AND p.observed_at < s.final_at)
               AS previous_poll
    FROM mine m LEFT JOIN seen s USING (batch_id, "row") LEFT JOIN flying f USING (batch_id, "row")
    WHERE s.first_seen IS NOT NULL"""
# A batch tells the time to final only if a sync first read it soon after its send: one first
# read hours later holds recipients first seen already final, with no time worth the name. The
# choice is by batch, from when the syncs ran, never from the recipients' own times (which would
# select on the very time being estimated).
FIRST_LOOK = timedelta(minutes=30)
# Interval ends are rounded outward to this grid (minutes): each interval still holds the true time,
# and the estimator works on a few hundred cells however many recipients there are.
GRID = np.unique(
    np.concatenate([np.arange(0, 60), np.arange(60, 360, 5), np.arange(360, 1440, 15), np.arange(1440, 10_081, 60)])
).astype(float)


def _outward(lower: pd.Series, upper: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) in minutes rounded outward to GRID; an upper past the grid stays open (inf)."""
    low = GRID[np.clip(np.searchsorted(GRID, lower.to_numpy(dtype=float), side="right") - 1, 0, len(GRID) - 1)]
    index = np.searchsorted(GRID, upper.to_numpy(dtype=float), side="left")
    high = np.where(index < len(GRID), GRID[np.minimum(index, len(GRID) - 1)], np.inf)
    return low, high


def _fit(rows: pd.DataFrame) -> estimates.Turnbull:
    pairs = rows.groupby(["lower", "upper"]).size().reset_index(name="n")
    return estimates.turnbull(pairs["lower"], pairs["upper"], pairs["n"])


def final_intervals(store: Store, batch_ids) -> pd.DataFrame:
    """Per recipient seen by a sync: operator, and (lower, upper] in minutes after the send,
    rounded outward to GRID (upper inf: still in flight, censored); `late` when its batch was
    first read over FIRST_LOOK after the send."""
    with store.connect() as con:
        rows = con.execute(
            TIMES_SQL,
            {
                "batches": sorted(int(b) for b in batch_ids),
                "final": [c for c, st in codes.DELIVERY_STATUSES.items() if st.final and c > 0],
            },
        ).df()
    minutes = lambda column: (rows[column] - rows["sent_at"]).dt.total_seconds() / 60
    final = rows["final_at"].notna()
    lower = pd.concat([minutes(c).fillna(0) for c in ("flying_at", "previous_poll")], axis=1).max(axis=1).clip(lower=0)
    lower = lower.where(
        final, pd.concat([minutes("flying_at"), minutes("last_checked").where(~rows["expired"])], axis=1).max(axis=1)
    )
    upper = minutes("final_at").where(final, np.inf)
    rows["lower"], rows["upper"] = _outward(lower.fillna(0), upper)
    first_look = rows.groupby("batch_id")["first_seen"].transform("min") - rows["sent_at"]
    rows["late"] = first_look > FIRST_LOOK
    return rows


def time_to_final(store: Store, batch_ids, *, by_operator: bool = True):
    """The time from send to final status, per recipient an interval between the last poll that
    saw it in flight (or the send) and the first that saw it final; still in flight: censored.

    Only batches a sync first read within FIRST_LOOK of their send are used (the others are
    counted as left out). Returns (table, curves): median and p90 with 95% bounds per group
    ("all", then operators), with how many recipients reached a final status, were still in
    flight, or were left out; and the estimated share final by minute for each group. A statistic
    whose bounds are wider than itself (polls too sparse around it to say anything) is left
    empty (NaN); where the median is, no curve is drawn."""
    rows = final_intervals(store, batch_ids)
    groups = [("all", rows)] + ([(op, g) for op, g in rows.groupby("operator")] if by_operator else [])
    table, curves = [], []
    for group, everyone in groups:
        part = everyone[~everyone["late"]]
        row = {
            "group": group,
            "usable": int((part["upper"] < np.inf).sum()),
            "in_flight": int((part["upper"] == np.inf).sum()),
            "too_sparse": int(everyone["late"].sum()),
        }
        answers = _quantiles(part) if row["usable"] >= MIN_KNOWN else {}
        for q in ("median", "p90"):
            value, low, high = answers.get(q, (np.nan, np.nan, np.nan))
            table.append(row | {"statistic": q, "minutes": value, "minutes_low": low, "minutes_high": high})
        if not np.isnan(answers.get("median", (np.nan,))[0]):
            fit = _fit(part)
            finite = part["upper"].replace(np.inf, np.nan)
            grid = np.linspace(0, max(float(finite.quantile(0.99)), 1), 200)
            curves.append(pd.DataFrame({"group": group, "minutes": grid, "share": fit.cdf(grid)}))
    columns = ["group", "statistic", "minutes", "minutes_low", "minutes_high", "usable", "in_flight", "too_sparse"]
    curve = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=["group", "minutes", "share"])
    return pd.DataFrame(table, columns=columns), curve


def _quantiles(part: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    """Median and p90 (estimate, low, high), each NaN where its bounds are wider than itself."""
    pairs = part.groupby(["lower", "upper"]).size().reset_index(name="n")
    answers = estimates.quantile_intervals(pairs["lower"], pairs["upper"], pairs["n"])
    said = {}
    for q, (value, low, high) in zip(("median", "p90"), answers, strict=True):
        sparse = not (high - low <= max(value, 1.0))  # NaN bounds count as sparse
        said[q] = (np.nan, np.nan, np.nan) if sparse else (value, low, high)
    return said


@dataclass
class CampaignPostmortem:
    """Why a campaign delivered what it delivered, over the recipients whose outcome is known."""

    campaign: str
    header: dict
    funnel: pd.DataFrame  # stage, recipients
    failure_reasons: pd.DataFrame  # status, name, meaning (en, fa), recipients, share
    operators: pd.DataFrame  # per operator: outcome counts, known, delivered rate and interval, largest first
    time_to_final: pd.DataFrame  # median and p90 (minutes) with bounds, overall and per operator
    time_to_final_cdf: pd.DataFrame  # group, minutes, estimated share final
    cost: dict  # credit_spent, delivered, cost_per_delivered (SMS credits)
    replies: pd.DataFrame  # received messages from recipients within the window, with opt_out
    baseline: pd.DataFrame  # per operator: campaign and account rates with intervals, difference, verdict

    @property
    def opt_outs(self) -> int:
        return int(self.replies["opt_out"].sum()) if len(self.replies) else 0

    @property
    def known(self) -> int:
        return int(self.funnel.set_index("stage")["recipients"]["known"])

    def to_frame(self) -> pd.DataFrame:
        """Every figure of the post-mortem as rows of (section, item, value)."""
        rows = [("header", k, v) for k, v in self.header.items()]
        rows += [("funnel", r.stage, r.recipients) for r in self.funnel.itertuples()]
        rows += [("failure_reasons", r.name, r.recipients) for r in self.failure_reasons.itertuples()]
        rows += [
            ("time_to_final_minutes", f"{r.group} {r.statistic}", r.minutes) for r in self.time_to_final.itertuples()
        ]
        rows += [("cost", k, v) for k, v in self.cost.items()]
        rows += [("replies", "replies", len(self.replies)), ("replies", "opt_outs", self.opt_outs)]
        rows += [("baseline", f"{r.operator} campaign", r.campaign_rate) for r in self.baseline.itertuples()]
        rows += [("baseline", f"{r.operator} account", r.baseline_rate) for r in self.baseline.itertuples()]
        return pd.DataFrame(rows, columns=["section", "item", "value"])

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        self.to_frame().to_csv(path, index=False)
        return path

    def summary(self, lang: str = "en") -> str:
        """One line: recipients, known, delivered of known with its interval, opt-outs, or why unknown."""
        return i18n.campaign_line(self.header["recipients"], self.known, self.cost["delivered"], self.opt_outs, lang)

    def _repr_html_(self) -> str:
        from .report import postmortem_html

        return postmortem_html(self, "en")


def campaign_id(store: Store, campaign: str, listed: pd.DataFrame | None = None) -> str:
    """The id of a campaign given by id or readable name; NotFoundError naming where to look.
    A send of one batch is not listed as a campaign, but its id (the `campaign_id` of its
    recipients) is taken: a user copies it from there."""
    listed = campaigns(store) if listed is None else listed
    found = dict(zip(listed["name"], listed["campaign"])) | dict(zip(listed["campaign"], listed["campaign"]))
    if campaign not in found and isinstance(campaign, str):
        unlisted = store.sql(
            f"SELECT DISTINCT campaign_id FROM ({CAMPAIGN_BATCHES}) WHERE campaign_id = $c", {"c": campaign}
        )
        found |= {name: name for name in unlisted["campaign_id"]}
    if campaign not in found:
        raise NotFoundError(
            f"No campaign {campaign!r} in {store.path}: `payamak campaign list` (or campaigns(store)) lists them.",
            "این کمپین پیدا نشد؛ فهرست کمپین‌ها را با payamak campaign list ببینید",
        )
    return found[campaign]


def campaign_postmortem(
    store: Store,
    campaign: str,
    *,
    reply_window: timedelta = timedelta(hours=72),
    in_flight_cutoff: timedelta | None = timedelta(hours=72),
    now: datetime | None = None,
) -> CampaignPostmortem:
    """The post-mortem of one campaign (a `campaign` id, or a `name`, from `campaigns(store)`)."""
    listed = campaigns(store)
    campaign = campaign_id(store, campaign, listed)
    mine = recipients(store, in_flight_cutoff=in_flight_cutoff, now=now, campaign=campaign)
    first, last = mine["sent_at"].min(), mine["sent_at"].max()
    header = {
        "campaign": campaign,
        "name": listed.set_index("campaign")["name"].get(campaign, campaign),
        "line": mine["line"].iloc[0],
        "text": mine["text"].iloc[0],
        "parts": int(mine["parts"].max()) if mine["parts"].notna().any() else None,
        "encoding": mine["encoding"].iloc[0],
        "first_send": first,
        "last_send": last,
        "batches": mine["batch_id"].nunique(),
        "recipients": len(mine),
    }
    batch_ids = sorted(int(b) for b in mine["batch_id"].unique())
    funnel, delivered = _funnel(mine)
    with store.connect() as con:
        spent = con.execute(
            "SELECT coalesce(sum(cost), 0) FROM messages WHERE message_id IN (SELECT unnest($b))", {"b": batch_ids}
        ).fetchone()[0]
        replies = con.execute(
            """
            SELECT message_id, action_datetime, sender, content FROM messages
            WHERE message_type = 'In' AND receiver = $line AND action_datetime BETWEEN $first AND $until
              AND sender IN (SELECT unnest($numbers)) ORDER BY action_datetime""",
            {
                "line": header["line"],
                "first": first,
                "until": last + reply_window,
                "numbers": sorted(set(mine["number"])),
            },
        ).df()
    replies["opt_out"] = [_is_opt_out(text) for text in replies["content"]]
    times, curve = time_to_final(store, batch_ids)
    cost = {
        "credit_spent": float(spent),
        "delivered": delivered,
        "cost_per_delivered": float(spent) / delivered if delivered else None,
    }
    return CampaignPostmortem(
        campaign,
        header,
        funnel,
        _failure_reasons(mine),
        _operators(mine),
        times,
        curve,
        cost,
        replies,
        _baseline(store, mine, in_flight_cutoff, now),
    )


def _funnel(mine: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Recipients at each stage, over those whose outcome is known from "known" on."""
    known = mine[mine["outcome"].isin(codes.FINAL_OUTCOMES)]
    accepted = known[~known["status"].isin([10, 11])]
    reached = accepted[accepted["status"].isin(REACHED_TELECOM)]
    delivered = reached[reached["status"] == 1]
    counts = [len(mine), len(known), len(accepted), len(reached), len(delivered)]
    return pd.DataFrame(
        {"stage": ["recipients", "known", "accepted", "reached", "delivered"], "recipients": counts}
    ), len(delivered)


def _failure_reasons(mine: pd.DataFrame) -> pd.DataFrame:
    failed = mine[mine["outcome"].isin([o for o in codes.FINAL_OUTCOMES if o != "delivered"])]
    reasons = failed.groupby("status").size().rename("recipients").reset_index()
    reasons = reasons.sort_values("recipients", ascending=False, ignore_index=True)
    reasons["name"] = [codes.delivery_status(int(s)).name for s in reasons["status"]]
    reasons["meaning_en"] = [codes.delivery_status(int(s)).en for s in reasons["status"]]
    reasons["meaning_fa"] = [codes.delivery_status(int(s)).fa for s in reasons["status"]]
    reasons["share"] = reasons["recipients"] / max(int(mine["outcome"].isin(codes.FINAL_OUTCOMES).sum()), 1)
    return reasons


def _operators(mine: pd.DataFrame) -> pd.DataFrame:
    counts = pd.crosstab(mine["operator"], mine["outcome"]).reindex(columns=list(codes.OUTCOMES), fill_value=0)
    counts["recipients"] = counts.sum(axis=1)
    counts["known"] = counts[list(codes.FINAL_OUTCOMES)].sum(axis=1)
    table = with_rates(counts.reset_index())
    return table.sort_values("recipients", ascending=False, ignore_index=True)


def _is_opt_out(text: str | None) -> bool:
    cleaned = "".join(latin_digits(text or "").split()).lower()
    return cleaned in OPT_OUT_REPLIES or cleaned.startswith("لغو")


def _baseline(store: Store, mine: pd.DataFrame, cutoff: timedelta | None, now: datetime | None) -> pd.DataFrame:
    """Delivered of known, per operator: this campaign against the account's other sends from the
    same line, each with its interval, and a verdict only where Newcombe's interval of the
    difference excludes zero."""
    flags = pd.DataFrame(
        {
            "operator": mine["operator"],
            "campaign_delivered": (mine["outcome"] == "delivered").astype("int64"),
            "campaign_known": mine["outcome"].isin(codes.FINAL_OUTCOMES).astype("int64"),
        }
    )
    table = flags.groupby("operator").sum()
    final_sql = " OR ".join(f"outcome = '{name}'" for name in codes.FINAL_OUTCOMES)
    with store.connect() as con:
        others = con.execute(
            f"""
            SELECT operator, count(*) FILTER (outcome = 'delivered') AS baseline_delivered, count(*) AS baseline_known
            FROM ({_recipients_sql(cutoff, campaigns=True)}) r
            WHERE line = $line AND campaign_id <> $campaign AND ({final_sql})
            GROUP BY operator""",
            _parameters(None, None, (), now, cutoff)
            | {"line": mine["line"].iloc[0], "campaign": mine["campaign_id"].iloc[0]},
        ).df()
    table = table.join(others.set_index("operator"), how="left").fillna({"baseline_delivered": 0, "baseline_known": 0})
    table = table.reset_index().sort_values("campaign_known", ascending=False, ignore_index=True)
    table["campaign_rate"] = table["campaign_delivered"] / table["campaign_known"]
    table["campaign_low"], table["campaign_high"] = estimates.wilson(
        table["campaign_delivered"], table["campaign_known"]
    )
    table["baseline_rate"] = table["baseline_delivered"] / table["baseline_known"].where(table["baseline_known"] > 0)
    table["baseline_low"], table["baseline_high"] = estimates.wilson(
        table["baseline_delivered"], table["baseline_known"]
    )
    d, low, high = estimates.difference(
        table["campaign_delivered"], table["campaign_known"], table["baseline_delivered"], table["baseline_known"]
    )
    table["difference"], table["difference_low"], table["difference_high"] = d, low, high
    small = (table["campaign_known"] < MIN_KNOWN) | (table["baseline_known"] < MIN_KNOWN)
    table["verdict"] = np.select([small, low > 0, high < 0], ["too_small", "larger", "smaller"], "same")
    return table
