"""The service's contract as facts: operations, parameters, MessageInfo and enums, per generation.

Deployments of the service differ by when their WSDL was generated: the 2020 generation lacks
GetMessagesByDateRange and three MessageInfo fields; the 2022 one is what public stubs were
generated from; newer deployments add enum values. One generation is served at a time, so a
client generated from one never meets a value its stubs do not know.
"""

from __future__ import annotations

from dataclasses import dataclass

TEMPURI = "http://tempuri.org/"
XS = "http://www.w3.org/2001/XMLSchema"
SERIALIZATION = "http://schemas.microsoft.com/2003/10/Serialization/"
ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
MODELS = "http://schemas.datacontract.org/2004/07/SMSPanel.Domain.Models"
COMMON_ENUMS = "http://schemas.datacontract.org/2004/07/SMSPanel.Common.Enums"
DOMAIN_ENUMS = "http://schemas.datacontract.org/2004/07/SMSPanel.Domain.Enums"

GENERATIONS = ("2020", "2022", "latest")
DEFAULT_GENERATION = "2022"

# .NET value types: never nil, read as their default when missing.
VALUE_TYPES = {"int", "long", "boolean", "decimal", "dateTime"}
BUILTINS = VALUE_TYPES | {"string", "base64Binary"}
# The XML Schema types the DataContractSerializer knows, in the order WCF's serialization schema lists them.
XS_PRIMITIVES = (
    "anyType",
    "anyURI",
    "base64Binary",
    "boolean",
    "byte",
    "dateTime",
    "decimal",
    "double",
    "float",
    "int",
    "long",
    "QName",
    "short",
    "string",
    "unsignedByte",
    "unsignedInt",
    "unsignedLong",
    "unsignedShort",
)
ENUM_TYPES = {"SMSLang", "SMSDirectionType", "SMSSendMethod", "SMSSendStatus", "SMSStatus"}
ARRAY_ITEMS = {"ArrayOfstring": "string", "ArrayOflong": "long", "ArrayOfint": "int"}

_CREDENTIALS = (("userName", "string"), ("password", "string"))
# name, request parameters after the credentials, response parameters (result first)
_OPERATIONS = (
    (
        "SendSMS",
        (
            ("fromNumber", "string"),
            ("toNumbers", "ArrayOfstring"),
            ("messageContent", "string"),
            ("isFlash", "boolean"),
            ("recId", "ArrayOflong"),
            ("status", "base64Binary"),
        ),
        (("SendSMSResult", "int"), ("recId", "ArrayOflong"), ("status", "base64Binary")),
    ),
    ("GetCredit", (), (("GetCreditResult", "decimal"),)),
    ("GetDeilvery", (("recId", "long"),), (("GetDeilveryResult", "long"),)),
    ("GetDelivery", (("recId", "long"),), (("GetDeliveryResult", "long"),)),
    (
        "GetMessages",
        (("messageType", "int"), ("fromNumbers", "ArrayOfstring"), ("index", "int"), ("count", "int")),
        (("GetMessagesResult", "ArrayOfMessageInfo"),),
    ),
    (
        "GetMessagesByDateRange",
        (("messageType", "int"), ("fromNumbers", "ArrayOfstring"), ("fromDate", "dateTime"), ("toDate", "dateTime")),
        (("GetMessagesByDateRangeResult", "ArrayOfMessageInfo"),),
    ),
    ("GetInboxCount", (("isRead", "boolean"),), (("GetInboxCountResult", "int"),)),
    (
        "SendBatchSms",
        (
            ("fromNumber", "string"),
            ("toNumbers", "ArrayOfstring"),
            ("messageContent", "string"),
            ("isFlash", "boolean"),
        ),
        (("SendBatchSmsResult", "int"), ("batchSmsId", "int")),
    ),
    (
        "GetBatchDelivery",
        (("batchSmsId", "int"), ("index", "int"), ("count", "int")),
        (("GetBatchDeliveryResult", "int"), ("numbers", "ArrayOfstring"), ("deliveryStatus", "ArrayOfint")),
    ),
    ("GetSenderNumbers", (), (("GetSenderNumbersResult", "string"),)),
    (
        "SendSmsLikeToLike",
        (
            ("fromNumber", "string"),
            ("toNumbers", "ArrayOfstring"),
            ("messageContents", "ArrayOfstring"),
            ("isFlash", "boolean"),
        ),
        (("SendSmsLikeToLikeResult", "int"), ("smsId", "int")),
    ),
    (
        "GetDeliveryLikeToLike",
        (("smsId", "int"),),
        (("GetDeliveryLikeToLikeResult", "int"), ("numbers", "ArrayOfstring"), ("deliveryStatus", "ArrayOfint")),
    ),
    (
        "ExtractTelecomBlacklistNumbers",
        (("numbers", "string"),),
        (("ExtractTelecomBlacklistNumbersResult", "int"), ("blacklistNumbers", "ArrayOfstring")),
    ),
    ("NumberIsInTelecomBlacklist", (("number", "string"),), (("NumberIsInTelecomBlacklistResult", "int"),)),
    ("CheckSmsContent", (("message", "string"),), (("CheckSmsContentResult", "int"),)),
)
_DUMMY = ("Dummy", (("number", "int"),), (("DummyResult", "int"),))

# MessageInfo's data members in DataContract (alphabetical) order, with their types.
MESSAGE_INFO = (
    ("ActionDateTime", "dateTime"),
    ("Content", "string"),
    ("Cost", "decimal"),
    ("Count", "int"),
    ("Desc", "string"),
    ("Flash", "boolean"),
    ("IsRead", "boolean"),
    ("Lang", "SMSLang"),
    ("MessageId", "int"),
    ("MessageType", "SMSDirectionType"),
    ("MoneyIsRefunded", "boolean"),
    ("NotSent", "int"),
    ("Pages", "int"),
    ("Receiver", "string"),
    ("SendMethod", "SMSSendMethod"),
    ("SendStatus", "SMSSendStatus"),
    ("Sender", "string"),
    ("Sent", "int"),
    ("Status", "SMSStatus"),
    ("Tariff", "decimal"),
    ("Title", "string"),
    ("UserId", "int"),
)
MISSING_IN_2020 = {"Cost", "SendMethod", "SendStatus"}

# Delivery statuses of newer deployments, and the nearest status older ones report instead:
# 12 (no messenger account) is "not delivered", 13 (in the send queue) is "queued, no report yet".
NEWER_DELIVERY_STATUSES = {12: 2, 13: -4}
DELIVERY_STATUS_FIELDS = {"deliveryStatus", "GetDeliveryResult", "GetDeilveryResult"}

_SMS_STATUS = [
    "Pending",
    "Illegal",
    "Sending",
    "NotApproved",
    "Sent",
    "Canceled",
    "Error",
    "NoCredit",
    "NotSent",
    "WaitForSend",
    "PendingDecCost",
    "InQueue",
]
_SEND_METHODS = [
    "Quick",
    "Test",
    "Regional",
    "Group",
    "WebService",
    "Announcement",
    "Secretary",
    "IntelligentSend",
    "CorrespondingSend",
    "CodeReader",
    "Poll",
    "Transfer",
    "Reply",
    "PhoneBook",
    "PostalCode",
    "SmsEvent",
    "IntelligentSecretary",
    "AddToPhoneBook",
    "InstantSms",
    "ScheduleSms",
    "UsanceSms",
]
_NEWER_SEND_METHODS = ["AgeAndGender", "System", "BirthdaySms", "KioskSms", "CancellationBy11"]


def _numbered(names: list[str]) -> tuple[tuple[str, int], ...]:
    return (("None", -10), *((name, i) for i, name in enumerate(names, start=1)))


def _enums(generation: str) -> dict[str, tuple[tuple[str, int], ...]]:
    latest = generation == "latest"
    return {
        "SMSLang": _numbered(["FA", "EN"]),
        "SMSDirectionType": _numbered(["In", "Out", "Schedule", "Usance"]),
        "SMSSendMethod": _numbered(_SEND_METHODS + (_NEWER_SEND_METHODS if latest else [])),
        "SMSSendStatus": _numbered(["Sent", "Error", "BlockList"]),
        "SMSStatus": _numbered(_SMS_STATUS + (["ManyToManyCalcCost"] if latest else [])),
    }


def type_namespace(type_name: str) -> str:
    """The XML namespace of a type named by its local name."""
    if type_name in BUILTINS:
        return XS
    if type_name in ARRAY_ITEMS:
        return ARRAYS
    if type_name in ("ArrayOfMessageInfo", "MessageInfo"):
        return MODELS
    return COMMON_ENUMS if type_name == "SMSLang" else DOMAIN_ENUMS


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # the local name of its XSD type: string, int, ArrayOfstring, ...

    @property
    def nillable(self) -> bool:
        return self.type not in VALUE_TYPES | ENUM_TYPES

    @property
    def namespace(self) -> str:
        return type_namespace(self.type)


@dataclass(frozen=True)
class Operation:
    name: str
    request: tuple[Field, ...]
    response: tuple[Field, ...]

    @property
    def soap_action(self) -> str:
        return f"{TEMPURI}ISendService/{self.name}"


@dataclass(frozen=True)
class Contract:
    """One generation of the contract: what a deployment of that generation serves."""

    generation: str
    operations: tuple[Operation, ...]
    message_info: tuple[Field, ...]
    enums: dict[str, tuple[tuple[str, int], ...]]

    def operation(self, name: str) -> Operation | None:
        return next((op for op in self.operations if op.name == name), None)

    def reported_status(self, code: int) -> int:
        """The delivery status a deployment of this generation reports for `code`: one added
        later is reported as the nearest status the generation knows."""
        return code if self.generation == "latest" else NEWER_DELIVERY_STATUSES.get(code, code)


def _fields(pairs) -> tuple[Field, ...]:
    return tuple(Field(name, type_name) for name, type_name in pairs)


def contract(generation: str = DEFAULT_GENERATION) -> Contract:
    """The contract of one generation (`2020`, `2022`, `latest`)."""
    if generation not in GENERATIONS:
        raise KeyError(f"no contract generation {generation!r}; choose one of {', '.join(GENERATIONS)}")
    operations = [
        Operation(name, _fields(_CREDENTIALS + request), _fields(response)) for name, request, response in _OPERATIONS
    ]
    operations.append(Operation(_DUMMY[0], _fields(_DUMMY[1]), _fields(_DUMMY[2])))
    info = MESSAGE_INFO
    if generation == "2020":
        operations = [op for op in operations if op.name != "GetMessagesByDateRange"]
        info = tuple(f for f in MESSAGE_INFO if f[0] not in MISSING_IN_2020)
    return Contract(generation, tuple(operations), _fields(info), _enums(generation))
