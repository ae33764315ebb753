"""Keeping the password out of sight: a Secret that never shows itself, the scrubbing of every
text that may echo it, and log redaction for every logger of the package.

Every Secret made in this process is remembered, so that any text from the outside (a
fault's words, a value, a Location header, a log line) can be scrubbed of each of them in each
form a server may echo it in: as is, XML-escaped, or URL-encoded.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import threading
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit
from xml.sax.saxutils import escape

from ..errors import PayamakError

_PASSWORD_ELEMENT = re.compile(r"(<(?:[\w.-]+:)?password\b[^>]*>)(.*?)(</)", re.IGNORECASE | re.DOTALL)
REDACTED = "***"
SHORTEST = 3  # a secret shorter than this is not scrubbed from texts (it would eat ordinary words)


class Secret:
    """A password that shows itself as *** in reprs, logs, tracebacks and notebook outputs."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        remember(value)

    @classmethod
    def of(cls, value) -> Secret | None:
        """`value` as a Secret (a Secret stays itself; None stays None)."""
        return value if value is None or isinstance(value, Secret) else cls(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


# The forms of every secret seen in this process: kept for its life, as an error or a log line
# may outlive the client whose password it echoes.
_KNOWN: set[str] = set()
_pattern: re.Pattern | None = None
_LOCK = threading.Lock()


def remember(value) -> None:
    """Scrub `value` (a text) from every text shown from now on, in this process."""
    global _pattern
    forms = set(_forms(value)) if isinstance(value, str) else set()
    with _LOCK:
        if not forms <= _KNOWN:
            _KNOWN.update(forms)
            alternatives = "|".join(re.escape(form) for form in sorted(_KNOWN, key=len, reverse=True))
            _pattern = re.compile(alternatives, re.IGNORECASE)  # a tag name or a hex escape may change its case
    if forms:
        install_log_redaction()


def _forms(value: str) -> tuple[str, ...]:
    """The ways a server may write `value` back: as is, XML-escaped, URL-encoded; longest first."""
    if len(value) < SHORTEST:
        return ()
    xml = escape(value, {'"': "&quot;", "'": "&apos;"})
    encoded = {quote(value, safe=""), quote_plus(value, safe="")}
    return tuple(sorted({value, escape(value), xml, *encoded}, key=len, reverse=True))


def scrub(text: str) -> str:
    """`text` without any secret of this process, in any form it may have been echoed in."""
    pattern = _pattern
    if not isinstance(text, str) or not text or pattern is None:
        return text
    return pattern.sub(REDACTED, text)


def scrub_error(error: BaseException) -> BaseException:
    """`error` with every text it holds (its message, its args and string attributes) scrubbed, in place."""
    error.args = tuple(scrub(a) if isinstance(a, str) else a for a in error.args)
    for name, value in list(vars(error).items()):
        if isinstance(value, str):
            setattr(error, name, scrub(value))
    return error


def sealed(error: BaseException) -> BaseException:
    """`error` scrubbed, and cut from what it passed through: its chain (the Python error it
    replaced still holds the text it failed on) and its frames (they held the answer's bytes)."""
    scrub_error(error)
    error.__cause__ = error.__context__ = None
    error.__suppress_context__ = True
    return error.with_traceback(None)


def seals_errors(cls: type) -> type:
    """`cls` with every public method raising its PayamakErrors sealed (see `sealed`)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _sealing(member))
    return cls


def _sealing(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except PayamakError as error:
            failure = sealed(error)
        raise failure

    return call


def shown_url(url: str) -> str:
    """`url` fit to show: any user name and password in it replaced by ***."""
    if not isinstance(url, str) or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}")) if "@" in parts.netloc else url
    except ValueError:
        return re.sub(r"//[^/@]*@", f"//{REDACTED}@", url)


def remember_url_password(url: str | None) -> None:
    """Make the password a URL carries in its user-info (http://user:pass@host/) a secret to scrub."""
    try:
        password = urlsplit(url).password if url else None
    except ValueError:
        return
    if password:
        remember(password)
        remember(unquote(password))  # as written in the URL, and as meant


def redact(text: str) -> str:
    """`text` with the content of every <password> element replaced by ***, and every known
    secret scrubbed."""
    return scrub(_PASSWORD_ELEMENT.sub(rf"\g<1>{REDACTED}\g<3>", text))


WATCHED = ("payamak_analytics", "zeep", "urllib3", "requests")


def clean(record: logging.LogRecord) -> logging.LogRecord:
    """`record` with its message redacted (rendered once, then kept as plain text)."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 (a broken format is the logging module's to report, not ours)
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    return record


_installed = False


def install_log_redaction() -> None:
    """Redact every record of the package's loggers (children included) and of the HTTP and SOAP
    libraries below it, whatever handler prints it: the records are cleaned where they are made
    (idempotent)."""
    global _installed
    with _LOCK:
        if _installed:
            return
        _installed = True
        made = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = made(*args, **kwargs)
        return clean(record) if record.name.startswith(WATCHED) else record

    logging.setLogRecordFactory(factory)
