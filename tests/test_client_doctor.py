"""`payamak doctor` / `client.diagnose()` against the simulator, a 2020-like deployment and a
service writing another zone; `--timeout` refused when it is not a time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from lxml import etree

from payamak_analytics import PanelClient, wsdl
from payamak_analytics.dates import TEHRAN
from payamak_analytics.simulator.world import Account

XS = "{http://www.w3.org/2001/XMLSchema}"
SECRET = "S3cret-پسورد&<x>"


def payamak(*args: str, cwd, wsdl_url: str, password: str = "demo", user: str = "demo") -> subprocess.CompletedProcess:
    env = {**os.environ, "PAYAMAK_USERNAME": user, "PAYAMAK_PASSWORD": password, "PAYAMAK_WSDL": wsdl_url}
    env["PYTHONPATH"] = os.pathsep.join([str(os.path.dirname(os.path.dirname(__file__))), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "payamak_analytics.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=90,
        check=False,
    )


def by_name(diagnosis) -> dict:
    return {check.name: check for check in diagnosis.checks}


def simulated_now(simulator) -> datetime:
    return datetime.fromtimestamp(simulator.world.clock.now(), TEHRAN)


def test_a_healthy_account_passes(client, simulator):
    client.send_sms("10002188", ["09121234567"], "hi")
    found = client.diagnose(now=simulated_now(simulator))
    assert not found.blocking
    assert {c.name: c.status for c in found.checks} == {
        "address": "ok",
        "credentials": "ok",
        "credit": "ok",
        "lines": "ok",
        "operations": "ok",
        "message_fields": "ok",
        "enums": "ok",
        "time_zone": "ok",
        "web_service": "info",
    }
    assert sum(client.calls[op] for op in ("SendSMS", "SendBatchSms", "SendSmsLikeToLike")) == 1  # only the test's


def test_a_wrong_password_blocks(simulator):
    found = PanelClient("demo", "wrong", wsdl=simulator.wsdl_url).diagnose()
    assert found.blocking and by_name(found)["credentials"].status == "fail"


def test_a_service_writing_another_zone_is_found(simulator):
    client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url, service_zone=UTC)
    client.send_sms("10002188", ["09121234567"], "hi")
    check = by_name(client.diagnose(now=simulated_now(simulator)))["time_zone"]
    assert check.status == "warn" and "3.5 h ahead" in check.en


def older_deployment(folder) -> str:
    """The bundled contract as a 2020-like deployment: no GetMessagesByDateRange, no Cost /
    SendMethod / SendStatus, IsRead spelt Isread, and an SMSStatus value this toolkit does not know."""
    for name in ("wsdl", *wsdl.SCHEMA_NAMES):
        shutil.copy(wsdl.WSDL_PATH.with_name("SendService.wsdl" if name == "wsdl" else f"{name}.xsd"), folder)
    document = etree.fromstring(wsdl.document("wsdl"))
    for element in list(document.iter()):
        if element.get("name", "").startswith(("GetMessagesByDateRange", "ISendService_GetMessagesByDateRange")):
            element.getparent().remove(element)
    (folder / "SendService.wsdl").write_bytes(etree.tostring(document))
    for name in wsdl.SCHEMA_NAMES:
        (folder / f"{name}.xsd").write_bytes(etree.tostring(older_schema(etree.fromstring(wsdl.document(name)))))
    return str(folder / "SendService.wsdl")


def older_schema(schema):
    removed = ("Cost", "SendMethod", "SendStatus", "GetMessagesByDateRange", "GetMessagesByDateRangeResponse")
    for element in list(schema.iter(f"{XS}element")):
        if element.get("name") in removed:
            element.getparent().remove(element)
        elif element.get("name") == "IsRead":
            element.set("name", "Isread")
    for simple in schema.iter(f"{XS}simpleType"):
        if simple.get("name") == "SMSStatus":
            etree.SubElement(next(simple.iter(f"{XS}restriction")), f"{XS}enumeration", value="Teleported")
    return schema


def test_an_older_deployment_is_described(shared_simulator, tmp_path):
    client = PanelClient("demo", "demo", wsdl=older_deployment(tmp_path), endpoint=shared_simulator.url)
    found = by_name(client.diagnose(now=simulated_now(shared_simulator)))
    assert found["operations"].status == "warn" and found["operations"].data["missing"] == ["GetMessagesByDateRange"]
    assert found["message_fields"].data == {
        "missing": ["Cost", "SendMethod", "SendStatus"],
        "extra": [],
        "renamed": {"IsRead": "Isread"},
    }
    assert found["enums"].status == "warn" and found["enums"].data == {"SMSStatus": ["Teleported"]}
    assert found["credentials"].status == "ok"


def test_doctor_command_prints_a_table_and_writes_a_report_without_the_password(simulator, tmp_path):
    simulator.world.accounts["alice"] = Account("alice", SECRET, Decimal(10))
    done = payamak(
        "doctor", "--json", "report.json", cwd=tmp_path, wsdl_url=simulator.wsdl_url, user="alice", password=SECRET
    )
    assert done.returncode == 0, done.stderr
    assert "Credentials" in done.stdout and "ok" in done.stdout
    report = (tmp_path / "report.json").read_text("utf-8")
    assert json.loads(report)["blocking"] is False and json.loads(report)["username"] == "alice"
    assert SECRET not in report + done.stdout + done.stderr
    persian = payamak("doctor", "--lang", "fa", cwd=tmp_path, wsdl_url=simulator.wsdl_url, password="wrong")
    assert persian.returncode == 1 and "نام کاربری و رمز" in persian.stdout and "مانع" in persian.stdout


def test_doctor_on_an_unreachable_address(tmp_path):
    done = payamak("--timeout", "2", "doctor", cwd=tmp_path, wsdl_url="http://127.0.0.1:9/SendService.svc?wsdl")
    assert done.returncode == 1 and "fail" in done.stdout
    assert json.loads((tmp_path / "payamak-doctor.json").read_text("utf-8"))["blocking"] is True


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_that_is_not_a_time_is_a_usage_error(tmp_path, value):
    done = payamak(f"--timeout={value}", "doctor", cwd=tmp_path, wsdl_url="http://127.0.0.1:9/x?wsdl")
    assert done.returncode == 2 and "--timeout" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_simulators_2020_generation_is_described_and_still_synced(make_simulator, tmp_path):
    """`payamak simulate --contract 2020`: doctor names what that generation lacks, and the sync works."""
    from payamak_analytics.store import Store
    from payamak_analytics.sync import sync

    simulator = make_simulator(contract="2020")
    client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url)
    found = by_name(client.diagnose(now=simulated_now(simulator)))
    assert found["operations"].data["missing"] == ["GetMessagesByDateRange"]
    assert found["message_fields"].data["missing"] == ["Cost", "SendMethod", "SendStatus"]
    assert found["credentials"].status == "ok"
    summary = sync(client, Store(tmp_path / "p.duckdb"), progress=False)
    assert summary.rows_new > 0
