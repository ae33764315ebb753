"""Simulator speed: a 1000-row page, sustained load from 32 clients, a 1,000,000-record history.

    .venv/bin/python benchmarks/bench_simulator.py [--load-seconds 60]

The simulator runs in its own process (`payamak simulate`), the load in this one, so the
numbers are the server's, measured by a client over loopback.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import threading
import time

import requests

ENVELOPE = (
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><{op} xmlns="http://tempuri.org/">'
    "<userName>demo</userName><password>demo</password>{args}</{op}></s:Body></s:Envelope>"
)
ARRAYS = 'xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays"'


def envelope(op: str, args: str = "") -> tuple[bytes, dict]:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"http://tempuri.org/ISendService/{op}"'}
    return ENVELOPE.format(op=op, args=args).encode(), headers


def start_simulator(*extra: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "payamak_analytics.cli", "simulate", "--admin", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    url = re.search(r"(http://\S+)\?wsdl", process.stdout.readline()).group(1)
    return process, url


def page_latency(url: str, rounds: int = 60) -> dict:
    body, headers = envelope("GetMessages", "<messageType>2</messageType><index>1</index><count>1000</count>")
    session = requests.Session()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = session.post(url, data=body, headers=headers)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200 and response.content.count(b"<a:MessageInfo>") == 1000
    return {"median_ms": statistics.median(times) * 1000, "p90_ms": statistics.quantiles(times, n=10)[-1] * 1000}


def load(url: str, seconds: float, clients: int = 32) -> dict:
    truth = requests.get(url.rsplit("/", 1)[0] + "/_sim/truth", params={"batches": "0"}).json()
    first_id = 10_000_000
    requests_mix = [
        envelope("GetCredit"),
        envelope("GetInboxCount", "<isRead>false</isRead>"),
        envelope(
            "GetBatchDelivery",
            f"<batchSmsId>{first_id + truth['messages']['sent'] // 2}</batchSmsId><index>1</index><count>100</count>",
        ),
        envelope("GetDelivery", f"<recId>{(first_id + 5) * 1000}</recId>"),
        envelope("GetMessages", "<messageType>2</messageType><index>1</index><count>100</count>"),
    ]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(seed: int) -> None:
        session = requests.Session()
        rng = random.Random(seed)
        mine = []
        while time.perf_counter() < deadline:
            body, headers = rng.choice(requests_mix)
            started = time.perf_counter()
            try:
                ok = session.post(url, data=body, headers=headers, timeout=10).status_code == 200
            except requests.RequestException:
                ok = False
            mine.append(time.perf_counter() - started)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "errors": errors[0],
    }


def million_history() -> dict:
    code = (
        "import time, json\n"
        "def peak_kb():  # this process's peak alone: ru_maxrss carries a parent's peak across fork and exec\n"
        "    return int(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))\n"
        "t, cpu = time.perf_counter(), time.process_time()\n"
        "from payamak_analytics.simulator import World, WorldConfig, HistoryConfig\n"
        "w = World(WorldConfig(history=HistoryConfig(messages=1_000_000)))\n"
        "ready, ready_cpu = time.perf_counter() - t, time.process_time() - cpu\n"
        "page = w.get_messages('demo', 'demo', 2, (), 500_000, 1000)\n"
        "print(json.dumps({'records': len(w.history), 'ready_s': round(ready, 2), 'ready_cpu_s': round(ready_cpu, 2),"
        " 'page_rows': len(page), 'peak_rss_mb': round(peak_kb() / 1024)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load-seconds", type=float, default=60)
    args = parser.parse_args()
    process, url = start_simulator("--messages", "20000", "--threads", "16")
    try:
        page = page_latency(url)
        print(
            f"1000-row GetMessages page, served and received over loopback: median {page['median_ms']:.1f} ms, "
            f"p90 {page['p90_ms']:.1f} ms (target: median <= 10 ms)"
        )
        result = load(url, args.load_seconds)
        print(f"load: {json.dumps(result)} (target: >= 200 requests/s, p99 <= 200 ms, no errors)")
    finally:
        process.terminate()
        process.wait()
    history = million_history()
    print(f"1,000,000-record history: {json.dumps(history)} (target: ready <= 10 s, RSS <= 500 MB)")


if __name__ == "__main__":
    main()
