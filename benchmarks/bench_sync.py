"""Sync speed and memory: ingest rate, CPU a page, concurrency, readers during a sync, RSS.

    .venv/bin/python benchmarks/bench_sync.py [--records 200000] [--million] [--only ingest,cpu,...]

The simulator runs as `payamak simulate` in its own process, so the numbers are the client's.
Every comparison runs in this one invocation, against the same simulator.
"""

from __future__ import annotations

import scratch  # noqa: F401  (first: every temporary file of this run goes into its folder)

# isort: split
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pandas as pd
import zeep
from lxml import etree
from zeep.helpers import serialize_object

from payamak_analytics import PanelClient
from payamak_analytics.store import Store
from payamak_analytics.sync import sync


def start_simulator(*flags: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "payamak_analytics.cli", "simulate", *flags], stdout=subprocess.PIPE, text=True
    )
    return process, re.search(r"(http://\S+)\?wsdl", process.stdout.readline()).group(1)


def messages_args(page: int) -> dict:
    return {"messageType": 2, "fromNumbers": None, "index": 1 + 1000 * page, "count": 1000}


def raw_page(naive: zeep.Client, page: int) -> bytes:
    """The bytes of one GetMessages page, as the service sent them."""
    with naive.settings(raw_response=True):
        return naive.service.GetMessages(userName="demo", password="demo", **messages_args(page)).content


def ingest(records: int) -> None:
    # the simulator's history is 92% sent records
    process, url = start_simulator("--messages", str(int(records / 0.92) + 1), "--threads", "16")
    client = PanelClient("demo", "demo", wsdl=url + "?wsdl")
    folder = Path(tempfile.mkdtemp())
    try:
        results = {}
        for workers in (8, 1):
            store = Store(folder / f"ours-{workers}.duckdb")
            summary = sync(client, store, workers=workers, deliveries=False, progress=False)
            results[f"ours_{workers}_workers"] = summary.rows_new / summary.elapsed
        sent, received = (
            store.sql(
                "SELECT count(*) FILTER (message_type = 'Out'), count(*) FILTER (message_type = 'In') FROM messages"
            )
            .iloc[0]
            .tolist()
        )
        full_pages = sent // 1000

        # the naive loop: zeep objects per page, serialize_object, DataFrame, insert
        pages = min(40, full_pages)
        naive = zeep.Client(url + "?wsdl")
        con = duckdb.connect(str(folder / "naive.duckdb"))
        started = time.perf_counter()
        for page in range(pages):
            result = naive.service.GetMessages(userName="demo", password="demo", **messages_args(page))
            frame = pd.DataFrame([serialize_object(info) for info in result])
            frame[["Cost", "Tariff"]] = frame[["Cost", "Tariff"]].astype(float)  # zeep's Decimals
            # texts as text: a column nil on the whole first page (Title) would make a column of type NULL
            frame = frame.astype({column: "string" for column in frame.select_dtypes("object").columns})
            con.register("frame", frame)
            if page == 0:
                con.execute("CREATE TABLE messages AS SELECT * FROM frame LIMIT 0")
            con.execute("INSERT INTO messages SELECT * FROM frame")
            con.unregister("frame")
        results["naive_zeep_loop"] = pages * 1000 / (time.perf_counter() - started)

        # the floor: fetch each page and parse it with lxml, nothing else
        started = time.perf_counter()
        for page in range(pages):
            etree.fromstring(raw_page(naive, page))
        results["parse_floor"] = pages * 1000 / (time.perf_counter() - started)

        # ceilings on this machine, 8 threads and no storage: the bare fetch, then fetch + read into typed rows
        for name, read in (
            ("ceiling_fetch_only", lambda i: raw_page(naive, i)),
            ("ceiling_fetch_and_read", lambda i: client.messages_page("sent", (), 1 + 1000 * i, 1000)),
        ):
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(read, range(full_pages)))
            results[name] = full_pages * 1000 / (time.perf_counter() - started)
    finally:
        process.terminate()
        process.wait()
    ours = results["ours_8_workers"]
    print(
        f"ingest of {sent:,} sent and {received:,} received records, rows/s: "
        + json.dumps({k: round(v) for k, v in results.items()})
    )
    print(f"  ours (8 workers) / naive zeep loop: {ours / results['naive_zeep_loop']:.1f}x (target >= 10x)")
    print(
        f"  ours (8 workers) / parse floor: {ours / results['parse_floor']:.0%}; with 1 worker: "
        f"{results['ours_1_workers'] / results['parse_floor']:.0%} (target >= 40%)"
    )
    print(
        "  ceilings / naive zeep loop, 8 threads, nothing stored: fetch only "
        f"{results['ceiling_fetch_only'] / results['naive_zeep_loop']:.1f}x, fetch and read into typed rows "
        f"{results['ceiling_fetch_and_read'] / results['naive_zeep_loop']:.1f}x"
    )


def cpu_per_page(records: int) -> None:
    """CPU seconds of this process per 1000-row page: the sync (fetch, read, store), the client's
    read alone, and a bare lxml parse of the same bytes."""
    process, url = start_simulator("--messages", str(int(records / 0.92) + 1), "--threads", "16")
    try:
        client = PanelClient("demo", "demo", wsdl=url + "?wsdl")
        store = Store(Path(tempfile.mkdtemp()) / "cpu.duckdb")
        before = time.process_time()
        summary = sync(client, store, workers=8, deliveries=False, progress=False)
        sync_cpu = (time.process_time() - before) / (summary.rows_new / 1000)
        pages = min(40, summary.rows_new // 1000)
        naive = zeep.Client(url + "?wsdl")
        raws = [raw_page(naive, page) for page in range(pages)]
        before = time.process_time()
        for page in range(pages):
            client.messages_page("sent", (), 1 + 1000 * page, 1000)
        client_cpu = (time.process_time() - before) / pages
        before = time.process_time()
        for raw in raws:
            etree.fromstring(raw)
        parse_cpu = (time.process_time() - before) / pages
    finally:
        process.terminate()
        process.wait()
    print(
        f"CPU of this process per 1000-row page: the sync (8 workers, fetch + read + store) {sync_cpu * 1000:.1f} ms, "
        f"the client's read of a page (fetch + read into typed rows) {client_cpu * 1000:.1f} ms, a bare lxml parse of "
        f"the same bytes {parse_cpu * 1000:.1f} ms: client / bare parse {client_cpu / parse_cpu:.1f}x, "
        f"sync / bare parse {sync_cpu / parse_cpu:.1f}x (target <= 3x)"
    )


def busy_cpu() -> float:
    """CPU seconds the whole machine has spent busy since it started (Linux; 0 elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(n) for n in stat.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def process_cpu(pid: int | str = "self") -> float:
    """CPU seconds a process has used (Linux; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def concurrency(runs: int = 3) -> None:
    """The 16-worker sync takes two seconds on a machine of two cores, shared with the simulator:
    a little work of another program shows in it. Each run says how much CPU other programs
    used while it ran (all the machine's, less this process's and the simulator's)."""
    process, url = start_simulator("--messages", "500", "--latency-ms", "50", "--threads", "32")
    try:
        folder = Path(tempfile.mkdtemp())
        for run in range(runs):
            times, pages, others = {}, {}, {}
            for workers in (1, 16):
                client = PanelClient("demo", "demo", wsdl=url + "?wsdl")
                store = Store(folder / f"r{run}-w{workers}.duckdb")
                before = busy_cpu() - process_cpu() - process_cpu(process.pid)
                summary = sync(client, store, workers=workers, progress=False)
                others[workers] = busy_cpu() - process_cpu() - process_cpu(process.pid) - before
                client.close()
                times[workers], pages[workers] = summary.elapsed, summary.by_stream.get("deliveries", 0)
            speedup = times[1] / times[16]
            print(
                f"run {run + 1}: {pages[16]} GetBatchDelivery pages at 50 ms latency: 1 worker {times[1]:.1f} s, "
                f"16 workers {times[16]:.2f} s: {speedup:.1f}x, {speedup / 16:.1%} of the ideal 16x (target >= 80%); "
                f"other programs used {max(others[16], 0):.2f} s of CPU during the 16-worker sync"
            )
    finally:
        process.terminate()
        process.wait()


def idle(runs: int = 10) -> None:
    """CPU of this process for a sync that finds nothing new: the fixed cost every run pays
    (opening the store, the walk's first pages, the run's records)."""
    process, url = start_simulator("--messages", "500", "--threads", "8")
    try:
        client = PanelClient("demo", "demo", wsdl=url + "?wsdl")
        store = Store(Path(tempfile.mkdtemp()) / "idle.duckdb")
        sync(client, store, progress=False)
        before = time.process_time()
        for _ in range(runs):
            sync(client, store, progress=False)
        cpu = (time.process_time() - before) / runs
    finally:
        process.terminate()
        process.wait()
    print(f"a sync with nothing new to read: {cpu:.2f} s of CPU (mean of {runs})")


READER = """
import json, os, sys, time
from payamak_analytics.store import Store
store, stop = Store(sys.argv[1], create=False), sys.argv[2]
while not os.path.exists(stop):
    started = time.monotonic()
    try:
        store.sql("SELECT count(*) FROM deliveries")
        print(json.dumps({"ok": True, "seconds": time.monotonic() - started}), flush=True)
    except Exception as error:
        print(json.dumps({"ok": False, "error": type(error).__name__}), flush=True)
    time.sleep(0.1)
"""


def readers() -> None:
    """A second process reads the store every 100 ms while a sync writes it: failures and waits."""
    process, url = start_simulator("--messages", "5000", "--latency-ms", "5", "--threads", "16")
    folder = Path(tempfile.mkdtemp())
    try:
        timings = {}
        for with_reader in (False, True):
            db, stop = folder / f"r{int(with_reader)}.duckdb", folder / f"stop{int(with_reader)}"
            Store(db)
            reader = (
                subprocess.Popen([sys.executable, "-c", READER, str(db), str(stop)], stdout=subprocess.PIPE, text=True)
                if with_reader
                else None
            )
            summary = sync(PanelClient("demo", "demo", wsdl=url + "?wsdl"), Store(db), progress=False)
            timings[with_reader] = summary.elapsed
            stop.touch()
        reads = [json.loads(line) for line in reader.communicate()[0].splitlines()]
    finally:
        process.terminate()
        process.wait()
    waits = sorted(r["seconds"] for r in reads if r["ok"])
    print(
        f"a reader every 100 ms during a sync: {len(reads)} reads, {sum(not r['ok'] for r in reads)} failed; each "
        f"read (open, query, close) took median {waits[len(waits) // 2]:.2f} s, 90th percentile "
        f"{waits[int(len(waits) * 0.9)]:.2f} s, max {waits[-1]:.2f} s; the sync took {timings[True]:.1f} s with the "
        f"reader, {timings[False]:.1f} s without"
    )


# The same sync two ways, each in a fresh process: `payamak sync` as a terminal or a timer runs it
# (which sets glibc's allocator for a long sync, see allocator.py), and sync() from Python as a
# notebook calls it (the allocator left as the user's process has it).
# Samples the process's RSS every 20 ms and keeps its parts (anonymous memory, and pages of files:
# the shared libraries' code) at the highest sample: a kernel may keep more of a library resident.
PEAK_PARTS = """
import threading, time
def peak_kb():  # this process's peak alone: ru_maxrss carries a parent's peak across fork and exec
    return int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
peak = {"VmRSS": 0}
def sample_rss():
    global peak
    while True:
        now = {k: int(v.split()[0]) // 1024 for k, v in (line.split(":") for line in open("/proc/self/status"))
               if k in ("VmRSS", "RssAnon", "RssFile")}
        peak = max(peak, now, key=lambda p: p["VmRSS"])
        time.sleep(0.02)
threading.Thread(target=sample_rss, daemon=True).start()
"""
REPORT = """
print(json.dumps({"peak_rss_mb": round(peak_kb() / 1024),
                  "anon_mb": peak.get("RssAnon"), "file_mb": peak.get("RssFile")}))
"""
MEMORY_PROBES = {
    "payamak sync --no-deliveries": PEAK_PARTS
    + """
import json, os, sys, tempfile
from payamak_analytics.cli import main
os.environ.update(PAYAMAK_USERNAME="demo", PAYAMAK_PASSWORD="demo")
main(["--wsdl", sys.argv[1], "sync", "--db", tempfile.mkdtemp() + "/m.duckdb", "--no-deliveries"])
"""
    + REPORT,
    "sync(..., deliveries=False) from Python": PEAK_PARTS
    + """
import json, sys, tempfile
from payamak_analytics import PanelClient
from payamak_analytics.store import Store
from payamak_analytics.sync import sync
client = PanelClient("demo", "demo", wsdl=sys.argv[1])
summary = sync(client, Store(tempfile.mkdtemp() + "/m.duckdb"), deliveries=False, progress=False)
"""
    + REPORT,
}


def memory() -> None:
    peaks: dict[str, list[dict]] = {name: [] for name in MEMORY_PROBES}
    for records in (250_000, 1_000_000):
        process, url = start_simulator("--messages", str(int(records / 0.92) + 1), "--threads", "8")
        try:
            for name, probe in MEMORY_PROBES.items():
                command = [sys.executable, "-c", probe, url + "?wsdl"]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode:
                    raise SystemExit(f"{name} failed (exit {done.returncode}): {done.stderr[-2000:]}")
                peaks[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
        finally:
            process.terminate()
            process.wait()
    for name, (quarter, million) in peaks.items():
        print(
            f"peak RSS of the syncing process, {name}: 250,000 sent records {quarter['peak_rss_mb']} MB, "
            f"1,000,000: {million['peak_rss_mb']} MB ({million['peak_rss_mb'] / quarter['peak_rss_mb'] - 1:+.0%}) "
            "(target: <= 300 MB, within 10% of the 250,000 figure); at the highest sample, anonymous memory "
            f"{quarter['anon_mb']} and {million['anon_mb']} MB, pages of files (the libraries' code) "
            f"{quarter['file_mb']} and {million['file_mb']} MB"
        )


PARTS = ("ingest", "cpu", "concurrency", "idle", "readers", "memory")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--million", action="store_true", help="also measure RSS at 250k and 1M records")
    parser.add_argument("--only", default=",".join(PARTS[:-1]), help=f"comma-separated: {', '.join(PARTS)}")
    args = parser.parse_args()
    parts = set(args.only.split(",")) | ({"memory"} if args.million else set())
    if "ingest" in parts:
        ingest(args.records)
    if "cpu" in parts:
        cpu_per_page(args.records)
    if "concurrency" in parts:
        concurrency()
    if "idle" in parts:
        idle()
    if "readers" in parts:
        readers()
    if "memory" in parts:
        memory()


if __name__ == "__main__":
    main()
