"""The client facing a hostile server: every misbehaviour ends in a typed error, in bounded time
and memory, with nothing sent elsewhere, nothing sent twice and the password nowhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import requests

from payamak_analytics import PanelClient, errors, wsdl

from .hostile_server import (
    ARRAYS,
    SOAP_ENV,
    HostileServer,
    answer,
    bomb,
    by_operation,
    cut_off,
    endless,
    http,
    soap,
    trickle,
    unannounced,
    wcf_fault,
)

SECRET = "S3cret-پسورد&<x>"
LINE, NUMBER = "10002188", "09121234567"
HTML = b"<html><body><h1>Welcome to our proxy</h1></body></html>"
ROOT = Path(__file__).resolve().parents[1]


def client_of(server: HostileServer, path: str, **options) -> PanelClient:
    options = {"timeout": 2, "max_retry_wait": 0.05, **options}
    return PanelClient("demo", SECRET, wsdl="bundled", endpoint=server.url(path), **options)


def message_info(i: int, **fields: str) -> str:
    values = {"ActionDateTime": "2025-03-21T10:00:00", "Content": "hi", "Flash": "false", "MessageId": str(i), **fields}
    return "<a:MessageInfo>" + "".join(f"<a:{k}>{v}</a:{k}>" for k, v in values.items()) + "</a:MessageInfo>"


def messages_answer(rows: list[str], operation: str = "GetMessages") -> bytes:
    models = "http://schemas.datacontract.org/2004/07/SMSPanel.Domain.Models"
    return soap(operation, f'<{operation}Result xmlns:a="{models}">{"".join(rows)}</{operation}Result>')


def delivery_answer(numbers: list[str], statuses: list[str]) -> bytes:
    items = "".join(f"<b:string>{n}</b:string>" for n in numbers)
    codes = "".join(f"<b:int>{s}</b:int>" for s in statuses)
    return soap(
        "GetBatchDelivery",
        f'<GetBatchDeliveryResult>0</GetBatchDeliveryResult><numbers xmlns:b="{ARRAYS}">{items}</numbers>'
        f'<deliveryStatus xmlns:b="{ARRAYS}">{codes}</deliveryStatus>',
    )


@pytest.fixture
def server():
    with HostileServer() as hostile:
        yield hostile


# --- the password stays home ------------------------------------------------------------------
def test_a_redirect_is_never_followed(server):
    with HostileServer(
        {"/steal": answer("200 OK", soap("GetCredit", "<GetCreditResult>5</GetCreditResult>"))}
    ) as other:
        server.behaviours["/moved"] = answer("307 Temporary Redirect", b"", ("Location", other.url("steal")))
        client = client_of(server, "moved")
        with pytest.raises(errors.RedirectRefusedError) as caught:
            client.get_credit()
        assert caught.value.location == other.url("steal") and other.url("steal") in str(caught.value)
        with pytest.raises(errors.SendOutcomeUnknownError, match="redirect"):
            client.send_batch_sms(LINE, [NUMBER], "hi")
        assert other.requests == [] and client.calls["GetCredit"] == 1  # a redirect is not retried


def serving(server: HostileServer, document: bytes):
    """The WSDL `document` at `?wsdl`, and the bundled schemas at `?xsd=...`."""

    def behaviour(request, connection):
        name = request.path.split("=")[-1]
        connection.sendall(http("200 OK", document if "wsdl" in request.path else wsdl.served(name, server.url("svc"))))

    return behaviour


def test_schemas_and_addresses_only_from_the_configured_host(server, tmp_path):
    with HostileServer() as other:
        document = wsdl.served("wsdl", server.url("svc")).replace(
            f'schemaLocation="{server.url("svc")}?xsd=xsd3"'.encode(),
            f'schemaLocation="{other.url("x")}?xsd=xsd3"'.encode(),
        )
        server.behaviours["/svc"] = serving(server, document)
        with pytest.raises(errors.TransportError, match="another host"):
            PanelClient("demo", SECRET, wsdl=server.url("svc") + "?wsdl", cache_wsdl=False, timeout=2)
        assert other.requests == []
        elsewhere = wsdl.served("wsdl", server.url("svc")).replace(
            f'location="{server.url("svc")}"'.encode(), f'location="{other.url("svc")}"'.encode()
        )
        server.behaviours["/svc"] = serving(server, elsewhere)
        with pytest.raises(errors.TransportError, match="another host"):
            PanelClient("demo", SECRET, wsdl=server.url("svc") + "?wsdl", cache_wsdl=False, timeout=2)
        assert other.requests == []


def test_a_soap_action_cannot_add_a_header(server):
    """A description whose soapAction holds a line break (&#13;&#10;) must not put a header of its
    choosing into the request that carries the password: refused, as requests refused it."""
    action = 'soapAction="http://tempuri.org/ISendService/GetCredit'
    document = wsdl.served("wsdl", server.url("svc")).replace(
        f'{action}"'.encode(), f'{action}&#13;&#10; X-Injected: 1"'.encode()
    )
    server.behaviours["/svc"] = serving(server, document)
    client = PanelClient("demo", SECRET, wsdl=server.url("svc") + "?wsdl", cache_wsdl=False, timeout=2)
    with pytest.raises(errors.TransportError):
        client.get_credit()
    assert not any("x-injected" in request.headers for request in server.requests)


FAILURES = {
    "redirect": answer("308 Permanent Redirect", b"", ("Location", "http://127.0.0.1:9/x")),
    "html": answer("200 OK", HTML, content_type="text/html"),
    "cut": cut_off(soap("GetCredit", "<GetCreditResult>5</GetCreditResult>") * 20),
    "fault": answer("500 Internal Server Error", wcf_fault("a:InternalServiceFault")),
    "bomb": bomb,
    "nan": answer("200 OK", soap("GetCredit", "<GetCreditResult>NaN</GetCreditResult>")),
}


@pytest.mark.parametrize("case", [*FAILURES, "refused", "slow"])
def test_no_exception_carries_the_password(server, case):
    server.behaviours.update({f"/{name}": behaviour for name, behaviour in FAILURES.items()})
    server.behaviours["/slow"] = trickle
    client = (
        PanelClient("demo", SECRET, wsdl="bundled", endpoint="http://127.0.0.1:9/x", max_retry_wait=0.05)
        if case == "refused"
        else client_of(server, case, timeout=1, read_attempts=2)
    )
    for call in (client.get_credit, lambda: client.send_sms(LINE, [NUMBER], "hi")):
        with pytest.raises(errors.TransportError) as caught:
            call()
        seen = "".join(traceback.TracebackException.from_exception(caught.value, capture_locals=True).format())
        error, chain = caught.value, []
        while error is not None:
            chain.append(error)
            seen += repr(vars(error)) + repr(getattr(getattr(error, "request", None), "body", None))
            error = error.__context__ or error.__cause__
        assert SECRET not in seen and escape(SECRET) not in seen and escape(SECRET).encode() not in seen.encode()
    if case != "refused":
        assert any(escape(SECRET).encode() in request.body for request in server.requests)  # it did travel


# --- never hung, never unbounded --------------------------------------------------------------
def test_a_trickling_server_cannot_hold_a_call(server):
    server.behaviours["/slow"] = trickle
    client = client_of(server, "slow", timeout=2, call_budget=4)
    started = time.monotonic()
    with pytest.raises(errors.TransportError, match="deadline|timeout|cut off"):
        client.get_credit()
    assert time.monotonic() - started < 5  # a generous bound: the call's budget is 4 s
    started = time.monotonic()
    with pytest.raises(errors.SendOutcomeUnknownError):
        client.send_sms(LINE, [NUMBER], "hi")
    assert time.monotonic() - started < 3 and client.calls["SendSMS"] == 1


MEMORY_PROBE = """
import json, resource, sys, tracemalloc
from payamak_analytics import PanelClient, errors
client = PanelClient("demo", "pw", wsdl="bundled", endpoint=sys.argv[1], timeout=60, read_attempts=1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
try:
    getattr(client, sys.argv[2])(*json.loads(sys.argv[3]))
    outcome = "answered"
except errors.PayamakError as error:
    outcome = type(error).__name__
traced = tracemalloc.get_traced_memory()[1] / 2**20
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "grew_mb": (after - before) / 1024, "traced_mb": traced}))
"""


def memory_probe(url: str, method: str = "get_credit", *args) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, url, method, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("case", ["huge", "unannounced", "bomb"])
def test_a_huge_or_bombed_answer_is_refused_in_bounded_memory(server, case):
    server.behaviours.update({"/huge": endless, "/unannounced": unannounced, "/bomb": bomb})
    for method, args in (("get_credit", ()), ("messages_page", ("sent",))):
        found = memory_probe(server.url(case), method, *args)
        assert found["outcome"] == "AnswerError"
        assert found["grew_mb"] < 100 and found["traced_mb"] < 100, found


def test_a_server_that_ignores_the_index_cannot_loop_forever(server):
    server.behaviours["/same"] = answer("200 OK", messages_answer([message_info(i) for i in range(1, 1001)]))
    client = client_of(server, "same")
    with pytest.raises(errors.AnswerError, match="repeats a page"):
        client.messages_frame("sent")
    assert client.calls["GetMessages"] == 2
    server.behaviours["/more"] = answer("200 OK", messages_answer([message_info(i) for i in range(1, 12)]))
    with pytest.raises(errors.AnswerError, match="11 rows where 10"):
        client_of(server, "more").messages_page("sent", count=10)


def test_a_delivery_page_larger_than_asked_is_refused(server):
    server.behaviours["/many"] = answer("200 OK", delivery_answer([NUMBER] * 200_000, ["1"] * 200_000))
    server.behaviours["/some"] = answer("200 OK", delivery_answer([NUMBER] * 150, ["1"] * 150))
    with pytest.raises(errors.AnswerError, match="cap"):
        client_of(server, "many").get_batch_delivery(12, 1, 100)
    with pytest.raises(errors.AnswerError, match="150 rows where 100"):
        client_of(server, "some").get_batch_delivery(12, 1, 100)


# --- every answer parsed or refused with a typed error ----------------------------------------
VALUES = {
    "nan credit": ("get_credit", (), soap("GetCredit", "<GetCreditResult>NaN</GetCreditResult>"), "GetCreditResult"),
    "text credit": ("get_credit", (), soap("GetCredit", "<GetCreditResult>lots</GetCreditResult>"), "GetCreditResult"),
    "huge count": (
        "get_inbox_count",
        (),
        soap("GetInboxCount", "<GetInboxCountResult>99999999999</GetInboxCountResult>"),
        "GetInboxCountResult",
    ),
    "text id": ("get_messages", ("sent",), messages_answer([message_info(1, MessageId="abc")]), "MessageId"),
    "bad date": (
        "get_messages",
        ("sent",),
        messages_answer([message_info(1, ActionDateTime="yesterday")]),
        "ActionDateTime",
    ),
    "maybe flash": ("messages_page", ("sent",), messages_answer([message_info(1, Flash="maybe")]), "Flash"),
    "status out of range": (
        "get_batch_delivery",
        (12,),
        delivery_answer([NUMBER], ["99999999999"]),
        "deliveryStatus[0]",
    ),
}


@pytest.mark.parametrize("case", VALUES)
def test_values_out_of_contract_are_typed_errors(server, case):
    method, args, body, field = VALUES[case]
    server.behaviours["/v"] = answer("200 OK", body)
    client = client_of(server, "v")
    with pytest.raises(errors.AnswerError) as caught:
        getattr(client, method)(*args)
    assert caught.value.field == field and caught.value.operation and caught.value.value
    assert field in str(caught.value)
    if method in ("get_messages", "messages_page"):  # both readers of a page say the same
        other = "messages_page" if method == "get_messages" else "get_messages"
        with pytest.raises(errors.AnswerError):
            getattr(client, other)(*args)


def test_unknown_names_and_codes_still_read_as_unknown(server):
    server.behaviours["/u"] = by_operation(
        {
            "GetMessages": messages_answer([message_info(1, Status="Teleported", SendMethod="CarrierPigeon")]),
            "GetBatchDelivery": delivery_answer([NUMBER], ["42"]),
        }
    )
    client = client_of(server, "u")
    message = client.get_messages("sent")[0]
    assert (message.status, message.send_method) == ("Unknown", "Unknown")
    assert client.get_batch_delivery(12).statuses[0].outcome == "unknown"


def test_an_html_page_with_status_200_is_not_a_wrong_password(server):
    server.behaviours["/html"] = answer("200 OK", HTML, content_type="text/html")
    client = client_of(server, "html", read_attempts=2)
    with pytest.raises(errors.AnswerError, match="not complete XML|not a SOAP"):
        client.get_messages("sent")
    assert client.calls["GetMessages"] == 2  # a proxy's page may be gone next time: a read asks again
    with pytest.raises(errors.SendOutcomeUnknownError):
        client.send_batch_sms(LINE, [NUMBER], "hi")
    assert client.calls["SendBatchSms"] == 1


# --- a send is "not sent" only when it provably never ran -------------------------------------
SENDS = {  # only the dispatcher's faults before dispatch prove the operation never ran
    "a:DeserializationFailed": errors.NotSentError,
    "a:ActionNotSupported": errors.NotSentError,
    "s:MustUnderstand": errors.SendOutcomeUnknownError,
    "s:VersionMismatch": errors.SendOutcomeUnknownError,
    "s:Client": errors.SendOutcomeUnknownError,  # FaultException thrown inside the operation
    "a:InternalServiceFault": errors.SendOutcomeUnknownError,
    "s:Server": errors.SendOutcomeUnknownError,
}


@pytest.mark.parametrize("code", SENDS)
def test_wcf_faults_on_a_send(server, code):
    server.behaviours["/f"] = answer("500 Internal Server Error", wcf_fault(code))
    client = client_of(server, "f")
    with pytest.raises(SENDS[code]) as caught:
        client.send_batch_sms(LINE, [NUMBER], "hi")
    assert caught.value.fault_code.endswith(code.split(":")[1]) and caught.value.fault_code.startswith("{")
    assert client.calls["SendBatchSms"] == 1


def test_the_simulators_action_not_supported_fault_on_a_send_means_not_sent(server, simulator):
    """WCF words ActionNotSupported in basicHttpBinding's addressing namespace: the bytes the
    simulator answers to a send without its SOAPAction, replayed to the client, mean not sent."""
    envelope = (
        f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><SendBatchSms xmlns="http://tempuri.org/"/></s:Body></s:Envelope>'
    )
    refused = requests.post(
        simulator.url, data=envelope.encode(), headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=30
    )
    assert refused.status_code == 500 and b"ActionNotSupported" in refused.content
    server.behaviours["/f"] = answer("500 Internal Server Error", refused.content)
    with pytest.raises(errors.NotSentError):
        client_of(server, "f").send_batch_sms(LINE, [NUMBER], "hi")


def test_a_fault_code_is_read_by_its_namespace_not_its_suffix(server):
    impostor = wcf_fault("a:DeserializationFailed").replace(b'xmlns:a="http://schemas.microsoft', b'xmlns:a="urn:other')
    server.behaviours["/f"] = answer(
        "500 Internal Server Error", impostor.replace(b"/net/2005/12/windowscommunicationfoundation/dispatcher", b"")
    )
    with pytest.raises(errors.SendOutcomeUnknownError):
        client_of(server, "f").send_sms(LINE, [NUMBER], "hi")


@pytest.mark.parametrize(
    "code, retried",
    [("a:InternalServiceFault", True), ("a:DeserializationFailed", False), ("a:ActionNotSupported", False)],
)
def test_reads_are_retried_only_where_a_retry_can_help(server, code, retried):
    server.behaviours["/f"] = answer("500 Internal Server Error", wcf_fault(code))
    client = client_of(server, "f", read_attempts=3)
    with pytest.raises(errors.SoapFaultError):
        client.get_credit()
    assert client.calls["GetCredit"] == (3 if retried else 1)


@pytest.mark.parametrize("header", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_retry_after_is_read_and_honoured(server, header):
    """A header's name is case-insensitive: proxies and servers write it in any case."""
    server.behaviours["/busy"] = answer("503 Service Unavailable", b"busy", (header, "1"), content_type="text/plain")
    client = client_of(server, "busy", timeout=5, read_attempts=2)
    with pytest.raises(errors.TransportError) as caught:
        client.get_credit()
    assert caught.value.retry_after == 1.0 and client.calls["GetCredit"] == 2
    assert len(server.requests) == 2


@pytest.mark.parametrize("value", [b"\xb2", b"\xb9\xb2\xb3", b"-5", b"1.5", b"soon", b"Fri, 31 Dec 99999 23:59:59 GMT"])
def test_a_503_whose_retry_after_is_unreadable_is_still_weather(server, value):
    """A Retry-After that is not a number of seconds or a date is as if absent: the 503 stays a
    503 to ask again. "\xb2" (a superscript two in Latin-1) passed str.isdigit, and float()
    refused it: the 503 became an answer out of contract, which ends a sync at once."""
    head = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
    server.behaviours["/busy"] = lambda request, connection: connection.sendall(
        head + b"Retry-After: " + value + b"\r\n\r\nbusy"
    )
    client = client_of(server, "busy", timeout=5, read_attempts=2)
    with pytest.raises(errors.TransportError) as caught:
        client.get_credit()
    assert type(caught.value) is errors.TransportError and caught.value.retryable
    assert caught.value.retry_after is None and client.calls["GetCredit"] == 2


def test_a_refused_connection_means_not_sent():
    client = PanelClient("demo", SECRET, wsdl="bundled", endpoint="http://127.0.0.1:9/x", max_retry_wait=0.01)
    with pytest.raises(errors.NotSentError):
        client.send_batch_sms(LINE, [NUMBER], "hi")


def test_a_garbled_answer_to_a_send_that_went_out_is_unknown(simulator, server):
    """A proxy between the client and the panel garbles the answer of a send that did go out."""
    import requests

    def proxy(garble):
        def behaviour(request, connection):
            upstream = requests.post(
                simulator.url,
                data=request.body,
                headers={"Content-Type": request.headers["content-type"], "SOAPAction": request.headers["soapaction"]},
                timeout=10,
            )
            connection.sendall(garble(upstream.content))

        return behaviour

    server.behaviours["/cut"] = proxy(lambda body: http("200 OK", body)[: -len(body) // 2])
    server.behaviours["/html"] = proxy(lambda body: http("200 OK", HTML, content_type="text/html"))
    for path in ("cut", "html"):
        before = len(simulator.world.sends)
        with pytest.raises(errors.SendOutcomeUnknownError):
            PanelClient("demo", "demo", wsdl="bundled", endpoint=server.url(path)).send_batch_sms(LINE, [NUMBER], path)
        assert len(simulator.world.sends) == before + 1  # it did go out


def test_a_send_answered_without_a_batch_id_or_with_an_unknown_code_is_unknown(server):
    server.behaviours["/s"] = answer("200 OK", soap("SendBatchSms", "<SendBatchSmsResult>0</SendBatchSmsResult>"))
    with pytest.raises(errors.SendOutcomeUnknownError, match="id"):
        client_of(server, "s").send_batch_sms(LINE, [NUMBER], "hi")
    server.behaviours["/c"] = answer("200 OK", soap("SendSMS", "<SendSMSResult>77</SendSMSResult>"))
    with pytest.raises(errors.SendOutcomeUnknownError, match="77"):
        client_of(server, "c").send_sms(LINE, [NUMBER], "hi")


# --- bad input refused before anything is sent ------------------------------------------------
def numbers_once():
    yield NUMBER
    yield "09351234567"


BAD_INPUT = {
    "invisible text": lambda c: c.send_sms(LINE, [NUMBER], "\u200f\u200b"),
    "control character": lambda c: c.send_sms(LINE, [NUMBER], "hi\x01"),
    "NUL": lambda c: c.send_batch_sms(LINE, [NUMBER], "hi\x00there"),
    "lone surrogate": lambda c: c.send_sms(LINE, [NUMBER], "hi\ud800"),
    "negative line": lambda c: c.send_sms(-10002188, [NUMBER], "hi"),
    "negative line text": lambda c: c.send_sms("-10002188", [NUMBER], "hi"),
    "rec id beyond long": lambda c: c.get_delivery(2**70),
    "batch id beyond int": lambda c: c.get_batch_delivery(2**31),
    "zero limit": lambda c: c.messages_frame("sent", limit=0),
    "negative limit": lambda c: c.messages_frame("sent", limit=-3),
    "float limit": lambda c: c.messages_frame("sent", limit=2.5),
    "flash as a text": lambda c: c.send_batch_sms(LINE, [NUMBER], "hi", flash="false"),
    "flash as a number": lambda c: c.send_sms(LINE, [NUMBER], "hi", flash=1),
    "texts consumed once": lambda c: c.send_like_to_like(LINE, [NUMBER, "09351234567"], (t for t in ["a", "b", "c"])),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_refused_before_anything_is_sent(server, case):
    client = client_of(server, "nothing")
    with pytest.raises(errors.InputError) as caught:
        BAD_INPUT[case](client)
    assert caught.value.message_fa and server.requests == [] and sum(client.calls.values()) == 0


def test_generators_are_read_once(server):
    server.behaviours["/ok"] = by_operation(
        {
            "SendSmsLikeToLike": soap(
                "SendSmsLikeToLike", "<SendSmsLikeToLikeResult>0</SendSmsLikeToLikeResult><smsId>7</smsId>"
            )
        }
    )
    sent = client_of(server, "ok").send_like_to_like(LINE, numbers_once(), (t for t in ["a", "b"]))
    assert sent.numbers == [NUMBER, "09351234567"] and sent.batch_sms_id == 7
    assert server.requests[0].body.count(b">a<") == 1 and server.requests[0].body.count(b">b<") == 1


def test_a_recipient_the_service_gave_no_status_for_is_not_called_not_sent(server):
    """A success whose status array is missing or short says nothing of those recipients: "not
    sent" would invite sending to them again."""
    statuses = f'<recId xmlns:b="{ARRAYS}"><b:long>77</b:long></recId><status>AQI=</status>'
    server.behaviours["/bare"] = answer("200 OK", soap("SendSMS", "<SendSMSResult>0</SendSMSResult>"))
    server.behaviours["/short"] = answer("200 OK", soap("SendSMS", f"<SendSMSResult>0</SendSMSResult>{statuses}"))
    three = [NUMBER, "09351234567", "09191234567"]
    bare = client_of(server, "bare").send_sms(LINE, three, "hi")
    assert [r.sent for r in bare.recipients] == [None, None, None] and bare.sent_count == 0
    short = client_of(server, "short").send_sms(LINE, three, "hi")
    assert [r.sent for r in short.recipients] == [True, None, None] and short.sent_count == 1


REMEMBER_MANY = """
import time
from payamak_analytics.client.safety import remember, scrub
started = time.perf_counter()
for i in range(120):
    remember(f"account-{i:03d}-Pw!9x")
print(time.perf_counter() - started, scrub("login account-077-Pw!9x refused"))
"""


def test_remembering_many_secrets_costs_each_its_own_pattern_only():
    """A process holding many accounts' passwords (a dlt source over many accounts, a long
    notebook): each secret remembered compiles its own pattern once, not every pattern again."""

    done = subprocess.run(
        [sys.executable, "-c", REMEMBER_MANY], capture_output=True, text=True, timeout=300, check=True
    )
    seconds, shown = done.stdout.split(" ", 1)
    assert float(seconds) < 8 and shown.strip() == "login *** refused"
