"""The one reading of wire texts, and the canonical columns of messages and delivery reports.

Every value the service writes as text (a MessageInfo field, a result code, an out parameter)
goes through `wire_value`, so that the client's objects, its DataFrames and the store agree on
what a text means; a text that cannot be what the contract says raises AnswerError naming the
operation, the field and the value. `MESSAGE_DTYPES` / `DELIVERY_DTYPES` are the dtypes of the
frames, for whoever stores them and reads them back (`cast_messages`, `cast_deliveries`).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from ..codes import enum_name, enum_text
from ..dates import TEHRAN
from ..errors import AnswerError
from .safety import scrub

if TYPE_CHECKING:
    import pandas as pd

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}

# Wire name -> (column, kind), in the order of the frame's columns.
MESSAGE_FIELDS = {
    "MessageId": ("message_id", "int"),
    "ActionDateTime": ("action_datetime", "datetime"),
    "MessageType": ("message_type", "enum:SMSDirectionType"),
    "Sender": ("sender", "string"),
    "Receiver": ("receiver", "string"),
    "Content": ("content", "string"),
    "Pages": ("pages", "int"),
    "Lang": ("lang", "enum:SMSLang"),
    "Flash": ("flash", "bool"),
    "Count": ("count", "int"),
    "Sent": ("sent", "int"),
    "NotSent": ("not_sent", "int"),
    "Status": ("status", "enum:SMSStatus"),
    "SendStatus": ("send_status", "enum:SMSSendStatus"),
    "SendMethod": ("send_method", "enum:SMSSendMethod"),
    "Cost": ("cost", "decimal"),
    "Tariff": ("tariff", "decimal"),
    "Title": ("title", "string"),
    "Desc": ("desc", "string"),
    "IsRead": ("is_read", "bool"),
    "MoneyIsRefunded": ("money_is_refunded", "bool"),
    "UserId": ("user_id", "int"),
}
MESSAGE_COLUMNS = {wire: column for wire, (column, _) in MESSAGE_FIELDS.items()}
MESSAGE_KINDS = {column: kind for column, kind in MESSAGE_FIELDS.values()}
_DTYPE_OF_KIND = {
    "int": "Int64",
    "decimal": "Float64",
    "bool": "boolean",
    "datetime": "datetime64[us, Asia/Tehran]",
    "string": "string",
}
MESSAGE_DTYPES = {column: _DTYPE_OF_KIND.get(kind, "category") for column, kind in MESSAGE_KINDS.items()}
DELIVERY_DTYPES = {
    "batch_sms_id": "Int64",
    "row": "Int64",
    "number": "string",
    "operator": "category",
    "status": "Int64",
    "status_name": "category",
    "outcome": "category",
    "final": "boolean",
}


def _refuse(text: str, kind: str, operation: str, field: str) -> AnswerError:
    text = scrub(text)  # a value echoed from the request may be the password
    shown = text if len(text) <= 60 else text[:57] + "..."
    return AnswerError(
        f"The answer's {field} was {shown!r}, which is not a {kind} as the contract says. "
        "The service (or a proxy on the way) answered out of contract; report it with this message.",
        f"مقدار {field} در پاسخ سرویس نامعتبر بود",
        operation=operation,
        field=field,
        value=shown,
        retryable=False,
    )


def wire_value(kind: str, text: str | None, *, operation: str, field: str, zone: tzinfo = TEHRAN):
    """The value of one wire text of `kind`; None for a nil, empty or missing element (strings
    keep their text). A time without an offset is in `zone`, the service's local time."""
    if text is None:
        return None
    if kind == "string":
        return text
    stripped = text.strip()
    if not stripped:
        return None
    try:
        value = _convert(kind, stripped, zone)
    except (ValueError, ArithmeticError, binascii.Error, KeyError, OverflowError):
        raise _refuse(text, kind, operation, field) from None
    return value


def _convert(kind: str, text: str, zone: tzinfo):
    if kind in ("int", "long"):
        low, high = INT32 if kind == "int" else INT64
        value = int(text, 10)
        if not low <= value <= high:
            raise OverflowError(text)
        return value
    if kind == "decimal":
        value = Decimal(text)
        if not value.is_finite():
            raise InvalidOperation(text)
        return value
    if kind == "bool":
        return BOOLEANS[text.lower()]
    if kind == "datetime":
        when = datetime.fromisoformat(text.upper())
        return when.astimezone(TEHRAN) if when.tzinfo else when.replace(tzinfo=zone).astimezone(TEHRAN)
    if kind == "base64":
        return base64.b64decode(text, validate=True)
    if kind.startswith("enum:"):
        return enum_name(kind[5:], text)
    raise KeyError(kind)


def cast_messages(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the canonical dtypes of a messages frame (the columns it has, in their order)."""
    return frame.astype({c: d for c, d in MESSAGE_DTYPES.items() if c in frame.columns})


def cast_deliveries(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the canonical dtypes of a delivery frame (the columns it has)."""
    return frame.astype({c: d for c, d in DELIVERY_DTYPES.items() if c in frame.columns})


def explain_enums(frame: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """A copy of a messages frame whose enum columns (status, send_method, ...) say what their
    values mean, in English (`en`) or Persian (`fa`), for people rather than code."""
    import pandas as pd

    shown = frame.copy()
    for column, kind in MESSAGE_KINDS.items():
        if kind.startswith("enum:") and column in shown.columns:
            values = shown[column].astype("object")
            shown[column] = [None if pd.isna(v) else enum_text(kind[5:], str(v), lang) for v in values]
    return shown
