"""matplotlib figures of delivery reports and post-mortems, in English or Persian.

Every function returns a Figure (no pyplot state), readable at slide size, with one
colour-blind-safe colour per outcome everywhere. Rates are drawn over known outcomes only, with
their 95% interval and their count; groups too small to judge are drawn faded and say so;
unknown outcomes (an expired report, a status not final yet) are drawn apart, hatched, never as
a failure. matplotlib 3.11 shapes and orders Persian text itself, so Persian labels are passed as
they are; with lang="fa" the digits on the axes are Persian too. Words come from i18n.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from . import codes
from .analytics import MIN_KNOWN, CampaignPostmortem
from .i18n import digits, label, number, operator_name, percent

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
UNKNOWN_OUTCOMES = ("unknown", "in_flight", "delivery_unknown", "expired")
TITLES = {
    "outcomes": (
        "Recipients by outcome (known outcomes; unknown apart)",
        "گیرندگان بر اساس نتیجه (معلوم‌ها؛ نامعلوم جدا)",
    ),
    "rate": (
        "Delivered of known outcomes, 95% interval; bars: recipients with a known outcome",
        "تحویل‌شده از نتیجه‌های معلوم، بازهٔ ۹۵٪؛ میله‌ها: گیرندگان با نتیجهٔ معلوم",
    ),
    "operators": (
        "Delivered of known outcomes by operator, 95% interval",
        "تحویل‌شده از نتیجه‌های معلوم به تفکیک اپراتور، بازهٔ ۹۵٪",
    ),
    "funnel": ("Campaign funnel", "قیف کمپین"),
    "cdf": ("Time to final status (interval-censored estimate)", "زمان تا وضعیت نهایی (برآورد با داده‌های بازه‌ای)"),
    "sparse": ("Polls too sparse to say: no line drawn.", "بررسی‌ها برای برآورد بسیار پراکنده‌اند: منحنی‌ای رسم نشد."),
    "baseline": (
        "Delivered of known: campaign and the account's own baseline (95% intervals)",
        "تحویل‌شده از معلوم‌ها: کمپین و میانگین خود حساب (بازه‌های ۹۵٪)",
    ),
    "share_final": ("Share with a final status", "سهم با وضعیت نهایی"),
    "minutes_after": ("Minutes after the send", "دقیقه پس از ارسال"),
    "account": ("Account baseline", "میانگین حساب"),
}


def title(key: str, lang: str) -> str:
    return TITLES[key][lang == "fa"]


def _figure(height: float = 6) -> Figure:
    figure = Figure(figsize=(11, height), layout="constrained")
    figure.set_dpi(110)
    return figure


def _style(axes, lang: str, *, percent_y=False, percent_x=False, numeric_x=False, numeric_y=False) -> None:
    """Readable ticks; percentages where asked; Persian digits on numeric axes when lang is "fa"."""
    axes.tick_params(labelsize=11)
    for axis, as_percent, numeric in ((axes.yaxis, percent_y, numeric_y), (axes.xaxis, percent_x, numeric_x)):
        if as_percent:
            axis.set_major_formatter(FuncFormatter(lambda value, _: percent(value, lang, 0)))
        elif numeric:
            axis.set_major_locator(MaxNLocator(nbins=8, integer=True))
            axis.set_major_formatter(FuncFormatter(lambda value, _: number(value, lang)))
    axes.spines[["top", "right"]].set_visible(False)


def rate_label(rate, low, high, n, lang: str) -> str:
    """A bar's label: rate, interval and n, or "too few to judge" with its n."""
    if n < MIN_KNOWN:
        return f"{label('too_small', lang)} ({label('n', lang)} = {number(n, lang)})"
    return f"{percent(rate, lang)} ({digits(f'{low * 100:.1f}–{high * 100:.1f}', lang)}) · {label('n', lang)} = {number(n, lang)}"


def outcome_distribution(report: pd.DataFrame, lang: str = "en") -> Figure:
    """Recipients per outcome, summed over the rows of a delivery_report: known outcomes with
    their share of the known, then the unknown ones apart, hatched, with their share of all."""
    totals = report[list(codes.OUTCOMES)].sum()
    known = totals[list(codes.FINAL_OUTCOMES)]
    known = known[known > 0]
    unknown = totals[list(UNKNOWN_OUTCOMES)]
    unknown = unknown[unknown > 0]
    figure = _figure()
    axes = figure.subplots()
    names = [label(o, lang) for o in known.index] + [label(o, lang) for o in unknown.index]
    values = list(known.values) + list(unknown.values)
    bars = axes.barh(names, values, color=[OUTCOME_COLOURS[o] for o in list(known.index) + list(unknown.index)])
    for bar in list(bars)[len(known) :]:
        bar.set_hatch("//")
        bar.set_alpha(0.45)
    axes.invert_yaxis()
    texts = [
        f"{number(c, lang)} ({percent(c / known.sum(), lang)} {label('of', lang)} {label('known', lang)})"
        for c in known.values
    ]
    texts += [
        f"{number(c, lang)} ({percent(c / totals.sum(), lang)} {label('of', lang)} {label('recipients', lang)})"
        for c in unknown.values
    ]
    for y, (count, text) in enumerate(zip(values, texts, strict=True)):
        axes.annotate(text, (count, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=10)
    axes.set_title(title("outcomes", lang), fontsize=15)
    axes.set_xlabel(label("recipients", lang), fontsize=12)
    axes.margins(x=0.35)
    _style(axes, lang, numeric_x=True)
    return figure


def delivery_rate_over_time(report: pd.DataFrame, period: str = "day", lang: str = "en") -> Figure:
    """The delivered rate over known outcomes per period, with its 95% band; light bars behind it
    count the known outcomes (the n of every point); periods with too few known are faded."""
    figure = _figure()
    axes = figure.subplots()
    positions = np.arange(len(report))
    counts = axes.twinx()
    counts.bar(positions, report["known"], color="#bbbbbb", alpha=0.35, width=0.8)
    counts.set_ylabel(label("known", lang), fontsize=11, color="#777777")
    _style(counts, lang, numeric_y=True)
    axes.set_zorder(counts.get_zorder() + 1)
    axes.patch.set_visible(False)
    enough = report["known"] >= MIN_KNOWN
    axes.fill_between(
        positions,
        report["rate_low"].where(enough),
        report["rate_high"].where(enough),
        color=OUTCOME_COLOURS["delivered"],
        alpha=0.2,
    )
    axes.plot(
        positions,
        report["delivered_rate"].where(enough),
        marker="o",
        color=OUTCOME_COLOURS["delivered"],
        linewidth=2,
        label=label("delivered_rate", lang),
    )
    axes.errorbar(
        positions[~enough],
        report["delivered_rate"][~enough],
        yerr=_errors(report[~enough]),
        fmt="o",
        color=OUTCOME_COLOURS["delivered"],
        alpha=0.3,
        label=label("too_small", lang),
    )
    axes.set_ylim(0, 1.05)
    axes.set_title(title("rate", lang), fontsize=13)
    axes.legend(fontsize=10, loc="lower left")
    step = max(int(np.ceil(len(report) / 12)), 1)
    axes.set_xticks(
        positions[::step], [digits(p, lang) for p in report[period].astype(str)][::step], rotation=30, ha="right"
    )
    axes.set_xlabel(label(period, lang), fontsize=12)
    _style(axes, lang, percent_y=True)
    return figure


def _errors(frame: pd.DataFrame) -> np.ndarray:
    rate = frame["delivered_rate"].to_numpy(dtype=float)
    return np.nan_to_num(
        np.vstack([rate - frame["rate_low"].to_numpy(dtype=float), frame["rate_high"].to_numpy(dtype=float) - rate])
    )


def operator_outcomes(report: pd.DataFrame, lang: str = "en") -> Figure:
    """Delivered of known per operator (largest first), with intervals, n and the unknown count."""
    report = report.sort_values("recipients", ascending=False, ignore_index=True)
    figure = _figure(max(3.0, 0.7 * len(report) + 1.5))
    axes = figure.subplots()
    names = [operator_name(o, lang) for o in report["operator"]]
    enough = report["known"] >= MIN_KNOWN
    rates = report["delivered_rate"].fillna(0)
    bars = axes.barh(
        names, rates, xerr=_errors(report), color=OUTCOME_COLOURS["delivered"], ecolor="#333333", capsize=4
    )
    for bar, ok in zip(bars, enough, strict=True):
        bar.set_alpha(1.0 if ok else 0.3)
    axes.invert_yaxis()
    for y, row in enumerate(report.itertuples()):
        unknown = f" · {number(row.unknown_total, lang)} {label('unknown_total', lang)}" if row.unknown_total else ""
        axes.annotate(
            rate_label(row.delivered_rate, row.rate_low, row.rate_high, row.known, lang) + unknown,
            (1.0, y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=10,
            annotation_clip=False,
        )
    axes.set_xlim(0, 1)
    axes.set_title(title("operators", lang), fontsize=14)
    axes.set_xlabel(label("delivered_rate", lang), fontsize=12)
    _style(axes, lang, percent_x=True)
    return figure


def campaign_funnel(postmortem: CampaignPostmortem, lang: str = "en") -> Figure:
    funnel = postmortem.funnel
    names = [label(f"stage_{s}", lang) for s in funnel["stage"]]
    figure = _figure(4.5)
    axes = figure.subplots()
    axes.barh(names, funnel["recipients"], color=["#999999", "#56B4E9", "#0072B2", "#E69F00", "#009E73"])
    axes.invert_yaxis()
    known = max(postmortem.known, 1)
    for y, (stage, count) in enumerate(zip(funnel["stage"], funnel["recipients"], strict=True)):
        share = (
            ""
            if stage == "recipients"
            else f" ({percent(count / (funnel['recipients'].iloc[0] if stage == 'known' else known), lang)})"
        )
        axes.annotate(
            number(count, lang) + share, (count, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=11
        )
    axes.set_title(title("funnel", lang), fontsize=15)
    axes.margins(x=0.2)
    _style(axes, lang, numeric_x=True)
    return figure


def time_to_final_cdf(postmortem: CampaignPostmortem, lang: str = "en") -> Figure:
    """The post-mortem's time to final (see time_to_final_curves)."""
    return time_to_final_curves(postmortem.time_to_final_cdf, lang)


def time_to_final_curves(curves: pd.DataFrame, lang: str = "en") -> Figure:
    """The estimated share with a final status by minute after the send, overall and per operator
    large enough; where polls were too sparse, a sentence instead of a line."""
    figure = _figure(5)
    axes = figure.subplots()
    if curves.empty:
        axes.text(0.5, 0.5, title("sparse", lang), ha="center", va="center", fontsize=14, transform=axes.transAxes)
        axes.set_axis_off()
    for group, curve in curves.groupby("group", sort=False):
        name = label("recipients", lang) if group == "all" else operator_name(group, lang)
        axes.plot(curve["minutes"], curve["share"], linewidth=3 if group == "all" else 1.3, label=name)
    if not curves.empty:
        axes.set_ylim(0, 1.02)
        axes.set_xlabel(title("minutes_after", lang), fontsize=12)
        axes.set_ylabel(title("share_final", lang), fontsize=12)
        axes.legend(fontsize=10)
        _style(axes, lang, percent_y=True, numeric_x=True)
    axes.set_title(title("cdf", lang), fontsize=14)
    return figure


def campaign_vs_baseline(postmortem: CampaignPostmortem, lang: str = "en") -> Figure:
    """Per operator (largest first): the campaign's and the account's rates with intervals and n;
    a difference is named only where its interval excludes zero."""
    table = postmortem.baseline
    figure = _figure()
    axes = figure.subplots()
    positions = np.arange(len(table))
    for shift, who, colour in ((-0.2, "campaign", OUTCOME_COLOURS["delivered"]), (0.2, "baseline", "#777777")):
        rate, n = table[f"{who}_rate"], table[f"{who}_known"]
        errors = np.nan_to_num(np.vstack([rate - table[f"{who}_low"], table[f"{who}_high"] - rate]))
        bars = axes.bar(
            positions + shift,
            rate.fillna(0),
            width=0.4,
            yerr=errors,
            capsize=3,
            color=colour,
            label=label("campaign", lang) if who == "campaign" else title("account", lang),
        )
        for bar, count in zip(bars, n, strict=True):
            bar.set_alpha(1.0 if count >= MIN_KNOWN else 0.3)
            axes.annotate(
                f"{label('n', lang)} = {number(count, lang)}",
                (bar.get_x() + bar.get_width() / 2, 0.02),
                ha="center",
                fontsize=8,
                rotation=90,
                color="white" if count >= MIN_KNOWN else "#333333",
            )
    ticks = [
        f"{operator_name(o, lang)}\n{label(v, lang)}" for o, v in zip(table["operator"], table["verdict"], strict=True)
    ]
    axes.set_xticks(list(positions), ticks, fontsize=9)
    axes.set_ylim(0, 1.1)
    axes.set_title(title("baseline", lang), fontsize=13)
    axes.legend(fontsize=11, loc="lower right")
    _style(axes, lang, percent_y=True)
    return figure
