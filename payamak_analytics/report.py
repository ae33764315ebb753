"""One self-contained HTML report (charts embedded), with its PNGs and CSVs beside it.

Every table is written for people (i18n.for_people); every cell is isolated (<bdi>) so a Persian
quotation in the English report and a Latin line number in the Persian one read in their own
direction. A store that does not exist or has no sends in the window is refused before any file
is written.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from . import analytics, charts, i18n
from .alerts import alerts_html
from .dates import TEHRAN, window
from .errors import InputError, NotFoundError
from .i18n import bdi, digits, for_people
from .store import Store

TEXT = {
    "title": ("SMS delivery report", "گزارش تحویل پیامک"),
    "generated": ("Generated", "تهیه‌شده در"),
    "window": ("Sends from", "ارسال‌ها از"),
    "to": ("to", "تا"),
    "start": ("the first", "نخستین"),
    "end": ("the last", "آخرین"),
    "overall": ("All recipients", "همهٔ گیرندگان"),
    "months": ("By month", "به تفکیک ماه"),
    "operators": ("By operator", "به تفکیک اپراتور"),
    "lines": ("By line", "به تفکیک خط"),
    "campaigns": ("Campaigns", "کمپین‌ها"),
    "campaign": ("Campaign post-mortem", "کالبدشکافی کمپین"),
    "reasons": ("Failure reasons (share of known outcomes)", "دلایل ناموفق‌بودن (سهم از نتیجه‌های معلوم)"),
    "times": ("Time to final status", "زمان تا وضعیت نهایی"),
    "recent_times": (
        "Time to final status: sends of the window's last 7 days",
        "زمان تا وضعیت نهایی: ارسال‌های ۷ روز پایانی بازه",
    ),
    "baseline": ("Against the account's own baseline", "در برابر میانگین خود حساب"),
    "cost": ("Cost", "هزینه"),
    "replies": ("Replies and opt-outs", "پاسخ‌ها و لغو عضویت‌ها"),
    "note": (
        (
            "Every rate is delivered over recipients whose outcome is known, with its 95% interval (Wilson) "
            "and its count; groups under 30 known outcomes are faded and called too few. Times to final "
            "lie between the last poll that saw a recipient in flight and the first that saw it final; "
            "they are estimated with Turnbull's interval-censored estimator; the 95% bounds hold both what the "
            "polls cannot tell (the earliest and latest the figure can be) and the sampling error (bootstrap)."
        ),
        (
            "هر نرخ، تحویل‌شده از گیرندگانی است که نتیجه‌شان معلوم است، با بازهٔ ۹۵٪ (ویلسون) و شمارش آن؛ "
            "گروه‌های کمتر از ۳۰ نتیجهٔ معلوم کم‌رنگ‌اند و «برای داوری کم» نامیده می‌شوند. زمان تا وضعیت نهایی "
            "میان آخرین بررسی‌ای که گیرنده را در حال ارسال دید و نخستین بررسی‌ای که آن را نهایی دید است و با "
            "برآوردگر ترنبول برای داده‌های بازه‌ای برآورد می‌شود؛ کران‌های ۹۵٪ هم آنچه بررسی‌ها نمی‌توانند بگویند "
            "(زودترین و دیرترین مقدار ممکن) و هم خطای نمونه‌گیری (بوت‌استرپ) را در بر می‌گیرند."
        ),
    ),
    "times_note": (
        (
            "{usable} recipients with a usable time, {in_flight} still in flight (censored), {sparse} left out: "
            "a sync first read their batch over 30 minutes after its send, when most had already ended. "
            "A figure the polls cannot pin down (bounds wider than itself) is not given."
        ),
        (
            "{usable} گیرنده با زمان قابل‌استفاده، {in_flight} هنوز در حال ارسال (سانسورشده)، {sparse} کنار گذاشته: "
            "همگام‌سازی دستهٔ آن‌ها را بیش از ۳۰ دقیقه پس از ارسال برای نخستین بار خواند، وقتی بیشترشان پایان یافته بودند. "
            "رقمی که بررسی‌ها نمی‌توانند مشخصش کنند (کران‌هایی پهن‌تر از خودش) آورده نمی‌شود."
        ),
    ),
    "replies_line": ("{replies} replies, {opt_outs} of them opt-outs", "{replies} پاسخ، {opt_outs} از آن‌ها لغو عضویت"),
}


def _t(key: str, lang: str) -> str:
    return TEXT[key][lang == "fa"]


def html_table(frame: pd.DataFrame, lang: str, calendar: str = "jalali") -> str:
    """A table for people, every cell isolated in its own direction."""
    shown = for_people(frame, lang, calendar)
    head = "".join(f"<th>{bdi(c)}</th>" for c in shown.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{bdi(v)}</td>" for v in row) + "</tr>" for row in shown.itertuples(index=False)
    )
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _img(png: bytes, name: str) -> str:
    return f'<img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


class _Writer:
    """Collects the HTML body and writes each chart and table beside it as PNG and CSV."""

    def __init__(self, folder: Path, lang: str, calendar: str):
        self.folder, self.lang, self.calendar, self.parts = folder, lang, calendar, []

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{bdi(text)}</h{level}>")

    def paragraph(self, text: str, css: str = "") -> None:
        if text:
            self.parts.append(f'<p class="{css}">{html.escape(text)}</p>')

    def figure(self, name: str, figure: Figure) -> None:
        png = _png(figure)
        (self.folder / f"{name}.png").write_bytes(png)
        self.parts.append(_img(png, name))

    def table(self, name: str, frame: pd.DataFrame) -> None:
        frame.to_csv(self.folder / f"{name}.csv", index=False)
        self.parts.append(html_table(frame, self.lang, self.calendar))


def _unknown_line(report: pd.DataFrame, lang: str) -> str:
    row = report.sum(numeric_only=True)
    return i18n.unknown_note(
        int(row["recipients"]),
        int(row["expired"]),
        int(row["in_flight"] + row["delivery_unknown"]),
        lang,
        untold=int(row["unknown"]),
    )


def postmortem_html(
    pm: analytics.CampaignPostmortem, lang: str = "en", calendar: str = "jalali", out: _Writer | None = None
) -> str:
    """The post-mortem's section of the report (also its `_repr_html_` in a notebook)."""
    standalone = out is None
    out = out or _Writer(Path("."), lang, calendar)
    put = out.figure if not standalone else (lambda name, figure: out.parts.append(_img(_png(figure), name)))
    table = out.table if not standalone else (lambda name, frame: out.parts.append(html_table(frame, lang, calendar)))
    h = pm.header
    out.heading(f"{_t('campaign', lang)}: {h['name']}")
    out.parts.append(
        f"<p>{bdi(h['line'])} · {bdi(digits(h['batches'], lang))} {html.escape(i18n.label('batches', lang))} · "
        f"{bdi(digits(h['parts'], lang))} × {bdi(i18n.label(str(h['encoding']), lang))} · {bdi(i18n.when(h['first_send'], lang, calendar))}</p>"
    )
    out.parts.append(f'<blockquote dir="auto">{html.escape(h["text"])}</blockquote>')
    out.paragraph(pm.summary(lang), "unknown")
    put("campaign_funnel", charts.campaign_funnel(pm, lang))
    table("campaign_funnel", pm.funnel)
    out.heading(_t("reasons", lang), 3)
    table("campaign_failure_reasons", pm.failure_reasons[["status", "meaning_en", "meaning_fa", "recipients", "share"]])
    out.heading(_t("operators", lang), 3)
    table(
        "campaign_operators",
        pm.operators[["operator", "recipients", "known", "delivered_rate", "rate_low", "rate_high", "unknown_total"]],
    )
    out.heading(_t("baseline", lang), 3)
    put("campaign_vs_baseline", charts.campaign_vs_baseline(pm, lang))
    table(
        "campaign_vs_baseline",
        pm.baseline[
            [
                "operator",
                "campaign_rate",
                "campaign_low",
                "campaign_high",
                "campaign_known",
                "baseline_rate",
                "baseline_low",
                "baseline_high",
                "baseline_known",
                "difference",
                "difference_low",
                "difference_high",
                "verdict",
            ]
        ],
    )
    out.heading(_t("times", lang), 3)
    overall = pm.time_to_final[pm.time_to_final["group"] == "all"]
    if len(overall):
        counts = {
            k: i18n.number(overall[c].iloc[0], lang)
            for k, c in (("usable", "usable"), ("in_flight", "in_flight"), ("sparse", "too_sparse"))
        }
        out.paragraph(_t("times_note", lang).format(**counts))
    put("campaign_time_to_final", charts.time_to_final_cdf(pm, lang))
    table(
        "campaign_time_to_final",
        pm.time_to_final.rename(columns={"group": "operator"}),
    )
    out.heading(_t("cost", lang), 3)
    table("campaign_cost", pd.DataFrame([pm.cost]))
    out.heading(_t("replies", lang), 3)
    out.paragraph(
        _t("replies_line", lang).format(
            replies=i18n.number(len(pm.replies), lang), opt_outs=i18n.number(pm.opt_outs, lang)
        )
    )
    return "".join(out.parts) if standalone else ""


def _moment_text(moment, default: str) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else default


def refuse_empty(store: Store, since, until, *, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """The window read with dates.window; NotFoundError when no send lies in it, InputError when
    it starts in the future."""
    now = now or datetime.now(TEHRAN)
    since, until = window(since, until, now=now)
    if since is not None and since > now:
        raise InputError(
            f"The window starts in the future ({since:%Y-%m-%d %H:%M} Tehran time): nothing was sent then yet.",
            "آغاز بازه در آینده است",
        )
    found = store.sql(
        "SELECT count(*) AS n FROM batches WHERE sent_at >= ? AND sent_at < ?",
        [since or datetime(2000, 1, 1, tzinfo=TEHRAN), until or datetime(2200, 1, 1, tzinfo=TEHRAN)],
    )["n"][0]
    if not found:
        raise NotFoundError(
            f"{store.path} holds no sends between {_moment_text(since, 'the start')} and {_moment_text(until, 'now')}: sync first "
            "(`payamak sync`), or widen --since / --until.",
            "در این بازه ارسالی در پایگاه داده نیست؛ نخست همگام‌سازی کنید",
        )
    return since, until


def write_report(
    store: Store,
    folder: str | Path = "reports",
    *,
    since=None,
    until=None,
    campaign: str | None = None,
    lang: str = "en",
    calendar: str = "jalali",
    now: datetime | None = None,
) -> Path:
    """Write report.html (self-contained), with its charts as PNG and tables as CSV beside it.

    `since` / `until` in any form dates.moment reads. Without `campaign`, the newest campaign in
    the window gets a post-mortem section. Nothing is written when the window holds no sends.
    """
    since, until = refuse_empty(store, since, until, now=now)
    if campaign is not None:
        campaign = analytics.campaign_id(store, campaign)  # an unknown campaign is refused before any file
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = _Writer(folder, lang, calendar)
    scope = {"since": since, "until": until, "now": now}
    overall = analytics.delivery_report(store, by=[], **scope)
    by_month = analytics.delivery_report(store, by=["month"], calendar=calendar, **scope)
    by_operator = analytics.delivery_report(store, by=["operator"], **scope)
    by_line = analytics.delivery_report(store, by=["line"], **scope)
    columns = ["recipients", "known", "delivered_rate", "rate_low", "rate_high", "unknown_total", "expired"]
    out.paragraph(_unknown_line(overall, lang), "unknown")
    out.parts.append(alerts_html(store, lang=lang, active=True))  # what `payamak watch` still finds wrong
    out.heading(_t("overall", lang))
    out.figure("outcomes", charts.outcome_distribution(overall, lang))
    out.table("overall", overall[columns])
    out.heading(_t("months", lang))
    out.figure("delivery_rate_by_month", charts.delivery_rate_over_time(by_month, "month", lang))
    out.table("by_month", by_month[["month", *columns]])
    out.heading(_t("operators", lang))
    out.figure("delivery_rate_by_operator", charts.operator_outcomes(by_operator, lang))
    out.table("by_operator", by_operator[["operator", *columns]])
    out.heading(_t("lines", lang))
    out.table("by_line", by_line[["line", *columns]])
    _recent_times(store, out, until or now or datetime.now(TEHRAN))
    leaderboard = analytics.campaign_summary(store, since=since, until=until, now=now)
    if len(leaderboard):
        out.heading(_t("campaigns", lang))
        out.table("campaigns", leaderboard[list(SUMMARY_COLUMNS)])
    campaign = campaign or (leaderboard["campaign"].iloc[0] if len(leaderboard) else None)
    if campaign is not None:
        postmortem = analytics.campaign_postmortem(store, campaign, now=now)
        postmortem_html(postmortem, lang, calendar, out)
        postmortem.to_csv(folder / "campaign_postmortem.csv")
    target = folder / "report.html"
    target.write_text(_page(out, lang, calendar, since, until), encoding="utf-8")
    return target


def _recent_times(store: Store, out: _Writer, end: datetime) -> None:
    """Time to final over every send of the window's last week (the reports still answer for those)."""
    batches = store.sql(
        "SELECT batch_id FROM batches WHERE sent_at >= ? AND sent_at < ?", [end - timedelta(days=7), end]
    )["batch_id"]
    if batches.empty:
        return
    table, curve = analytics.time_to_final(store, batches)
    out.heading(_t("recent_times", out.lang))
    overall = table[table["group"] == "all"]
    counts = {
        k: i18n.number(overall[c].iloc[0], out.lang)
        for k, c in (("usable", "usable"), ("in_flight", "in_flight"), ("sparse", "too_sparse"))
    }
    out.paragraph(_t("times_note", out.lang).format(**counts))
    out.figure("time_to_final", charts.time_to_final_curves(curve, out.lang))
    out.table("time_to_final", table.rename(columns={"group": "operator"}))


SUMMARY_COLUMNS = (
    "campaign",
    "name",
    "line",
    "first_send",
    "recipients",
    "known",
    "delivered_rate",
    "rate_low",
    "rate_high",
    "replies",
    "opt_outs",
    "cost_per_delivered",
    "share_unknown",
)


def _page(out: _Writer, lang: str, calendar: str, since, until) -> str:
    generated = i18n.when(datetime.now(TEHRAN), lang, "jalali" if lang == "fa" else calendar)
    start = i18n.when(since, lang, calendar) if since else _t("start", lang)
    end = i18n.when(until, lang, calendar) if until else _t("end", lang)
    scope = f"{_t('window', lang)} {bdi(start)} {_t('to', lang)} {bdi(end)}"
    direction = "rtl" if lang == "fa" else "ltr"
    return f"""<!DOCTYPE html>
<html lang="{lang}" dir="{direction}">
<head><meta charset="utf-8"><title>{html.escape(_t("title", lang))}</title>
<style>
body {{ font-family: "Vazirmatn", "DejaVu Sans", sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
img {{ max-width: 100%; }}
.table {{ overflow-x: auto; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ padding: 0.3rem 0.6rem; border-bottom: 1px solid #ddd; text-align: start; white-space: nowrap; }}
blockquote {{ white-space: pre-wrap; background: #f5f5f5; padding: 0.6rem; }}
.unknown {{ background: #fff6d5; padding: 0.5rem; border-inline-start: 4px solid #E69F00; }}
</style></head>
<body>
<h1>{html.escape(_t("title", lang))}</h1>
<p>{html.escape(_t("generated", lang))} {bdi(generated)} · {scope}</p>
<p>{html.escape(_t("note", lang))}</p>
{"".join(out.parts)}
</body></html>
"""
