"""Bulk pages, read straight from the response bytes into columns.

zeep builds a Python object per element, about ten times the cost of reading the same bytes
with lxml. For GetMessages (1000 rows a page) and GetBatchDelivery the client asks zeep for
the raw response and reads it here, by local name and case-insensitively, so that the real
service's casing or namespaces can't break it. Entities, DTDs and the network are off.
lxml always checks the whole answer; the texts of a GetMessages page whose records all share
one layout are then taken by a regular expression, which halves the cost again.
"""

from __future__ import annotations

import functools
import re

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

    An element that is nil, empty or missing reads as None, as zeep reads it. lxml checks the
    whole answer (well-formed, no DTD, not a Fault); the texts are then read from the same
    bytes by one regular expression when every record has the first one's layout, which is
    how WCF writes them, and from lxml's tree otherwise.
    """
    result = _child(response_element(raw, operation), f"{operation}Result")
    if result is None or result.get(NIL) == "true":
        return None
    scanned = _scanned_columns(raw, operation)
    return scanned if scanned is not None else _tree_columns(result)


def _tree_columns(result: etree._Element) -> dict[str, list[str | None]]:
    rows = [info for info in result if isinstance(info.tag, str)]
    columns: dict[str, list[str | None]] = {column: [None] * len(rows) for column in MESSAGE_COLUMNS.values()}
    for r, info in enumerate(rows):
        for child in info:
            column = _BY_LOWER_WIRE_NAME.get(_local(child.tag))
            if column:
                columns[column][r] = child.text
    return columns


_NAME = rb"[\w.-]+(?::[\w.-]+)?"
_RESULT_TAG = re.compile(rb"<((?:[\w.-]+:)?GetMessages(?:ByDateRange)?Result)(?:\s[^>]*)?>")
_FIRST_RECORD = re.compile(rb"\s*<(" + _NAME + rb")>")
_OPEN_TAG = re.compile(rb"<(" + _NAME + rb")")
_UTF8_DECLARATION = re.compile(rb"<\?xml[^>]*encoding=[\"']utf-8[\"']", re.IGNORECASE)
_REFERENCE = re.compile(r"&(?:#x([0-9a-fA-F]+)|#([0-9]+)|(lt|gt|amp|quot|apos));")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_SEPARATOR = b"\x1f"  # a control character: lxml has refused any page that holds one


@functools.lru_cache(maxsize=32)
def _layout_patterns(record: bytes, fields: tuple[bytes, ...]) -> tuple[re.Pattern, re.Pattern]:
    """(one record of this layout with each field's text captured, nil or empty ones as b'';
    a run of such records with nothing else between them)."""

    def one_record(text: bytes) -> bytes:
        tags = [rb"<" + re.escape(record) + rb">"]
        for name in map(re.escape, fields):
            tags.append(rb"\s*<" + name + rb"(?:>" + text + rb"</" + name + rb">|\s+[\w.-]+:nil=\"true\"\s*/>|\s*/>)")
        return b"".join(tags) + rb"\s*</" + re.escape(record) + rb">"

    return re.compile(one_record(rb"([^<]*)")), re.compile(rb"(?:\s*" + one_record(rb"[^<]*") + rb")*\s*")


def _scanned_columns(raw: bytes, operation: str) -> dict[str, list[str | None]] | None:
    """The columns of a well-formed page by regular expression, or None to leave it to the tree."""
    declaration = raw[: raw.find(b"?>")] if raw.startswith(b"<?xml") else b""
    opening = _RESULT_TAG.search(raw)
    if (b"encoding" in declaration and not _UTF8_DECLARATION.match(declaration)) or opening is None:
        return None
    start, end = opening.end(), raw.find(b"</" + opening.group(1) + b">", opening.end())  # the records, not copied
    first = _FIRST_RECORD.match(raw, start, end)
    if first is None:
        return None
    record = first.group(1)
    fields = tuple(_OPEN_TAG.findall(raw, first.end(), raw.find(b"</" + record + b">", first.end())))
    one, run = _layout_patterns(record, fields)
    if not run.fullmatch(raw, start, end):
        return None
    rows = one.findall(raw, start, end)
    columns: dict[str, list[str | None]] = {column: [None] * len(rows) for column in MESSAGE_COLUMNS.values()}
    for field, texts in zip(fields, zip(*rows) if len(fields) > 1 else [rows]):
        column = _BY_LOWER_WIRE_NAME.get(field.rpartition(b":")[2].decode("ascii").lower())
        if column is None:
            continue
        text = _SEPARATOR.join(texts).decode("utf-8")  # one decode a column: the texts joined, then split again
        if "\r" in text:  # XML reads every line ending as \n
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "&" in text:
            text = _REFERENCE.sub(_unescape, text)
        values: list[str | None] = text.split(_SEPARATOR.decode())
        if "" in values:
            values = [value or None for value in values]
        columns[column] = values
    return columns


def _unescape(match: re.Match) -> str:
    hexadecimal, decimal, name = match.groups()
    return _ENTITIES[name] if name else chr(int(hexadecimal, 16) if hexadecimal else int(decimal))


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
