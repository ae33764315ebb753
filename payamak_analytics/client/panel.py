"""PanelClient: every operation of the SendService, each a few lines over the wire.

A client is assembled from parts: `Settings` (what it is configured with), `Wire` (the one way
out, with its declared per-operation policy), the checks in `validate`, the readers in `pages`
and `envelope`, and the results in `results`. Reads are asked again on trouble; a send goes
exactly once, and a send whose answer does not prove what happened raises
SendOutcomeUnknownError.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Self

from .. import codes, phone
from .. import text as sms_text
from ..errors import (
    AnswerError,
    CredentialsError,
    InputError,
    NotFoundError,
    SendOutcomeUnknownError,
    ServiceUnavailableError,
)
from . import validate as check
from .columns import MESSAGE_COLUMNS
from .doctor import Diagnosis, diagnose
from .pages import Paged, delivery_reply, message_columns, messages_frame, too_many_rows
from .results import BatchSendResult, DeliveryPage, Message, MessagePage, Recipient, SendPlan, SendResult
from .rows import message_rows
from .safety import Secret, install_log_redaction, seals_errors, shown_url
from .settings import Settings
from .validate import DELIVERY_PAGE, MAX_RECIPIENTS, MESSAGES_PAGE, RECEIVED, SENT  # noqa: F401 (sync and campaign read them here)
from .wire import Wire

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("payamak_analytics.client")
MODELS = "http://schemas.datacontract.org/2004/07/SMSPanel.Domain.Models"
_SPLIT = re.compile(r"[,;\s]+")
_SENT_FLAGS = {1: True, 0: False}  # SendSMS's status bytes; another value, or none, says nothing


@seals_errors
class PanelClient:
    """A client of one panel account.

    Credentials come from the arguments, else PAYAMAK_USERNAME / PAYAMAK_PASSWORD (the
    environment or a .env file). `wsdl` (or PAYAMAK_WSDL) defaults to the real service;
    "bundled" loads the copy shipped with this package; `endpoint` (or PAYAMAK_ENDPOINT)
    overrides the address calls go to. `timeout` is the whole budget of one call, retries
    included. Other options: see `Settings`.
    """

    def __init__(self, username: str | None = None, password: str | Secret | None = None, **options):
        password = Secret.of(password or None)  # first, so that no frame below holds it bare
        install_log_redaction()
        settings = options.pop("settings", None) or Settings.load(username, password, **options)
        self.settings = settings
        self.wire = Wire(settings)
        self.username = settings.username
        self.endpoint = shown_url(self.wire.endpoint)  # what is shown and stored: never a URL's user-info
        self.operations = self.wire.operations
        message_type = self.wire.zeep.get_type(f"{{{MODELS}}}MessageInfo")
        declared = {name.lower() for name, _ in message_type.elements}
        self.missing_message_fields = frozenset(name for name in MESSAGE_COLUMNS if name.lower() not in declared)
        if self.missing_message_fields:
            log.info(
                "This deployment's MessageInfo has no %s: those columns will be empty.",
                ", ".join(sorted(self.missing_message_fields)),
            )

    def __repr__(self) -> str:
        """Never raises, even on a client that failed half-way through being built."""
        username = getattr(self, "username", None)
        endpoint = getattr(self, "endpoint", None)
        return f"PanelClient(username={username!r}, endpoint={endpoint!r})"

    @property
    def calls(self) -> Counter:
        return self.wire.calls

    @property
    def retries(self) -> Counter:
        return self.wire.retries

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    @property
    def read_attempts(self) -> int:
        return self.settings.read_attempts

    def close(self) -> None:
        self.wire.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def diagnose(self, now: datetime | None = None) -> Diagnosis:
        """Read-only checks of this account and deployment (see `payamak doctor`); sends nothing."""
        return diagnose(self, now)

    def has(self, operation: str) -> bool:
        """Whether this deployment of the service has `operation` (the 2020 one lacks some)."""
        return operation in self.operations

    def require(self, operation: str) -> None:
        self.wire.policy(operation)

    # --- account --------------------------------------------------------------------------
    def get_credit(self) -> Decimal:
        """The account's credit, in SMS."""
        credit = self._result("GetCredit", {})
        if credit < 0:
            codes.raise_for("GetCredit", int(credit))
        return credit

    def get_inbox_count(self, is_read: bool = False) -> int:
        """How many received messages are read (`True`) or unread (`False`)."""
        count = self._result("GetInboxCount", {"isRead": check.flag(is_read, "is_read")})
        codes.raise_for("GetInboxCount", count)
        return count

    def get_sender_numbers(self) -> list[str]:
        """The account's sender lines."""
        answer = (self.wire.call("GetSenderNumbers", {}).result or "").strip()
        if re.fullmatch(r"-\d+", answer):
            codes.raise_for("GetSenderNumbers", int(answer))
        return [n for n in _SPLIT.split(answer) if n]

    def _result(self, operation: str, params: dict):
        """The result of a small operation, which must be there."""
        return _required(operation, self.wire.call(operation, params).result)

    # --- sending --------------------------------------------------------------------------
    def plan_send(self, from_number, to_numbers, text: str) -> SendPlan:
        """Check a send without making it: numbers normalised, text counted, numbers outside the
        number plan flagged (a warning: they are still sent). Raises InputError."""
        line, numbers, text = check.line(from_number), check.recipients(to_numbers), check.message_text(text)
        return SendPlan(line, numbers, text, sms_text.analyze(text), phone.unallocated(numbers))

    @staticmethod
    def _outgoing(line: str, numbers: list[str], flash) -> dict:
        """The arguments every send operation shares."""
        return {"fromNumber": line, "toNumbers": {"string": numbers}, "isFlash": check.flag(flash, "flash")}

    def _send(self, operation: str, params: dict) -> dict:
        """One send; its result code raised as the error it means."""
        reply = self.wire.call(operation, params)
        if reply.result is None:
            raise _unproven(operation, f"the answer had no {operation}Result")
        if reply.result not in codes.SEND_CODES:  # not one of the service's known refusals
            raise _unproven(operation, f"the service answered code {reply.result}, which this toolkit does not know")
        codes.raise_for(operation, reply.result)
        return reply.fields

    def send_sms(self, from_number, to_numbers, text: str, *, flash: bool = False) -> SendResult:
        """Send one text to 1..100 numbers; the result has a rec id per recipient for get_delivery."""
        line, numbers, text = check.line(from_number), check.recipients(to_numbers), check.message_text(text)
        fields = self._send(
            "SendSMS", {**self._outgoing(line, numbers, flash), "messageContent": text, "recId": None, "status": None}
        )
        rec_ids, flags = fields["recId"], fields["status"] or b""
        recipients = [
            Recipient(n, rec_ids[i] if i < len(rec_ids) else 0, _SENT_FLAGS.get(flags[i]) if i < len(flags) else None)
            for i, n in enumerate(numbers)
        ]
        return SendResult(line, recipients)

    def send_batch_sms(self, from_number, to_numbers, text: str, *, flash: bool = False) -> BatchSendResult:
        """Send one text to 1..100 numbers as a batch; follow it with get_batch_delivery."""
        line, numbers, text = check.line(from_number), check.recipients(to_numbers), check.message_text(text)
        fields = self._send("SendBatchSms", {**self._outgoing(line, numbers, flash), "messageContent": text})
        return BatchSendResult(_sent_id("SendBatchSms", fields["batchSmsId"]), line, numbers)

    def send_like_to_like(self, from_number, to_numbers, texts: list[str], *, flash: bool = False) -> BatchSendResult:
        """Send each number its own text (same order); follow it with get_delivery_like_to_like."""
        line, numbers = check.line(from_number), check.recipients(to_numbers)
        contents = check.texts(texts, len(numbers))
        fields = self._send(
            "SendSmsLikeToLike", {**self._outgoing(line, numbers, flash), "messageContents": {"string": contents}}
        )
        return BatchSendResult(_sent_id("SendSmsLikeToLike", fields["smsId"]), line, numbers)

    # --- delivery -------------------------------------------------------------------------
    def get_delivery(self, rec_id: int) -> codes.DeliveryStatus:
        """The delivery status of one recipient of a SendSMS, by its rec id."""
        rec_id = check.long_id(rec_id, "rec_id")
        code = self._result("GetDelivery", {"recId": rec_id})
        if code == -1:
            raise ServiceUnavailableError(
                "The panel could not reach the telecom (the same code also answers a wrong user name or "
                "password). Check the credentials, then try again later.",
                "خطا در ارتباط با سرویس دهنده",
                operation="GetDelivery",
                code=-1,
            )
        if code == -2:
            raise NotFoundError(
                f"No message with rec id {rec_id} on this account: use a rec id from send_sms.",
                "پیام با این کد وجود ندارد",
                operation="GetDelivery",
                code=-2,
            )
        return codes.delivery_status(code)

    def get_batch_delivery(self, batch_sms_id: int, index: int = 1, count: int = DELIVERY_PAGE) -> DeliveryPage:
        """One page (at most 100) of a batch's recipients and statuses; `index` starts at 1."""
        params = {
            "batchSmsId": check.int_id(batch_sms_id, "batch_sms_id"),
            "index": check.int_id(index, "index"),
            "count": check.whole(count, "count", 1, DELIVERY_PAGE),
        }
        return self._delivery_page("GetBatchDelivery", params, batch_sms_id, index, count)

    def get_delivery_like_to_like(self, sms_id: int) -> DeliveryPage:
        sms_id = check.int_id(sms_id, "sms_id")
        return self._delivery_page("GetDeliveryLikeToLike", {"smsId": sms_id}, sms_id, 1, MAX_RECIPIENTS)

    def _delivery_page(self, operation: str, params: dict, batch: int, index: int, asked: int | None) -> DeliveryPage:
        started = time.perf_counter()
        reply = self.wire.call(operation, params)
        code, numbers, statuses = delivery_reply(reply.fields, operation, asked)
        codes.raise_for(operation, code)
        return DeliveryPage(
            batch,
            index,
            numbers,
            [codes.delivery_status(s) for s in statuses],
            time.perf_counter() - started,
            reply.raw,
            operation,
        )

    def batch_delivery(self, batch_sms_id: int) -> Paged[DeliveryPage]:
        """A batch's delivery report as a paged resource: page(), stream(), frame()."""
        batch_sms_id = check.int_id(batch_sms_id, "batch_sms_id")
        return Paged(
            lambda index, count: self.get_batch_delivery(batch_sms_id, index, count),
            DELIVERY_PAGE,
            lambda: DeliveryPage(batch_sms_id, 1, [], []).to_frame(),
        )

    def iter_batch_delivery(
        self, batch_sms_id: int, page_size: int = DELIVERY_PAGE, start: int = 1
    ) -> Iterator[DeliveryPage]:
        """Every page of a batch's delivery report; stops after the first short page."""
        page_size = check.whole(page_size, "page_size", 1, DELIVERY_PAGE)
        return self.batch_delivery(batch_sms_id).stream(start=check.int_id(start, "start"), page_size=page_size)

    def batch_delivery_frame(self, batch_sms_id: int) -> pd.DataFrame:
        """A batch's whole delivery report: number, operator, status, its name and outcome."""
        return self.batch_delivery(batch_sms_id).frame()

    # --- messages -------------------------------------------------------------------------
    def _messages_params(self, message_type, from_numbers, index: int, count: int) -> dict:
        return {
            "messageType": check.message_type(message_type),
            "fromNumbers": check.lines(from_numbers),
            "index": check.int_id(index, "index"),
            "count": check.whole(count, "count", 1, MESSAGES_PAGE),
        }

    def _message_texts(self, operation: str, params: dict) -> tuple[dict[str, list], bytes]:
        """The columns' texts of a MessageInfo list, checked against what was asked."""
        reply = self.wire.call(operation, params, read=message_columns)
        columns, raw = reply.result, reply.raw
        if columns is None:  # the service answers nil, not an empty list, when it refuses
            raise CredentialsError(
                "The service returned no list: the user name or password is wrong, or the account "
                "is inactive. Check PAYAMAK_USERNAME and PAYAMAK_PASSWORD.",
                "فهرستی برنگشت؛ نام کاربری یا رمز عبور را بررسی کنید",
                operation=operation,
            )
        rows = len(columns["message_id"])
        if "count" in params and rows > params["count"]:
            raise too_many_rows(operation, rows, params["count"])
        return columns, raw

    def get_messages(self, message_type, from_numbers=(), index: int = 1, count: int = MESSAGES_PAGE) -> list[Message]:
        """One page of sent or received messages, newest first; `index` starts at 1."""
        columns, _ = self._message_texts("GetMessages", self._messages_params(message_type, from_numbers, index, count))
        return self._message_list("GetMessages", columns)

    def get_messages_by_date_range(
        self, message_type, from_date: datetime, to_date: datetime, from_numbers=()
    ) -> list[Message]:
        """All messages between two times (Tehran time when no zone is given); no paging."""
        params = {
            "messageType": check.message_type(message_type),
            "fromNumbers": check.lines(from_numbers),
            "fromDate": check.service_time(from_date, "from_date"),
            "toDate": check.service_time(to_date, "to_date"),
        }
        columns, _ = self._message_texts("GetMessagesByDateRange", params)
        return self._message_list("GetMessagesByDateRange", columns)

    def _message_list(self, operation: str, columns: dict[str, list]) -> list[Message]:
        zone = self.settings.service_zone
        return [Message.from_texts(dict(zip(columns, row)), zone, operation) for row in zip(*columns.values())]

    def messages_page(self, message_type, from_numbers=(), index: int = 1, count: int = MESSAGES_PAGE) -> MessagePage:
        """One page of typed rows (`.rows` a DataFrame), read from the raw answer (the fast path for bulk reads)."""
        started = time.perf_counter()
        columns, raw = self._message_texts(
            "GetMessages", self._messages_params(message_type, from_numbers, index, count)
        )
        rows = message_rows(columns, self.settings.service_zone)
        return MessagePage(index, rows, time.perf_counter() - started, raw)

    def messages(self, message_type, from_numbers=()) -> Paged[MessagePage]:
        """Sent or received messages as a paged resource: page(), stream(), frame()."""
        message_type, lines = check.message_type(message_type), check.items(from_numbers or (), "from_numbers")
        return Paged(
            lambda index, count: self.messages_page(message_type, lines, index, count),
            MESSAGES_PAGE,
            lambda: messages_frame({c: [] for c in MESSAGE_COLUMNS.values()}),
        )

    def iter_messages(
        self, message_type, from_numbers=(), page_size: int = MESSAGES_PAGE, start: int = 1
    ) -> Iterator[MessagePage]:
        """Every page of sent or received messages, newest first; stops after the first short page."""
        page_size = check.whole(page_size, "page_size", 1, MESSAGES_PAGE)
        return self.messages(message_type, from_numbers).stream(start=check.int_id(start, "start"), page_size=page_size)

    def messages_frame(self, message_type, from_numbers=(), limit: int | None = None) -> pd.DataFrame:
        """Messages as one DataFrame, newest first (all of them, or the newest `limit`)."""
        return self.messages(message_type, from_numbers).frame(limit=check.limit(limit))

    # --- blacklist and content ------------------------------------------------------------
    def is_in_telecom_blacklist(self, number) -> bool:
        """Whether the telecom's advertising blacklist holds `number`."""
        code = self._result("NumberIsInTelecomBlacklist", {"number": check.mobile(number)})
        codes.raise_for("NumberIsInTelecomBlacklist", code)
        return code == 1

    def extract_telecom_blacklist(self, numbers) -> list[str]:
        """Which of `numbers` sit on the telecom's advertising blacklist."""
        raws = check.items(numbers, "numbers")
        valid = [check.mobile(n) for n in raws]
        if not valid:
            raise InputError("No numbers given: pass at least one mobile number.", "شماره ای وارد نشده است")
        reply = self.wire.call("ExtractTelecomBlacklistNumbers", {"numbers": ",".join(dict.fromkeys(valid))})
        codes.raise_for("ExtractTelecomBlacklistNumbers", _required("ExtractTelecomBlacklistNumbers", reply.result))
        return reply.fields["blacklistNumbers"]

    def check_sms_content(self, text: str) -> bool:
        """True when the panel would accept `text` (no filtered words)."""
        code = self._result("CheckSmsContent", {"message": check.message_text(text)})
        codes.raise_for("CheckSmsContent", code)
        return code == 0

    def dummy(self, number: int) -> int:
        """The service's echo: answers `number`; a cheap check that the service is up."""
        return self._result("Dummy", {"number": check.whole(number, "number", *check.INT32)})


def _unproven(operation: str, detail: str) -> SendOutcomeUnknownError:
    return SendOutcomeUnknownError(
        f"The send may or may not have gone out: {detail}. Do not resend blindly; check the account's "
        "sent messages first (payamak messages --type sent).",
        "معلوم نیست پیامک ارسال شده یا نه؛ پیش از ارسال دوباره، پیامک های ارسالی را بررسی کنید",
        operation=operation,
        retryable=False,
    )


def _sent_id(operation: str, value: int | None) -> int:
    """The id of a send the service accepted; without one the send cannot be followed."""
    if value is None or value <= 0:
        raise _unproven(operation, f"the service said it sent, but gave the id {value!r}, which cannot be followed")
    return value


def _required(operation: str, result):
    if result is None:
        raise AnswerError(
            f"The answer had no {operation}Result.",
            "پاسخ سرویس نتیجه نداشت",
            operation=operation,
            field=f"{operation}Result",
            retryable=False,
        )
    return result
