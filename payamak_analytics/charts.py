"""matplotlib figures of delivery reports and post-mortems, in English or Persian.

Every function returns a Figure (no pyplot state), readable at slide size, with one
colour-blind-safe colour per outcome everywhere. matplotlib 3.11 shapes and orders Persian text
itself, so Persian labels are passed as they are; with lang="fa" the digits on the axes are
Persian too.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from . import codes
from .analytics import CampaignPostmortem
from .i18n import persian_digits

# Okabe-Ito: distinguishable with every common colour-vision deficiency.
OUTCOME_COLOURS = {
    "delivered": "#009E73",
    "undelivered": "#D55E00",
    "telecom_failed": "#E69F00",
    "blocked": "#CC79A7",
    "not_sent": "#000000",
    "unknown": "#F0E442",
    "in_flight": "#56B4E9",
    "delivery_unknown": "#0072B2",
    "expired": "#999999",
}
WORDS = {
    "outcomes": ("Recipients by outcome", "گیرندگان بر اساس نتیجه"),
    "rate": ("Delivery rate", "نرخ تحویل"),
    "operators": ("Outcomes by operator", "نتیجه به تفکیک اپراتور"),
    "funnel": ("Campaign funnel", "قیف کمپین"),
    "cdf": (
        "Time to final status (upper bound: the first poll that saw it)",
        "زمان تا وضعیت نهایی (حد بالا: نخستین بررسی که آن را دید)",
    ),
    "baseline": (
        "Delivered of final: campaign and the account's own baseline",
        "نرخ تحویل از نهایی: کمپین و میانگین خود حساب",
    ),
    "recipients": ("Recipients", "گیرندگان"),
    "share": ("Share of recipients", "سهم گیرندگان"),
    "minutes": ("Minutes after the send", "دقیقه پس از ارسال"),
    "delivered_of_final": ("Delivered / final", "تحویل شده از نهایی"),
    "delivered_of_all": ("Delivered / all", "تحویل شده از همه"),
    "final": ("Final", "نهایی"),
    "operator": ("Operator", "اپراتور"),
    "month": ("Month", "ماه"),
    "line": ("Line", "خط"),
    "campaign": ("Campaign", "کمپین"),
    "account": ("Account baseline", "میانگین حساب"),
    "recipients_stage": ("Recipients", "گیرندگان"),
    "status known": ("Status known", "وضعیت معلوم"),
    "accepted by the panel": ("Accepted by the panel", "پذیرفته در سامانه"),
    "reached the telecom": ("Reached the telecom", "رسیده به مخابرات"),
    "delivered": ("Delivered", "تحویل شده"),
}


def word(key: str, lang: str) -> str:
    en, fa = WORDS[key]
    return fa if lang == "fa" else en


def digits(text, lang: str) -> str:
    """Persian digits when lang is "fa"."""
    return persian_digits(text) if lang == "fa" else str(text)


def column_label(column: str, lang: str) -> str:
    """A report column's heading: outcomes and rates in the chosen language, others as they are."""
    if column in codes.OUTCOMES:
        return outcome_label(column, lang)
    if column in WORDS:
        return word(column, lang)
    return column


def outcome_label(outcome: str, lang: str) -> str:
    en, fa = codes.OUTCOMES[outcome]
    return fa if lang == "fa" else en


def _figure() -> Figure:
    figure = Figure(figsize=(11, 6), layout="constrained")
    figure.set_dpi(110)
    return figure


def _style(
    axes,
    lang: str,
    *,
    percent_y: bool = False,
    percent_x: bool = False,
    numeric_x: bool = False,
    numeric_y: bool = False,
) -> None:
    """Readable ticks; percentages where asked; Persian digits on numeric axes when lang is "fa"."""
    axes.tick_params(labelsize=12)
    for axis, percent, numeric in ((axes.yaxis, percent_y, numeric_y), (axes.xaxis, percent_x, numeric_x)):
        if percent:
            axis.set_major_formatter(FuncFormatter(lambda value, _: digits(f"{value:.0%}", lang)))
        elif numeric:
            axis.set_major_formatter(FuncFormatter(lambda value, _: digits(f"{value:,.0f}", lang)))
    axes.spines[["top", "right"]].set_visible(False)


def outcome_distribution(report: pd.DataFrame, lang: str = "en") -> Figure:
    """Recipients per outcome, summed over the rows of a delivery_report."""
    totals = report[[o for o in codes.OUTCOMES]].sum()
    totals = totals[totals > 0]
    figure = _figure()
    axes = figure.subplots()
    axes.barh(
        [outcome_label(o, lang) for o in totals.index], totals.values, color=[OUTCOME_COLOURS[o] for o in totals.index]
    )
    axes.invert_yaxis()
    share = totals / totals.sum()
    for y, (count, part) in enumerate(zip(totals.values, share.values, strict=True)):
        axes.annotate(
            digits(f"{count:,} ({part:.0%})", lang),
            (count, y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=11,
        )
    axes.set_title(word("outcomes", lang), fontsize=16)
    axes.set_xlabel(word("recipients", lang), fontsize=13)
    _style(axes, lang, numeric_x=True)
    return figure


def delivery_rate_over_time(report: pd.DataFrame, period: str = "day", lang: str = "en") -> Figure:
    """Both rates per period of a delivery_report grouped by that period (day, week or month)."""
    figure = _figure()
    axes = figure.subplots()
    labels = [digits(p, lang) for p in report[period]]
    for rate, colour in (("delivered_of_final", OUTCOME_COLOURS["delivered"]), ("delivered_of_all", "#0072B2")):
        axes.plot(labels, report[rate], marker="o", color=colour, label=word(rate, lang), linewidth=2)
    axes.set_ylim(0, 1)
    axes.set_title(word("rate", lang), fontsize=16)
    axes.legend(fontsize=12)
    if len(labels) > 12:
        axes.set_xticks(labels[:: max(len(labels) // 12, 1)])
    _style(axes, lang, percent_y=True)
    return figure


def operator_outcomes(report: pd.DataFrame, lang: str = "en") -> Figure:
    """Stacked shares of each outcome per operator (a delivery_report grouped by operator)."""
    present = [o for o in codes.OUTCOMES if report[o].sum() > 0]
    shares = report.set_index("operator")[present].div(report.set_index("operator")["recipients"], axis=0)
    figure = _figure()
    axes = figure.subplots()
    left = pd.Series(0.0, index=shares.index)
    for outcome in present:
        axes.barh(
            list(shares.index),
            shares[outcome],
            left=left,
            color=OUTCOME_COLOURS[outcome],
            label=outcome_label(outcome, lang),
        )
        left += shares[outcome]
    axes.set_title(word("operators", lang), fontsize=16)
    axes.set_xlabel(word("share", lang), fontsize=13)
    axes.legend(fontsize=10, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    _style(axes, lang, percent_x=True)
    return figure


def campaign_funnel(postmortem: CampaignPostmortem, lang: str = "en") -> Figure:
    funnel = postmortem.funnel
    names = [word("recipients_stage" if s == "recipients" else s, lang) for s in funnel["stage"]]
    figure = _figure()
    axes = figure.subplots()
    axes.barh(names, funnel["recipients"], color=["#999999", "#56B4E9", "#0072B2", "#E69F00", "#009E73"])
    axes.invert_yaxis()
    for y, count in enumerate(funnel["recipients"]):
        axes.annotate(
            digits(f"{count:,}", lang), (count, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=11
        )
    axes.set_title(f"{word('funnel', lang)}: {postmortem.campaign}", fontsize=16)
    _style(axes, lang, numeric_x=True)
    return figure


def time_to_final_cdf(postmortem: CampaignPostmortem, lang: str = "en") -> Figure:
    cdf = postmortem.time_to_final_cdf
    figure = _figure()
    axes = figure.subplots()
    axes.step(cdf["minutes"], cdf["share"], where="post", color=OUTCOME_COLOURS["delivery_unknown"], linewidth=2)
    axes.set_ylim(0, 1)
    axes.set_title(word("cdf", lang), fontsize=14)
    axes.set_xlabel(word("minutes", lang), fontsize=13)
    _style(axes, lang, percent_y=True, numeric_x=True)
    return figure


def campaign_vs_baseline(postmortem: CampaignPostmortem, lang: str = "en") -> Figure:
    table = postmortem.baseline
    figure = _figure()
    axes = figure.subplots()
    positions = range(len(table))
    axes.bar(
        [p - 0.2 for p in positions],
        table["campaign_rate"],
        width=0.4,
        color=OUTCOME_COLOURS["delivered"],
        label=word("campaign", lang),
    )
    axes.bar(
        [p + 0.2 for p in positions],
        table["baseline_rate"].fillna(0),
        width=0.4,
        color="#999999",
        label=word("account", lang),
    )
    axes.set_xticks(list(positions), list(table["operator"]))
    axes.set_ylim(0, 1)
    axes.set_title(word("baseline", lang), fontsize=14)
    axes.legend(fontsize=12)
    _style(axes, lang, percent_y=True)
    return figure
