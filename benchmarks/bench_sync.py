"""Sync speed and memory: ingest rate, concurrency, and RSS on a million records.

    .venv/bin/python benchmarks/bench_sync.py [--records 200000] [--million]

The simulator runs as `payamak simulate` in its own process, so the numbers are the client's.
Every comparison runs in this one invocation, against the same simulator.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pandas as pd
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
        con = duckdb.connect(str(folder / "naive.duckdb"))
        started = time.perf_counter()
        for page in range(pages):
            result = client.wire.service.GetMessages(userName="demo", password="demo", **messages_args(page))
            con.register("frame", pd.DataFrame([serialize_object(info) for info in result]))
            if page == 0:
                con.execute("CREATE TABLE messages AS SELECT * FROM frame LIMIT 0")
            con.execute("INSERT INTO messages SELECT * FROM frame")
            con.unregister("frame")
        results["naive_zeep_loop"] = pages * 1000 / (time.perf_counter() - started)

        # the floor: fetch each page and parse it with lxml, nothing else
        started = time.perf_counter()
        for page in range(pages):
            etree.fromstring(client.wire.call_raw("GetMessages", messages_args(page)))
        results["parse_floor"] = pages * 1000 / (time.perf_counter() - started)

        # ceilings on this machine, 8 threads and no storage: the bare fetch, then fetch + read into frames
        for name, read in (
            ("ceiling_fetch_only", lambda i: client.wire.call_raw("GetMessages", messages_args(i))),
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
        f"{results['ceiling_fetch_only'] / results['naive_zeep_loop']:.1f}x, fetch and read into frames "
        f"{results['ceiling_fetch_and_read'] / results['naive_zeep_loop']:.1f}x"
    )


def concurrency() -> None:
    process, url = start_simulator("--messages", "500", "--latency-ms", "50", "--threads", "32")
    try:
        folder = Path(tempfile.mkdtemp())
        times, pages = {}, {}
        for workers in (1, 16):
            client = PanelClient("demo", "demo", wsdl=url + "?wsdl")
            store = Store(folder / f"w{workers}.duckdb")
            summary = sync(client, store, workers=workers, progress=False)
            times[workers], pages[workers] = summary.elapsed, summary.by_stream.get("deliveries", 0)
    finally:
        process.terminate()
        process.wait()
    speedup = times[1] / times[16]
    print(
        f"{pages[16]} GetBatchDelivery pages at 50 ms latency: 1 worker {times[1]:.1f} s, 16 workers {times[16]:.2f} s:"
        f" {speedup:.1f}x, {speedup / 16:.0%} of the ideal 16x (target >= 80%)"
    )


MEMORY_PROBE = """
import json, resource, sys, tempfile
from payamak_analytics import PanelClient
from payamak_analytics.store import Store
from payamak_analytics.sync import sync
client = PanelClient("demo", "demo", wsdl=sys.argv[1])
summary = sync(client, Store(tempfile.mkdtemp() + "/m.duckdb"), deliveries=False, progress=False)
print(json.dumps({"rows": summary.rows_new, "seconds": round(summary.elapsed, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def memory() -> None:
    for records in (250_000, 1_000_000):
        process, url = start_simulator("--messages", str(int(records / 0.92) + 1), "--threads", "8")
        try:
            out = subprocess.run(
                [sys.executable, "-c", MEMORY_PROBE, url + "?wsdl"], capture_output=True, text=True, check=True
            ).stdout
            print(
                f"syncing {records:,} sent records (messages only), the syncing process: {out.strip()} "
                "(target: <= 400 MB, flat as the history grows)"
            )
        finally:
            process.terminate()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--million", action="store_true", help="also measure RSS at 250k and 1M records")
    args = parser.parse_args()
    ingest(args.records)
    concurrency()
    if args.million:
        memory()


if __name__ == "__main__":
    main()
