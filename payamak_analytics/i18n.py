"""Digits and numbers as English and Persian readers write them.

Input in Persian (۰۱۲) or Arabic-Indic (٠١٢) digits is read as Latin digits everywhere; Persian
output uses Persian digits with the Persian thousands separator (٬) and decimal separator (٫).
"""

from __future__ import annotations

_LATIN = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_PERSIAN = str.maketrans({**{str(d): "۰۱۲۳۴۵۶۷۸۹"[d] for d in range(10)}, ",": "٬", ".": "٫", "%": "٪"})


def latin_digits(text: str) -> str:
    """`text` with Persian and Arabic-Indic digits turned into 0-9."""
    return text.translate(_LATIN)


def persian_digits(text: str) -> str:
    """`text` written for a Persian reader: Persian digits, ٬ for thousands, ٫ for decimals, ٪."""
    return str(text).translate(_PERSIAN)
