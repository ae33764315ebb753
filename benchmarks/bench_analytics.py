"""Report speed: delivery_report in DuckDB against the same report in pandas, and `payamak report`.

    .venv/bin/python benchmarks/bench_analytics.py [--batches 200000] [--recipients 5000000]

The store is filled straight with SQL (a 90-day account: 200,000 sends, 5,000,000 recipients),
since syncing that much from the simulator would take the benchmark hours.
"""

from __future__ import annotations

import scratch  # noqa: F401  (first: every temporary file of this run goes into its folder)

# isort: split
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pandas as pd

from payamak_analytics import analytics, codes, estimates
from payamak_analytics.store import Store

TEHRAN = "Asia/Tehran"


def fill(store: Store, batches: int, recipients: int) -> None:
    per_batch = max(recipients // batches, 1)
    with store.connect() as con:
        con.execute("BEGIN")
        con.execute(f"""
            INSERT INTO batches (batch_id, line, text, recipients, sent_at, complete, pending)
            SELECT 10000000 + i, CASE WHEN i % 5 = 0 THEN '10002188' ELSE '50001234' END,
                   'campaign text ' || (i // 500), {per_batch},
                   now() - INTERVAL 90 DAY + to_seconds(CAST(i * (90 * 86400.0 / {batches}) AS BIGINT)), true, 0
            FROM range({batches}) t(i)""")
        con.execute("""
            INSERT INTO messages (message_id, action_datetime, message_type, sender, content, pages, lang, flash,
                                  count, cost)
            SELECT batch_id, sent_at, 'Out', line, text, 1 + batch_id % 3, CASE WHEN batch_id % 4 = 0 THEN 'EN' ELSE 'FA' END,
                   false, recipients, recipients * (1 + batch_id % 3)
            FROM batches""")
        statuses = "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 5, 6, 7, 9, 11, -3, -3, 0, 1]"
        operators = "['MCI', 'MCI', 'MCI', 'Irancell', 'Irancell', 'Rightel']"
        con.execute(f"""
            INSERT INTO deliveries (batch_id, "row", number, operator, status, final, expired, first_seen, last_checked)
            SELECT 10000000 + i // {per_batch}, 1 + i % {per_batch}, '0912' || lpad(CAST(i % 9999999 AS VARCHAR), 7, '0'),
                   list_extract({operators}, CAST(1 + hash(i) % 6 AS BIGINT)), list_extract({statuses}, CAST(1 + hash(i * 7) % 24 AS BIGINT)),
                   true, false, now(), now()
            FROM range({batches * per_batch}) t(i)""")
        con.execute("COMMIT")


def pandas_report(frame: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """The same report as delivery_report(by=["day", "operator"]), in pandas: outcomes, the rate
    over known outcomes and its Wilson interval."""
    outcome_of = {code: status.outcome for code, status in codes.DELIVERY_STATUSES.items()}
    outcome = frame["status"].map(outcome_of).fillna("unknown")
    outcome = outcome.mask(frame["status"] == -3, "expired")
    outcome = outcome.mask(
        (outcome == "in_flight") & (frame["sent_at"] < now - pd.Timedelta(hours=72)), "delivery_unknown"
    )
    work = pd.DataFrame({"day": frame["sent_at"].dt.date, "operator": frame["operator"], "outcome": outcome})
    counts = pd.crosstab([work["day"], work["operator"]], work["outcome"]).reindex(
        columns=list(codes.OUTCOMES), fill_value=0
    )
    counts["recipients"] = counts.sum(axis=1)
    counts["known"] = counts[list(codes.FINAL_OUTCOMES)].sum(axis=1)
    counts["delivered_rate"] = counts["delivered"] / counts["known"]
    counts["rate_low"], counts["rate_high"] = estimates.wilson(counts["delivered"], counts["known"])
    return counts.reset_index()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200_000)
    parser.add_argument("--recipients", type=int, default=5_000_000)
    args = parser.parse_args()
    store = Store(Path(tempfile.mkdtemp()) / "bench.duckdb")
    started = time.perf_counter()
    fill(store, args.batches, args.recipients)
    rows = int(store.sql("SELECT count(*) AS n FROM deliveries")["n"][0])
    print(
        f"filled a store with {args.batches:,} sends and {rows:,} recipients in {time.perf_counter() - started:.1f} s"
    )

    frame = store.sql("""SELECT d.status, d.operator, b.sent_at FROM deliveries d JOIN batches b USING (batch_id)""")
    now = pd.Timestamp(datetime.now().astimezone())
    ours, theirs = [], []
    for _ in range(3):
        started = time.perf_counter()
        report = analytics.delivery_report(store, by=["day", "operator"], calendar="gregorian", now=now)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        expected = pandas_report(frame, now)
        theirs.append(time.perf_counter() - started)
    assert report["recipients"].sum() == expected["recipients"].sum() == rows
    assert report["delivered"].sum() == expected["delivered"].sum()
    assert report["known"].sum() == expected["known"].sum()
    mine, pandas_time = statistics.median(ours), statistics.median(theirs)
    print(
        f"delivery_report(by=['day', 'operator']) over {rows:,} rows: {mine:.2f} s (target <= 0.5 s); "
        f"pandas on the same rows, already in memory: {pandas_time:.2f} s: {pandas_time / mine:.1f}x (target >= 5x)"
    )

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "payamak_analytics.cli", "report", "--db", str(store.path), "--out", out],
            check=True,
            capture_output=True,
        )
        print(
            f"payamak report, end to end (a new process, every chart and table): "
            f"{time.perf_counter() - started:.1f} s (target <= 15 s)"
        )


if __name__ == "__main__":
    main()
