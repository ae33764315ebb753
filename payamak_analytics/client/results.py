"""What the operations return: small, typed, printable objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING

from ..codes import DeliveryStatus, delivery_status
from ..dates import TEHRAN
from ..phone import operators, unallocated_note
from ..text import TextInfo
from .columns import DELIVERY_DTYPES, MESSAGE_COLUMNS, MESSAGE_KINDS, wire_value
from .rows import Rows, message_frame

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class SendPlan:
    """A checked send that has not gone out: what it would cost."""

    from_number: str
    numbers: list[str]
    text: str
    text_info: TextInfo
    # well-formed numbers libphonenumber calls invalid: sent all the same (allocations change
    # faster than any table), but worth a look for a typo first
    unallocated: list[str] = field(default_factory=list)

    @property
    def messages(self) -> int:
        """SMS parts the send takes: parts x recipients."""
        return self.text_info.parts * len(self.numbers)

    @property
    def warning(self) -> str:
        """One line about the numbers outside the number plan, or "" when there are none."""
        return unallocated_note(self.unallocated)


@dataclass(frozen=True)
class Recipient:
    number: str
    rec_id: int  # for get_delivery; 0 when the panel did not send to this number
    sent: bool | None  # the service's flag (1 sent, 0 not sent); None where it gave none it knows

    @property
    def status(self) -> str:
        return {True: "sent", False: "NOT sent"}.get(self.sent, "status not given: check before sending again")


@dataclass(frozen=True)
class SendResult:
    """SendSMS: one entry per recipient, in the order given."""

    from_number: str
    recipients: list[Recipient]

    @property
    def rec_ids(self) -> list[int]:
        return [r.rec_id for r in self.recipients]

    @property
    def sent_count(self) -> int:
        return sum(r.sent is True for r in self.recipients)


@dataclass(frozen=True)
class BatchSendResult:
    """SendBatchSms / SendSmsLikeToLike: the id to ask GetBatchDelivery / GetDeliveryLikeToLike with."""

    batch_sms_id: int
    from_number: str
    numbers: list[str]


@dataclass(frozen=True)
class DeliveryPage:
    """One page of a batch's delivery report: numbers and their statuses, same order."""

    batch_sms_id: int
    index: int  # 1-based row offset of the first number
    numbers: list[str]
    statuses: list[DeliveryStatus]
    elapsed: float = 0.0
    raw: bytes = field(default=b"", repr=False)

    operation: str = "GetBatchDelivery"

    def __len__(self) -> int:
        return len(self.numbers)

    def keys(self) -> tuple:
        return tuple(self.numbers)

    def to_frame(self) -> pd.DataFrame:
        return delivery_frame(self.batch_sms_id, self.index, self.numbers, [s.code for s in self.statuses])


def delivery_frame(batch_sms_id: int, index: int, numbers: list[str], codes: list[int]) -> pd.DataFrame:
    """The one way a delivery report becomes a frame (dtypes: columns.DELIVERY_DTYPES)."""
    import pandas as pd

    statuses = [delivery_status(c) for c in codes]
    columns = {
        "batch_sms_id": [batch_sms_id] * len(numbers),
        "row": range(index, index + len(numbers)),
        "number": numbers,
        "operator": operators(numbers),
        "status": codes,
        "status_name": [s.name for s in statuses],
        "outcome": [s.outcome for s in statuses],
        "final": [s.final for s in statuses],
    }
    return pd.DataFrame({name: pd.array(list(values), dtype=DELIVERY_DTYPES[name]) for name, values in columns.items()})


@dataclass(frozen=True)
class Message:
    """A MessageInfo record, with the panel's enum names read case-insensitively."""

    message_id: int | None
    action_datetime: datetime | None  # Asia/Tehran
    message_type: str | None  # In / Out / ...
    sender: str | None
    receiver: str | None
    content: str | None
    pages: int | None
    lang: str | None
    flash: bool | None
    count: int | None
    sent: int | None
    not_sent: int | None
    status: str | None
    send_status: str | None  # missing on the 2020 service
    send_method: str | None  # missing on the 2020 service
    cost: Decimal | None  # missing on the 2020 service
    tariff: Decimal | None
    title: str | None
    desc: str | None
    is_read: bool | None
    money_is_refunded: bool | None
    user_id: int | None

    @classmethod
    def from_texts(cls, texts: dict[str, str | None], zone=TEHRAN, operation: str = "GetMessages") -> Message:
        """A record from the text of its fields (column name -> text, None for nil or missing),
        read as the page reader reads them; a time without an offset is in `zone`."""
        wire = {column: name for name, column in MESSAGE_COLUMNS.items()}
        return cls(
            **{
                column: wire_value(MESSAGE_KINDS[column], text, operation=operation, field=wire[column], zone=zone)
                for column, text in texts.items()
            }
        )


@dataclass(frozen=True)
class MessagePage:
    """One GetMessages page: typed rows plus where it sits and what it cost."""

    index: int  # 1-based row offset of the first row
    arrays: Rows  # the rows as numpy arrays, as the sync stores them
    elapsed: float
    raw: bytes = field(default=b"", repr=False)

    operation: str = "GetMessages"

    def __len__(self) -> int:
        return len(self.arrays)

    def keys(self) -> tuple:
        return tuple(self.arrays["message_id"].tolist())

    @cached_property
    def rows(self) -> pd.DataFrame:
        """The rows as a typed DataFrame (made when first asked for)."""
        return message_frame(self.arrays)

    def to_frame(self) -> pd.DataFrame:
        return self.rows
