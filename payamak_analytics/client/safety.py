"""Keeping the password out of sight: a Secret that never shows itself, the scrubbing of every
text that may echo it, and log redaction for every logger of the package.

Every Secret made in this process is remembered, so that any text from the outside (a
fault's words, a value, a Location header, a log line) can be scrubbed of each of them in each
form a server may echo it in: as is, XML-escaped or as character references, percent-encoded
(whole or in part), JSON-escaped, or in base64.
"""

from __future__ import annotations

import base64
import functools
import inspect
import logging
import re
import threading
from urllib.parse import unquote, urlsplit, urlunsplit

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

    def __reduce__(self):
        """Refused: a pickle (a notebook's session dump, a process pool's argument) would hold the
        password in clear, in a file or on a pipe."""
        raise TypeError(
            "A password (Secret) is not pickled: it would be written in clear. Build the client where it is "
            "used, from the environment (PAYAMAK_USERNAME, PAYAMAK_PASSWORD)."
        )

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict) -> Secret:
        return self


# Every secret seen in this process: kept for its life, as an error or a log line may outlive the
# client whose password it echoes.
_KNOWN: dict[str, re.Pattern] = {}
_patterns: tuple[re.Pattern, ...] = ()  # longest secret first, so that one inside another does not cut it
_LOCK = threading.Lock()
_ENTITIES = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}
_FOLD = r"(?:\r?\n[ \t]*)?"  # a line break a server's folding or wrapping may put between two characters
_BASE64_CORE = 8  # a shorter run of base64 could be any word: a secret under 7 bytes is not looked for in base64


def remember(value) -> None:
    """Scrub `value` (a text) from every text shown from now on, in this process."""
    global _patterns
    if not isinstance(value, str) or len(value) < SHORTEST:
        return
    with _LOCK:
        if value not in _KNOWN:  # its own pattern, compiled once: a new secret does not compile all the others again
            _KNOWN[value] = re.compile(_written(value), re.IGNORECASE)  # a tag name or a hex escape may change its case
            _patterns = tuple(_KNOWN[known] for known in sorted(_KNOWN, key=len, reverse=True))
    install_log_redaction()


def _written(value: str) -> str:
    """A pattern for `value` in any way a server may write it back: each character as itself,
    percent-encoded, as an XML or HTML reference or a JSON escape (mixed as they come), or the
    whole in base64 at any alignment inside a longer text; folded over lines anywhere (a header,
    base64 wrapped at 76 columns)."""
    spelled = _FOLD.join(f"(?:{'|'.join(_character(ch))})" for ch in value)
    cores = (_FOLD.join(re.escape(ch) for ch in core) for core in _base64_cores(value.encode("utf-8")))
    return "|".join((spelled, *(f"(?-i:{core})" for core in cores)))


def _character(ch: str) -> list[str]:
    """The ways one character of a secret may be written: itself, its UTF-8 bytes percent-encoded,
    a decimal or hexadecimal character reference, a named entity, a JSON escape, '+' for a space."""
    code = ord(ch)
    units = ch.encode("utf-16-be", "surrogatepass")
    forms = [
        re.escape(ch),
        "".join(f"%{byte:02x}" for byte in ch.encode("utf-8", "surrogatepass")),
        f"&#0*{code};",
        f"&#x0*{code:x};",
        "".join(rf"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2)),
    ]
    if ch in _ENTITIES:
        forms.append(f"&{_ENTITIES[ch]};")
    if ch == " ":
        forms.append(r"\+")
    return forms


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters (standard and URL-safe) that only `raw`'s bytes decide, wherever in a
    longer text the bytes start (three alignments): a server's base64 of the envelope or of a
    `user:password` pair holds one of them."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + raw).decode("ascii")
        core = encoded[-(-8 * offset // 6) : 8 * (offset + len(raw)) // 6]
        if len(core) >= _BASE64_CORE:
            cores.update({core, core.replace("+", "-").replace("/", "_")})
    return cores


def scrub(text: str) -> str:
    """`text` without any secret of this process, in any form it may have been echoed in."""
    if not isinstance(text, str):
        return text
    for pattern in _patterns:
        text = pattern.sub(REDACTED, text)
    return text


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
