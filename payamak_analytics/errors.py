"""One error type for everything the service or this toolkit refuses, carrying the code.

Catch `PayamakError` for all of them; the subclasses say what kind of thing to fix. Every
message says what to do next, in English (`message_en`) and Persian (`message_fa`).
"""

from __future__ import annotations


class PayamakError(Exception):
    def __init__(self, message_en: str, message_fa: str = "", *, operation: str = "", code: int | None = None):
        super().__init__(message_en)
        self.operation = operation
        self.code = code
        self.message_en = message_en
        self.message_fa = message_fa

    def __str__(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        code = f" (code {self.code})" if self.code is not None else ""
        return f"{where}{self.message_en}{code}"


class InputError(PayamakError, ValueError):
    """Refused before anything was sent: a bad number, an empty text, too many recipients."""


class CredentialsError(PayamakError):
    """The user name or password is wrong."""


class AccountStateError(PayamakError):
    """The account is inactive or blocked."""


class SenderLineError(PayamakError):
    """The sender line is not the account's, or is inactive."""


class LimitError(PayamakError):
    """A daily or per-call limit was reached."""


class CreditError(PayamakError):
    """Not enough credit for this send."""


class ContentError(PayamakError):
    """The text contains filtered words."""


class NotFoundError(PayamakError):
    """No send or message with this id (or its report has gone)."""


class ServiceUnavailableError(PayamakError):
    """The panel is updating, its web service is off, or it could not reach the telecom."""


class UnsupportedOperationError(PayamakError):
    """This deployment of the service does not have the operation."""


class UnknownCodeError(PayamakError):
    """The service answered with a result code this toolkit does not know."""


class TransportError(PayamakError):
    """The network or the server failed: no usable answer came back.

    `retryable` says whether asking again can help (a reset, a 503: yes; a redirect, a 404: no);
    `retry_after` holds the seconds a 503 or 429 asked to wait, when it said.
    """

    def __init__(
        self,
        message_en: str,
        message_fa: str = "",
        *,
        operation: str = "",
        code: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        fault_code: str = "",
    ):
        super().__init__(message_en, message_fa, operation=operation, code=code)
        self.retryable = retryable
        self.retry_after = retry_after
        self.fault_code = fault_code


class SoapFaultError(TransportError):
    """The service answered with a SOAP Fault instead of a result; `fault_code` is its QName,
    written `{namespace}name`."""


class AnswerError(TransportError):
    """The answer is not what the contract says: not SOAP, too large, or a value of the wrong
    kind (`field` and `value` name it)."""

    def __init__(self, message_en: str, message_fa: str = "", *, field: str = "", value: str = "", **kwargs):
        super().__init__(message_en, message_fa, **kwargs)
        self.field = field
        self.value = value


class RedirectRefusedError(TransportError):
    """The address answered with a redirect; SOAP calls never follow one (the envelope holds the
    password). `location` is where it pointed."""

    def __init__(self, message_en: str, message_fa: str = "", *, location: str = "", **kwargs):
        super().__init__(message_en, message_fa, **kwargs)
        self.location = location


class NotSentError(TransportError):
    """A send that provably never ran: refused before it left this machine, a refused connection,
    an unknown host, or a SOAP Fault raised before the service ran the operation. Safe to send again."""


class SendOutcomeUnknownError(TransportError):
    """A send left this machine but no answer proves what happened: it may or may not have gone out.

    Never resend blindly: check the account's sent messages (GetMessages) first.
    """


class StoreLockedError(PayamakError):
    """Another process holds the store's DuckDB file for longer than this one waited."""


class StoreError(InputError):
    """The store path is not a usable store (a folder, another file, another account's store)."""


class SyncError(PayamakError):
    """A sync stopped; everything committed before it is kept, and the next run resumes."""


class CampaignLockedError(PayamakError):
    """Another live process is sending this campaign: one sender per campaign at a time."""


class JournalConflictError(PayamakError):
    """A campaign's journal did not change as its one sender expected: nothing more is sent."""


class AlertDeliveryError(PayamakError):
    """A sink could not deliver an alert now; the watch keeps it and tries again next cycle."""


class AlertRefusedError(AlertDeliveryError):
    """The receiver refused an alert for good (an HTTP 4xx, an SMTP 5xx): it is kept, not retried."""
