"""One self-contained HTML report (charts embedded), with its PNGs and CSVs beside it."""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from . import analytics, charts
from .dates import TEHRAN
from .store import Store

TEXT = {
    "title": ("SMS delivery report", "گزارش تحویل پیامک"),
    "generated": ("Generated", "تهیه شده در"),
    "window": ("Sends from", "ارسال ها از"),
    "to": ("to", "تا"),
    "overall": ("All recipients", "همه گیرندگان"),
    "months": ("By month", "به تفکیک ماه"),
    "operators": ("By operator", "به تفکیک اپراتور"),
    "lines": ("By line", "به تفکیک خط"),
    "campaign": ("Campaign post-mortem", "کالبدشکافی کمپین"),
    "reasons": ("Failure reasons", "دلایل ناموفق بودن"),
    "cost": ("Cost", "هزینه"),
    "replies": ("Replies and opt-outs", "پاسخ ها و لغو عضویت"),
    "note": (
        "Rates: delivered / final counts recipients with a final status; delivered / all counts everyone. "
        "Times to final are upper bounds (the first poll that saw the status).",
        "نرخ ها: تحویل از نهایی فقط گیرندگان با وضعیت نهایی را می شمارد و تحویل از همه، همه را. "
        "زمان تا وضعیت نهایی حد بالاست (نخستین بررسی که آن را دید).",
    ),
}


def _t(key: str, lang: str) -> str:
    en, fa = TEXT[key]
    return fa if lang == "fa" else en


class _Writer:
    """Collects the HTML body and writes each chart and table beside it as PNG and CSV."""

    def __init__(self, folder: Path, lang: str):
        self.folder, self.lang, self.parts = folder, lang, []

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def figure(self, name: str, figure: Figure) -> None:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        (self.folder / f"{name}.png").write_bytes(buffer.getvalue())
        encoded = base64.b64encode(buffer.getvalue()).decode()
        self.parts.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{encoded}">')

    def table(self, name: str, frame: pd.DataFrame) -> None:
        frame.to_csv(self.folder / f"{name}.csv", index=False)
        shown = frame.copy()
        for column in shown.columns:
            if str(column).startswith("delivered_of") or column in ("share", "campaign_rate", "baseline_rate"):
                shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
        if self.lang == "fa":
            shown = shown.rename(columns=lambda c: charts.column_label(str(c), "fa"))
        table = shown.to_html(index=False, border=0, na_rep="")
        table = charts.digits(table, "fa") if self.lang == "fa" else table
        self.parts.append(f'<div class="table">{table}</div>')


def write_report(
    store: Store,
    folder: str | Path = "reports",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    campaign: str | None = None,
    lang: str = "en",
    calendar: str = "jalali",
) -> Path:
    """Write report.html (self-contained), with its charts as PNG and tables as CSV beside it.

    Without `campaign`, the newest campaign in the window gets a post-mortem section.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = _Writer(folder, lang)
    window = {"since": since, "until": until}
    overall = analytics.delivery_report(store, by=[], **window)
    by_month = analytics.delivery_report(store, by=["month"], calendar=calendar, **window)
    by_operator = analytics.delivery_report(store, by=["operator"], **window)
    by_line = analytics.delivery_report(store, by=["line"], **window)
    out.heading(_t("overall", lang))
    out.figure("outcomes", charts.outcome_distribution(overall, lang))
    out.table("overall", overall)
    out.heading(_t("months", lang))
    out.figure("delivery_rate_by_month", charts.delivery_rate_over_time(by_month, "month", lang))
    out.table("by_month", by_month)
    out.heading(_t("operators", lang))
    out.figure("outcomes_by_operator", charts.operator_outcomes(by_operator, lang))
    out.table("by_operator", by_operator)
    out.heading(_t("lines", lang))
    out.table("by_line", by_line)

    if campaign is None:
        listed = analytics.campaigns(store)
        if since is not None:
            listed = listed[listed["first_send"] >= pd.Timestamp(since)]
        campaign = listed["campaign"].iloc[0] if len(listed) else None
    if campaign is not None:
        postmortem = analytics.campaign_postmortem(store, campaign)
        out.heading(f"{_t('campaign', lang)}: {campaign}")
        header = postmortem.header
        out.paragraph(
            f"{header['line']} · {header['batches']} batches · {header['recipients']:,} · "
            f"{header['parts']} × {header['encoding']} · {header['first_send']:%Y-%m-%d %H:%M}"
        )
        out.parts.append(f"<blockquote>{html.escape(header['text'])}</blockquote>")
        out.figure("campaign_funnel", charts.campaign_funnel(postmortem, lang))
        out.table("campaign_funnel", postmortem.funnel)
        out.heading(_t("reasons", lang), 3)
        out.table(
            "campaign_failure_reasons",
            postmortem.failure_reasons[
                ["status", "name", "meaning_fa" if lang == "fa" else "meaning_en", "recipients", "share"]
            ],
        )
        out.figure("campaign_time_to_final", charts.time_to_final_cdf(postmortem, lang))
        out.table("campaign_time_to_final", postmortem.time_to_final)
        out.figure("campaign_vs_baseline", charts.campaign_vs_baseline(postmortem, lang))
        out.table("campaign_vs_baseline", postmortem.baseline)
        out.heading(_t("cost", lang), 3)
        out.table("campaign_cost", pd.DataFrame([postmortem.cost]))
        out.heading(_t("replies", lang), 3)
        out.paragraph(charts.digits(f"{len(postmortem.replies):,} / {postmortem.opt_outs:,}", lang))
        postmortem.to_csv(folder / "campaign_postmortem.csv")

    generated = datetime.now(TEHRAN)
    scope = f"{_t('window', lang)} {since or '…'} {_t('to', lang)} {until or '…'}"
    direction = "rtl" if lang == "fa" else "ltr"
    page = f"""<!DOCTYPE html>
<html lang="{lang}" dir="{direction}">
<head><meta charset="utf-8"><title>{html.escape(_t("title", lang))}</title>
<style>
body {{ font-family: "Vazirmatn", "DejaVu Sans", sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
img {{ max-width: 100%; }}
.table {{ overflow-x: auto; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ padding: 0.3rem 0.6rem; border-bottom: 1px solid #ddd; text-align: start; }}
blockquote {{ white-space: pre-wrap; background: #f5f5f5; padding: 0.6rem; }}
</style></head>
<body>
<h1>{html.escape(_t("title", lang))}</h1>
<p>{html.escape(_t("generated", lang))} {charts.digits(f"{generated:%Y-%m-%d %H:%M}", lang)} · {html.escape(scope)}</p>
<p>{html.escape(_t("note", lang))}</p>
{"".join(out.parts)}
</body></html>
"""
    target = folder / "report.html"
    target.write_text(page, encoding="utf-8")
    return target
