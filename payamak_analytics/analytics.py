"""Delivery-rate reports and campaign post-mortems, computed in DuckDB over the store.

Each recipient has one outcome (codes.OUTCOMES): that of its last known status, except that a
status still in flight past `in_flight_cutoff` is "delivery_unknown" and a report that expired
before any status was seen is "expired". Two rates, named plainly: delivered_of_final (over the
recipients whose outcome is final) and delivered_of_all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import jdatetime
import pandas as pd

from . import codes
from .dates import TEHRAN
from .errors import InputError, NotFoundError
from .i18n import latin_digits
from .store import Store

DIMENSIONS = ("day", "week", "month", "line", "operator", "parts", "encoding", "flash", "hour")
CAMPAIGN_GAP = timedelta(hours=6)  # sends of one text from one line closer than this are one campaign
OPT_OUT_REPLIES = ("لغو", "11", "لغو11", "stop", "cancel")
REACHED_TELECOM = (1, 2, 4, 5, 7, 8, 12)  # statuses the telecom reported back on

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
    now = now or datetime.now(TEHRAN)
    parameters = {
        "since": since or datetime(2000, 1, 1, tzinfo=TEHRAN),
        "until": until or now + timedelta(days=1),
        "lines": list(lines),
    }
    return parameters | ({"now": now} if cutoff else {})


def _outcome_columns() -> str:
    """Outcome counts and rates over rows of (outcome, n): recipients counted per outcome first."""
    final = " OR ".join(f"outcome = '{name}'" for name in codes.FINAL_OUTCOMES)
    counts = ", ".join(
        f"CAST(coalesce(sum(n) FILTER (outcome = '{name}'), 0) AS BIGINT) AS {name}" for name in codes.OUTCOMES
    )
    return f"""CAST(sum(n) AS BIGINT) AS recipients, {counts},
               CAST(coalesce(sum(n) FILTER ({final}), 0) AS BIGINT) AS final,
               sum(n) FILTER (outcome = 'delivered') / nullif(sum(n) FILTER ({final}), 0) AS delivered_of_final,
               coalesce(sum(n) FILTER (outcome = 'delivered'), 0) / sum(n) AS delivered_of_all"""


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
    """Recipients per outcome and the two rates, grouped by any of DIMENSIONS.

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
        return con.execute(query, _parameters(since, until, lines, now, in_flight_cutoff)).df()


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


def campaigns(store: Store) -> pd.DataFrame:
    """Campaigns: tagged at send time, or found in the history (one text, one line, no long gap)."""
    return store.sql(f"""
        SELECT c.campaign_id AS campaign, bool_or(b.campaign IS NOT NULL) AS tagged, any_value(b.line) AS line,
               any_value(b.text) AS text, min(b.sent_at) AS first_send, max(b.sent_at) AS last_send,
               count(*) AS batches, sum(b.recipients) AS recipients
        FROM batches b JOIN ({CAMPAIGN_BATCHES}) c USING (batch_id)
        GROUP BY 1 HAVING count(*) > 1 OR bool_or(b.campaign IS NOT NULL)
        ORDER BY first_send DESC""")


@dataclass
class CampaignPostmortem:
    """Why a campaign delivered what it delivered. Times to final are upper bounds: the time of
    the first poll that saw the final status, not of the delivery itself."""

    campaign: str
    header: dict
    funnel: pd.DataFrame  # stage, recipients
    failure_reasons: pd.DataFrame  # status, name, meaning (en, fa), recipients, share
    operators: pd.DataFrame  # operator x outcome counts
    time_to_final: pd.DataFrame  # percentile, minutes (upper bounds)
    time_to_final_cdf: pd.DataFrame  # minutes, share of final recipients
    cost: dict  # credit_spent, delivered, cost_per_delivered
    replies: pd.DataFrame  # received messages from recipients within the window, with opt_out
    baseline: pd.DataFrame  # operator: the campaign's rate and the account's own for the same line

    @property
    def opt_outs(self) -> int:
        return int(self.replies["opt_out"].sum()) if len(self.replies) else 0

    def to_frame(self) -> pd.DataFrame:
        """Every figure of the post-mortem as rows of (section, item, value)."""
        rows = [("header", k, v) for k, v in self.header.items()]
        rows += [("funnel", r.stage, r.recipients) for r in self.funnel.itertuples()]
        rows += [("failure_reasons", r.name, r.recipients) for r in self.failure_reasons.itertuples()]
        rows += [
            ("time_to_final_minutes_upper_bound", r.percentile, r.minutes) for r in self.time_to_final.itertuples()
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


def campaign_postmortem(
    store: Store,
    campaign: str,
    *,
    reply_window: timedelta = timedelta(hours=72),
    in_flight_cutoff: timedelta | None = timedelta(hours=72),
    now: datetime | None = None,
) -> CampaignPostmortem:
    """The post-mortem of one campaign (a name from `campaigns(store)`)."""
    mine = recipients(store, in_flight_cutoff=in_flight_cutoff, now=now, campaign=campaign)
    if mine.empty:
        raise NotFoundError(
            f"No campaign {campaign!r} in {store.path}: campaigns(store) lists them.", "این کمپین پیدا نشد"
        )
    first, last = mine["sent_at"].min(), mine["sent_at"].max()
    header = {
        "campaign": campaign,
        "line": mine["line"].iloc[0],
        "text": mine["text"].iloc[0],
        "parts": int(mine["parts"].max()) if mine["parts"].notna().any() else None,
        "encoding": mine["encoding"].iloc[0],
        "first_send": first,
        "last_send": last,
        "batches": mine["batch_id"].nunique(),
        "recipients": len(mine),
    }
    known = mine[mine["status"] != -3]
    accepted = known[~known["status"].isin([10, 11])]
    reached = accepted[accepted["status"].isin(REACHED_TELECOM)]
    delivered = reached[reached["status"] == 1]
    funnel = pd.DataFrame(
        {
            "stage": ["recipients", "status known", "accepted by the panel", "reached the telecom", "delivered"],
            "recipients": [len(mine), len(known), len(accepted), len(reached), len(delivered)],
        }
    )
    failed = known[known["outcome"].isin([o for o in codes.FINAL_OUTCOMES if o != "delivered"])]
    reasons = (
        failed.groupby("status")
        .size()
        .rename("recipients")
        .reset_index()
        .sort_values("recipients", ascending=False, ignore_index=True)
    )
    reasons["name"] = [codes.delivery_status(int(s)).name for s in reasons["status"]]
    reasons["meaning_en"] = [codes.delivery_status(int(s)).en for s in reasons["status"]]
    reasons["meaning_fa"] = [codes.delivery_status(int(s)).fa for s in reasons["status"]]
    reasons["share"] = reasons["recipients"] / len(mine)
    operators = pd.crosstab(mine["operator"], mine["outcome"]).reindex(
        columns=[o for o in codes.OUTCOMES if o in set(mine["outcome"])]
    )
    with store.connect() as con:
        times = con.execute(
            """
            SELECT e.batch_id, e."row", min(e.observed_at) - min(b.sent_at) AS waited
            FROM delivery_events e JOIN batches b USING (batch_id)
            WHERE e.batch_id IN (SELECT unnest($batches)) AND e.status IN (SELECT unnest($final))
            GROUP BY 1, 2""",
            {
                "batches": sorted(int(b) for b in mine["batch_id"].unique()),
                "final": [c for c, s in codes.DELIVERY_STATUSES.items() if s.final and c > 0],
            },
        ).df()
        spent = con.execute(
            "SELECT coalesce(sum(cost), 0) FROM messages WHERE message_id IN (SELECT unnest($b))",
            {"b": sorted(int(b) for b in mine["batch_id"].unique())},
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
    minutes = (
        (times["waited"].dt.total_seconds() / 60).sort_values(ignore_index=True)
        if len(times)
        else pd.Series([], dtype=float)
    )
    time_to_final = pd.DataFrame(
        {
            "percentile": ["p50", "p90", "p99"],
            "minutes": [minutes.quantile(q) if len(minutes) else None for q in (0.5, 0.9, 0.99)],
        }
    )
    cdf = pd.DataFrame({"minutes": minutes, "share": (minutes.index + 1) / max(len(minutes), 1)})
    replies["opt_out"] = [_is_opt_out(text) for text in replies["content"]]
    cost = {
        "credit_spent": float(spent),
        "delivered": len(delivered),
        "cost_per_delivered": float(spent) / len(delivered) if len(delivered) else None,
    }
    return CampaignPostmortem(
        campaign,
        header,
        funnel,
        reasons,
        operators,
        time_to_final,
        cdf,
        cost,
        replies,
        _baseline(store, mine, in_flight_cutoff, now),
    )


def _is_opt_out(text: str | None) -> bool:
    cleaned = "".join(latin_digits(text or "").split()).lower()
    return cleaned in OPT_OUT_REPLIES or cleaned.startswith("لغو")


def _baseline(store: Store, mine: pd.DataFrame, cutoff: timedelta | None, now: datetime | None) -> pd.DataFrame:
    """Delivered of final, per operator: this campaign against the account's other sends from the same line."""
    final = mine[mine["outcome"].isin(codes.FINAL_OUTCOMES)]
    grouped = final.groupby("operator")["outcome"]
    table = pd.DataFrame(
        {"campaign_rate": grouped.apply(lambda o: (o == "delivered").mean()), "campaign_final": grouped.size()}
    )
    final_sql = " OR ".join(f"outcome = '{name}'" for name in codes.FINAL_OUTCOMES)
    with store.connect() as con:
        others = con.execute(
            f"""
            SELECT operator, count(*) FILTER (outcome = 'delivered') / count(*) AS baseline_rate,
                   count(*) AS baseline_final
            FROM ({_recipients_sql(cutoff, campaigns=True)}) r
            WHERE line = $line AND campaign_id <> $campaign AND ({final_sql})
            GROUP BY operator""",
            _parameters(None, None, (), now, cutoff)
            | {"line": mine["line"].iloc[0], "campaign": mine["campaign_id"].iloc[0]},
        ).df()
    return table.join(others.set_index("operator"), how="left").reset_index()
