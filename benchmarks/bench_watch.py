"""Would the watch's default rules wake anyone on a normal week, and how fast do they see trouble?

    python benchmarks/bench_watch.py quiet --days 28 --every 1h      # false alarms, no incident
    python benchmarks/bench_watch.py incident --runs 3               # cycles to detect 50% rejections on MCI

Both run the real watch (sync over SOAP into a DuckDB file, then the alert rules) against the
simulator on its own clock, which the script advances between cycles. The history before the
watch starts gives the rules their four weeks of baseline.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import requests

from payamak_analytics import PanelClient
from payamak_analytics.alerts import alerts
from payamak_analytics.simulator import HistoryConfig, Simulator, WorldConfig
from payamak_analytics.store import Store
from payamak_analytics.watch import Watch, duration

START = 1_764_000_000.0  # 2025-11-24 19:30 Tehran
DAY = 86400
MCI, IRANCELL = ("0912", "0919", "0991"), ("0935", "0936", "0901")


def admin(simulator: Simulator, method: str, path: str, **params) -> dict:
    answer = requests.request(method, f"{simulator.url.rsplit('/', 1)[0]}/_sim/{path}", params=params, timeout=60)
    answer.raise_for_status()
    return answer.json()


def world(days_after: int, messages: int, seed: int) -> WorldConfig:
    """35 days of history before the clock and `days_after` more that the clock lives through."""
    history = HistoryConfig(seed=seed, days=35 + days_after, messages=messages, campaign_share=0.9)
    return WorldConfig(history=history, start=START, clock_speed=0.0, history_end=START + days_after * DAY)


def quiet(args) -> None:
    every = duration(args.every)
    cycles = int(args.days * DAY / every.total_seconds())
    with (
        Simulator(world(args.days, args.messages, args.seed), admin=True, threads=8) as simulator,
        tempfile.TemporaryDirectory() as folder,
    ):
        client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05)
        store = Store(Path(folder) / "quiet.duckdb")
        runner = Watch(client, store, every=every, now=lambda: _clock(simulator))
        started = time.perf_counter()
        runner.cycle()  # the first sync: the month before the watch
        first = time.perf_counter() - started
        print(f"  first cycle (the month before the watch): {first:.0f} s", flush=True)
        per_day = max(int(DAY / every.total_seconds()), 1)
        for number in range(1, cycles + 1):
            admin(simulator, "POST", "clock", advance=every.total_seconds())
            runner.cycle()
            if number % per_day == 0:
                print(f"  day {number // per_day}: {len(alerts(store))} alerts, "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
        raised = alerts(store)
        answered = store.sql("SELECT count(*) AS n FROM deliveries WHERE status IN (1, 2, 3, 4, 8, 9, 12)")["n"][0]
        print(
            f"quiet: {args.days} simulated days, {cycles} cycles every {args.every}, seed {args.seed}, "
            f"{args.messages} history records ({answered:,} recipients answered by the telecom)"
        )
        print(f"  alerts raised: {len(raised)} {dict(Counter(raised['kind'])) if len(raised) else ''}")
        for row in raised.itertuples():
            print(f"    {row.first_seen:%Y-%m-%d %H:%M} {row.kind} {row.title}")
        print(
            f"  first cycle (initial sync) {first:.0f} s, then {time.perf_counter() - started - first:.0f} s "
            f"for {cycles} cycles"
        )


def incident(args) -> None:
    counts = []
    for run in range(args.runs):
        counts.append(_detect(args, seed=args.seed + run, rng=random.Random(run)))
        print(f"  run {run + 1}: detected after {counts[-1]} cycle(s)")
    found = [c for c in counts if c is not None]
    print(
        f"incident: 50% of sends to MCI rejected (9), cycles every {args.every}, {args.batches * 100} recipients "
        f"a cycle; detected in {len(found)}/{len(counts)} runs, cycles needed: {counts}"
    )


def _detect(args, seed: int, rng: random.Random) -> int | None:
    every = duration(args.every)
    with (
        Simulator(world(2, args.messages, seed), admin=True, threads=8) as simulator,
        tempfile.TemporaryDirectory() as folder,
    ):
        client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05)
        store = Store(Path(folder) / "incident.duckdb")
        runner = Watch(client, store, every=every, now=lambda: _clock(simulator))
        admin(simulator, "POST", "clock", advance=rng.uniform(0, DAY))  # the incident at a random hour
        runner.cycle()

        def step() -> None:
            for _ in range(args.batches):
                numbers = [f"{rng.choice(MCI + IRANCELL)}{rng.randrange(10**7):07d}" for _ in range(100)]
                client.send_batch_sms("10002188", numbers, "Your order has shipped.")
            admin(simulator, "POST", "clock", advance=every.total_seconds())
            runner.cycle()

        for _ in range(4):  # an hour of ordinary traffic first
            step()
        early = len(alerts(store))
        admin(simulator, "POST", "incident", operator="MCI", status=9, rate=0.5)
        for cycle in range(1, args.max_cycles + 1):
            step()
            found = alerts(store)
            if (found["operator"] == "MCI").any():
                return cycle if early == 0 else -cycle
    return None


def _clock(simulator: Simulator) -> datetime:
    return datetime.fromisoformat(admin(simulator, "GET", "clock")["clock"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["quiet", "incident"])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--every", default="15m")
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=10, help="batches of 100 the account sends a cycle")
    parser.add_argument("--max-cycles", type=int, default=8)
    args = parser.parse_args()
    (quiet if args.scenario == "quiet" else incident)(args)


if __name__ == "__main__":
    main()
