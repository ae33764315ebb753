"""Injected trouble answers as a WCF service behind IIS does, over real HTTP: an exception inside
the service is WCF's InternalServiceFault byte for byte, a failing site is IIS's own page; and
the project's client reads each as what it is (a read asks again, a send is unknown, never resent)."""

from __future__ import annotations

import pytest
import requests

from payamak_analytics import PanelClient, errors
from payamak_analytics.simulator import FaultConfig

from .conftest import truth, world_config

DISPATCHER = "http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"
# What a WCF 4.x basicHttpBinding service with includeExceptionDetailInFaults="false" answers for
# an exception its operation did not catch, as captured from real services.
INTERNAL_SERVICE_FAULT = (
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
    f'<faultcode xmlns:a="{DISPATCHER}">a:InternalServiceFault</faultcode>'
    '<faultstring xml:lang="en-US">The server was unable to process the request due to an internal error.  '
    "For more information about the error, either turn on IncludeExceptionDetailInFaults (either from "
    "ServiceBehaviorAttribute or from the &lt;serviceDebug&gt; configuration behavior) on the server in order to "
    "send the exception information back to the client, or turn on tracing as per the Microsoft .NET Framework "
    "SDK documentation and inspect the server trace logs.</faultstring></s:Fault></s:Body></s:Envelope>"
).encode()
GET_CREDIT = (
    b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    b'<GetCredit xmlns="http://tempuri.org/"><userName>demo</userName><password>demo</password></GetCredit>'
    b"</s:Body></s:Envelope>"
)
LINE = "10002188"


def post_credit(simulator) -> requests.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"http://tempuri.org/ISendService/GetCredit"'}
    return requests.post(simulator.url, data=GET_CREDIT, headers=headers, timeout=30)


def client_of(simulator, **kwargs) -> PanelClient:
    return PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.01, cache_wsdl=False, **kwargs)


def test_an_injected_fault_is_wcfs_internal_service_fault_byte_for_byte(make_simulator):
    simulator = make_simulator(faults=FaultConfig(fault_rate=1.0))
    for _ in range(6):  # before and after the operation ran, the same bytes
        response = post_credit(simulator)
        assert response.status_code == 500
        assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
        assert response.content == INTERNAL_SERVICE_FAULT


def test_the_simulators_own_internal_failure_is_the_same_fault(simulator):
    """A request the operation cannot take (another operation's wrapper) fails inside, as WCF's does."""
    wrong = GET_CREDIT.replace(b"GetCredit", b"SendSMS")
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"http://tempuri.org/ISendService/GetCredit"'}
    response = requests.post(simulator.url, data=wrong, headers=headers, timeout=30)
    assert (response.status_code, response.content) == (500, INTERNAL_SERVICE_FAULT)


def test_a_failing_site_answers_iis_pages_not_soap(make_simulator):
    simulator = make_simulator(faults=FaultConfig(fail_rate=1.0, seed=3))
    seen = {}
    for _ in range(12):
        response = post_credit(simulator)
        seen[response.status_code] = response
    assert set(seen) == {500, 503}
    assert b"<title>500 - Internal server error.</title>" in seen[500].content
    assert seen[500].headers["Content-Type"] == "text/html"
    assert b"HTTP Error 503. The service is unavailable." in seen[503].content
    assert seen[503].headers["Content-Type"] == "text/html; charset=us-ascii"


def test_a_read_meeting_internal_service_faults_asks_again_and_says_what_it_met(make_simulator):
    simulator = make_simulator(faults=FaultConfig(fault_rate=1.0, operations=("GetCredit",)))
    client = client_of(simulator, read_attempts=3)
    with pytest.raises(errors.SoapFaultError) as caught:
        client.get_credit()
    assert caught.value.fault_code == f"{{{DISPATCHER}}}InternalServiceFault"
    assert caught.value.retryable and not isinstance(caught.value, errors.SendOutcomeUnknownError)
    assert client.calls["GetCredit"] == 3  # every attempt the policy allows, no more


def test_reads_get_through_internal_service_faults(make_simulator):
    simulator = make_simulator(world_config(messages=600), FaultConfig(fault_rate=0.4, seed=21))
    client = client_of(simulator, read_attempts=10)
    for _ in range(10):
        assert client.get_credit() == 1_000_000
    frame = client.messages_frame("sent")
    assert len(frame) == truth(simulator, batches=0)["messages"]["sent"] and frame["message_id"].is_unique
    assert client.retries["GetCredit"] > 0


def test_a_send_meeting_an_internal_service_fault_is_unknown_and_never_resent(make_simulator):
    """Half of WCF's internal faults come after the send went out: the client cannot tell, so
    every one is unknown, and none is sent again."""
    simulator = make_simulator(faults=FaultConfig(fault_rate=1.0, seed=4, operations=("SendBatchSms", "SendSMS")))
    client = client_of(simulator)
    tries = 16
    for i in range(tries):
        with pytest.raises(errors.SendOutcomeUnknownError) as caught:
            client.send_batch_sms(LINE, [f"0912{i:07d}"], f"message {i}")
        assert caught.value.fault_code == f"{{{DISPATCHER}}}InternalServiceFault" and not caught.value.retryable
    assert client.calls["SendBatchSms"] == tries
    went_out = [s.texts[0] for s in simulator.world.sends.values()]
    assert 0 < len(went_out) < tries  # some did go out behind the fault, some did not
    assert len(went_out) == len(set(went_out))  # and none went out twice
    with pytest.raises(errors.SendOutcomeUnknownError):
        client.send_sms(LINE, ["09121234567"], "one more")
    assert client.calls["SendSMS"] == 1


def test_a_sync_through_internal_service_faults_stores_what_the_panel_holds(make_simulator, tmp_path):
    from payamak_analytics.store import Store
    from payamak_analytics.sync import sync

    simulator = make_simulator(world_config(messages=300, days=3), FaultConfig(fault_rate=0.25, seed=8), threads=8)
    store = Store(tmp_path / "faulty.duckdb")
    summary = sync(client_of(simulator, read_attempts=8), store, progress=False)
    assert summary.retries > 0
    held = truth(simulator, batches=0)
    assert len(store.messages("sent")) == held["messages"]["sent"]
    statuses = store.deliveries()["status"].value_counts()
    assert {str(k): int(v) for k, v in statuses.items()} == held["recipients_by_status"]


def test_a_request_wcf_refuses_first_gets_its_refusal_not_an_injected_fault(make_simulator):
    """An exception inside the operation needs the operation to be reached: a wrong SOAPAction is
    still a contract filter mismatch, an unreadable content type still 415, when every call throws."""
    simulator = make_simulator(faults=FaultConfig(fault_rate=1.0))
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"http://tempuri.org/ISendService/Nothing"'}
    refused = requests.post(simulator.url, data=GET_CREDIT, headers=headers, timeout=30)
    assert refused.status_code == 500 and b"a:ActionNotSupported" in refused.content
    soap12 = requests.post(
        simulator.url, data=GET_CREDIT, headers={"Content-Type": "application/soap+xml; charset=utf-8"}, timeout=30
    )
    assert (soap12.status_code, soap12.content) == (415, b"") and "Content-Type" not in soap12.headers
    assert post_credit(simulator).content == INTERNAL_SERVICE_FAULT
