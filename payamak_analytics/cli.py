"""The `payamak` command: the simulator, the demo, and the account's everyday questions.

Credentials come from PAYAMAK_USERNAME / PAYAMAK_PASSWORD (environment or .env); the service
from PAYAMAK_WSDL / PAYAMAK_ENDPOINT, else the real one. Errors print as one line with the
code, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from .client import PanelClient
from .errors import PayamakError

MESSAGE_COLUMNS = ["message_id", "action_datetime", "sender", "receiver", "count", "sent", "pages", "content"]


def _client(args) -> PanelClient:
    return PanelClient(wsdl=args.wsdl, endpoint=args.endpoint, timeout=args.timeout)


def cmd_simulate(args) -> None:
    from .simulator import FaultConfig, HistoryConfig, Simulator, WorldConfig

    faults = FaultConfig(
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        fail_rate=args.fail_rate,
        fault_rate=args.fault_rate,
        drop_rate=args.drop_rate,
        slow_rate=args.slow_rate,
        slow_seconds=args.slow_seconds,
        seed=args.seed,
        operations=tuple(args.fault_operations.split(",")) if args.fault_operations else (),
    )
    world = WorldConfig(
        history=HistoryConfig(seed=args.seed, days=args.days, messages=args.messages), clock_speed=args.clock_speed
    )
    simulator = Simulator(world, host=args.host, port=args.port, faults=faults, admin=args.admin, threads=args.threads)
    print(f"SendService simulator: {simulator.wsdl_url}", flush=True)
    print("accounts: demo/demo, inactive/inactive, blocked/blocked, nocredit/nocredit; Ctrl-C stops it", flush=True)
    try:
        simulator.serve_forever()
    except KeyboardInterrupt:
        pass


DEMO_DAYS = 90
DEMO_COARSE = 6 * 86_400  # a sync every six simulated days reads every report before it expires (7 days)
DEMO_CLOSE_DAYS = 1  # and on the last day,
DEMO_CLOSE_STEP = 1_800  # a sync every half hour: polls closer than the times to final they bracket


def demo_steps() -> list[int]:
    """The clock advances (seconds) between the demo's syncs, from day one to the history's end."""
    coarse = (DEMO_DAYS - 1 - DEMO_CLOSE_DAYS) * 86_400
    steps = [DEMO_COARSE] * (coarse // DEMO_COARSE) + ([coarse % DEMO_COARSE] if coarse % DEMO_COARSE else [])
    return steps + [DEMO_CLOSE_STEP] * (DEMO_CLOSE_DAYS * 86_400 // DEMO_CLOSE_STEP)


def _demo_world(messages: int):
    """The demo's simulator config, and whether its clock can live through the history (a
    simulator that shows each record once its clock reaches it)."""
    import dataclasses
    import time

    from .simulator import HistoryConfig, WorldConfig

    history = HistoryConfig(days=DEMO_DAYS, messages=messages)
    if "history_end" not in {f.name for f in dataclasses.fields(WorldConfig)}:
        return WorldConfig(history=history), False
    end = time.time()
    start = end - sum(demo_steps())
    return WorldConfig(history=history, start=start, history_end=end, clock_speed=0.0), True


def _live_through(simulator, client, store) -> None:
    """Sync as a careful user would: often enough that no report expires unread (every six
    simulated days), every half hour on the last day, until the clock reaches the history's end."""
    from datetime import datetime

    import requests

    from .dates import TEHRAN
    from .sync import sync

    def now():
        return datetime.fromtimestamp(simulator.world.clock.now(), TEHRAN)

    admin = simulator.url.rsplit("/", 1)[0] + "/_sim/clock"
    steps = demo_steps()
    sync(client, store, progress=False, now=now)
    for done, step in enumerate(steps, start=1):
        requests.post(admin, params={"advance": step}, timeout=30).raise_for_status()
        sync(client, store, progress=False, now=now)
        if done % 10 == 0 or done == len(steps):
            print(f"  {now():%Y-%m-%d %H:%M} (simulated), {done}/{len(steps)} syncs", flush=True)


def cmd_demo(args) -> None:
    from .report import write_report
    from .simulator import Simulator
    from .store import Store
    from .sync import sync

    config, living = _demo_world(args.messages)
    print(f"Starting the local panel (simulator) with a {DEMO_DAYS}-day history ...", flush=True)
    with Simulator(config, threads=16, admin=True) as simulator:
        client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url)
        print(f"Service: {simulator.wsdl_url}")
        print(f"Credit: {int(client.get_credit()):,} SMS")
        store = Store(args.db)
        if living:
            print(f"Living through the history into {store.path}: a sync every six simulated days (before any "
                  "report expires), every half hour on the last day")
            _live_through(simulator, client, store)
        else:
            print(f"Syncing into {store.path} once, at the end of the history ...", flush=True)
            print(f"Synced: {sync(client, store)}")
        print("The five newest sent messages:")
        print(_table(client.messages_frame("sent", limit=5)))
    print("Recipients by outcome:")
    print(_status_table(store))
    print(f"Report: {write_report(store, args.out).resolve()}")
    print(
        "Next: open the report above; in Persian: `payamak report --lang fa --db "
        f"{store.path} --out {args.out}/fa`; the campaigns: `payamak campaign list --db {store.path}`; "
        "the notebooks (02 delivery report, 03 campaign post-mortem) and the widgets: `make lab`."
    )


def _status_table(store, lang: str = "en") -> str:
    """Recipients by outcome: known outcomes with their share of the known, the unknown apart
    with their share of all, and the one line saying why they are unknown."""
    from . import analytics, codes
    from .i18n import label, number, percent, unknown_note

    overall = analytics.delivery_report(store, by=[]).iloc[0]
    rows = []
    for outcome in codes.OUTCOMES:
        count, known = int(overall[outcome]), outcome in codes.FINAL_OUTCOMES
        base = overall["known"] if known else overall["recipients"]
        if count:
            share = f"{percent(count / base, lang)} {label('of', lang)} {label('known' if known else 'recipients', lang)}"
            rows.append({"outcome": label(outcome, lang), "recipients": number(count, lang), "share": share})
    shown = pd.DataFrame(rows).rename(columns=lambda c: label(c, lang))
    note = unknown_note(
        int(overall["recipients"]), int(overall["expired"]), int(overall["in_flight"] + overall["delivery_unknown"]), lang
    )
    return f"{shown.to_string(index=False)}\n{note}"


def cmd_sync(args) -> None:
    from datetime import datetime

    from .store import Store
    from .sync import sync

    store = Store(args.db)
    since = datetime.fromisoformat(args.since) if args.since else None
    summary = sync(
        _client(args),
        store,
        lines=tuple(args.line or ()),
        workers=args.workers,
        since=since,
        rate=args.rate,
        deliveries=not args.no_deliveries,
    )
    print(f"Synced into {store.path}: {summary}")


def _existing_store(path: str):
    """The store at `path`, refused (and not created) when there is no such file."""
    from pathlib import Path

    from .errors import NotFoundError
    from .store import Store

    if not Path(path).is_file():
        raise NotFoundError(
            f"There is no store at {path}: run `payamak sync --db {path}` first, or point --db at an existing file.",
            "پایگاه داده‌ای در این مسیر نیست؛ نخست همگام‌سازی کنید",
        )
    return Store(path)


def cmd_report(args) -> None:
    from .report import write_report

    path = write_report(
        _existing_store(args.db),
        args.out,
        since=args.since,
        until=args.until,
        campaign=args.campaign,
        lang=args.lang,
        calendar=args.calendar,
    )
    print(path.resolve())


def cmd_export(args) -> None:
    from .store import export_parquet

    for path in export_parquet(_existing_store(args.db), args.parquet):
        print(path)


def _campaign_list(args) -> None:
    """The campaign leaderboard in the terminal."""
    from . import analytics
    from .i18n import for_people

    store = _existing_store(args.db)
    table = analytics.campaign_summary(store, since=args.since, until=args.until, sort=args.sort)
    if table.empty:
        print("No campaigns in this window." if args.lang == "en" else "در این بازه کمپینی نیست.")
        return
    columns = ["name", "first_send", "recipients", "known", "delivered_rate", "rate_low", "rate_high",
               "share_unknown", "replies", "opt_outs", "cost_per_delivered"]
    shown = for_people(table[columns], args.lang, args.calendar)
    print(shown.to_string(index=False, max_colwidth=48))
    print(f"Rates are over known outcomes, with 95% intervals; cost in SMS credits. Post-mortem: "
          f"payamak report --campaign {table['campaign'].iloc[0]}")


def cmd_campaign(args) -> None:
    from . import campaign
    from .store import Store

    if args.action == "list":
        _campaign_list(args)
        return
    store, client = Store(args.db), _client(args)
    if args.action == "send":
        plan = campaign.send_campaign(
            client,
            store,
            name=args.name,
            from_number=args.from_number,
            numbers=_numbers_from_csv(args.numbers),
            text=args.text,
            flash=args.flash,
            rate=args.rate,
            dry_run=args.dry_run,
        )
        print(plan)
        if plan.invalid:
            print(
                f"Left out, not mobile numbers: {', '.join(plan.invalid[:20])}{' ...' if len(plan.invalid) > 20 else ''}"
            )
        print(
            "Dry run: nothing was sent."
            if args.dry_run
            else campaign.campaign_status(store, plan.name).to_string(index=False)
        )
    elif args.action == "resume":
        status = campaign.resume_campaign(client, store, args.name, decide=_decider(args), rate=args.rate)
        print(status.to_string(index=False))
    else:
        print(campaign.campaign_status(store, args.name).to_string(index=False))


def _numbers_from_csv(path: str) -> list[str]:
    """The first column of a CSV file (a header row, if any, is skipped)."""
    column = pd.read_csv(path, dtype=str, header=None, skip_blank_lines=True).iloc[:, 0].dropna().str.strip()
    if len(column) and any(ch.isalpha() for ch in column.iloc[0]):
        column = column.iloc[1:]
    return column.tolist()


def _decider(args):
    """At a terminal, ask about each unknown chunk; elsewhere take a match only with --accept-matches."""

    def decide(unknown) -> str:
        where = (
            f"it looks like sent batch {unknown.match} (same line, text and count)"
            if unknown.match is not None
            else "no sent message matches it"
        )
        if not sys.stdin.isatty():
            print(f"chunk {unknown.chunk} ({len(unknown.numbers)} numbers) may or may not have gone out: {where}.")
            return "sent" if args.accept_matches and unknown.match is not None else "leave"
        question = "Mark it as sent? [y/N] " if unknown.match is not None else "Send it again? [y/N] "
        answer = input(
            f"chunk {unknown.chunk} ({len(unknown.numbers)} numbers) may or may not have gone out: {where}. " + question
        )
        if answer.strip().lower() not in ("y", "yes"):
            return "leave"
        return "sent" if unknown.match is not None else "resend"

    return decide


def cmd_credit(args) -> None:
    print(_client(args).get_credit())


def cmd_inbox_count(args) -> None:
    print(_client(args).get_inbox_count(args.read))


def cmd_send(args) -> None:
    client = _client(args)
    plan = client.plan_send(args.from_number, args.to, args.text)
    info = plan.text_info
    print(
        f"{len(plan.numbers)} recipient(s), {info.characters} characters, {info.encoding}, "
        f"{info.parts} part(s): {plan.messages} SMS"
    )
    if args.dry_run:
        print("Dry run: nothing was sent.")
        return
    result = client.send_sms(plan.from_number, plan.numbers, plan.text, flash=args.flash)
    for r in result.recipients:
        print(f"{r.number}  rec_id={r.rec_id}  {'sent' if r.sent else 'NOT sent'}")


def cmd_delivery(args) -> None:
    status = _client(args).get_delivery(args.rec_id)
    print(f"{status.code}  {status.en}  {status.fa}")


def cmd_messages(args) -> None:
    frame = _client(args).messages_frame(args.type, args.line or (), limit=args.limit)
    print(_table(frame))


def _table(frame: pd.DataFrame) -> str:
    """Messages for the terminal: labelled columns, separators, texts on one line and cut at 40."""
    from .i18n import for_people

    if frame.empty:
        return "(none)"
    shown = frame[MESSAGE_COLUMNS].copy()
    shown["content"] = shown["content"].str.replace("\n", " ").str.slice(0, 40)
    return for_people(shown, "en", "gregorian").to_string(index=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payamak", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--wsdl",
        help="WSDL address (default: PAYAMAK_WSDL, else the real service); 'bundled' for the copy in this package",
    )
    parser.add_argument("--endpoint", help="service address, overriding the WSDL's (default: PAYAMAK_ENDPOINT)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer")
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("simulate", help="serve the local panel until stopped")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=0, help="0 picks a free port")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--days", type=int, default=90)
    sim.add_argument("--messages", type=int, default=20_000, help="records in the history (sent + received)")
    sim.add_argument("--clock-speed", type=float, default=1.0)
    sim.add_argument("--admin", action="store_true", help="enable /_sim/truth, /_sim/clock, /_sim/switch")
    sim.add_argument("--threads", type=int, default=8)
    for name in ("latency-ms", "jitter-ms", "fail-rate", "fault-rate", "drop-rate", "slow-rate"):
        sim.add_argument(f"--{name}", type=float, default=0.0)
    sim.add_argument("--slow-seconds", type=float, default=35.0)
    sim.add_argument("--fault-operations", metavar="OP[,OP...]", help="only these operations meet the faults")
    sim.set_defaults(run=cmd_simulate)

    demo = commands.add_parser("demo", help="run the toolkit against a built-in simulator")
    demo.add_argument("--messages", type=int, default=5_000, help="records in the simulated history")
    demo.add_argument("--db", default="data/payamak.duckdb")
    demo.add_argument("--out", default="reports", help="folder of the HTML report")
    demo.set_defaults(run=cmd_demo)

    sync = commands.add_parser("sync", help="bring the local DuckDB copy up to date")
    sync.add_argument("--db", default="data/payamak.duckdb")
    sync.add_argument("--line", action="append", help="only this line (repeatable)")
    sync.add_argument("--workers", type=int, default=8)
    sync.add_argument("--since", help="how far back a first sync reaches, e.g. 2025-03-21")
    sync.add_argument("--rate", type=float, help="at most this many calls a second")
    sync.add_argument("--no-deliveries", action="store_true", help="messages only, no delivery reports")
    sync.set_defaults(run=cmd_sync)

    report = commands.add_parser("report", help="write the HTML delivery report, with PNGs and CSVs beside it")
    report.add_argument("--db", default="data/payamak.duckdb")
    report.add_argument("--since", help="first send time: 2025-03-21, 1404-01-01 (Jalali), 7d, yesterday (Tehran time)")
    report.add_argument("--until", help="sends before this time")
    report.add_argument("--campaign", help="the campaign for the post-mortem section (default: the newest)")
    report.add_argument("--lang", choices=["en", "fa"], default="en")
    report.add_argument("--calendar", choices=["jalali", "gregorian"], default="jalali")
    report.add_argument("--out", default="reports")
    report.set_defaults(run=cmd_report)

    export = commands.add_parser("export", help="write the store as Parquet, partitioned by month")
    export.add_argument("--parquet", required=True, metavar="DIR")
    export.add_argument("--db", default="data/payamak.duckdb")
    export.set_defaults(run=cmd_export)

    campaign = commands.add_parser("campaign", help="send a long list in journaled chunks of 100")
    actions = campaign.add_subparsers(dest="action", required=True)
    send_campaign = actions.add_parser("send", help="plan and send a campaign")
    send_campaign.add_argument("--name", required=True)
    send_campaign.add_argument("--from", dest="from_number", required=True)
    send_campaign.add_argument("--numbers", required=True, metavar="FILE.csv", help="numbers in the first column")
    send_campaign.add_argument("--text", required=True)
    send_campaign.add_argument("--flash", action="store_true")
    send_campaign.add_argument("--dry-run", action="store_true", help="check, count and cost; send nothing")
    resume = actions.add_parser("resume", help="go on with a stopped campaign")
    resume.add_argument("name")
    resume.add_argument(
        "--accept-matches",
        action="store_true",
        help="without a terminal, take a matching sent message as an unknown chunk's send",
    )
    status = actions.add_parser("status", help="chunks and recipients by state")
    status.add_argument("name")
    listing = actions.add_parser("list", help="campaigns with their delivered rate, replies, opt-outs and cost")
    listing.add_argument("--db", default="data/payamak.duckdb")
    listing.add_argument("--since", help="first send from, e.g. 1404-08-01, 2025-10-23 or 30d")
    listing.add_argument("--until", help="first send before")
    listing.add_argument("--sort", default="first_send", choices=["first_send", "delivered_rate", "recipients",
                                                                   "share_unknown", "cost_per_delivered", "opt_outs"])
    listing.add_argument("--lang", choices=["en", "fa"], default="en")
    listing.add_argument("--calendar", choices=["jalali", "gregorian"], default="jalali")
    for action in (send_campaign, resume, status):
        action.add_argument("--db", default="data/payamak.duckdb")
        action.add_argument("--rate", type=float, default=2.0, help="sends a second at most")
    campaign.set_defaults(run=cmd_campaign)

    commands.add_parser("credit", help="the account's credit").set_defaults(run=cmd_credit)
    inbox = commands.add_parser("inbox-count", help="how many received messages are unread (or --read)")
    inbox.add_argument("--read", action="store_true")
    inbox.set_defaults(run=cmd_inbox_count)

    send = commands.add_parser("send", help="send one text to up to 100 numbers")
    send.add_argument("--from", dest="from_number", required=True, help="sender line, e.g. 10002188")
    send.add_argument("--to", required=True, help="numbers, comma-separated")
    send.add_argument("--text", required=True)
    send.add_argument("--flash", action="store_true")
    send.add_argument("--dry-run", action="store_true", help="check and count, send nothing")
    send.set_defaults(run=cmd_send)

    delivery = commands.add_parser("delivery", help="delivery status of one recipient (rec id from send)")
    delivery.add_argument("rec_id", type=int)
    delivery.set_defaults(run=cmd_delivery)

    messages = commands.add_parser("messages", help="sent or received messages, newest first")
    messages.add_argument("--type", choices=["sent", "received"], default="sent")
    messages.add_argument("--line", action="append", help="only this sender line (repeatable)")
    messages.add_argument("--limit", type=int, default=20)
    messages.set_defaults(run=cmd_messages)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except PayamakError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
