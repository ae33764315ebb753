"""Every code the service answers with, explained in English and Persian.

Result codes of each operation map to an error class; delivery statuses map to an outcome
(delivered, failed, in flight, ...). An unseen code is "unknown", never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import errors
from .wsdl.contract import contract


@dataclass(frozen=True)
class Code:
    value: int
    en: str
    fa: str
    error: type[errors.PayamakError] | None = None  # None: not an error


SEND_CODES = {
    c.value: c
    for c in (
        Code(0, "Sent successfully.", "ارسال با موفقیت انجام شد"),
        Code(
            1,
            "The user name or password is invalid: check PAYAMAK_USERNAME and PAYAMAK_PASSWORD.",
            "نام کاربر یا کلمه عبور نامعتبر می باشد",
            errors.CredentialsError,
        ),
        Code(
            2,
            "The user is blocked (or inactive): ask the panel's support to reactivate the account.",
            "کاربر مسدود شده است",
            errors.AccountStateError,
        ),
        Code(
            3,
            "The sender number is invalid: use one of the account's lines (GetSenderNumbers lists them).",
            "شماره فرستنده نامعتبر است",
            errors.SenderLineError,
        ),
        Code(
            4,
            "The daily sending limit is reached: send the rest tomorrow or ask for a higher limit.",
            "محدودیت در ارسال روزانه",
            errors.LimitError,
        ),
        Code(
            5,
            "Too many recipients for one call (at most 100): split the list into smaller calls.",
            "تعداد گیرندگان حداکثر 100 شماره می باشد",
            errors.LimitError,
        ),
        Code(
            6,
            "The sender line is inactive: choose another line or renew this one in the panel.",
            "خط فرستنده غیرفعال است",
            errors.SenderLineError,
        ),
        Code(
            7,
            "The text contains filtered words: rephrase it (check_sms_content tests a text first).",
            "متن پیامک شامل کلمات فیلتر شده است",
            errors.ContentError,
        ),
        Code(
            8,
            "Not enough credit: top up the account, or send to fewer recipients.",
            "اعتبار کافی نیست",
            errors.CreditError,
        ),
        Code(
            9,
            "The system is being updated: try again in a few minutes.",
            "سامانه در حال بروز رسانی می باشد",
            errors.ServiceUnavailableError,
        ),
        Code(
            10,
            "The web service is disabled for this account: enable it in the panel (optimal tier or above).",
            "وب سرویس غیرفعال است",
            errors.ServiceUnavailableError,
        ),
    )
}

BAD_CREDENTIALS = Code(
    -1,
    "The user name or password is wrong: check PAYAMAK_USERNAME and PAYAMAK_PASSWORD.",
    "نام کاربری و رمز عبور صحیح نمی باشد",
    errors.CredentialsError,
)
INACTIVE_USER = Code(
    -2,
    "The user is inactive: ask the panel's support to activate the account.",
    "کاربر غیرفعال می باشد",
    errors.AccountStateError,
)
NO_BATCH = Code(
    -2,
    "There is no send with this batchSmsId on this account: check the id SendBatchSms returned.",
    "ارسال با مقدار شناسه batchSmsId وجود ندارد",
    errors.NotFoundError,
)
NO_NUMBER = Code(
    -3,
    "No valid number was given: pass a mobile number such as 09121234567.",
    "شماره ای وارد نشده است",
    errors.InputError,
)

# Negative answers of the other operations, by operation; anything not listed is unknown.
QUERY_CODES: dict[str, dict[int, Code]] = {
    "GetCredit": {-1: BAD_CREDENTIALS, -2: INACTIVE_USER},
    "GetInboxCount": {-1: BAD_CREDENTIALS},
    "GetBatchDelivery": {-1: BAD_CREDENTIALS, -2: NO_BATCH},
    "GetDeliveryLikeToLike": {-1: BAD_CREDENTIALS, -2: NO_BATCH},
    "NumberIsInTelecomBlacklist": {-1: BAD_CREDENTIALS, -2: INACTIVE_USER, -3: NO_NUMBER},
    "ExtractTelecomBlacklistNumbers": {-1: BAD_CREDENTIALS, -2: INACTIVE_USER, -3: NO_NUMBER},
    "CheckSmsContent": {-1: BAD_CREDENTIALS},
    "GetSenderNumbers": {-1: BAD_CREDENTIALS},
}
SEND_OPERATIONS = ("SendSMS", "SendBatchSms", "SendSmsLikeToLike")


def raise_for(operation: str, code: int) -> None:
    """Raise the error a result code means for `operation`; return quietly on success."""
    if operation in SEND_OPERATIONS:
        found = SEND_CODES.get(code)
        if code == 0:
            return
    else:
        if code >= 0:
            return
        found = QUERY_CODES.get(operation, {}).get(code)
    if found is None:
        raise errors.UnknownCodeError(
            f"The service answered with code {code}, which this toolkit does not know: report it with the operation name.",
            f"سرویس کد ناشناخته {code} را برگرداند",
            operation=operation,
            code=code,
        )
    raise found.error(found.en, found.fa, operation=operation, code=code)


# --- delivery statuses ------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryStatus:
    code: int
    name: str
    en: str
    fa: str
    outcome: str  # see OUTCOMES
    final: bool  # will not change any more

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


# Outcomes, in the order reports and charts show them. "unknown" is a status that says nothing of
# delivery (8 "unknown", -2, a code the provider never documented); "delivery_unknown" a status
# still in flight past a cutoff (72 hours by default); "expired" a report that expired before any
# status was seen (a status seen before the report expired is kept, with its own outcome).
OUTCOMES = {
    "delivered": ("Delivered", "تحویل شده"),
    "undelivered": ("Not delivered to handset", "نرسیده به گوشی"),
    "telecom_failed": ("Failed at the telecom", "خطای مخابرات"),
    "blocked": ("Blocked by recipient", "مسدود توسط گیرنده"),
    "not_sent": ("Not sent or cancelled", "ارسال نشده یا لغو شده"),
    "unknown": ("Unknown", "نامشخص"),
    "in_flight": ("In flight", "در حال ارسال"),
    "delivery_unknown": ("Delivery unknown", "وضعیت تحویل نامعلوم"),
    "expired": ("Report expired", "گزارش منقضی شده"),
}
# The known outcomes, every rate's denominator: "unknown" is not one of them, final or not (a
# recipient whose outcome is unknown counted here would count as a failure).
FINAL_OUTCOMES = ("delivered", "undelivered", "telecom_failed", "blocked", "not_sent")

_STATUSES = (
    (
        -5,
        "too_early",
        "Ask at least one minute after sending.",
        "برای گرفتن گزارش تحویل حداقل یک دقیقه بعد از ارسال اقدام نمایید",
        "in_flight",
        False,
    ),
    (
        -4,
        "in_telecom_queue",
        "In the telecom send queue; no report yet.",
        "پیام در صف ارسال مخابرات می باشد",
        "in_flight",
        False,
    ),
    (
        -3,
        "report_expired",
        "The one-week window for delivery reports has passed.",
        "مهلت یک هفته ای گرفتن گزارش پایان یافته است",
        "expired",
        True,
    ),
    (-2, "invalid_id", "No message with this id.", "پیام با این کد وجود ندارد", "unknown", True),
    (-1, "provider_error", "Error contacting the provider.", "خطا در ارتباط با سرویس دهنده", "in_flight", False),
    (0, "sent_to_telecom", "Sent to the telecom.", "ارسال شده به مخابرات", "in_flight", False),
    (1, "delivered", "Delivered to the handset.", "رسیده به گوشی", "delivered", True),
    (2, "not_delivered", "Not delivered to the handset.", "نرسیده به گوشی", "undelivered", True),
    (3, "telecom_error", "Telecom error.", "خطای مخابراتی", "telecom_failed", True),
    (4, "unknown_error", "Unknown error.", "خطای نامشخص", "unknown", True),
    (5, "received_by_telecom", "Received by the telecom.", "رسیده به مخابرات", "in_flight", False),
    (6, "not_received_by_telecom", "Not received by the telecom.", "نرسیده به مخابرات", "telecom_failed", True),
    (7, "blocked_by_recipient", "Blocked by the recipient.", "مسدود شده توسط مقصد", "blocked", True),
    (8, "unknown", "Unknown.", "نامشخص", "unknown", True),
    (9, "rejected_by_telecom", "Rejected by the telecom.", "مخابرات پیام را مردود اعلام کرد", "telecom_failed", True),
    (10, "cancelled_by_operator", "Cancelled by the operator.", "کنسل شده توسط اپراتور", "not_sent", True),
    (11, "not_sent", "Not sent.", "ارسال نشده", "not_sent", True),
    (
        12,
        "no_messenger_account",
        "The recipient has no Telegram account (messenger sends).",
        "گیرنده تلگرام ندارد",
        "undelivered",
        True,
    ),
    (13, "in_send_queue", "In the send queue.", "در صف ارسال", "in_flight", False),
)
DELIVERY_STATUSES = {
    code: DeliveryStatus(code, name, en, fa, outcome, final) for code, name, en, fa, outcome, final in _STATUSES
}


def outcome_sql(column: str = "status") -> str:
    """A SQL CASE naming the outcome of a status column (a code not seen before: unknown)."""
    whens = " ".join(f"WHEN {code} THEN '{s.outcome}'" for code, s in DELIVERY_STATUSES.items())
    return f"CASE {column} {whens} ELSE 'unknown' END"


def delivery_status(code: int) -> DeliveryStatus:
    """The meaning of a delivery status code; a code never seen before is "unknown"."""
    found = DELIVERY_STATUSES.get(code)
    if found is None:
        return DeliveryStatus(
            code,
            "unknown",
            f"Status {code}, not documented by the provider.",
            f"وضعیت {code} (مستند نشده)",
            "unknown",
            False,
        )
    return found


# --- enums of MessageInfo ---------------------------------------------------------------------
# The newest generation's names: a client knows every value any deployment may write.
ENUMS: dict[str, dict[str, int]] = {name: dict(values) for name, values in contract("latest").enums.items()}
_ENUM_LOOKUP = {enum: {name.casefold(): name for name in names} for enum, names in ENUMS.items()}


def enum_name(enum: str, raw: str | None) -> str | None:
    """The canonical spelling of an enum value, read case-insensitively; unseen values: "Unknown"."""
    if raw is None:
        return None
    return _ENUM_LOOKUP[enum].get(raw.strip().casefold(), "Unknown")


# What each enum value means, in English and Persian; "Unknown" is a value this toolkit has not seen.
_NOT_SET = ("Not set", "تعیین نشده")
ENUM_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "SMSDirectionType": {
        "None": _NOT_SET,
        "In": ("Received", "دریافتی"),
        "Out": ("Sent", "ارسالی"),
        "Schedule": ("Scheduled", "زمان‌بندی‌شده"),
        "Usance": ("Due-date (usance) send", "ارسال سررسیدی"),
    },
    "SMSLang": {"None": _NOT_SET, "FA": ("Persian", "فارسی"), "EN": ("English", "انگلیسی")},
    "SMSSendStatus": {
        "None": _NOT_SET,
        "Sent": ("Sent", "ارسال شده"),
        "Error": ("Error", "خطا"),
        "BlockList": ("On the block list", "در فهرست سیاه"),
    },
    "SMSStatus": {
        "None": _NOT_SET,
        "Pending": ("Waiting for approval", "در انتظار تایید"),
        "Illegal": ("Illegal content", "غیرمجاز"),
        "Sending": ("Sending", "در حال ارسال"),
        "NotApproved": ("Not approved", "تایید نشده"),
        "Sent": ("Sent", "ارسال شده"),
        "Canceled": ("Cancelled", "لغو شده"),
        "Error": ("Error", "خطا"),
        "NoCredit": ("Not enough credit", "اعتبار ناکافی"),
        "NotSent": ("Not sent", "ارسال نشده"),
        "WaitForSend": ("Waiting for its send time", "در انتظار زمان ارسال"),
        "PendingDecCost": ("Waiting for its cost to be deducted", "در انتظار کسر هزینه"),
        "InQueue": ("In the send queue", "در صف ارسال"),
        "ManyToManyCalcCost": (
            "Like-to-like send: its cost is being calculated (newer deployments)",
            "ارسال نظیر به نظیر: در حال محاسبه هزینه",
        ),
    },
    "SMSSendMethod": {
        "None": _NOT_SET,
        "Quick": ("Quick send", "ارسال سریع"),
        "Test": ("Test send", "ارسال آزمایشی"),
        "Regional": ("Regional send", "ارسال منطقه‌ای"),
        "Group": ("Group send", "ارسال گروهی"),
        "WebService": ("Web service", "وب سرویس"),
        "Announcement": ("Announcement", "اطلاع رسانی"),
        "Secretary": ("SMS secretary", "منشی پیامکی"),
        "IntelligentSend": ("Smart send", "ارسال هوشمند"),
        "CorrespondingSend": ("Like-to-like send", "ارسال نظیر به نظیر"),
        "CodeReader": ("Code reader", "کدخوان"),
        "Poll": ("Poll", "نظرسنجی"),
        "Transfer": ("Transfer", "انتقال"),
        "Reply": ("Reply", "پاسخ"),
        "PhoneBook": ("Phone book send", "ارسال از دفترچه تلفن"),
        "PostalCode": ("Send by postal code", "ارسال بر اساس کد پستی"),
        "SmsEvent": ("SMS event", "رویداد پیامکی"),
        "IntelligentSecretary": ("Smart secretary", "منشی هوشمند"),
        "AddToPhoneBook": ("Added to the phone book", "افزودن به دفترچه تلفن"),
        "InstantSms": ("Instant SMS", "پیامک آنی"),
        "ScheduleSms": ("Scheduled SMS", "پیامک زمان‌بندی‌شده"),
        "UsanceSms": ("Due-date (usance) SMS", "پیامک سررسیدی"),
        "AgeAndGender": ("Targeted by age and gender (newer deployments)", "ارسال بر اساس سن و جنسیت"),
        "System": ("System message (newer deployments)", "پیام سیستمی"),
        "BirthdaySms": ("Birthday SMS (newer deployments)", "پیامک تولد"),
        "KioskSms": ("Kiosk SMS (newer deployments)", "پیامک کیوسک"),
        "CancellationBy11": ("Opt-out confirmation after 11 (newer deployments)", "تایید لغو عضویت با ۱۱"),
    },
}


def enum_text(enum: str, raw: str | None, lang: str = "en") -> str | None:
    """What a MessageInfo enum value means, in English (`en`) or Persian (`fa`), read as
    `enum_name` reads it; a value never seen before says so, with the value as it came."""
    name = enum_name(enum, raw)
    if name is None:
        return None
    found = ENUM_TEXTS[enum].get(name)
    if found is None:
        return f"مقدار ناشناخته {raw.strip()}" if lang == "fa" else f"Unknown value {raw.strip()!r}"
    return found[1] if lang == "fa" else found[0]
