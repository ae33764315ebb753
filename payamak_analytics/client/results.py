"""What the operations return: small, typed, printable objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import pandas as pd

from ..codes import DeliveryStatus, delivery_status, enum_name
from ..dates import TEHRAN
from ..phone import operator
from ..text import TextInfo
from .pages import BOOL_COLUMNS, DECIMAL_COLUMNS, ENUM_COLUMNS, INT_COLUMNS


@dataclass(frozen=True)
class SendPlan:
    """A checked send that has not gone out: what it would cost."""

    from_number: str
    numbers: list[str]
    text: str
    text_info: TextInfo

    @property
    def messages(self) -> int:
        """SMS parts the send takes: parts x recipients."""
        return self.text_info.parts * len(self.numbers)


@dataclass(frozen=True)
class Recipient:
    number: str
    rec_id: int  # for get_delivery; 0 when the panel did not send to this number
    sent: bool


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
        return sum(r.sent for r in self.recipients)


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

    def __len__(self) -> int:
        return len(self.numbers)

    def to_frame(self) -> pd.DataFrame:
        return delivery_frame(self.batch_sms_id, self.index, self.numbers, [s.code for s in self.statuses])


def _operator_or_unknown(number: str) -> str:
    try:
        return operator(number)
    except ValueError:
        return "Unknown"


def delivery_frame(batch_sms_id: int, index: int, numbers: list[str], codes: list[int]) -> pd.DataFrame:
    statuses = [delivery_status(c) for c in codes]
    return pd.DataFrame(
        {
            "batch_sms_id": pd.array([batch_sms_id] * len(numbers), dtype="Int64"),
            "row": pd.array(range(index, index + len(numbers)), dtype="Int64"),
            "number": pd.array(numbers, dtype="string"),
            "operator": pd.Categorical([_operator_or_unknown(n) for n in numbers]),
            "status": pd.array(codes, dtype="Int64"),
            "status_name": pd.Categorical([s.name for s in statuses]),
            "outcome": pd.Categorical([s.outcome for s in statuses]),
            "final": pd.array([s.final for s in statuses], dtype="boolean"),
        }
    )


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
    def from_texts(cls, texts: dict[str, str | None]) -> "Message":
        """A record from the text of its fields (column name -> text, None for nil or missing)."""
        values = {}
        for column, text in texts.items():
            if text is None:
                values[column] = None
            elif column in INT_COLUMNS:
                values[column] = int(text)
            elif column in DECIMAL_COLUMNS:
                values[column] = Decimal(text)
            elif column in BOOL_COLUMNS:
                values[column] = text.strip().lower() in ("true", "1")
            elif column in ENUM_COLUMNS:
                values[column] = enum_name(ENUM_COLUMNS[column], text)
            elif column == "action_datetime":
                when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
                values[column] = when.astimezone(TEHRAN) if when.tzinfo else when.replace(tzinfo=TEHRAN)
            else:
                values[column] = text
        return cls(**values)


@dataclass(frozen=True)
class MessagePage:
    """One GetMessages page: typed rows plus where it sits and what it cost."""

    index: int  # 1-based row offset of the first row
    rows: pd.DataFrame
    elapsed: float
    raw: bytes = field(default=b"", repr=False)

    def __len__(self) -> int:
        return len(self.rows)
