"""`payamak doctor` and `client.diagnose()`: is this account and this deployment ready?

Read-only calls only (nothing is sent, no credit is spent): the address answers; the
deployment's WSDL and schemas against the bundled contract (operations and MessageInfo fields
missing, extra or renamed; enum values the toolkit does not know); the time zone the service
writes, from its newest message and the local clock; credentials, credit, lines. The report
holds no password, so a user can attach it to a bug report.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from lxml import etree

from .. import codes, wsdl
from ..errors import AccountStateError, CredentialsError, PayamakError
from ..i18n import persian_digits
from .columns import MESSAGE_KINDS
from .envelope import PARSER
from .pages import message_columns
from .safety import scrub, shown_url

XS = "{http://www.w3.org/2001/XMLSchema}"
WSDL_NS = "{http://schemas.xmlsoap.org/wsdl/}"
STATUS_FA = {"ok": "درست", "warn": "هشدار", "fail": "مانع", "info": "آگاهی"}
LABELS = {
    "address": ("Address", "نشانی سرویس"),
    "operations": ("Operations", "متدها"),
    "message_fields": ("MessageInfo fields", "فیلدهای پیام"),
    "enums": ("Enum values", "مقادیر شمارشی"),
    "credentials": ("Credentials", "نام کاربری و رمز"),
    "credit": ("Credit", "اعتبار"),
    "lines": ("Sender lines", "خطوط ارسال"),
    "time_zone": ("Time zone", "منطقه زمانی"),
    "web_service": ("Web service", "وب سرویس"),
}


@dataclass
class Check:
    name: str
    status: str  # ok, warn, fail (blocking), info
    en: str
    fa: str
    data: dict = field(default_factory=dict)


@dataclass
class Diagnosis:
    """What `diagnose` found: one Check per question, and where it asked."""

    username: str
    wsdl: str
    endpoint: str
    checked_at: str
    checks: list[Check]

    @property
    def blocking(self) -> bool:
        return any(check.status == "fail" for check in self.checks)

    def to_dict(self) -> dict:
        return {**asdict(self), "blocking": self.blocking}

    def write_json(self, path) -> Path:
        """The report as JSON, scrubbed of every secret (a server may have echoed one into any text)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2, default=str)
        path.write_text(scrub(text), encoding="utf-8")
        return path

    def table(self, lang: str = "en") -> str:
        """One line a check, in English or Persian."""
        persian = lang == "fa"
        rows = [
            (
                LABELS[c.name][persian],
                STATUS_FA[c.status] if persian else c.status,
                persian_digits(c.fa) if persian else c.en,
            )
            for c in self.checks
        ]
        width = [max(len(row[i]) for row in rows) for i in range(2)]
        return scrub("\n".join(f"{a:<{width[0]}}  {b:<{width[1]}}  {c}" for a, b, c in rows))


def contract_facts(documents: Iterable[bytes]) -> dict:
    """Operations, MessageInfo fields and enum values declared by a WSDL and its schemas."""
    operations, fields, enums = set(), [], {}
    for document in documents:
        root = etree.fromstring(document, PARSER)
        operations |= {
            op.get("name") for op in root.iter(f"{WSDL_NS}portType") for op in op.iter(f"{WSDL_NS}operation")
        }
        for complex_type in root.iter(f"{XS}complexType"):
            if complex_type.get("name") == "MessageInfo":
                fields = [e.get("name") for e in complex_type.iter(f"{XS}element")]
        for simple in root.iter(f"{XS}simpleType"):
            values = [e.get("value") for e in simple.iter(f"{XS}enumeration")]
            if values and simple.get("name") in codes.ENUMS:
                enums[simple.get("name")] = values
    return {"operations": operations, "message_fields": fields, "enums": enums}


def bundled_facts() -> dict:
    return contract_facts(wsdl.document(name) for name in ("wsdl", *wsdl.SCHEMA_NAMES))


def compare(expected: Iterable[str], found: Iterable[str]) -> dict:
    """Names missing and extra; a missing name with a close extra one is reported as renamed."""
    expected, found = set(expected), set(found)
    missing, extra = sorted(expected - found), sorted(found - expected)
    renamed = {}
    for name in missing:
        close = difflib.get_close_matches(name, extra, n=1, cutoff=0.8) or [
            e for e in extra if e.lower() == name.lower()
        ]
        if close:
            renamed[name] = close[0]
            extra.remove(close[0])
    return {"missing": [m for m in missing if m not in renamed], "extra": extra, "renamed": renamed}


def _difference_check(name: str, difference: dict, blocking: Callable[[dict], bool]) -> Check:
    parts = [f"{key}: {value}" for key, value in difference.items() if value]
    if not parts:
        return Check(name, "ok", "as the bundled contract", "مطابق قرارداد", difference)
    status = "fail" if blocking(difference) else "warn"
    text = "; ".join(parts)
    return Check(name, status, text, f"تفاوت با قرارداد: {text}", difference)


def newest_texts(client, count: int = 200) -> dict[str, list]:
    """The texts of the newest sent messages, as the service wrote them."""
    params = {"messageType": 2, "fromNumbers": None, "index": 1, "count": count}
    return client.wire.call("GetMessages", params, read=message_columns).result or {}


def seen_enum_values(texts: dict[str, list]) -> dict[str, list[str]]:
    """Enum values in those messages that this toolkit does not know."""
    seen = {}
    for column, kind in MESSAGE_KINDS.items():
        enum = kind[5:] if kind.startswith("enum:") else None
        known = {name.casefold() for name in codes.ENUMS.get(enum, ())}
        strange = sorted({v.strip() for v in texts.get(column) or () if v and v.strip().casefold() not in known})
        if enum and strange:
            seen[enum] = strange
    return seen


def contract_checks(client, texts: dict[str, list]) -> list[Check]:
    """The deployment's description against the bundled one, and the enum values it writes."""
    deployed, bundled = contract_facts(client.wire.zeep.transport.documents.values()), bundled_facts()
    needed = {"GetCredit", "GetMessages", "SendSMS", "SendBatchSms", "GetBatchDelivery", "GetDelivery", "GetInboxCount"}
    operations = compare(bundled["operations"], deployed["operations"])
    fields = compare(bundled["message_fields"], deployed["message_fields"])
    unknown = {enum: sorted(set(values) - set(codes.ENUMS[enum])) for enum, values in deployed["enums"].items()}
    for enum, values in seen_enum_values(texts).items():
        unknown[enum] = sorted(set(unknown.get(enum, ())) | set(values))
    unknown = {enum: values for enum, values in unknown.items() if values}
    enums = Check("enums", "ok", "every declared value is known", "همه مقادیر شناخته شده اند", unknown)
    if unknown:
        text = "; ".join(f"{enum}: {', '.join(values)}" for enum, values in unknown.items())
        enums = Check(
            "enums", "warn", f"unknown to this toolkit (read as Unknown): {text}", f"ناشناخته: {text}", unknown
        )
    return [
        _difference_check("operations", operations, lambda d: bool(needed & set(d["missing"]))),
        _difference_check("message_fields", fields, lambda d: False),
        enums,
    ]


def account_checks(client) -> list[Check]:
    """Credentials, credit and lines, by reading them."""
    try:
        credit = client.get_credit()
    except (CredentialsError, AccountStateError) as error:
        return [Check("credentials", "fail", error.message_en, error.message_fa, {"code": error.code})]
    checks = [Check("credentials", "ok", "accepted", "پذیرفته شد")]
    status = "ok" if credit > 0 else "warn"
    checks.append(Check("credit", status, f"{credit:,} SMS", f"{credit:,} پیامک", {"credit": str(credit)}))
    if client.has("GetSenderNumbers"):
        lines = client.get_sender_numbers()
        status = "ok" if lines else "warn"
        checks.append(Check("lines", status, ", ".join(lines) or "none", "، ".join(lines) or "هیچ", {"lines": lines}))
    return checks


def clock_check(client, texts: dict[str, list], now: datetime | None = None) -> Check:
    """The zone the service writes its times in, from its newest sent message and our clock."""
    text = (texts.get("action_datetime") or [None])[0]
    if not text:
        return Check("time_zone", "info", "no sent message to compare with", "پیام ارسالی برای مقایسه نیست")
    zone = client.settings.service_zone
    written = datetime.fromisoformat(text.strip().upper())
    if written.tzinfo is not None:
        offset = written.utcoffset()
        return Check(
            "time_zone", "ok", f"the service writes offsets ({offset})", "سرویس منطقه زمانی را می نویسد", {"text": text}
        )
    now = (now or datetime.now(zone)).astimezone(zone).replace(tzinfo=None)
    ahead = written - now
    data = {"newest": text, "local_clock": now.isoformat(timespec="seconds"), "zone": str(zone)}
    if ahead > timedelta(minutes=5):
        hours = round(ahead / timedelta(minutes=30)) / 2
        return Check(
            "time_zone",
            "warn",
            f"the newest message ({text}) is {hours:g} h ahead of {zone} time: the service writes another zone; "
            "set service_zone",
            f"زمان آخرین پیام {hours:g} ساعت جلوتر است؛ منطقه زمانی سرویس متفاوت است",
            data,
        )
    minutes = max(0, round(-ahead / timedelta(minutes=1)))
    return Check(
        "time_zone",
        "ok",
        f"{zone} (the newest message, {text}, is {minutes} min old)",
        f"{zone} (آخرین پیام {minutes} دقیقه پیش)",
        data,
    )


def diagnose(client, now: datetime | None = None) -> Diagnosis:
    """Every check, each one's failure kept as its result rather than stopping the others."""
    checks = [Check("address", "ok", f"{shown_url(client.endpoint)} answers", "سرویس پاسخ می دهد")]
    newest = functools.cache(lambda: newest_texts(client))
    steps = [
        lambda: account_checks(client),
        lambda: contract_checks(client, newest()),
        lambda: [clock_check(client, newest(), now)],
    ]
    for step in steps:
        try:
            checks += step()
        except PayamakError as error:
            checks.append(Check("address", "fail", str(error), error.message_fa or str(error)))
            break
    checks.append(
        Check(
            "web_service",
            "info",
            "reads work; only a send tells whether sending is enabled (code 10 otherwise)",
            "خواندن کار می کند؛ فعال بودن ارسال را فقط یک ارسال نشان می دهد",
        )
    )
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    return Diagnosis(client.username, shown_url(client.settings.wsdl), shown_url(client.endpoint), stamp, checks)


def unreachable(username: str, wsdl_address: str, error: PayamakError) -> Diagnosis:
    """The report when not even the service description could be read."""
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    check = Check("address", "fail", str(error), error.message_fa or str(error))
    return Diagnosis(username, shown_url(wsdl_address), "", stamp, [check])
