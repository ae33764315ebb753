"""Where alerts go: the log (and so the terminal), a webhook, email, and SMS through the panel.

A sink is anything with `send(notice)`. A sink that fails logs one line and never stops the
watch: the alert is in the store either way (`payamak_analytics.alerts.alerts(store)`).

The webhook's payload, one JSON POST per raised alert and one per ended alert:

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

import json
import logging
import math
import os
import smtplib
import time
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import urlsplit

import requests

from .alerts import Notice
from .dates import TEHRAN
from .errors import InputError, PayamakError
from .phone import normalize
from .store import Store

log = logging.getLogger("payamak_analytics.watch")


class Sink(Protocol):
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
    """A JSON POST per notice, with a timeout and retries (1 s, 2 s, 4 s ... apart) on errors and 5xx."""

    def __init__(self, url: str, *, account: str = "", timeout: float = 10.0, retries: int = 3):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(
                f"--webhook needs an http(s) URL, e.g. https://hooks.example.com/payamak; got {self._safe(url)!r}.",
                "نشانی وب هوک باید با http یا https شروع شود",
            )
        self.url, self.account, self.timeout, self.retries = url, account, timeout, retries
        self.session = requests.Session()

    @staticmethod
    def _safe(url: str) -> str:
        """The URL as logs may show it: no user, password, path or query (they may hold a token)."""
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/..."

    def __repr__(self) -> str:
        return f"WebhookSink({self._safe(self.url)!r})"

    def send(self, notice: Notice) -> None:
        body = json.dumps(payload(notice, self.account), ensure_ascii=False, default=str).encode()
        for attempt in range(self.retries + 1):
            try:
                answer = self.session.post(
                    self.url,
                    data=body,
                    headers={"Content-Type": "application/json; charset=utf-8"},
                    timeout=self.timeout,
                    allow_redirects=False,
                )
                if answer.status_code < 500:
                    if answer.status_code >= 300:
                        log.error(
                            "webhook %s refused alert #%s: HTTP %s",
                            self._safe(self.url),
                            notice.alert.alert_id,
                            answer.status_code,
                        )
                    return
                problem = f"HTTP {answer.status_code}"
            except requests.RequestException as error:
                problem = type(error).__name__
            if attempt < self.retries:
                time.sleep(2**attempt)
        log.error(
            "webhook %s: alert #%s not delivered after %d tries (%s)",
            self._safe(self.url),
            notice.alert.alert_id,
            self.retries + 1,
            problem,
        )


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
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if os.environ.get("PAYAMAK_SMTP_STARTTLS") == "1":
                    smtp.starttls()
                user = os.environ.get("PAYAMAK_SMTP_USER")
                if user:
                    smtp.login(user, os.environ.get("PAYAMAK_SMTP_PASSWORD", ""))
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            log.error(
                "email to %s for alert #%s failed: %s", ", ".join(self.mail_to), alert.alert_id, type(error).__name__
            )


class SmsSink:
    """An SMS through the panel itself to on-call numbers, for raised critical alerts and their ends.

    A dry run (the default) sends nothing and logs what it would send; `really_send` sends. At
    most `per_hour` messages go out in any hour, counted in the store (so a cron job that starts a
    new process every cycle keeps the same count), and a number is claimed before it is sent to.
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

    def __repr__(self) -> str:
        mode = "sending" if self.really_send else "dry run"
        return f"SmsSink({len(self.numbers)} numbers, {mode}, at most {self.per_hour} an hour)"

    def text(self, notice: Notice) -> str:
        head = "payamak ALERT" if notice.event == "raised" else "payamak ended"
        return f"{head} #{notice.alert.alert_id}: {notice.alert.title}"[:300]

    def send(self, notice: Notice) -> None:
        if notice.alert.severity not in self.severities:
            return
        granted = self.store.claim_alert_sms(
            self.numbers, notice.alert.alert_id, not self.really_send, self.per_hour, self.clock()
        )
        held = len(self.numbers) - len(granted)
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
        try:
            line = self.line or self.client.get_sender_numbers()[0]
            self.client.send_sms(line, granted, text)
            log.info("alert SMS sent to %s", ", ".join(granted))
        except PayamakError as error:
            log.error("alert SMS to %s failed: %s", ", ".join(granted), error)
