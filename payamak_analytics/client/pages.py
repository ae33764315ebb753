"""Paged resources: GetMessages (1000 rows a page) and GetBatchDelivery (100), read straight
from the answer's bytes into typed columns, and one pager for both.

zeep builds a Python object per element, about ten times the cost of reading the same bytes
with lxml. lxml always checks the whole answer (well-formed, no DTD, not a Fault); the texts
of a GetMessages page whose records all share one layout are then taken by a regular
expression, which halves the cost again, and from lxml's tree otherwise. Every text becomes a
value by the one reading in `columns`, vectorised where the column allows, into numpy arrays
(`rows`); a DataFrame is made of them only when asked for.

Every paged resource speaks the same way: `page()` is one call, `stream()` yields every page
lazily (stopping on a short page), `frame()` gathers them into one typed DataFrame. A page
with more rows than asked, or a page seen before in the same walk (a server that ignores
`index`), is refused, so no walk runs forever.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from datetime import tzinfo
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from lxml import etree

from ..dates import TEHRAN
from ..errors import AnswerError, PayamakError
from .columns import MESSAGE_COLUMNS
from .envelope import NIL, child, local, response_element
from .rows import message_frame, message_rows

if TYPE_CHECKING:
    import pandas as pd

_BY_LOWER_WIRE_NAME = {wire.lower(): column for wire, column in MESSAGE_COLUMNS.items()}


def message_columns(raw: bytes, operation: str = "GetMessages") -> dict[str, list[str | None]] | None:
    """The text of every MessageInfo field, one list per column; None when the result is nil.

    An element that is nil, empty or missing reads as None, as zeep reads it. The texts are
    read by one regular expression when every record has the first one's layout, which is how
    WCF writes them, and from lxml's tree otherwise.
    """
    scanned = _scanned_without_tree(raw, operation)
    if scanned is not None:
        return scanned
    result = child(response_element(raw, operation), f"{operation}Result")
    if result is None or result.get(NIL) == "true":
        return None
    if _stray_text(result):  # read as no records, it would end a walk as if the list ended there
        raise AnswerError(
            f"The {operation}Result held text besides its records; the service (or a proxy on the way) "
            "answered out of contract.",
            "پاسخ سرویس به جای فهرست پیامک ها متن داشت",
            operation=operation,
            field=f"{operation}Result",
            retryable=False,
        )
    return tree_columns(result)


class _Discard:
    """A parser target that keeps nothing: lxml checks the document and builds no tree."""

    def close(self) -> None:
        return None


# The same safety options as the envelope's parser. A tree of a 1000-row page takes about 5 MB
# (eight times the answer), and each fetching thread's allocator keeps what its largest page
# took: checked without a tree, a page costs its bytes and its columns.
# Put where the records were cut out: the envelope shows whether the cut was the result's content.
_RECORDS_MARK = b"<?payamak-records?>"
_CHECK_ONLY = etree.XMLParser(
    target=_Discard(), resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


def _scanned_without_tree(raw: bytes, operation: str) -> dict[str, list[str | None]] | None:
    """The columns of a page whose records the regular expression reads, with no tree built:
    the whole answer is checked by a parse that keeps nothing, and the envelope (everything
    but the records) by `response_element`. None: read it from the tree (which also says
    what is wrong with an answer that is)."""
    region = _records_region(raw)
    if region is None:
        return None
    try:
        etree.fromstring(raw, _CHECK_ONLY)
        envelope = response_element(raw[: region[0]] + _RECORDS_MARK + raw[region[1] :], operation)
    except (etree.XMLSyntaxError, PayamakError):
        return None
    result = child(envelope, f"{operation}Result")
    if result is None or result.get(NIL) == "true" or not _only_the_mark(result):
        return None  # the text cut out was not the result's content (a comment, say): the tree reads it
    return scanned_columns(raw, operation)


def _only_the_mark(result: etree._Element) -> bool:
    only = len(result) == 1 and result[0].tag is etree.PI and result[0].target == _RECORDS_MARK[2:-2].decode()
    return only and not _stray_text(result)


def _stray_text(element: etree._Element) -> bool:
    """Whether an element holds text of its own (not its children's) besides whitespace."""
    return any(text and not text.isspace() for text in [element.text, *(sub.tail for sub in element)])


def tree_columns(result: etree._Element) -> dict[str, list[str | None]]:
    """The columns of a result element, read from lxml's tree (any layout)."""
    rows = [info for info in result if isinstance(info.tag, str)]
    columns: dict[str, list[str | None]] = {column: [None] * len(rows) for column in MESSAGE_COLUMNS.values()}
    for r, info in enumerate(rows):
        for element in info:
            column = _BY_LOWER_WIRE_NAME.get(local(element.tag))
            if column and element.get(NIL) != "true":
                columns[column][r] = element.text or None
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


def _records_region(raw: bytes) -> tuple[int, int] | None:
    """Where the result's content lies in a UTF-8 answer (offsets, nothing copied), or None."""
    declaration = raw[: raw.find(b"?>")] if raw.startswith(b"<?xml") else b""
    opening = _RESULT_TAG.search(raw)
    if (b"encoding" in declaration and not _UTF8_DECLARATION.match(declaration)) or opening is None:
        return None
    end = raw.find(b"</" + opening.group(1) + b">", opening.end())
    return (opening.end(), end) if end >= 0 else None


def scanned_columns(raw: bytes, operation: str) -> dict[str, list[str | None]] | None:
    """The columns of a well-formed page by regular expression, or None to leave it to the tree."""
    region = _records_region(raw)
    if region is None:
        return None
    start, end = region
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


def messages_frame(
    columns: dict[str, list[str | None]], zone: tzinfo = TEHRAN, operation: str = "GetMessages"
) -> pd.DataFrame:
    """Typed columns as a DataFrame (see columns.MESSAGE_DTYPES); a text that is not what its
    field holds raises AnswerError naming it. A time without an offset is in `zone`."""
    return message_frame(message_rows(columns, zone, operation))


# --- delivery reports -------------------------------------------------------------------------
def delivery_reply(fields: dict, operation: str, asked: int | None) -> tuple[int, list[str], list[int]]:
    """(result code, numbers, statuses) of a GetBatchDelivery / GetDeliveryLikeToLike reply,
    checked: a result code, as many statuses as numbers, never more rows than asked."""
    code, numbers, statuses = fields.values()
    if code is None:
        raise AnswerError("The answer had no result code.", "پاسخ سرویس کد نتیجه نداشت", operation=operation)
    if len(numbers) != len(statuses):
        raise AnswerError(
            f"The answer had {len(numbers)} numbers but {len(statuses)} statuses.",
            "تعداد شماره ها و وضعیت ها برابر نبود",
            operation=operation,
        )
    if asked is not None and len(numbers) > asked:
        raise too_many_rows(operation, len(numbers), asked)
    return code, numbers, statuses


def too_many_rows(operation: str, got: int, asked: int) -> AnswerError:
    return AnswerError(
        f"The service answered {got} rows where {asked} were asked for; refused, as a page larger than "
        "asked for means the paging cannot be trusted.",
        "سرویس بیش از تعداد درخواستی ردیف برگرداند",
        operation=operation,
        field="count",
        value=str(got),
        retryable=False,
    )


# --- one pager for every paged resource -------------------------------------------------------
class Page(Protocol):
    index: int

    def __len__(self) -> int: ...

    def to_frame(self) -> pd.DataFrame: ...

    def keys(self) -> tuple: ...


P = TypeVar("P", bound=Page)


class Paged(Generic[P]):
    """A paged resource: `page()` one call, `stream()` every page lazily, `frame()` all of it."""

    def __init__(self, fetch: Callable[[int, int], P], page_size: int, empty: Callable[[], pd.DataFrame]):
        self.fetch, self.page_size, self.empty = fetch, page_size, empty

    def page(self, index: int = 1, count: int | None = None) -> P:
        return self.fetch(index, count or self.page_size)

    def stream(self, start: int = 1, limit: int | None = None, page_size: int | None = None) -> Iterator[P]:
        """Pages from row `start` on; stops after a short page, or once `limit` rows were read."""
        size = min(page_size or self.page_size, limit or self.page_size)
        index, total, seen = start, 0, set()
        while True:
            page = self.fetch(index, size)
            if len(page):
                fingerprint = hash(page.keys())
                if fingerprint in seen:
                    raise AnswerError(
                        f"The page at row {index} repeats a page already read: the service seems to ignore "
                        "the index; stopped so as not to read forever.",
                        "سرویس همان صفحه را دوباره برگرداند",
                        operation=getattr(page, "operation", ""),
                        field="index",
                        value=str(index),
                        retryable=False,
                    )
                seen.add(fingerprint)
                yield page
            total += len(page)
            if len(page) < size or (limit is not None and total >= limit):
                return
            index += len(page)

    def frame(self, limit: int | None = None) -> pd.DataFrame:
        """Every row (or the first `limit`) as one DataFrame with the canonical dtypes."""
        import pandas as pd

        frames = [page.to_frame() for page in self.stream(limit=limit)]
        if not frames:
            return self.empty()
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return frame.head(limit).reset_index(drop=True) if limit is not None else frame
