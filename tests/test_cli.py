"""The `payamak` command, run as a user runs it, against a simulator on loopback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from payamak_analytics.cli import main
from payamak_analytics.store import Store

from .conftest import truth


def payamak(simulator, *args: str, password: str = "demo") -> subprocess.CompletedProcess:
    env = {**os.environ, "PAYAMAK_USERNAME": "demo", "PAYAMAK_PASSWORD": password, "PAYAMAK_WSDL": simulator.wsdl_url}
    return subprocess.run(
        [sys.executable, "-m", "payamak_analytics.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_credit_and_inbox(shared_simulator):
    assert payamak(shared_simulator, "credit").stdout.strip() == "1000000"
    unread = truth(shared_simulator, batches=0)["messages"]["received_unread"]
    assert payamak(shared_simulator, "inbox-count").stdout.strip() == str(unread)


def test_messages_lists_the_newest(shared_simulator):
    out = payamak(shared_simulator, "messages", "--type", "sent", "--limit", "3").stdout.splitlines()
    assert out[0].split()[:4] == ["Message", "id", "Time", "From"] and len(out) == 4


def test_sync_stores_every_page_without_loading_pandas_or_arrow(shared_simulator, tmp_path):
    """`payamak sync` stores pages from numpy arrays: pandas and Arrow, which pandas loads, are
    100 MB of a timer's sync (benchmarks/RESULTS.md) and are not loaded, reports read and all."""
    probe = (
        "import sys; from payamak_analytics.cli import main; main(sys.argv[1:]); "
        "print(sorted({'pandas', 'pyarrow'} & set(sys.modules)))"
    )
    env = {
        **os.environ,
        "PAYAMAK_USERNAME": "demo",
        "PAYAMAK_PASSWORD": "demo",
        "PAYAMAK_WSDL": shared_simulator.wsdl_url,
    }
    db = tmp_path / "s.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", probe, "sync", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "[]"
    expected = truth(shared_simulator, batches=0)
    store = Store(db)
    assert store.sql("SELECT count(*) AS n FROM messages")["n"][0] == sum(
        expected["messages"][kind] for kind in ("sent", "received")
    )
    statuses = store.sql("SELECT status, count(*) AS n FROM deliveries GROUP BY status")
    assert {str(s): n for s, n in zip(statuses["status"], statuses["n"])} == expected["recipients_by_status"]


def test_send_dry_run_sends_nothing(simulator):
    result = payamak(
        simulator, "send", "--from", "10002188", "--to", "۰۹۱۲۱۲۳۴۵۶۷,09351234567", "--text", "س" * 71, "--dry-run"
    )
    assert result.returncode == 0
    assert (
        "2 recipient(s), 71 characters, UCS-2, 2 part(s): 4 SMS" in result.stdout
        and "nothing was sent" in result.stdout
    )
    assert "SendSMS" not in truth(simulator, batches=0)["calls"]


def test_send_dry_run_warns_of_numbers_outside_the_number_plan(simulator):
    result = payamak(
        simulator, "send", "--from", "10002188", "--to", "09065551234,09121234567", "--text", "hi", "--dry-run"
    )
    assert result.returncode == 0 and "Warning: 1 number(s) are not in the number plan" in result.stdout
    assert "09065551234" in result.stdout and "SendSMS" not in truth(simulator, batches=0)["calls"]


def test_send_and_delivery(simulator):
    result = payamak(simulator, "send", "--from", "10002188", "--to", "09121234567", "--text", "hi")
    assert result.returncode == 0 and "sent" in result.stdout
    rec_id = result.stdout.split("rec_id=")[1].split()[0]
    status = payamak(simulator, "delivery", rec_id)
    assert status.stdout.startswith("-5 ")


@pytest.mark.parametrize(
    "args, code",
    [
        (("credit",), "code -1"),
        (("send", "--from", "10002188", "--to", "0912", "--text", "x"), "Not Iranian mobile numbers"),
    ],
)
def test_errors_are_one_readable_line(shared_simulator, args, code):
    result = payamak(shared_simulator, *args, password="wrong" if args == ("credit",) else "demo")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and code in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("sync", "--workers", "100000"),
        ("sync", "--workers", "0"),
        ("sync", "--give-up-after", "inf"),
        ("sync", "--rate", "nan"),
        ("campaign", "status", "x", "--rate", "-1"),
        ("simulate", "--fail-rate", "1.5"),
        ("simulate", "--threads", "0"),
        ("simulate", "--port", "70000"),
        ("simulate", "--messages", "-5"),
        ("--timeout", "0", "credit"),
    ],
)
def test_a_number_out_of_its_range_is_a_usage_error_before_anything_starts(tmp_path, monkeypatch, capsys, args):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "give a" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no store, no file
