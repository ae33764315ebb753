"""Keeping the password out of sight: a Secret that never shows itself, and log redaction."""

from __future__ import annotations

import logging
import re

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
