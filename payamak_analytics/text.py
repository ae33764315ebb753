"""How an SMS text travels: its encoding, how many parts it takes, what it costs.

A single Persian letter turns a whole text from GSM-7 (160 characters a part) into UCS-2
(70 a part), which is the most common way a campaign silently costs twice what was planned.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the GSM-7 extension table: each costs two septets (an escape and itself).
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class TextInfo:
    """What a text will cost on the wire."""

    characters: int
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int
    per_part: int  # how many units fit in one part at this length

    @property
    def lang(self) -> str:
        """The panel's language for this text: "FA" for UCS-2, "EN" for GSM-7."""
        return "FA" if self.encoding == "UCS-2" else "EN"


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text)


def analyze(text: str) -> TextInfo:
    """Encoding and part count of `text`, as the telecom counts them.

    Zero-width non-joiners (common in Persian) count as a character like any other.
    """
    if is_gsm7(text):
        costs = [2 if ch in GSM7_EXTENDED else 1 for ch in text]
        single, multi, encoding = GSM7_SINGLE, GSM7_MULTI, "GSM-7"
    else:
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]  # UTF-16 code units
        single, multi, encoding = UCS2_SINGLE, UCS2_MULTI, "UCS-2"
    units = sum(costs)
    parts = 1 if units <= single else _parts(costs, multi)
    return TextInfo(len(text), encoding, units, parts, single if parts == 1 else multi)


def _parts(costs: list[int], per_part: int) -> int:
    """Parts of a long text whose characters take `costs` units: a character is never split between
    two parts (a GSM escape stays with its letter, a surrogate pair with its other half), so a part
    that cannot take the next character whole ends one unit short."""
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return parts


def estimate_cost(text: str, recipients: int, *, tariff: Decimal | float = 1) -> Decimal:
    """Credit a send will take: parts x recipients x the account's tariff per part."""
    return Decimal(analyze(text).parts * recipients) * Decimal(str(tariff))
