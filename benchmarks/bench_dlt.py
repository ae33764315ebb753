"""The dlt path against the native sync: rows/s into DuckDB and peak RSS, on one simulator.

    .venv/bin/python benchmarks/bench_dlt.py [--records 200000] [--million]

The simulator runs as `payamak simulate` in its own process; each loader runs in a fresh
process of its own (so its peak RSS is its own), one after the other, against the same
simulator: the native sync with the lean heap, as `payamak sync` runs it, and the dlt path as
the README's recipe runs it (Arrow's system pool, lean_process, DuckDB capped as the native writer
and without checkpoint vacuums, bounded loads).
Messages only (no delivery reports), as the sync benchmark measures.
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

NATIVE = """
import json, sys, time
def peak_kb():  # this process's peak alone: ru_maxrss carries a parent's peak across fork and exec
    return int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
from payamak_analytics.allocator import lean_heap
lean_heap()  # as `payamak sync` does
from payamak_analytics import PanelClient
from payamak_analytics.store import Store
from payamak_analytics.sync import sync
client = PanelClient("demo", "demo", wsdl=sys.argv[1])
started = time.perf_counter()
summary = sync(client, Store(sys.argv[2] + "/native.duckdb"), workers=8, deliveries=False, progress=False)
elapsed = time.perf_counter() - started
print(json.dumps({"rows": summary.rows_new, "seconds": elapsed, "loads": 1,
                  "peak_rss_mb": peak_kb() / 1024}))
"""

DLT = """
import json, os, sys, time
def peak_kb():  # this process's peak alone: ru_maxrss carries a parent's peak across fork and exec
    return int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"  # as the README's recipe: before pyarrow is first imported
from payamak_analytics.warehouse.loading import ROWS_PER_LOAD, finish_and_run, lean_process
lean_process()  # the README's recipe for a load in its own process
import dlt
from payamak_analytics import PanelClient, dlt_source
from payamak_analytics.store.core import WRITER_MEMORY
client = PanelClient("demo", "demo", wsdl=sys.argv[1])
# DuckDB capped as the native sync's writer is, loads bounded as the README's recipe bounds them;
# no vacuum at the checkpoint that ends each load: it read the last load's row group back to merge it (RESULTS.md)
settings = {"memory_limit": WRITER_MEMORY, "threads": 2, "max_vacuum_tasks": 0}
capped = {"database": sys.argv[2] + "/dlt.duckdb", "global_config": settings}
pipeline = dlt.pipeline(pipeline_name="bench", pipelines_dir=sys.argv[2] + "/pipelines",
                        destination=dlt.destinations.duckdb(capped), dataset_name="sms")
started = time.perf_counter()
finish_and_run(pipeline, dlt_source(client, workers=8, deliveries=False, rows_per_load=ROWS_PER_LOAD))
elapsed = time.perf_counter() - started
with pipeline.sql_client() as sql:
    count = sql.execute_sql("SELECT count(*) FROM " + sql.make_qualified_table_name("messages"))[0][0]
    loads = sql.execute_sql("SELECT count(*) FROM " + sql.make_qualified_table_name("sync_runs"))[0][0]
print(json.dumps({"rows": count, "seconds": elapsed, "loads": loads,
                  "peak_rss_mb": peak_kb() / 1024}))
"""


def start_simulator(records: int) -> tuple[subprocess.Popen, str]:
    # the simulator's history is 92% sent records
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "payamak_analytics.cli",
            "simulate",
            "--messages",
            str(int(records / 0.92) + 1),
            "--threads",
            "16",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    return process, re.search(r"(http://\S+)\?wsdl", process.stdout.readline()).group(1) + "?wsdl"


def probe(script: str, wsdl: str) -> dict:
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    command = [sys.executable, "-c", script, wsdl, tempfile.mkdtemp()]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(records: int) -> None:
    process, wsdl = start_simulator(records)
    try:
        native, through_dlt = probe(NATIVE, wsdl), probe(DLT, wsdl)
    finally:
        process.terminate()
        process.wait()
    print(f"{records:,} sent records (messages only, 8 workers, into DuckDB):")
    for name, r in (("native sync", native), ("dlt", through_dlt)):
        print(
            f"  {name}: {r['rows']:,} rows in {r['seconds']:.1f} s ({r['loads']} loads) = "
            f"{r['rows'] / r['seconds']:,.0f} rows/s, peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    rate = (through_dlt["rows"] / through_dlt["seconds"]) / (native["rows"] / native["seconds"])
    print(
        f"  dlt / native: {rate:.0%} of the rate (target >= 50%), "
        f"{through_dlt['peak_rss_mb'] / native['peak_rss_mb']:.0%} of the memory (target <= 100%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--million", action="store_true", help="also compare at 1,000,000 sent records")
    args = parser.parse_args()
    compare(args.records)
    if args.million:
        compare(1_000_000)


if __name__ == "__main__":
    main()
