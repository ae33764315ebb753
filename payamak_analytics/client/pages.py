"""Bulk pages, read straight from the response bytes into columns.

zeep builds a Python object per element, about ten times the cost of reading the same bytes
with lxml. For GetMessages (1000 rows a page) and GetBatchDelivery the client asks zeep for
the raw response and reads it here, by local name and case-insensitively, so that the real
service's casing or namespaces can't break it. Entities, DTDs and the network are off.
"""
from __future__ import annotations

import pandas as pd
from lxml import etree

from ..codes import enum_name
from ..errors import SoapFaultError, TransportError

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
TEHRAN = "Asia/Tehran"

# Wire name -> column, in the order of the frame's columns.
MESSAGE_COLUMNS = {
    "MessageId": "message_id", "ActionDateTime": "action_datetime", "MessageType": "message_type",
    "Sender": "sender", "Receiver": "receiver", "Content": "content", "Pages": "pages", "Lang": "lang",
    "Flash": "flash", "Count": "count", "Sent": "sent", "NotSent": "not_sent", "Status": "status",
    "SendStatus": "send_status", "SendMethod": "send_method", "Cost": "cost", "Tariff": "tariff",
    "Title": "title", "Desc": "desc", "IsRead": "is_read", "MoneyIsRefunded": "money_is_refunded",
    "UserId": "user_id",
}
_BY_LOWER_WIRE_NAME = {wire.lower(): column for wire, column in MESSAGE_COLUMNS.items()}
INT_COLUMNS = ("message_id", "pages", "count", "sent", "not_sent", "user_id")
DECIMAL_COLUMNS = ("cost", "tariff")
BOOL_COLUMNS = ("flash", "is_read", "money_is_refunded")
STRING_COLUMNS = ("sender", "receiver", "content", "title", "desc")
ENUM_COLUMNS = {"message_type": "SMSDirectionType", "lang": "SMSLang", "status": "SMSStatus",
                "send_status": "SMSSendStatus", "send_method": "SMSSendMethod"}
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _local(tag) -> str:
    return tag[tag.rfind("}") + 1:].lower() if isinstance(tag, str) else ""


def parse_envelope(raw: bytes, operation: str) -> etree._Element:
    """The root of a SOAP answer, parsed safely, or a TransportError saying what was wrong."""
    try:
        root = etree.fromstring(raw, PARSER)
    except etree.XMLSyntaxError as error:
        raise TransportError(f"The answer was not complete XML (cut off or not SOAP): {error.msg}",
                             "پاسخ سرویس ناقص یا نامعتبر بود", operation=operation) from None
    if root.getroottree().docinfo.doctype:
        raise TransportError("The answer carries a DTD, which a SOAP answer never has; refused.",
                             "پاسخ سرویس شامل DTD بود و پذیرفته نشد", operation=operation)
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
        raise SoapFaultError(f"The service answered with a SOAP Fault: {text}", f"خطای سرویس: {text}",
                             operation=operation, fault_code=code)
    return first


def _child(element: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in element if _local(c.tag) == name.lower()), None)


def message_columns(raw: bytes, operation: str = "GetMessages") -> dict[str, list[str | None]] | None:
    """The text of every MessageInfo field, one list per column; None when the result is nil."""
    result = _child(response_element(raw, operation), f"{operation}Result")
    if result is None or result.get(NIL) == "true":
        return None
    rows = []
    for info in result:
        if not isinstance(info.tag, str):
            continue
        row = {}
        for child in info:
            column = _BY_LOWER_WIRE_NAME.get(_local(child.tag))
            if column is not None:
                row[column] = None if child.get(NIL) == "true" else (child.text or "")
        rows.append(row)
    return {column: [row.get(column) for row in rows] for column in MESSAGE_COLUMNS.values()}


def messages_frame(columns: dict[str, list[str | None]]) -> pd.DataFrame:
    """Typed columns: nullable ints, Tehran timestamps, booleans, categories for enums."""
    frame = {}
    for column, values in columns.items():
        series = pd.Series(values, dtype="string")
        if column in INT_COLUMNS:
            frame[column] = pd.to_numeric(series).astype("Int64")
        elif column in DECIMAL_COLUMNS:
            frame[column] = pd.to_numeric(series).astype("Float64")
        elif column in BOOL_COLUMNS:
            frame[column] = series.str.lower().map(_BOOLEANS).astype("boolean")
        elif column in ENUM_COLUMNS:
            names = {v: enum_name(ENUM_COLUMNS[column], v) for v in set(values)}
            frame[column] = pd.Categorical([names[v] for v in values])
        elif column == "action_datetime":
            frame[column] = tehran_timestamps(series)
        else:
            frame[column] = series
    return pd.DataFrame(frame, columns=list(columns))


def tehran_timestamps(series: pd.Series) -> pd.Series:
    """ISO texts as Asia/Tehran timestamps; a text without an offset is Tehran wall-clock time."""
    parsed = pd.to_datetime(series, format="ISO8601")
    if parsed.dt.tz is None:
        return parsed.dt.tz_localize(TEHRAN, ambiguous="NaT", nonexistent="shift_forward")
    return parsed.dt.tz_convert(TEHRAN)


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
        raise TransportError(f"The answer had {len(numbers)} numbers but {len(statuses)} statuses.",
                             "تعداد شماره ها و وضعیت ها برابر نبود", operation=operation)
    return int(result.text), numbers, statuses
