"""PanelClient: every operation of the SendService, typed, safe, with fast pages.

One zeep client and one requests session per instance. Reads are retried on network trouble
(tenacity); sends never are, and a send whose answer was lost raises SendOutcomeUnknownError.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd
import platformdirs
import requests
import zeep
import zeep.cache
import zeep.exceptions
from dotenv import dotenv_values, find_dotenv
from lxml import etree
from requests.adapters import HTTPAdapter

from .. import codes, phone
from .. import text as sms_text
from ..dates import TEHRAN
from ..errors import (
    InputError,
    NotFoundError,
    PayamakError,
    SendOutcomeUnknownError,
    SoapFaultError,
    TransportError,
    UnsupportedOperationError,
)
from ..i18n import latin_digits
from ..wsdl import WSDL_PATH
from .pages import MESSAGE_COLUMNS, delivery_columns, message_columns, messages_frame, parse_envelope, response_element
from .results import BatchSendResult, DeliveryPage, Message, MessagePage, Recipient, SendPlan, SendResult
from .safety import Secret, install_log_redaction, read_retrying

log = logging.getLogger("payamak_analytics.client")

REAL_WSDL = "http://payamak-service.ir/SendService.svc?wsdl"
BINDING = "{http://tempuri.org/}BasicHttpBinding_ISendService"
MODELS = "http://schemas.datacontract.org/2004/07/SMSPanel.Domain.Models"
MAX_RECIPIENTS = 100
MAX_TEXT_PARTS = 10
MESSAGES_PAGE = 1000
DELIVERY_PAGE = 100
RECEIVED, SENT = 1, 2
_MESSAGE_TYPES = {"received": RECEIVED, "in": RECEIVED, "inbox": RECEIVED, "sent": SENT, "out": SENT}
_SPLIT = re.compile(r"[,;\s]+")


def _wsdl_cache() -> zeep.cache.SqliteCache:
    """A persistent cache of downloaded WSDL and schemas, so a client builds in milliseconds."""
    folder = Path(platformdirs.user_cache_dir("payamak_analytics"))
    folder.mkdir(parents=True, exist_ok=True)
    return zeep.cache.SqliteCache(path=str(folder / "wsdl-cache.sqlite"), timeout=7 * 86400)


class PanelClient:
    """A client of one panel account.

    Credentials come from the arguments, else PAYAMAK_USERNAME / PAYAMAK_PASSWORD (the
    environment or a .env file). `wsdl` (or PAYAMAK_WSDL) defaults to the real service;
    "bundled" loads the copy shipped with this package; `endpoint` (or PAYAMAK_ENDPOINT)
    overrides the address calls go to.
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        wsdl: str | None = None,
        endpoint: str | None = None,
        timeout: float = 30.0,
        session: requests.Session | None = None,
        read_attempts: int = 4,
        max_retry_wait: float = 5.0,
        cache_wsdl: bool = True,
    ):
        settings = {**dotenv_values(find_dotenv(usecwd=True)), **os.environ}
        username = username or settings.get("PAYAMAK_USERNAME")
        password = password or settings.get("PAYAMAK_PASSWORD")
        if not username or not password:
            raise InputError(
                "No credentials: pass username= and password=, or set PAYAMAK_USERNAME and "
                "PAYAMAK_PASSWORD (in the environment or a .env file).",
                "نام کاربری و رمز عبور تعیین نشده است",
            )
        wsdl = wsdl or settings.get("PAYAMAK_WSDL") or REAL_WSDL
        wsdl = str(WSDL_PATH) if wsdl == "bundled" else wsdl
        endpoint = endpoint or settings.get("PAYAMAK_ENDPOINT") or None
        install_log_redaction()
        self.username = username
        self._password = Secret(password)
        self.timeout = timeout
        self.read_attempts = read_attempts
        self.max_retry_wait = max_retry_wait
        self._own_session = session is None
        self.session = session or requests.Session()
        if self._own_session:
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
        transport = zeep.Transport(
            session=self.session,
            timeout=timeout,
            operation_timeout=timeout,
            cache=_wsdl_cache() if cache_wsdl else None,
        )
        zeep_settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, xml_huge_tree=False)
        try:
            self._zeep = zeep.Client(wsdl, transport=transport, settings=zeep_settings)
        except (requests.RequestException, OSError, etree.XMLSyntaxError, zeep.exceptions.Error) as error:
            raise TransportError(
                f"Could not load the service description from {wsdl}: {error}. Check the address "
                "(PAYAMAK_WSDL) and the network, or use wsdl='bundled' with endpoint=.",
                "توضیحات سرویس (WSDL) بارگیری نشد",
            ) from None
        self._service = self._zeep.create_service(BINDING, endpoint) if endpoint else self._zeep.service
        self._binding = binding = self._zeep.wsdl.bindings[BINDING]
        self.endpoint = (
            endpoint
            or next(iter(self._zeep.wsdl.services.values()))
            .ports["BasicHttpBinding_ISendService"]
            .binding_options["address"]
        )
        self.operations = frozenset(binding.all())
        message_type = self._zeep.get_type(f"{{{MODELS}}}MessageInfo")
        declared = {name.lower() for name, _ in message_type.elements}
        self.missing_message_fields = frozenset(name for name in MESSAGE_COLUMNS if name.lower() not in declared)
        if self.missing_message_fields:
            log.info(
                "This deployment's MessageInfo has no %s: those columns will be empty.",
                ", ".join(sorted(self.missing_message_fields)),
            )
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PanelClient(username={self.username!r}, endpoint={self.endpoint!r})"

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> "PanelClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the wire -------------------------------------------------------------------------
    def has(self, operation: str) -> bool:
        """Whether this deployment of the service has `operation` (the 2020 one lacks some)."""
        return operation in self.operations

    def require(self, operation: str) -> None:
        if not self.has(operation):
            raise UnsupportedOperationError(
                f"This deployment of the service has no {operation} operation (older ones lack some); "
                "see client.operations for the ones it has.",
                f"این سرویس متد {operation} را ندارد",
                operation=operation,
            )

    def _call(self, operation: str, params: dict, *, raw: bool = False, check=None):
        """One call; reads go through the retry policy (`check` may raise on the answer to retry
        it too), sends go exactly once."""
        self.require(operation)
        if operation in codes.SEND_OPERATIONS:
            return self._call_once(operation, params, raw)

        def count_retry(state) -> None:
            with self._lock:
                self.retries[operation] += 1
            log.info("%s failed (%s); retry %d", operation, state.outcome.exception(), state.attempt_number)

        for attempt in read_retrying(self.read_attempts, self.max_retry_wait, count_retry):
            with attempt:
                answer = self._call_once(operation, params, raw)
                if check is not None:
                    check(answer)
                return answer

    def _call_once(self, operation: str, params: dict, raw: bool):
        """Post once and read the HTTP answer ourselves, so every failure is classified here:
        for a send, whether it may have gone out."""
        args = (
            params
            if operation == "Dummy"
            else {"userName": self.username, "password": self._password.reveal(), **params}
        )
        send = operation in codes.SEND_OPERATIONS
        with self._lock:
            self.calls[operation] += 1
        started = time.perf_counter()
        try:
            with self._zeep.settings(raw_response=True):
                response = getattr(self._service, operation)(**args)
        except zeep.exceptions.ValidationError as error:
            raise InputError(
                f"The arguments do not fit the service's contract: {error}.",
                "ورودی ها با قرارداد سرویس سازگار نیستند",
                operation=operation,
            ) from None
        except (requests.ConnectTimeout, requests.exceptions.SSLError) as error:
            raise self._failure(
                operation, f"could not connect ({type(error).__name__})", send, maybe_sent=False
            ) from None
        except requests.ConnectionError as error:
            never_connected = "NewConnectionError" in repr(error) or "Connection refused" in str(error)
            raise self._failure(
                operation, f"the connection failed ({type(error).__name__})", send, maybe_sent=not never_connected
            ) from None
        except requests.RequestException as error:
            raise self._failure(operation, f"no answer ({type(error).__name__})", send, maybe_sent=True) from None
        finally:
            log.debug("%s took %.1f ms", operation, (time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            self._raise_for_http(operation, response.status_code, response.content, send)
        if raw:
            return response.content
        envelope = parse_envelope(response.content, operation)
        try:
            return self._binding.get(operation).process_reply(envelope)
        except zeep.exceptions.Error as error:
            raise self._failure(
                operation, f"the answer did not fit the contract ({error})", send, maybe_sent=True
            ) from None

    def _raise_for_http(self, operation: str, status: int, body: bytes, send: bool):
        """A non-200 answer: a SOAP Fault from the client side (s:Client) or a 503 means not done."""
        try:
            response_element(body, operation)
            detail, refused = f"HTTP {status}", False
        except SoapFaultError as fault:
            detail, refused = f"HTTP {status}, {fault.message_en}", fault.fault_code.lower().endswith("client")
        except TransportError:
            detail, refused = f"HTTP {status} from the server", False
        raise self._failure(operation, detail, send, maybe_sent=not refused and status != 503)

    @staticmethod
    def _failure(operation: str, detail: str, send: bool, maybe_sent: bool) -> TransportError:
        if send and maybe_sent:
            return SendOutcomeUnknownError(
                f"The send may or may not have gone out: {detail}. Do not resend blindly; check the account's "
                "sent messages first (payamak messages --type sent).",
                "معلوم نیست پیامک ارسال شده یا نه؛ پیش از ارسال دوباره، پیامک های ارسالی را بررسی کنید",
                operation=operation,
            )
        suffix = (
            " Nothing was sent; it is safe to try again."
            if send
            else " Try again, or check the network and the address."
        )
        return TransportError(f"{detail}.{suffix}", "ارتباط با سرویس برقرار نشد", operation=operation)

    # --- input checks ---------------------------------------------------------------------
    @staticmethod
    def _line(from_number) -> str:
        line = re.sub(r"[\s\-]", "", latin_digits(str(from_number))) if isinstance(from_number, (str, int)) else ""
        if not line.isdigit() or not 3 <= len(line) <= 20:
            raise InputError(
                f"{from_number!r} is not a sender line: pass the line's digits, like '10002188'.",
                "شماره فرستنده معتبر نیست",
            )
        return line

    @staticmethod
    def _recipients(to_numbers) -> list[str]:
        if isinstance(to_numbers, (str, int)):
            to_numbers = [n for n in _SPLIT.split(str(to_numbers)) if n]
        if not isinstance(to_numbers, Iterable) or isinstance(to_numbers, (bytes, dict)):
            raise InputError(
                f"to_numbers must be a list of numbers, not {type(to_numbers).__name__}.",
                "گیرندگان باید فهرستی از شماره ها باشند",
            )
        raws = list(to_numbers)
        if not raws:
            raise InputError("No recipients: pass at least one number.", "هیچ گیرنده ای وارد نشده است")
        if len(raws) > MAX_RECIPIENTS:
            raise InputError(
                f"{len(raws)} recipients; the service takes at most {MAX_RECIPIENTS} a call. "
                "Split the list into calls of at most 100 numbers.",
                "حداکثر ۱۰۰ گیرنده در هر ارسال",
            )
        numbers, invalid = [], []
        for raw in raws:
            try:
                numbers.append(phone.normalize(raw))
            except InputError:
                invalid.append(repr(raw))
        if invalid:
            raise InputError(
                f"Not Iranian mobile numbers: {', '.join(invalid)}. Write them like 09121234567; nothing was sent.",
                "شماره های نامعتبر: " + "، ".join(invalid),
            )
        duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
        if duplicates:
            raise InputError(
                f"These numbers appear more than once: {', '.join(duplicates)}. Nothing was sent.",
                "شماره های تکراری: " + "، ".join(duplicates),
            )
        return numbers

    @staticmethod
    def _text(value, name: str = "text") -> str:
        if not isinstance(value, str):
            raise InputError(f"{name} must be a string, not {type(value).__name__}.", "متن پیامک باید رشته باشد")
        if not value.strip():
            raise InputError(f"{name} is empty: write the message to send.", "متن پیامک خالی است")
        info = sms_text.analyze(value)
        if info.parts > MAX_TEXT_PARTS:
            raise InputError(
                f"{name} takes {info.parts} parts ({info.characters} characters, {info.encoding}); "
                f"the limit here is {MAX_TEXT_PARTS}. Shorten it.",
                "متن پیامک بیش از حد طولانی است",
            )
        return value

    @staticmethod
    def _flag(value, name: str) -> bool:
        if not isinstance(value, bool):
            raise InputError(f"{name} must be True or False, not {value!r}.", f"مقدار {name} باید درست یا نادرست باشد")
        return value

    @staticmethod
    def _whole(value, name: str, low: int, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise InputError(f"{name} must be a whole number {bound}, not {value!r}.", f"مقدار {name} نامعتبر است")
        return value

    @staticmethod
    def _message_type(value) -> int:
        if isinstance(value, str) and value.strip().lower() in _MESSAGE_TYPES:
            return _MESSAGE_TYPES[value.strip().lower()]
        if value in (RECEIVED, SENT) and not isinstance(value, bool):
            return int(value)
        raise InputError(
            f"message_type must be 'sent' (2) or 'received' (1), not {value!r}.",
            "نوع پیام باید دریافتی (۱) یا ارسالی (۲) باشد",
        )

    def _lines(self, from_numbers) -> dict | None:
        if isinstance(from_numbers, (str, int)):
            from_numbers = [n for n in _SPLIT.split(str(from_numbers)) if n]
        lines = [self._line(n) for n in from_numbers or ()]
        return {"string": lines} if lines else None

    # --- account --------------------------------------------------------------------------
    def get_credit(self) -> Decimal:
        """The account's credit, in SMS."""
        credit = self._call("GetCredit", {})
        if credit < 0:
            codes.raise_for("GetCredit", int(credit))
        return credit

    def get_inbox_count(self, is_read: bool = False) -> int:
        """How many received messages are read (`True`) or unread (`False`)."""
        count = self._call("GetInboxCount", {"isRead": self._flag(is_read, "is_read")})
        codes.raise_for("GetInboxCount", count)
        return count

    def get_sender_numbers(self) -> list[str]:
        """The account's sender lines."""
        answer = self._call("GetSenderNumbers", {}) or ""
        if answer.strip().lstrip("-").isdigit() and int(answer) < 0:
            codes.raise_for("GetSenderNumbers", int(answer))
        return [n for n in _SPLIT.split(answer) if n]

    # --- sending --------------------------------------------------------------------------
    def plan_send(self, from_number, to_numbers, text: str) -> SendPlan:
        """Check a send without making it: numbers normalised, text counted. Raises InputError."""
        line, numbers, text = self._line(from_number), self._recipients(to_numbers), self._text(text)
        return SendPlan(line, numbers, text, sms_text.analyze(text))

    def _outgoing(self, line: str, numbers: list[str], flash) -> dict:
        """The arguments every send operation shares."""
        return {"fromNumber": line, "toNumbers": {"string": numbers}, "isFlash": self._flag(flash, "flash")}

    def send_sms(self, from_number, to_numbers, text: str, *, flash: bool = False) -> SendResult:
        """Send one text to 1..100 numbers; the result has a rec id per recipient for get_delivery."""
        line, numbers = self._line(from_number), self._recipients(to_numbers)
        answer = self._call(
            "SendSMS",
            {**self._outgoing(line, numbers, flash), "messageContent": self._text(text), "recId": None, "status": None},
        )
        codes.raise_for("SendSMS", answer.SendSMSResult)
        rec_ids = list(answer.recId.long) if answer.recId is not None else []
        flags = bytes(answer.status or b"")
        recipients = [
            Recipient(n, rec_ids[i] if i < len(rec_ids) else 0, i < len(flags) and flags[i] == 1)
            for i, n in enumerate(numbers)
        ]
        return SendResult(line, recipients)

    def send_batch_sms(self, from_number, to_numbers, text: str, *, flash: bool = False) -> BatchSendResult:
        """Send one text to 1..100 numbers as a batch; follow it with get_batch_delivery."""
        line, numbers = self._line(from_number), self._recipients(to_numbers)
        answer = self._call(
            "SendBatchSms",
            {**self._outgoing(line, numbers, flash), "messageContent": self._text(text)},
        )
        codes.raise_for("SendBatchSms", answer.SendBatchSmsResult)
        return BatchSendResult(answer.batchSmsId, line, numbers)

    def send_like_to_like(self, from_number, to_numbers, texts: list[str], *, flash: bool = False) -> BatchSendResult:
        """Send each number its own text (same order); follow it with get_delivery_like_to_like."""
        line, numbers = self._line(from_number), self._recipients(to_numbers)
        if isinstance(texts, str) or len(list(texts)) != len(numbers):
            raise InputError(
                "texts must be a list with one text per number, in the same order.", "برای هر شماره یک متن لازم است"
            )
        contents = [self._text(t, f"texts[{i}]") for i, t in enumerate(texts)]
        answer = self._call(
            "SendSmsLikeToLike",
            {**self._outgoing(line, numbers, flash), "messageContents": {"string": contents}},
        )
        codes.raise_for("SendSmsLikeToLike", answer.SendSmsLikeToLikeResult)
        return BatchSendResult(answer.smsId, line, numbers)

    # --- delivery -------------------------------------------------------------------------
    def get_delivery(self, rec_id: int) -> codes.DeliveryStatus:
        """The delivery status of one recipient of a SendSMS, by its rec id."""
        rec_id = self._whole(rec_id, "rec_id", 1)

        def check(answer) -> None:
            if answer == -1:
                raise PayamakError(
                    "The panel could not reach the telecom (the same code also answers a wrong "
                    "user name or password). Try again later.",
                    "خطا در ارتباط با سرویس دهنده",
                    operation="GetDelivery",
                    code=-1,
                )

        code = int(self._call("GetDelivery", {"recId": rec_id}, check=check))
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
        return self._delivery_page(
            "GetBatchDelivery",
            {
                "batchSmsId": self._whole(batch_sms_id, "batch_sms_id", 1),
                "index": self._whole(index, "index", 1),
                "count": self._whole(count, "count", 1, DELIVERY_PAGE),
            },
        )

    def get_delivery_like_to_like(self, sms_id: int) -> DeliveryPage:
        return self._delivery_page("GetDeliveryLikeToLike", {"smsId": self._whole(sms_id, "sms_id", 1)})

    def _delivery_page(self, operation: str, params: dict) -> DeliveryPage:
        started = time.perf_counter()
        raw = self._call(operation, params, raw=True)
        code, numbers, statuses = delivery_columns(raw, operation)
        codes.raise_for(operation, code)
        batch = params.get("batchSmsId", params.get("smsId"))
        return DeliveryPage(
            batch,
            params.get("index", 1),
            numbers,
            [codes.delivery_status(s) for s in statuses],
            time.perf_counter() - started,
            raw,
        )

    def iter_batch_delivery(
        self, batch_sms_id: int, page_size: int = DELIVERY_PAGE, start: int = 1
    ) -> Iterator[DeliveryPage]:
        """Every page of a batch's delivery report; stops after the first short page."""
        index = start
        while True:
            page = self.get_batch_delivery(batch_sms_id, index, page_size)
            if len(page):
                yield page
            if len(page) < page_size:
                return
            index += len(page)

    def batch_delivery_frame(self, batch_sms_id: int) -> pd.DataFrame:
        """A batch's whole delivery report: number, operator, status, its name and outcome."""
        frames = [p.to_frame() for p in self.iter_batch_delivery(batch_sms_id)]
        return pd.concat(frames, ignore_index=True) if frames else DeliveryPage(batch_sms_id, 1, [], []).to_frame()

    # --- messages -------------------------------------------------------------------------
    def get_messages(self, message_type, from_numbers=(), index: int = 1, count: int = MESSAGES_PAGE) -> list[Message]:
        """One page of sent or received messages, newest first; `index` starts at 1."""
        return self._message_list(
            "GetMessages",
            {
                "messageType": self._message_type(message_type),
                "fromNumbers": self._lines(from_numbers),
                "index": self._whole(index, "index", 1),
                "count": self._whole(count, "count", 1, MESSAGES_PAGE),
            },
        )

    def get_messages_by_date_range(
        self, message_type, from_date: datetime, to_date: datetime, from_numbers=()
    ) -> list[Message]:
        """All messages between two times (Tehran time when no zone is given); no paging."""
        dates = []
        for name, value in (("from_date", from_date), ("to_date", to_date)):
            if not isinstance(value, datetime):
                raise InputError(f"{name} must be a datetime, not {value!r}.", "تاریخ نامعتبر است")
            dates.append(value.astimezone(TEHRAN).replace(tzinfo=None) if value.tzinfo else value)
        return self._message_list(
            "GetMessagesByDateRange",
            {
                "messageType": self._message_type(message_type),
                "fromNumbers": self._lines(from_numbers),
                "fromDate": dates[0],
                "toDate": dates[1],
            },
        )

    def _message_list(self, operation: str, params: dict) -> list[Message]:
        columns = self._message_columns(operation, self._call(operation, params, raw=True))
        return [Message.from_texts(dict(zip(columns, row))) for row in zip(*columns.values())]

    @staticmethod
    def _message_columns(operation: str, raw: bytes) -> dict[str, list]:
        columns = message_columns(raw, operation)
        if columns is None:  # the service answers nil, not an empty list, when it refuses
            raise PayamakError(
                "The service returned no list: the user name or password is wrong, or the account "
                "is inactive. Check PAYAMAK_USERNAME and PAYAMAK_PASSWORD.",
                "فهرستی برنگشت؛ نام کاربری یا رمز عبور را بررسی کنید",
                operation=operation,
            )
        return columns

    def messages_page(self, message_type, from_numbers=(), index: int = 1, count: int = MESSAGES_PAGE) -> MessagePage:
        """One page as a typed DataFrame, read from the raw answer (the fast path for bulk reads)."""
        started = time.perf_counter()
        raw = self._call(
            "GetMessages",
            {
                "messageType": self._message_type(message_type),
                "fromNumbers": self._lines(from_numbers),
                "index": self._whole(index, "index", 1),
                "count": self._whole(count, "count", 1, MESSAGES_PAGE),
            },
            raw=True,
        )
        return MessagePage(
            index, messages_frame(self._message_columns("GetMessages", raw)), time.perf_counter() - started, raw
        )

    def iter_messages(
        self, message_type, from_numbers=(), page_size: int = MESSAGES_PAGE, start: int = 1
    ) -> Iterator[MessagePage]:
        """Every page of sent or received messages, newest first; stops after the first short page."""
        index = start
        while True:
            page = self.messages_page(message_type, from_numbers, index, page_size)
            if len(page):
                yield page
            if len(page) < page_size:
                return
            index += len(page)

    def messages_frame(self, message_type, from_numbers=(), limit: int | None = None) -> pd.DataFrame:
        """Messages as one DataFrame, newest first (all of them, or the newest `limit`)."""
        frames, total = [], 0
        size = min(MESSAGES_PAGE, limit) if limit else MESSAGES_PAGE
        for page in self.iter_messages(message_type, from_numbers, page_size=size):
            frames.append(page.rows)
            total += len(page)
            if limit and total >= limit:
                break
        if not frames:
            return messages_frame({c: [] for c in MESSAGE_COLUMNS.values()})
        frame = pd.concat(frames, ignore_index=True)
        return frame.head(limit) if limit else frame

    # --- blacklist and content ------------------------------------------------------------
    def is_in_telecom_blacklist(self, number) -> bool:
        """Whether the telecom's advertising blacklist holds `number`."""
        code = self._call("NumberIsInTelecomBlacklist", {"number": phone.normalize(number)})
        codes.raise_for("NumberIsInTelecomBlacklist", code)
        return code == 1

    def extract_telecom_blacklist(self, numbers) -> list[str]:
        """Which of `numbers` sit on the telecom's advertising blacklist."""
        valid, invalid = phone.normalize_many([numbers] if isinstance(numbers, str) else numbers)
        if invalid or not valid:
            raise InputError(f"Not Iranian mobile numbers: {invalid or 'none given'}.", "شماره های نامعتبر")
        answer = self._call("ExtractTelecomBlacklistNumbers", {"numbers": ",".join(valid)})
        codes.raise_for("ExtractTelecomBlacklistNumbers", answer.ExtractTelecomBlacklistNumbersResult)
        return list(answer.blacklistNumbers.string) if answer.blacklistNumbers is not None else []

    def check_sms_content(self, text: str) -> bool:
        """True when the panel would accept `text` (no filtered words)."""
        code = self._call("CheckSmsContent", {"message": self._text(text)})
        codes.raise_for("CheckSmsContent", code)
        return code == 0

    def dummy(self, number: int) -> int:
        """The service's echo: answers `number`; a cheap check that the service is up."""
        return self._call("Dummy", {"number": self._whole(number, "number", -(2**31), 2**31 - 1)})
