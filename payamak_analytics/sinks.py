"""Where alerts go: the log (and so the terminal), a webhook, email, and SMS through the panel.

A sink is anything with `send(notice)` that raises when it could not deliver. The log gets
every notice at once; the other sinks get theirs through `Dispatcher`: queued in the store,
delivered by each sink in its own thread within a budget per cycle (15 s at most), and what a
sink could not take is tried again next cycle, and by the next process after a restart. A
sink never stops or stretches the watch, and the alert is in the store either way
(`payamak_analytics.alerts.alerts(store)`; what each sink owes: `store.read_outbox()`).

The webhook's payload, one JSON POST per raised alert and one per ended alert, with the header
`Idempotency-Key: payamak-alert-<alert_id>-<event>` (the same on every try: a receiver that
sees it twice, after a timeout whose answer was lost, may drop the second). 2xx is delivered;
a redirect or another 4xx (but 408, 425, 429) is refused for good and kept as refused; anything
else is tried again:

    {"event": "raised" | "ended", "alert_id": 3, "incident": "delivery/operator=MCI",
     "kind": "delivery_drop", "severity": "warning" | "critical",
     "operator": "MCI" | null, "line": "10002188" | null, "code": 9 | null,
     "title": "...", "title_fa": "...", "evidence": {...},
     "first_seen": "2025-11-24T10:15:00+03:30", "last_seen": "...", "ended_at": null | "...",
     "account": "panel user name"}

`evidence` holds the counts, the rates with their 95% intervals, the baseline used and the codes
that moved (see `payamak_analytics.alerts`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import smtplib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import fields
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import urlsplit

import requests

from .alerts import Alert, Notice
from .client.safety import remember, remember_url_password
from .dates import TEHRAN
from .errors import AlertDeliveryError, AlertRefusedError, InputError, PayamakError, SendOutcomeUnknownError
from .phone import normalize
from .store import Store

log = logging.getLogger("payamak_analytics.watch")


class Sink(Protocol):
    """Delivers one notice, or raises (AlertDeliveryError: try again later; AlertRefusedError:
    never). A `name` attribute, stable across restarts, keys what it still owes in the store."""

    def send(self, notice: Notice) -> None: ...


def payload(notice: Notice, account: str = "") -> dict:
    """The JSON a webhook receives (documented above)."""
    alert = notice.alert
    return {
        "event": notice.event,
        "alert_id": alert.alert_id,
        "incident": alert.incident,
        "kind": alert.kind,
        "severity": alert.severity,
        "operator": alert.operator,
        "line": alert.line,
        "code": alert.code,
        "title": alert.title,
        "title_fa": alert.title_fa,
        "evidence": alert.evidence,
        "first_seen": _iso(alert.first_seen),
        "last_seen": _iso(alert.last_seen),
        "ended_at": _iso(alert.ended_at),
        "account": account,
    }


def _iso(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def summary(notice: Notice) -> str:
    """One line for a person: ALERT/ENDED, severity, title."""
    alert = notice.alert
    head = "ALERT" if notice.event == "raised" else "ENDED"
    return f"{head} [{alert.severity}] #{alert.alert_id} {alert.title}"


class LogSink:
    """Every notice as one log line (the CLI shows the log on the terminal)."""

    def send(self, notice: Notice) -> None:
        log.log(logging.WARNING if notice.event == "raised" else logging.INFO, summary(notice))


class WebhookSink:
    """A JSON POST per notice. One try per call, with a timeout; the dispatcher retries."""

    def __init__(self, url: str, *, account: str = "", timeout: float = 10.0):
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - a port that is not a number raises here
        except ValueError:
            parts = parts._replace(netloc="")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(
                f"--webhook needs an http(s) URL, e.g. https://hooks.example.com/payamak; got {_safe_url(url)!r}.",
                "نشانی وب هوک باید با http یا https شروع شود",
            )
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise InputError("The webhook timeout must be a positive number of seconds.", "مهلت باید مثبت باشد")
        self.account, self.timeout = account, float(timeout)
        self._url = url
        remember_url_password(url)  # a login, and the path and query (a token), shown nowhere: not even
        remember(parts.path + (f"?{parts.query}" if parts.query else ""))  # in urllib3's own debug lines
        self.name = f"webhook {_safe_url(url)} {hashlib.sha256(_without_login(url).encode()).hexdigest()[:10]}"
        self.session = requests.Session()

    def __repr__(self) -> str:
        return f"WebhookSink({_safe_url(self._url)!r})"

    def send(self, notice: Notice) -> None:
        body = json.dumps(payload(notice, self.account), ensure_ascii=False, default=str).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": delivery_key(notice)}
        answer, failure = None, ""
        try:
            answer = self.session.post(
                self._url, data=body, headers=headers, timeout=(min(self.timeout, 5.0), self.timeout),
                allow_redirects=False, stream=True,
            )  # fmt: skip
            answer.close()  # the answer's body is not read: a receiver cannot make the watch hold gigabytes
        except requests.RequestException as error:
            failure = type(error).__name__  # raised below, outside this block: its message may hold the URL
        if answer is None:
            raise AlertDeliveryError(f"webhook {_safe_url(self._url)}: {failure}")
        if answer.status_code < 300:
            return
        problem = f"webhook {_safe_url(self._url)} answered HTTP {answer.status_code}"
        if answer.status_code < 400:  # a redirect is not followed: the login would go with it
            raise AlertRefusedError(f"{problem} (a redirect): give --webhook the final URL")
        if answer.status_code < 500 and answer.status_code not in (408, 425, 429):
            raise AlertRefusedError(problem)
        raise AlertDeliveryError(problem)


def _safe_url(url: str) -> str:
    """A URL as logs may show it: no user, password, path or query (they may hold a token)."""
    parts = urlsplit(str(url))
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}/..."


def _without_login(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def delivery_key(notice: Notice) -> str:
    """The same on every try of one notice: a receiver that sees it twice may drop the second."""
    return f"payamak-alert-{notice.alert.alert_id}-{notice.event}"


class SmtpSink:
    """An email per notice. The login, if the server wants one, comes from PAYAMAK_SMTP_USER and
    PAYAMAK_SMTP_PASSWORD; PAYAMAK_SMTP_STARTTLS=1 upgrades the connection first."""

    def __init__(self, server: str, mail_to: list[str], *, mail_from: str | None = None, timeout: float = 15.0):
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InputError(
                f"--smtp needs HOST:PORT, e.g. smtp.example.com:587; got {server!r}.", "--smtp باید HOST:PORT باشد"
            )
        addresses = [a.strip() for a in mail_to if a.strip()]
        if not addresses or any("@" not in a for a in addresses):
            raise InputError("--mail-to needs one or more email addresses.", "نشانی ایمیل گیرنده لازم است")
        self.host, self.port, self.mail_to, self.timeout = host, int(port), addresses, timeout
        self.name = f"email {host}:{port} to {', '.join(addresses)}"
        self.mail_from = mail_from or os.environ.get("PAYAMAK_SMTP_FROM") or f"payamak-watch@{os.uname().nodename}"

    def __repr__(self) -> str:
        return f"SmtpSink({self.host}:{self.port} -> {', '.join(self.mail_to)})"

    def send(self, notice: Notice) -> None:
        message = EmailMessage()
        message["Subject"] = summary(notice)
        message["From"], message["To"] = self.mail_from, ", ".join(self.mail_to)
        alert = notice.alert
        message.set_content(
            f"{alert.title}\n{alert.title_fa}\n\n"
            + json.dumps(payload(notice), ensure_ascii=False, indent=2, default=str)
        )
        failure, permanent = "", False
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if os.environ.get("PAYAMAK_SMTP_STARTTLS") == "1":
                    smtp.starttls()
                user = os.environ.get("PAYAMAK_SMTP_USER")
                if user:
                    smtp.login(user, os.environ.get("PAYAMAK_SMTP_PASSWORD", ""))
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            failure = f"{type(error).__name__} {getattr(error, 'smtp_code', '')}".strip()
            permanent = isinstance(error, smtplib.SMTPResponseException) and 500 <= error.smtp_code < 600
            permanent = permanent or isinstance(error, smtplib.SMTPRecipientsRefused)
        if failure:  # raised here, outside the except block, so no login or server text rides along
            problem = f"email to {', '.join(self.mail_to)} via {self.host}:{self.port}: {failure}"
            raise (AlertRefusedError if permanent else AlertDeliveryError)(problem)


class SmsSink:
    """An SMS through the panel itself to on-call numbers, for raised critical alerts and their ends.

    A dry run (the default) sends nothing and logs what it would send; `really_send` sends. At
    most `per_hour` messages go out in any hour, counted in the store (so a cron job that starts a
    new process every cycle keeps the same count), and a number is claimed for a notice before it
    is sent to: it gets that notice once, unless the send provably never went out.
    """

    def __init__(
        self,
        client,
        store: Store,
        numbers: list[str],
        *,
        line: str | None = None,
        really_send: bool = False,
        per_hour: int = 4,
        severities: tuple[str, ...] = ("critical",),
        clock: Callable[[], datetime] | None = None,
    ):
        if not isinstance(per_hour, int) or per_hour < 1:
            raise InputError("--sms-per-hour must be a whole number of at least 1.", "سقف پیامک باید مثبت باشد")
        self.numbers = [normalize(n) for n in numbers]
        if not self.numbers:
            raise InputError("--alert-sms needs at least one mobile number, e.g. 09121234567.", "شماره لازم است")
        self.client, self.store, self.line = client, store, line
        self.really_send, self.per_hour, self.severities = really_send, per_hour, severities
        self.clock = clock or (lambda: datetime.now(TEHRAN))
        self.name = f"sms to {', '.join(self.numbers)}{'' if really_send else ' (dry run)'}"

    def __repr__(self) -> str:
        mode = "sending" if self.really_send else "dry run"
        return f"SmsSink({len(self.numbers)} numbers, {mode}, at most {self.per_hour} an hour)"

    def text(self, notice: Notice) -> str:
        head = "payamak ALERT" if notice.event == "raised" else "payamak ended"
        return f"{head} #{notice.alert.alert_id}: {notice.alert.title}"[:300]

    def send(self, notice: Notice) -> None:
        if notice.alert.severity not in self.severities:
            return
        claimed_at = self.clock()
        granted, held = self.store.claim_alert_sms(
            self.numbers, notice.alert.alert_id, notice.event, not self.really_send, self.per_hour, claimed_at
        )
        if held:
            log.warning(
                "alert SMS: %d of %d numbers held back by the cap of %d an hour", held, len(self.numbers), self.per_hour
            )
        if not granted:
            return
        text = self.text(notice)
        if not self.really_send:
            log.info("alert SMS (dry run, nothing sent) to %s: %s", ", ".join(granted), text)
            return
        failure, unknown = "", False
        try:
            line = self.line or self.client.get_sender_numbers()[0]
            self.client.send_sms(line, granted, text)
        except PayamakError as error:
            failure = str(error).splitlines()[0][:200]
            unknown = isinstance(error, SendOutcomeUnknownError)
        if unknown:  # it may be on its way: sent again, it could reach the on-call numbers twice
            raise AlertRefusedError(f"alert SMS to {', '.join(granted)} may have gone out; not sent again: {failure}")
        if failure:  # provably not sent (refused, or never reached the service): the next try may send it
            self.store.release_alert_sms(granted, notice.alert.alert_id, notice.event, claimed_at)
            raise AlertDeliveryError(f"alert SMS to {', '.join(granted)}: {failure}")
        log.info("alert SMS sent to %s", ", ".join(granted))


class Dispatcher:
    """Hands each notice to every sink once, never holding a watch cycle longer than `budget` seconds.

    Notices are first queued in the store's outbox (one row per notice and sink), then each sink
    works through what it owes, oldest first, in its own thread; the cycle waits for them until
    `budget` and then goes on. A sink that fails keeps its notice waiting for the next cycle (and
    for the next process, after a restart); one still busy when the budget runs out keeps its
    thread, and its outcome is recorded at the next cycle, so a notice is never tried twice at
    once. A notice the receiver refused for good (HTTP 4xx, SMTP 5xx) is kept as refused.
    """

    def __init__(self, store: Store, sinks: Iterable[Sink], *, budget: float = 10.0, retries: int = 2):
        if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
            raise InputError("The sinks' budget must be a positive number of seconds.", "مهلت باید مثبت باشد")
        self.store, self.budget, self.retries = store, float(budget), retries
        self.sinks: dict[str, Sink] = {}
        for sink in sinks:
            name = getattr(sink, "name", None) or type(sink).__qualname__
            while name in self.sinks:
                name += "+"
            self.sinks[name] = sink
        self._busy: dict[str, threading.Thread] = {}
        self._outcomes: list[tuple[int, str, str | None]] = []
        self._guard = threading.Lock()

    def dispatch(self, notices: list[Notice], stop: Callable[[], bool] = lambda: False) -> int:
        """Queue `notices` for every sink and deliver what is owed within the budget (or until
        `stop()` says so); returns how many notices are still waiting for a sink."""
        if not self.sinks:
            return 0
        busy = {name for name, worker in self._busy.items() if worker.is_alive()}  # before _record: a worker
        self._record()  # that had ended has recorded its outcomes, so none of its notices is sent again
        rows = [
            {"alert_id": n.alert.alert_id, "event": n.event, "sink": name, "notice": _notice_json(n)}
            for n in notices
            for name in self.sinks
        ]
        self.store.queue_notices(rows, datetime.now(TEHRAN))
        waiting, started = self.store.waiting_notices(list(self.sinks)), []
        deadline = time.monotonic() + self.budget  # the sinks' own time: the store's work above is not theirs
        for name, owed in waiting.groupby("sink", sort=False):
            if name in busy:
                log.warning("%s is still busy with an earlier alert: its %d waiting wait on", name, len(owed))
                continue
            worker = threading.Thread(target=self._work, args=(name, owed, deadline), daemon=True)
            self._busy[name] = worker
            worker.start()
            started.append(worker)
        while any(w.is_alive() for w in started) and time.monotonic() < deadline and not stop():
            time.sleep(0.05)
        self._record()
        left = len(self.store.waiting_notices(list(self.sinks)))
        if left:
            log.warning("%d alert notices wait for their sinks; they are tried again next cycle", left)
        return left

    def _work(self, name: str, owed, deadline: float) -> None:
        """Deliver `owed` in order until the deadline; at the first notice that fails, stop (the
        sink is down: the rest waits with it)."""
        sink = self.sinks[name]
        for number, row in enumerate(owed.itertuples()):
            if number and time.monotonic() >= deadline:  # the first is always tried, however late it starts
                return
            state, error = self._attempt(sink, _notice_from_json(row.notice), deadline)
            with self._guard:
                self._outcomes.append((int(row.delivery_id), state, error))
            if state == "waiting":
                log.error("%s: alert #%s not delivered (%s); kept for the next cycle", name, row.alert_id, error)
                return
            if state == "refused":
                log.error("%s refused alert #%s for good (%s); kept in the outbox", name, row.alert_id, error)

    def _attempt(self, sink: Sink, notice: Notice, deadline: float) -> tuple[str, str | None]:
        """One notice to one sink: a few tries, 1 s, 2 s ... apart while the budget allows."""
        state, error = "waiting", None
        for attempt in range(self.retries + 1):
            state, error = _try(sink, notice)
            if state != "waiting":
                return state, error
            pause = 2.0**attempt
            if attempt == self.retries or time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
        return state, error

    def _record(self) -> None:
        with self._guard:
            outcomes, self._outcomes = self._outcomes, []
        self.store.record_deliveries(outcomes, datetime.now(TEHRAN))


def _try(sink: Sink, notice: Notice) -> tuple[str, str | None]:
    """(delivered | refused | waiting, why not)."""
    try:
        sink.send(notice)
    except AlertRefusedError as error:
        return "refused", str(error)[:300]
    except AlertDeliveryError as error:
        return "waiting", str(error)[:300]
    except Exception as error:  # noqa: BLE001 - a sink of the user's own: its message may hold anything
        return "waiting", type(error).__name__
    return "delivered", None


_TIMES = ("first_seen", "last_seen", "ended_at")


def _notice_json(notice: Notice) -> str:
    alert = {k: (_iso(v) if k in _TIMES else v) for k, v in notice.alert.as_dict().items()}
    return json.dumps({"event": notice.event, "alert": alert}, ensure_ascii=False, default=str)


def _notice_from_json(text: str) -> Notice:
    data = json.loads(text)
    names = {f.name for f in fields(Alert)}
    alert = {k: v for k, v in data["alert"].items() if k in names}
    for key in _TIMES:
        alert[key] = datetime.fromisoformat(alert[key]) if alert.get(key) else None
    return Notice(data["event"], Alert(**alert))
