"""Keeping the password out of sight, and retrying only what is safe to retry."""

from __future__ import annotations

import logging
import re

import tenacity

from ..errors import PayamakError, SendOutcomeUnknownError, TransportError

_PASSWORD_ELEMENT = re.compile(r"(<(?:[\w.-]+:)?password\b[^>]*>)(.*?)(</)", re.IGNORECASE | re.DOTALL)
REDACTED = "***"


class Secret:
    """A password that shows itself as *** in reprs, logs, tracebacks and notebook outputs."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def redact(text: str) -> str:
    """`text` with the content of every <password> element replaced by ***."""
    return _PASSWORD_ELEMENT.sub(rf"\g<1>{REDACTED}\g<3>", text)


class RedactPasswords(logging.Filter):
    """Rewrites log records (zeep's DEBUG dumps of every envelope) without the password."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactPasswords()


def install_log_redaction() -> None:
    """Attach the filter to the loggers that print request bodies (idempotent)."""
    for name in ("zeep.transports", "payamak_analytics"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def is_retryable_read_error(error: BaseException) -> bool:
    """Reads are retried on transport trouble and on the provider's -1; nothing else."""
    if isinstance(error, SendOutcomeUnknownError):
        return False
    if isinstance(error, TransportError):
        return True
    return isinstance(error, PayamakError) and error.code == -1 and error.operation in ("GetDelivery", "GetDeilvery")


def read_retrying(attempts: int, max_wait: float, on_retry) -> tenacity.Retrying:
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=0.2, max=max_wait) + tenacity.wait_random(0, 0.1),
        retry=tenacity.retry_if_exception(is_retryable_read_error),
        before_sleep=on_retry,
        reraise=True,
    )
