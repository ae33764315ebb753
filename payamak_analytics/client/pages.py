"""Bulk pages, read straight from the response bytes into columns.

zeep builds a Python object per element, about ten times the cost of reading the same bytes
with lxml. For GetMessages (1000 rows a page) and GetBatchDelivery the client asks zeep for
the raw response and reads it here, by local name and case-insensitively, so that the real
service's casing or namespaces can't break it. Entities, DTDs and the network are off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lxml import etree

from ..codes import enum_name
from ..errors import SoapFaultError, TransportError

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
TEHRAN = "Asia/Tehran"

# Wire name -> column, in the order of the frame's columns.
MESSAGE_COLUMNS = {
    "MessageId": "message_id",
    "ActionDateTime": "action_datetime",
    "MessageType": "message_type",
    "Sender": "sender",
    "Receiver": "receiver",
    "Content": "content",
    "Pages": "pages",
    "Lang": "lang",
    "Flash": "flash",
    "Count": "count",
    "Sent": "sent",
    "NotSent": "not_sent",
    "Status": "status",
    "SendStatus": "send_status",
    "SendMethod": "send_method",
    "Cost": "cost",
    "Tariff": "tariff",
    "Title": "title",
    "Desc": "desc",
    "IsRead": "is_read",
    "MoneyIsRefunded": "money_is_refunded",
    "UserId": "user_id",
}
_BY_LOWER_WIRE_NAME = {wire.lower(): column for wire, column in MESSAGE_COLUMNS.items()}
INT_COLUMNS = ("message_id", "pages", "count", "sent", "not_sent", "user_id")
DECIMAL_COLUMNS = ("cost", "tariff")
BOOL_COLUMNS = ("flash", "is_read", "money_is_refunded")
ENUM_COLUMNS = {
    "message_type": "SMSDirectionType",
    "lang": "SMSLang",
    "status": "SMSStatus",
    "send_status": "SMSSendStatus",
    "send_method": "SMSSendMethod",
}
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _local(tag) -> str:
    return tag[tag.rfind("}") + 1 :].lower() if isinstance(tag, str) else ""


def parse_envelope(raw: bytes, operation: str) -> etree._Element:
    """The root of a SOAP answer, parsed safely, or a TransportError saying what was wrong."""
    try:
        root = etree.fromstring(raw, PARSER)
    except etree.XMLSyntaxError as error:
        raise TransportError(
            f"The answer was not complete XML (cut off or not SOAP): {error.msg}",
            "پاسخ سرویس ناقص یا نامعتبر بود",
            operation=operation,
        ) from None
    if root.getroottree().docinfo.doctype:
        raise TransportError(
            "The answer carries a DTD, which a SOAP answer never has; refused.",
            "پاسخ سرویس شامل DTD بود و پذیرفته نشد",
            operation=operation,
        )
    return root


def response_element(raw: bytes, operation: str) -> etree._Element:
    """The <OperationResponse> element of a SOAP answer; a SOAP Fault raises SoapFaultError."""
    root = parse_envelope(raw, operation)
    body = next((c for c in root if _local(c.tag) == "body"), None)
    first = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
    if first is None:
        raise TransportError("The answer had no SOAP Body.", "پاسخ سرویس بدنه SOAP نداشت", operation=operation)
    if _local(first.tag) == "fault":
        text = next((c.text for c in first if _local(c.tag) == "faultstring"), None) or "no faultstring"
        code = next((c.text for c in first if _local(c.tag) == "faultcode"), None) or ""
        raise SoapFaultError(
            f"The service answered with a SOAP Fault: {text}",
            f"خطای سرویس: {text}",
            operation=operation,
            fault_code=code,
        )
    return first


def _child(element: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in element if _local(c.tag) == name.lower()), None)


def message_columns(raw: bytes, operation: str = "GetMessages") -> dict[str, list[str | None]] | None:
    """The text of every MessageInfo field, one list per column; None when the result is nil.

    An element that is nil, empty or missing reads as None, as zeep reads it.
    """
    result = _child(response_element(raw, operation), f"{operation}Result")
    if result is None or result.get(NIL) == "true":
        return None
    rows = [info for info in result if isinstance(info.tag, str)]
    columns: dict[str, list[str | None]] = {column: [None] * len(rows) for column in MESSAGE_COLUMNS.values()}
    targets: dict[str, list] = {}  # element tag -> its column (or a throwaway list for unknown fields)

    def target(tag) -> list:
        if tag not in targets:
            column = _BY_LOWER_WIRE_NAME.get(_local(tag))
            targets[tag] = columns[column] if column else [None] * len(rows)
        return targets[tag]

    layout: list = []  # the tags of the first row: most rows repeat them, and take the quick path
    layout_targets: list[list] = []
    for r, info in enumerate(rows):
        children = info.getchildren()
        tags = [child.tag for child in children]
        if tags != layout and r == 0:
            layout, layout_targets = tags, [target(tag) for tag in tags]
        if tags == layout:
            for column, child in zip(layout_targets, children):
                column[r] = child.text
        else:
            for tag, child in zip(tags, children):
                target(tag)[r] = child.text
    return columns


def messages_frame(columns: dict[str, list[str | None]]) -> pd.DataFrame:
    """Typed columns: nullable ints, Tehran timestamps, booleans, categories for enums."""
    try:
        return pd.DataFrame({column: _typed(column, values) for column, values in columns.items()}, copy=False)
    except (ValueError, KeyError, AttributeError) as error:
        raise TransportError(
            f"A MessageInfo field did not hold a value of its type: {error}",
            "مقدار یکی از فیلدهای پیام نامعتبر بود",
            operation="GetMessages",
        ) from None


def _typed(column: str, values: list[str | None]):
    if column in INT_COLUMNS or column in DECIMAL_COLUMNS:
        integer = column in INT_COLUMNS
        if None in values:  # pandas reads the gaps; numpy alone is faster for a full column
            numbers = pd.to_numeric(pd.Series(values, dtype="string"))
        else:
            numbers = np.array(values, dtype=object).astype(np.int64 if integer else np.float64)
        return pd.array(numbers, dtype="Int64" if integer else "Float64")
    if column in BOOL_COLUMNS:
        flags = {v: None if v is None else _BOOLEANS[v.strip().lower()] for v in set(values)}
        return pd.array([flags[v] for v in values], dtype="boolean")
    if column in ENUM_COLUMNS:  # few distinct values: map each once, then build codes
        names = {v: enum_name(ENUM_COLUMNS[column], v) for v in set(values)}
        categories = sorted({name for name in names.values() if name is not None})
        code_of = {v: -1 if name is None else categories.index(name) for v, name in names.items()}
        return pd.Categorical.from_codes([code_of[v] for v in values], categories)
    if column == "action_datetime":
        return tehran_timestamps(values)
    return pd.array(values, dtype="string[python]")


def tehran_timestamps(values: list[str | None]) -> pd.DatetimeIndex:
    """ISO texts as Asia/Tehran timestamps; a text without an offset is Tehran wall-clock time."""
    try:  # numpy reads plain ISO texts in C; texts with an offset or Z need pandas
        naive = pd.DatetimeIndex(np.array(values, dtype="datetime64[us]"))
    except ValueError:
        parsed = pd.DatetimeIndex(pd.to_datetime(pd.Series(values, dtype="string"), format="ISO8601"))
        return (
            parsed.tz_convert(TEHRAN)
            if parsed.tz is not None
            else parsed.tz_localize(TEHRAN, ambiguous="NaT", nonexistent="shift_forward")
        )
    return naive.tz_localize(TEHRAN, ambiguous="NaT", nonexistent="shift_forward")


def delivery_columns(raw: bytes, operation: str) -> tuple[int, list[str], list[int]]:
    """(result code, numbers, statuses) of a GetBatchDelivery or GetDeliveryLikeToLike answer."""
    response = response_element(raw, operation)
    result = _child(response, f"{operation}Result")
    if result is None or not (result.text or "").strip().lstrip("-").isdigit():
        raise TransportError("The answer had no result code.", "پاسخ سرویس کد نتیجه نداشت", operation=operation)
    numbers_element = _child(response, "numbers")
    statuses_element = _child(response, "deliveryStatus")
    numbers = [c.text or "" for c in numbers_element if isinstance(c.tag, str)] if numbers_element is not None else []
    statuses = [int(c.text) for c in statuses_element if isinstance(c.tag, str)] if statuses_element is not None else []
    if len(numbers) != len(statuses):
        raise TransportError(
            f"The answer had {len(numbers)} numbers but {len(statuses)} statuses.",
            "تعداد شماره ها و وضعیت ها برابر نبود",
            operation=operation,
        )
    return int(result.text), numbers, statuses
