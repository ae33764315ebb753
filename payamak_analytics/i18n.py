"""Everything a person reads, in English and Persian: labels, numbers, rates, dates.

Input in Persian (۰۱۲) or Arabic-Indic (٠١٢) digits is read as Latin digits everywhere; Persian
output uses Persian digits with the Persian thousands separator (٬) and decimal separator (٫).
Charts, the HTML report, widgets, notebooks and the command line take their words from LABELS,
so a column never reaches a reader under its snake_case name, and Persian words keep their
half-spaces (U+200C) in one place.
"""

from __future__ import annotations

import html
import math
import re
import sys
from datetime import date, datetime
from typing import TYPE_CHECKING

import jdatetime

from .estimates import wilson

if TYPE_CHECKING:
    import pandas as pd

_LATIN = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_PERSIAN = str.maketrans({**{str(d): "۰۱۲۳۴۵۶۷۸۹"[d] for d in range(10)}, ",": "٬", ".": "٫", "%": "٪"})
_PERSIAN_LETTERS = re.compile(r"[\u0600-\u06FF\uFB50-\uFDFF\uFE70-\uFEFF]")
ZWNJ = "\u200c"  # the Persian half-space: "ارسال‌ها", not "ارسال ها"
LANGS = ("en", "fa")

# key -> (English, Persian). Column names of every frame a person sees are keys here.
LABELS = {
    # outcomes
    "delivered": ("Delivered", "تحویل‌شده"),
    "undelivered": ("Not delivered to handset", "نرسیده به گوشی"),
    "telecom_failed": ("Failed at the telecom", "خطای مخابرات"),
    "blocked": ("Blocked by recipient", "مسدود توسط گیرنده"),
    "not_sent": ("Not sent or cancelled", "ارسال‌نشده یا لغوشده"),
    "unknown": ("Unknown status", "وضعیت نامشخص"),
    "in_flight": ("Still in flight", "در حال ارسال"),
    "delivery_unknown": ("Unknown (no final status after 72 h)", "نامعلوم (بدون وضعیت نهایی پس از ۷۲ ساعت)"),
    "expired": ("Unknown (report expired)", "نامعلوم (گزارش منقضی‌شده)"),
    # report columns
    "recipients": ("Recipients", "گیرندگان"),
    "outcome": ("Outcome", "نتیجه"),
    "known": ("Outcome known", "نتیجهٔ معلوم"),
    "unknown_total": ("Outcome unknown", "نتیجهٔ نامعلوم"),
    "delivered_rate": ("Delivered (of known)", "تحویل‌شده (از معلوم‌ها)"),
    "share_unknown": ("Share unknown", "سهم نامعلوم"),
    "day": ("Day", "روز"),
    "week": ("Week from", "هفته از"),
    "month": ("Month", "ماه"),
    "line": ("Line", "خط"),
    "operator": ("Operator", "اپراتور"),
    "parts": ("Parts", "تعداد بخش"),
    "encoding": ("Encoding", "کدگذاری"),
    "flash": ("Flash", "فلش"),
    "hour": ("Send hour", "ساعت ارسال"),
    "campaign": ("Campaign", "کمپین"),
    "name": ("Campaign", "کمپین"),
    "first_send": ("First send", "نخستین ارسال"),
    "last_send": ("Last send", "آخرین ارسال"),
    "batches": ("Batches", "دسته‌ها"),
    "replies": ("Replies", "پاسخ‌ها"),
    "opt_outs": ("Opt-outs", "لغو عضویت‌ها"),
    "credit_spent": ("Credit spent (SMS credits)", "اعتبار مصرف‌شده (اعتبار پیامک)"),
    "cost_per_delivered": ("Cost per delivered (SMS credits)", "هزینهٔ هر تحویل (اعتبار پیامک)"),
    "stage": ("Stage", "مرحله"),
    "status": ("Status code", "کد وضعیت"),
    "meaning": ("Meaning", "معنا"),
    "share": ("Share", "سهم"),
    "statistic": ("Statistic", "شاخص"),
    "group": ("Operator", "اپراتور"),
    "too_sparse": (
        "Left out: first read over 30 min after the send",
        "کنار گذاشته: نخستین خوانش بیش از ۳۰ دقیقه پس از ارسال",
    ),
    "minutes": ("Minutes", "دقیقه"),
    "minutes_low": ("Lower bound (min)", "کران پایین (دقیقه)"),
    "minutes_high": ("Upper bound (min)", "کران بالا (دقیقه)"),
    "usable": ("Recipients with a usable time", "گیرندگان با زمان قابل‌استفاده"),
    "campaign_rate": ("Campaign: delivered (of known)", "کمپین: تحویل‌شده (از معلوم‌ها)"),
    "baseline_rate": ("Account baseline: delivered (of known)", "میانگین حساب: تحویل‌شده (از معلوم‌ها)"),
    "difference": ("Difference", "تفاوت"),
    "campaign_known": ("Campaign: outcome known", "کمپین: نتیجهٔ معلوم"),
    "baseline_known": ("Account baseline: outcome known", "میانگین حساب: نتیجهٔ معلوم"),
    "verdict": ("Against the baseline", "در برابر میانگین"),
    "message_id": ("Message id", "شناسهٔ پیام"),
    "action_datetime": ("Time", "زمان"),
    "sender": ("From", "فرستنده"),
    "receiver": ("To", "گیرنده"),
    "count": ("Recipients", "گیرندگان"),
    "sent": ("Sent", "ارسال‌شده"),
    "pages": ("Parts", "تعداد بخش"),
    "content": ("Text", "متن"),
    "text": ("Text", "متن"),
    # funnel stages
    "stage_recipients": ("Recipients", "گیرندگان"),
    "stage_known": ("Outcome known", "نتیجهٔ معلوم"),
    "stage_accepted": ("Accepted by the panel", "پذیرفته در سامانه"),
    "stage_reached": ("Reached the telecom", "رسیده به مخابرات"),
    "stage_delivered": ("Delivered", "تحویل‌شده"),
    # statistics
    "median": ("Median", "میانه"),
    "p90": ("90th percentile", "صدک ۹۰"),
    "larger": ("higher than the baseline", "بالاتر از میانگین"),
    "smaller": ("lower than the baseline", "پایین‌تر از میانگین"),
    "same": ("no clear difference", "تفاوت روشنی نیست"),
    "too_small": ("too few to judge", "برای داوری کم است"),
    "of": ("of", "از"),
    "n": ("n", "تعداد"),
    "UCS-2": ("UCS-2 (Unicode)", "یونیکد"),
    "GSM-7": ("GSM-7 (Latin)", "لاتین"),
    "none": ("–", "–"),
    "yes": ("yes", "بله"),
    "no": ("no", "خیر"),
}

# The operator keys the toolkit stores (libphonenumber's carriers, under their common names).
OPERATORS = {
    "MCI": ("MCI (Hamrah-e Aval)", "همراه اول"),
    "Irancell": ("Irancell", "ایرانسل"),
    "Rightel": ("Rightel", "رایتل"),
    "TeleKish": ("TeleKish", "تله‌کیش"),
    "MTCE": ("MTCE (Espadan)", "اسپادان"),
    "Aptel": ("Aptel", "آپتل"),
    "Shatel Mobile": ("Shatel Mobile", "شاتل موبایل"),
    "Samantel": ("Samantel", "سامانتل"),
    "Azartel": ("Azartel", "آذرتل"),
    "Unknown": ("Unknown operator", "اپراتور نامعلوم"),
    "all": ("All recipients", "همهٔ گیرندگان"),
}


def latin_digits(text: str) -> str:
    """`text` with Persian and Arabic-Indic digits turned into 0-9."""
    return text.translate(_LATIN)


def persian_digits(text: str) -> str:
    """`text` written for a Persian reader: Persian digits, ٬ for thousands, ٫ for decimals, ٪."""
    return str(text).translate(_PERSIAN)


def digits(text, lang: str) -> str:
    """Persian digits when lang is "fa", the text as it is otherwise."""
    return persian_digits(text) if lang == "fa" else str(text)


def label(key: str, lang: str) -> str:
    """The reader's word for `key`; an unlisted key still reads as words, never as snake_case."""
    if key in LABELS:
        return LABELS[key][lang == "fa"]
    if key in OPERATORS:
        return OPERATORS[key][lang == "fa"]
    return str(key).replace("_", " ").strip().capitalize()


def operator_name(key: str, lang: str) -> str:
    return OPERATORS.get(key, (key, key))[lang == "fa"]


def is_persian(text: str) -> bool:
    return bool(_PERSIAN_LETTERS.search(str(text)))


def _missing(value) -> bool:
    # pandas' NA exists only in a process that imported pandas (`payamak sync` does not)
    pandas = sys.modules.get("pandas")
    return (
        value is None or (pandas is not None and value is pandas.NA) or (isinstance(value, float) and math.isnan(value))
    )


def number(value, lang: str = "en", decimals: int = 0) -> str:
    """1234567.8 as "1,234,568" (or "۱٬۲۳۴٬۵۶۸"); a missing value as a dash."""
    if _missing(value):
        return "–"
    return digits(f"{float(value):,.{decimals}f}", lang)


def percent(value, lang: str = "en", decimals: int = 1) -> str:
    """0.8957 as "89.6%" (or "۸۹٫۶٪"); a missing value as a dash."""
    if _missing(value):
        return "–"
    return digits(f"{float(value):.{decimals}%}", lang)


def rate_text(rate, low, high, n, lang: str = "en") -> str:
    """A rate with its 95% interval and its count: "89.6% (88.1–91.0) of 1,234"."""
    if _missing(rate) or not n:
        return f"– ({label('of', lang)} {number(n or 0, lang)})"
    interval = f"{digits(f'{low * 100:.1f}', lang)}–{digits(f'{high * 100:.1f}', lang)}"
    return f"{percent(rate, lang)} ({interval}) {label('of', lang)} {number(n, lang)}"


def jalali(moment: date | datetime, *, with_time: bool = False) -> str:
    """The Jalali date (and time) of a Gregorian date or datetime, as 1404-09-04 14:05."""
    if isinstance(moment, datetime):
        j = jdatetime.datetime.fromgregorian(datetime=moment)
        return j.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
    return jdatetime.date.fromgregorian(date=moment).strftime("%Y-%m-%d")


def when(moment, lang: str, calendar: str = "jalali", *, with_time: bool = True) -> str:
    """A datetime as the reader writes it: Jalali (or Gregorian) with Persian digits in Persian."""
    import pandas as pd

    if _missing(moment) or moment is pd.NaT:
        return "–"
    moment = pd.Timestamp(moment).to_pydatetime()
    text = (
        jalali(moment, with_time=with_time)
        if calendar == "jalali"
        else moment.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
    )
    return digits(text, lang)


def bdi(text) -> str:
    """Escaped text isolated from its neighbours' direction (a Persian quote in English, a Latin name in Persian)."""
    return f"<bdi>{html.escape(str(text))}</bdi>"


def unknown_note(recipients: int, expired: int, pending: int, lang: str = "en", untold: int = 0) -> str:
    """The one line every view shows: how many outcomes are unknown, why, and what to do;
    `untold`: recipients whose status says nothing of delivery (the "unknown" outcome)."""
    unknown = expired + pending + untold
    if not recipients:
        return ""
    if not unknown:
        return "Every recipient's outcome is known." if lang == "en" else "نتیجهٔ همهٔ گیرندگان معلوم است."
    n, share, total = number(unknown, lang), percent(unknown / recipients, lang), number(recipients, lang)
    if lang == "fa":
        reasons = (
            [f"گزارش {number(expired, lang)} گیرنده پیش از خوانده‌شدن منقضی شد (سرویس گزارش‌ها را ۷ روز نگه می‌دارد)"]
            if expired
            else []
        )
        reasons += [f"{number(pending, lang)} گیرنده هنوز وضعیت نهایی ندارند"] if pending else []
        reasons += [f"وضعیت {number(untold, lang)} گیرنده از تحویل چیزی نمی‌گوید (نامشخص)"] if untold else []
        advice = " دست‌کم روزی یک بار همگام‌سازی کنید." if expired else ""
        return f"نتیجهٔ {n} از {total} گیرنده ({share}) نامعلوم است: {' و '.join(reasons)}. این‌ها در هیچ نرخی شمرده نمی‌شوند.{advice}"
    reasons = (
        [f"{number(expired, lang)} reports expired before a sync read them (the service keeps reports for 7 days)"]
        if expired
        else []
    )
    reasons += [f"{number(pending, lang)} have no final status yet"] if pending else []
    reasons += [f"{number(untold, lang)} have a status that says nothing of delivery (unknown)"] if untold else []
    advice = " Sync at least daily to know them." if expired else ""
    return (
        f"{n} of {total} recipients ({share}) have no known outcome: {' and '.join(reasons)}. They are left out of "
        f"every rate, not counted as failures.{advice}"
    )


def campaign_line(recipients: int, known: int, delivered: int, opt_outs: int, lang: str = "en") -> str:
    """A campaign in one line; a campaign whose outcome is mostly unknown says exactly that."""
    low, high = (float(v) for v in wilson(delivered, known))
    rate = rate_text(delivered / known if known else None, low, high, known, lang)
    total, k = number(recipients, lang), number(known, lang)
    if lang == "fa":
        if not known:
            return f"{total} گیرنده · نتیجهٔ هیچ‌کدام معلوم نیست (گزارش‌ها پیش از همگام‌سازی منقضی شدند)"
        mostly = " · نتیجهٔ بیشتر گیرندگان نامعلوم است" if known < recipients / 2 else ""
        return f"{total} گیرنده · نتیجهٔ {k} معلوم · تحویل‌شده: {rate} · {number(opt_outs, lang)} لغو عضویت{mostly}"
    if not known:
        return f"{total} recipients · outcome unknown for all of them (their reports expired before a sync read them)"
    mostly = f" · outcome unknown for most ({number(recipients - known, lang)})" if known < recipients / 2 else ""
    return f"{total} recipients · {k} known · delivered {rate} · {number(opt_outs, lang)} opt-outs{mostly}"


# Columns that only serve the ones shown beside them (an interval's ends, a flag), never shown alone.
_HIDDEN = {
    "enough",
    "tagged",
    "rate_low",
    "rate_high",
    "campaign_low",
    "campaign_high",
    "baseline_low",
    "baseline_high",
    "difference_low",
    "difference_high",
    "campaign_delivered",
    "baseline_delivered",
    "meaning_en",
    "meaning_fa",
    "name_en",
}
_SHARES = {"share", "share_unknown"}
_DECIMALS = {"cost_per_delivered": 2, "minutes": 1, "minutes_low": 1, "minutes_high": 1}


def _cell(frame: pd.DataFrame, column: str, lang: str, calendar: str) -> list[str]:
    """One column of `frame` as the reader reads it."""
    import pandas as pd

    values = frame[column]
    if column == "delivered_rate":
        return [
            rate_text(r, lo, hi, n, lang)
            for r, lo, hi, n in zip(values, frame["rate_low"], frame["rate_high"], frame["known"])
        ]
    if column in ("campaign_rate", "baseline_rate"):
        who = column.split("_")[0]
        return [
            rate_text(r, lo, hi, n, lang)
            for r, lo, hi, n in zip(values, frame[f"{who}_low"], frame[f"{who}_high"], frame[f"{who}_known"])
        ]
    if column == "difference":
        return [
            "–"
            if _missing(d)
            else digits(f"{d * 100:+.1f} ({lo * 100:+.1f} … {hi * 100:+.1f})", lang)
            + (" واحد درصد" if lang == "fa" else " pts")
            for d, lo, hi in zip(values, frame["difference_low"], frame["difference_high"])
        ]
    if column in ("verdict", "stage", "statistic"):
        return [label(f"stage_{v}" if column == "stage" else v, lang) for v in values]
    if column in ("operator", "group"):
        return [operator_name(v, lang) for v in values]
    if column in _SHARES:
        return [percent(v, lang) for v in values]
    if pd.api.types.is_datetime64_any_dtype(values):
        return [when(v, lang, calendar) for v in values]
    if pd.api.types.is_bool_dtype(values):
        return [label("yes" if v else "no", lang) for v in values]
    if pd.api.types.is_numeric_dtype(values) and column not in ("status", "line", "hour", "message_id"):
        return [number(v, lang, _DECIMALS.get(column, 0)) for v in values]
    return [
        "–"
        if _missing(v)
        else digits(v, lang)
        if column in ("status", "line", "hour", "day", "week", "month", "parts", "name")
        else str(v)
        for v in values
    ]


def for_people(frame: pd.DataFrame, lang: str = "en", calendar: str = "jalali") -> pd.DataFrame:
    """`frame` as text a person reads: labelled columns, separators, one-decimal percentages,
    each rate with its interval and n, operators and stages named, dates in the calendar."""
    shown = [c for c in frame.columns if c not in _HIDDEN and not (c == "campaign" and "name" in frame.columns)]
    if "meaning_en" in frame.columns:
        frame = frame.assign(meaning=frame["meaning_fa" if lang == "fa" else "meaning_en"])
        shown.append("meaning")
    import pandas as pd

    return pd.DataFrame({label(c, lang): _cell(frame, c, lang, calendar) for c in shown}, index=frame.index)


def styled(frame: pd.DataFrame, lang: str = "en", calendar: str = "jalali"):
    """`for_people(frame)` as a pandas Styler for a notebook: no index, right to left in Persian."""
    direction = "rtl" if lang == "fa" else "ltr"
    return for_people(frame, lang, calendar).style.hide(axis="index").set_table_attributes(f'dir="{direction}"')
