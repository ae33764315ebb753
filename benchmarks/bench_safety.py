"""Client safety: each misbehaviour of a hostile server, what the client raised, in what time
and memory.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_safety.py

Memory: in a fresh process making one call, the peak of Python allocations during the call
(tracemalloc) and the peak resident size (VmHWM) above its peak before the call. Time:
the failing call itself, and `payamak --timeout 2 credit` as a process, start-up included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile_server import (
    HostileServer,
    answer,
    bomb,
    cut_off,
    endless,
    soap,
    trickle,
    unannounced,
    wcf_fault,
)

PROBE = """
import json, sys, time, tracemalloc
def peak_kb():  # this process's peak alone: ru_maxrss carries a parent's peak across fork and exec
    return int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
from payamak_analytics import PanelClient, errors
options = json.loads(sys.argv[4])
client = PanelClient("demo", "pw", wsdl="bundled", endpoint=sys.argv[1], **options)
before = peak_kb()
started = time.monotonic()
tracemalloc.start()
try:
    getattr(client, sys.argv[2])(*json.loads(sys.argv[3]))
    outcome = "answered"
except errors.PayamakError as error:
    outcome = type(error).__name__
traced = tracemalloc.get_traced_memory()[1] / 2**20
after = peak_kb()
seconds = time.monotonic() - started
print(json.dumps({"outcome": outcome, "grew_mb": (after - before) / 1024, "peak_mb": after / 1024, "traced_mb": traced, "seconds": seconds}))
"""
CREDIT = soap("GetCredit", "<GetCreditResult>5</GetCreditResult>")
CASES = {  # path: (behaviour, method, args, the error that must come)
    "redirect to another host (read)": (
        answer("307 Temporary Redirect", b"", ("Location", "http://10.0.0.1/steal")),
        "get_credit",
        [],
        "RedirectRefusedError",
    ),
    "redirect to another host (send)": (
        answer("308 Permanent Redirect", b"", ("Location", "http://10.0.0.1/steal")),
        "send_batch_sms",
        ["10002188", ["09121234567"], "hi"],
        "SendOutcomeUnknownError",
    ),
    "200 MB answer": (endless, "get_credit", [], "AnswerError"),
    "200 MB answer to a 1000-row page": (endless, "messages_page", ["sent"], "AnswerError"),
    "200 MB answer, length not announced, to a 1000-row page": (unannounced, "messages_page", ["sent"], "AnswerError"),
    "gzip bomb (300 MB) to a 1000-row page": (bomb, "messages_page", ["sent"], "AnswerError"),
    "HTML page with status 200 (read)": (answer("200 OK", b"<html>hi</html>"), "get_credit", [], "AnswerError"),
    "HTML page with status 200 (send)": (
        answer("200 OK", b"<html>hi</html>"),
        "send_batch_sms",
        ["10002188", ["09121234567"], "hi"],
        "SendOutcomeUnknownError",
    ),
    "truncated answer to a send": (
        cut_off(CREDIT * 20),
        "send_batch_sms",
        ["10002188", ["09121234567"], "hi"],
        "SendOutcomeUnknownError",
    ),
    "NaN credit": (
        answer("200 OK", soap("GetCredit", "<GetCreditResult>NaN</GetCreditResult>")),
        "get_credit",
        [],
        "AnswerError",
    ),
    "batch sent without an id": (
        answer("200 OK", soap("SendBatchSms", "<SendBatchSmsResult>0</SendBatchSmsResult>")),
        "send_batch_sms",
        ["10002188", ["09121234567"], "hi"],
        "SendOutcomeUnknownError",
    ),
    "DeserializationFailed on a send": (
        answer("500 Internal Server Error", wcf_fault("a:DeserializationFailed")),
        "send_sms",
        ["10002188", ["09121234567"], "hi"],
        "NotSentError",
    ),
    "InternalServiceFault on a send": (
        answer("500 Internal Server Error", wcf_fault("a:InternalServiceFault")),
        "send_sms",
        ["10002188", ["09121234567"], "hi"],
        "SendOutcomeUnknownError",
    ),
}


def probe(url: str, method: str, args: list, **options) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    options = {"timeout": 60, "read_attempts": 1, **options}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url, method, json.dumps(args), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    return json.loads(done.stdout)


def time_to_fail(url: str) -> tuple[float, int]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PAYAMAK_USERNAME": "demo",
        "PAYAMAK_PASSWORD": "pw",
        "PAYAMAK_WSDL": "bundled",
        "PAYAMAK_ENDPOINT": url,
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "payamak_analytics.cli", "--timeout", "2", "credit"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    return time.monotonic() - started, done.returncode


def main() -> None:
    with HostileServer({"/slow": trickle}) as server:
        print("| case | expected | raised | Python peak in the call (MB) | RSS peak above baseline (MB) | held |")
        print("|---|---|---|---|---|---|")
        held = 0
        for number, (case, (behaviour, method, args, expected)) in enumerate(CASES.items()):
            server.behaviours[f"/c{number}"] = behaviour
            found = probe(server.url(f"c{number}"), method, args)
            ok = found["outcome"] == expected
            held += ok
            grew, traced = found["grew_mb"], found["traced_mb"]
            print(f"| {case} | {expected} | {found['outcome']} | {traced:.1f} | {grew:.1f} | {'yes' if ok else 'NO'} |")
        print(f"\n{held} of {len(CASES)} cases held.")
        call = probe(server.url("slow"), "get_credit", [], timeout=2, read_attempts=4, call_budget=4)
        print(
            f"one byte a second, timeout=2, call_budget=4 (what --timeout 2 sets): the call failed with "
            f"{call['outcome']} after {call['seconds']:.1f} s (target < 5 s)"
        )
        seconds, status = time_to_fail(server.url("slow"))
        print(
            f"the same, `payamak --timeout 2 credit` as a process, start-up included: {seconds:.1f} s (exit {status})"
        )
        seconds, status = time_to_fail("http://127.0.0.1:9/SendService.svc")
        print(f"start-up alone (the same command against a refused address): {seconds:.1f} s (exit {status})")


if __name__ == "__main__":
    main()
