"""Would the watch's default rules wake anyone on a normal week, and how fast do they see trouble?

    python benchmarks/bench_watch.py --days 28 --every 15m --incidents 6

One store, the real watch (two syncs over SOAP into a DuckDB file, then every alert rule with its
defaults) against the simulator, in a process of its own, on its own clock, which the script
moves forward as the cycles go. Each cycle the account sends what an account sends at that hour of the week:
one-time codes and order notices to 100 recipients at a time, of every operator, from its
service line (busy from 9 to 22, little at night, less on Thursday and Friday), and a campaign
(bulk sends, which lose the blacklisted numbers as 7) of 2,000 on its promotional line at 11:00
every day but Friday. The store
starts empty: the first cycle reads the five weeks of history before the clock (their reports
past day 7 have expired, as they would have for a new store), and the hour-of-week baselines
fill up as the weeks go by.

1. `--days` of this with no incident: every alert raised counts as a false alarm.
2. Then `--incidents` staged incidents, one after the other on the same store: 50% of new sends to
   one operator (MCI or Irancell, in turn) rejected (9) from a random moment between 9:00 and
   21:00 (within three hours of the last one, or the next morning); how many cycles until the
   watch raises an alert about that operator; then the incident is cleared and the watch runs two
   hours more (the alert should have ended by then).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import requests

from payamak_analytics import PanelClient
from payamak_analytics.alerts import alerts
from payamak_analytics.dates import TEHRAN
from payamak_analytics.simulator import HistoryConfig, Simulator, WorldConfig
from payamak_analytics.store import Store
from payamak_analytics.watch import Watch, duration

START = 1_764_000_000.0  # 2025-11-24 19:30 Tehran
PREFIXES = (("0912", "0919", "0991", "0990"), ("0935", "0936", "0901"), ("0921",), ("0998",))
OPERATOR_MIX = (0.55, 0.35, 0.07, 0.03)  # MCI, Irancell, Rightel, MVNO
SERVICE_LINE, PROMO_LINE = "10002188", "50001234"
TEXTS = ("Your order has shipped. Track: mediashop.ir/t", "کد تایید شما: ۴۸۲۱۹۳\nمدیا شاپ")
CREDIT_FLOOR = Decimal(600_000)  # about two weeks of this account's sending (48,000 credits a day)
CAMPAIGN_TEXT = "حراج زمستانه مدیا شاپ! تا ۴۰٪ تخفیف فقط تا جمعه.\nلغو۱۱"


def hourly_share(moment: datetime) -> float:
    """The account's volume at this hour of the week, as a share of its busiest hour."""
    hour = moment.hour
    share = 0.05 if hour < 7 else 0.4 if hour < 9 else 1.0 if hour < 22 else 0.3
    return share * {4: 0.7, 5: 0.4}.get(moment.isoweekday(), 1.0)  # Thursday, Friday


@dataclass(frozen=True)
class Panel:
    """The simulator as the script reaches it: over HTTP, in its own process."""

    url: str

    @property
    def wsdl_url(self) -> str:
        return self.url + "?wsdl"


def serve(world: WorldConfig, username: str, address: multiprocessing.Queue, stop: multiprocessing.Event) -> None:
    """The simulator's process. It buys credit as an account's owner does, before about two weeks
    of sending are left: a quiet month must not run out of money, which the watch would rightly
    report ("credit runs out in about N days")."""
    with Simulator(world, admin=True, threads=8) as simulator:
        address.put(simulator.url)
        while not stop.wait(0.2):
            with simulator.world.lock:
                account = simulator.world.accounts[username]
                account.credit = max(account.credit, CREDIT_FLOOR)


class Account:
    """The traffic one cycle sends, on the simulator's clock, spread over the cycle."""

    def __init__(self, client: PanelClient, simulator: Panel, every: timedelta, peak: int, rng: random.Random):
        self.client, self.simulator, self.every, self.peak, self.rng = client, simulator, every, peak, rng
        self.sent = 0

    def numbers(self, count: int) -> list[str]:
        found: set[str] = set()
        while len(found) < count:
            operator = self.rng.choices(PREFIXES, OPERATOR_MIX)[0]
            found.add(f"{self.rng.choice(operator)}{self.rng.randrange(10**7):07d}")
        return sorted(found)

    def live_cycle(self) -> None:
        """Send this cycle's batches at moments spread over it, leaving the clock one cycle on."""
        now = clock(self.simulator)
        expected = self.peak * hourly_share(now) * self.every.total_seconds() / 900
        batches = [(self.client.send_sms, SERVICE_LINE, self.rng.choice(TEXTS))] * _poisson(self.rng, expected)
        if now.hour == 11 and now.minute < self.every.total_seconds() / 60 and now.isoweekday() != 5:
            batches += [(self.client.send_batch_sms, PROMO_LINE, CAMPAIGN_TEXT)] * 20
        step = self.every.total_seconds() / (len(batches) + 1)
        for send, line, text in batches:
            advance(self.simulator, step)
            send(line, self.numbers(100), text)
            self.sent += 100
        advance(self.simulator, self.every.total_seconds() - step * len(batches))


def _poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1.0)
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count


def admin(simulator: Panel, method: str, path: str, **params) -> dict:
    answer = requests.request(method, f"{simulator.url.rsplit('/', 1)[0]}/_sim/{path}", params=params, timeout=60)
    answer.raise_for_status()
    return answer.json()


def clock(simulator: Panel) -> datetime:
    return datetime.fromisoformat(admin(simulator, "GET", "clock")["clock"])


def advance(simulator: Panel, seconds: float) -> None:
    admin(simulator, "POST", "clock", advance=seconds)


def quiet_weeks(runner: Watch, account: Account, store: Store, days: int) -> None:
    cycles = int(days * 86400 / runner.every.total_seconds())
    per_day = max(int(86400 / runner.every.total_seconds()), 1)
    started = time.perf_counter()
    for number in range(1, cycles + 1):
        account.live_cycle()
        runner.cycle()
        if number % per_day == 0:
            print(f"  day {number // per_day}: {len(alerts(store))} alerts, {account.sent:,} recipients sent, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    raised = alerts(store)
    answered = store.sql("SELECT count(*) AS n FROM deliveries WHERE status IN (1, 2, 3, 4, 8, 9, 12)")["n"][0]
    print(f"quiet: {days} simulated days, {cycles} cycles every {runner.every}, {account.sent:,} recipients sent, "
          f"{answered:,} telecom answers in the store")  # fmt: skip
    print(f"  false alarms: {len(raised)} {dict(Counter(raised['kind'])) if len(raised) else ''}")
    for row in raised.itertuples():
        print(f"    {row.first_seen.astimezone(TEHRAN):%Y-%m-%d %H:%M} {row.kind} {row.title}")
    print(f"  {time.perf_counter() - started:.0f} s for {cycles} cycles", flush=True)


def staged_incident(runner: Watch, account: Account, store: Store, operator: str, max_cycles: int) -> int | None:
    """Cycles until an alert names `operator` (None: not within `max_cycles`); then cleared and ended."""
    start = clock(account.simulator) + timedelta(minutes=account.rng.uniform(15, 180))
    if not 9 <= start.hour < 21:  # the next morning: at night too few messages go out to judge
        morning = start.replace(hour=9, minute=0, second=0) + timedelta(days=start.hour >= 21)
        start = morning + timedelta(minutes=account.rng.uniform(0, 180))
    while clock(account.simulator) < start - runner.every:
        account.live_cycle()
        runner.cycle()
    known = set(alerts(store)["alert_id"])
    admin(account.simulator, "POST", "incident", operator=operator, status=9, rate=0.5)
    found = None
    for cycle in range(1, max_cycles + 1):
        account.live_cycle()
        runner.cycle()
        fresh = alerts(store)
        fresh = fresh[~fresh["alert_id"].isin(known)]
        if (fresh["operator"] == operator).any():
            found = cycle
            break
    admin(account.simulator, "DELETE", "incident")
    for _ in range(int(timedelta(hours=2) / runner.every)):
        account.live_cycle()
        runner.cycle()
    stray = alerts(store)
    stray = stray[~stray["alert_id"].isin(known) & (stray["operator"] != operator)]
    print(f"  {start:%a %H:%M} {operator}: detected after {found} cycle(s); still active 2 h after the end: "
          f"{len(alerts(store, active=True))}; other alerts meanwhile: {list(stray['title'])}", flush=True)  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--every", default="15m")
    parser.add_argument("--peak", type=float, default=8, help="batches of 100 an account sends in a busy 15 minutes")
    parser.add_argument("--incidents", type=int, default=6)
    parser.add_argument("--max-cycles", type=int, default=8)
    parser.add_argument("--history", type=int, default=3000, help="history records in the five weeks before")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    every = duration(args.every)
    history = HistoryConfig(seed=args.seed, days=35, messages=args.history)
    world = WorldConfig(history=history, start=START, clock_speed=0.0)
    address, stop = multiprocessing.Queue(), multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(world, "demo", address, stop), daemon=True)
    server.start()
    simulator = Panel(address.get(timeout=300))
    try:
        with tempfile.TemporaryDirectory() as folder:
            client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05)
            store = Store(Path(folder) / "watch.duckdb")
            runner = Watch(client, store, every=every, now=lambda: clock(simulator))
            account = Account(client, simulator, every, args.peak, random.Random(args.seed))
            started = time.perf_counter()
            runner.cycle()
            print(
                f"first cycle (a new store reads the five weeks before): {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            quiet_weeks(runner, account, store, args.days)
            found = [
                staged_incident(runner, account, store, ("MCI", "Irancell")[k % 2], args.max_cycles)
                for k in range(args.incidents)
            ]
            print(f"incidents: 50% of sends to one operator rejected (9), cycles every {args.every}: "
                  f"detected in {sum(f is not None for f in found)}/{len(found)}, cycles needed {found}")  # fmt: skip
    finally:
        stop.set()
        server.join(timeout=30)


if __name__ == "__main__":
    main()
