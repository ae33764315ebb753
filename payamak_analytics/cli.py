"""The `payamak` command: the simulator, the demo, and the account's everyday questions.

Credentials come from PAYAMAK_USERNAME / PAYAMAK_PASSWORD (environment or .env); the service
from PAYAMAK_WSDL / PAYAMAK_ENDPOINT, else the real one. Errors print as one line with the
code, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

from .client import PanelClient
from .errors import PayamakError
from .patience import MAX_WORKERS
from .store import Store
from .wsdl import DEFAULT_GENERATION, GENERATIONS

if TYPE_CHECKING:  # pandas is imported by the commands that show tables: `payamak sync` never loads it
    import pandas as pd

SHOWN_MESSAGE_COLUMNS = ["message_id", "action_datetime", "sender", "receiver", "count", "sent", "pages", "content"]


def _client(args) -> PanelClient:
    """A client of the configured account; a call gives up after 2 x --timeout, retries included."""
    return PanelClient(wsdl=args.wsdl, endpoint=args.endpoint, timeout=args.timeout, call_budget=2 * args.timeout)


def cmd_doctor(args) -> int:
    """Read-only checks of the account and the deployment; 1 when something blocks use."""
    from .client.doctor import unreachable
    from .client.settings import Settings

    settings = Settings.load(wsdl=args.wsdl, endpoint=args.endpoint, timeout=args.timeout, call_budget=2 * args.timeout)
    try:
        diagnosis = PanelClient(settings=settings).diagnose()
    except PayamakError as error:
        diagnosis = unreachable(settings.username, settings.wsdl, error)
    print(diagnosis.table(args.lang))
    print(f"report: {diagnosis.write_json(args.json)}")
    return 1 if diagnosis.blocking else 0


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
        history=HistoryConfig(seed=args.seed, days=args.days, messages=args.messages),
        clock_speed=args.clock_speed,
        start=args.start,
        history_end=args.history_end,
        accounts=args.accounts,
    )
    simulator = Simulator(
        world,
        host=args.host,
        port=args.port,
        faults=faults,
        admin=args.admin,
        threads=args.threads,
        contract=args.contract,
    )
    print(f"SendService simulator: {simulator.wsdl_url}", flush=True)
    extra = f", demo1/demo1 .. demo{args.accounts}/demo{args.accounts}" if args.accounts else ""
    print(
        f"accounts: demo/demo{extra}, inactive/inactive-pw, blocked/blocked-pw, nocredit/nocredit-pw; Ctrl-C stops it",
        flush=True,
    )
    try:
        simulator.serve_forever()
    except KeyboardInterrupt:
        pass


def _epoch(text: str) -> float:
    """A --start or --history-end: epoch seconds, or any moment `dates.moment` reads."""
    from .dates import moment
    from .errors import InputError

    try:
        value = float(text)
    except ValueError:
        try:
            return moment(text).timestamp()
        except InputError as error:
            raise argparse.ArgumentTypeError(error.message_en) from None
    if not 0 <= value <= 4_102_444_800:
        raise argparse.ArgumentTypeError(f"{text!r} is not epoch seconds between 1970 and 2100")
    return value


def cmd_demo(args) -> None:
    from . import demo
    from .report import write_report
    from .simulator import Simulator

    config = demo.world_config(args.messages or demo.MESSAGES)
    print(f"Starting the local panel (simulator) with a {demo.DAYS}-day history ...", flush=True)
    with Simulator(config, threads=16, admin=True) as simulator:
        client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url)
        print(f"Service: {simulator.wsdl_url}")
        print(f"Credit: {int(client.get_credit()):,} SMS")
        store = Store(args.db)
        print(
            f"Living through the history into {store.path}: a sync every six simulated days (before any "
            "report expires), and every 15 minutes for three hours after its newest campaign",
            flush=True,
        )
        demo.live_through(simulator, client, store, report=lambda line: print(line, flush=True))
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
    import pandas as pd

    from . import analytics, codes
    from .i18n import label, number, percent, unknown_note

    overall = analytics.delivery_report(store, by=[]).iloc[0]
    rows = []
    for outcome in codes.OUTCOMES:
        count, known = int(overall[outcome]), outcome in codes.FINAL_OUTCOMES
        base = overall["known"] if known else overall["recipients"]
        if count:
            share = (
                f"{percent(count / base, lang)} {label('of', lang)} {label('known' if known else 'recipients', lang)}"
            )
            rows.append({"outcome": label(outcome, lang), "recipients": number(count, lang), "share": share})
    shown = pd.DataFrame(rows).rename(columns=lambda c: label(c, lang))
    note = unknown_note(
        int(overall["recipients"]),
        int(overall["expired"]),
        int(overall["in_flight"] + overall["delivery_unknown"]),
        lang,
        untold=int(overall["unknown"]),
    )
    return f"{shown.to_string(index=False)}\n{note}"


def cmd_sync(args) -> None:
    # a Ctrl-C is one line from here on: while the modules load, while the client reads its
    # contract, while the store waits
    try:
        from .allocator import lean_heap
        from .client import validate
        from .dates import moment
        from .sync import sync

        # bad input is refused before anything is created: a date (an empty one too: an unset
        # shell variable is not "no limit"), a line
        since = None if args.since is None else moment(args.since)
        lines = tuple(validate.line(line) for line in args.line or ())
        lean_heap()
        client = _client(args)
        store = Store(args.db)  # waits (lock_wait) for a store another program holds
        summary = sync(
            client,
            store,
            lines=lines,
            workers=args.workers,
            since=since,
            rate=args.rate,
            deliveries=not args.no_deliveries,
            give_up_after=args.give_up_after,
            new_address=args.new_address,
        )
    except KeyboardInterrupt as interrupt:
        print(str(interrupt) or "interrupted; run the sync again to resume", file=sys.stderr)
        raise
    print(f"Synced into {store.path}: {summary}")


def cmd_report(args) -> None:
    from .report import write_report

    path = write_report(
        Store(args.db, create=False),
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

    for path in export_parquet(Store(args.db, create=False), args.parquet):
        print(path)


def _campaign_list(args) -> None:
    """The campaign leaderboard in the terminal."""
    from . import analytics
    from .i18n import for_people

    store = Store(args.db, create=False)
    table = analytics.campaign_summary(store, since=args.since, until=args.until, sort=args.sort)
    if table.empty:
        print("No campaigns in this window." if args.lang == "en" else "در این بازه کمپینی نیست.")
        return
    shown = for_people(table[list(analytics.CampaignSummary.SHOWN)], args.lang, args.calendar)
    print(shown.to_string(index=False, max_colwidth=48))
    print(
        f"Rates are over known outcomes, with 95% intervals; cost in SMS credits. Post-mortem: "
        f"payamak report --campaign {table['campaign'].iloc[0]}"
    )


def cmd_campaign(args) -> None:
    from . import campaign

    if args.action == "list":
        _campaign_list(args)
        return
    if args.action == "status":  # reads the local store only: no credentials, no service
        print(campaign.campaign_status(Store(args.db, create=False), args.name).to_string(index=False))
        return
    if args.action == "resume":
        client, store = _client(args), Store(args.db, create=False)
        status = campaign.resume_campaign(client, store, args.name, decide=_decider(args), rate=args.rate)
        print(status.to_string(index=False))
        if store.campaign(args.name)["stop_reason"]:
            print(store.campaign(args.name)["stop_reason"])
        return
    numbers = _numbers_from_csv(args.numbers)
    campaign.check_text(args.text)
    client = _client(args)
    if args.dry_run:
        plan = campaign.plan_campaign(
            client, name=args.name, from_number=args.from_number, numbers=numbers, text=args.text
        )
    else:
        store = Store(args.db)
        plan = campaign.send_campaign(
            client,
            store,
            name=args.name,
            from_number=args.from_number,
            numbers=numbers,
            text=args.text,
            flash=args.flash,
            rate=args.rate,
            same_as_unfinished=args.same_as_unfinished,
        )
    print(plan)
    if plan.warning:
        print(f"Warning: {plan.warning}")
    if plan.invalid:
        print(f"Left out, not mobile numbers: {', '.join(plan.invalid[:20])}{' ...' if len(plan.invalid) > 20 else ''}")
    print(
        "Dry run: nothing was sent."
        if args.dry_run
        else campaign.campaign_status(store, plan.name).to_string(index=False)
    )


def cmd_watch(args) -> None:
    """Sync on a schedule and alert; one log line a cycle on stderr (and in --log). Every option
    is checked before the store is opened, so a mistake creates nothing."""
    import logging
    import os

    from .alerts import AlertRules
    from .allocator import lean_heap
    from .errors import InputError
    from .phone import normalize
    from .sinks import SmsSink, SmtpSink, WebhookSink
    from .store import Store, default_path
    from .watch import duration, watch

    lean_heap()  # before any thread starts
    if (args.mail_to or args.mail_from) and not args.smtp:
        raise InputError("--mail-to needs --smtp HOST:PORT.", "برای ایمیل --smtp لازم است")
    if (args.really_send or args.alert_sms_from) and not args.alert_sms:
        raise InputError("--really-send and --alert-sms-from need --alert-sms NUMBERS.", "--alert-sms لازم است")
    if args.sms_per_hour < 1:
        raise InputError("--sms-per-hour must be at least 1.", "سقف پیامک در ساعت باید دست کم ۱ باشد")
    every = duration(args.every)
    rules = AlertRules(
        window=duration(args.window), min_volume=args.min_volume, drop=args.drop, credit_days=args.credit_days
    )
    client = _client(args)
    webhook = args.webhook or os.environ.get("PAYAMAK_WEBHOOK_URL")  # a URL with a login stays out of `ps`
    sinks = [WebhookSink(webhook, account=client.username)] if webhook else []
    if args.smtp:
        sinks.append(SmtpSink(args.smtp, (args.mail_to or "").split(","), mail_from=args.mail_from))
    numbers = [normalize(n) for n in args.alert_sms.split(",")] if args.alert_sms else []
    try:
        handlers = [logging.StreamHandler(sys.stderr)] + ([logging.FileHandler(args.log)] if args.log else [])
    except OSError as error:
        raise InputError(f"--log {args.log}: {error.strerror}; give a file path.", "فایل گزارش باز نشد") from None
    logger = logging.getLogger("payamak_analytics.watch")
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        store = Store(args.db)
    except OSError as error:  # a folder that cannot be made or written
        raise InputError(
            f"--db {args.db or default_path()}: {error.strerror}; give a path in a folder you may write.",
            "مسیر پایگاه داده نوشتنی نیست",
        ) from None
    if numbers:
        sink = SmsSink(
            client, store, numbers, line=args.alert_sms_from, really_send=args.really_send, per_hour=args.sms_per_hour
        )
        sinks.append(sink)
    reports = watch(client, store, every=every, sinks=sinks, rules=rules, once=args.once)
    if args.once and (not reports or reports[-1].outcome != "ok"):
        raise SystemExit(1)


def _numbers_from_csv(path: str) -> list[str]:
    """The first column of a CSV file (a header row, if any, is skipped)."""
    from .errors import InputError

    try:
        with open(path, "rb") as file:
            content = file.read()
        text = content.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        reason = "is not UTF-8 text" if isinstance(error, UnicodeDecodeError) else f"cannot be read ({error.strerror})"
        raise InputError(
            f"{path} {reason}: give a CSV file with one number a line.", "فایل شماره ها خوانا نیست"
        ) from None
    if "\x00" in text:
        raise InputError(
            f"{path} is a binary file, not a CSV: give a CSV file with one number a line.", "فایل شماره ها متنی نیست"
        )
    rows = [line.split(",")[0].strip().strip('"') for line in text.splitlines()]
    column = [row for row in rows if row]
    if column and any(ch.isalpha() for ch in column[0]):
        column = column[1:]
    if not column:
        raise InputError(f"{path} holds no numbers: put one number a line (first column).", "فایل شماره ها خالی است")
    return column


def _decider(args):
    """At a terminal, ask about each unknown chunk; elsewhere take a match only with --accept-matches."""

    def decide(unknown) -> str:
        where = (
            f"sent batch {unknown.match} has the same line, text and recipients"
            if unknown.match is not None
            else "it is not among the account's sent messages"
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
    if plan.warning:
        print(f"Warning: {plan.warning}")
    if args.dry_run:
        print("Dry run: nothing was sent.")
        return
    result = client.send_sms(plan.from_number, plan.numbers, plan.text, flash=args.flash)
    for r in result.recipients:
        print(f"{r.number}  rec_id={r.rec_id}  {r.status}")


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
    shown = frame[SHOWN_MESSAGE_COLUMNS].copy()
    shown["content"] = shown["content"].str.replace("\n", " ").str.slice(0, 40)
    return for_people(shown, "en", "gregorian").to_string(index=False)


STORE_HELP = "the store's DuckDB file (default: PAYAMAK_STORE, else data/payamak.duckdb)"


def _bounded(kind: type, low: float, high: float, *, above: bool = False):
    """An argparse type: a `kind` number from `low` (strictly above it, with `above`) to `high`;
    anything else (a word, nan, inf, a number out of range) is a usage error that names the range."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (value > low if above else value >= low) or not value <= high:
            what = "a whole number" if kind is int else "a number"
            span = f"{'above' if above else 'from'} {low:g} to {high:g}"
            raise argparse.ArgumentTypeError(f"{text!r}: give {what} {span}")
        return value

    return parse


def _one_line_usage_errors(parser: argparse.ArgumentParser) -> None:
    """Usage errors of `parser` as one line, `error: ...`, with where to look; exit status 2."""

    def error(message: str):
        parser.exit(2, f"error: {message} (see {parser.prog} --help)\n")

    parser.error = error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payamak", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--wsdl",
        help="WSDL address (default: PAYAMAK_WSDL, else the real service); 'bundled' for the copy in this package",
    )
    parser.add_argument("--endpoint", help="service address, overriding the WSDL's (default: PAYAMAK_ENDPOINT)")
    parser.add_argument(
        "--timeout",
        type=_bounded(float, 0, 3600, above=True),
        default=30.0,
        help="seconds one attempt of a call may take",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser(
        "simulate",
        help="serve the local panel until stopped",
        description="Serve the local panel until stopped. The same --seed and --start give the same history.",
    )
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=_bounded(int, 0, 65535), default=0, help="0 picks a free port")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--days", type=_bounded(int, 1, 3650), default=90)
    sim.add_argument(
        "--messages", type=_bounded(int, 0, 10_000_000), default=20_000, help="records in the history (sent + received)"
    )
    sim.add_argument(
        "--clock-speed",
        type=_bounded(float, 0, 1_000_000),
        default=1.0,
        help="simulated seconds per wall second; 0 freezes",
    )
    sim.add_argument(
        "--start",
        type=_epoch,
        metavar="WHEN",
        help="the clock's start: 2025-11-24, 2025-11-24T09:00, 1404-09-03 or epoch seconds (default: now)",
    )
    sim.add_argument(
        "--history-end",
        type=_epoch,
        metavar="WHEN",
        help="where the history ends (default: the clock's start); later than --start, the service shows "
        "each record once the clock reaches it",
    )
    sim.add_argument(
        "--accounts", type=_bounded(int, 0, 100), default=0, help="extra accounts demo1..demoN (password = user name)"
    )
    sim.add_argument(
        "--admin",
        action="store_true",
        help="enable /_sim/truth, /_sim/clock?advance=S, /_sim/switch, /_sim/dark?seconds=S, "
        "/_sim/forget?batch_id=N&times=K, /_sim/incident?operator=MCI&status=6&rate=0.3[&line=L]",
    )
    sim.add_argument("--threads", type=_bounded(int, 1, 256), default=8)
    for name in ("latency-ms", "jitter-ms"):
        sim.add_argument(f"--{name}", type=_bounded(float, 0, 600_000), default=0.0)
    for name in ("fail-rate", "fault-rate", "drop-rate", "slow-rate"):
        sim.add_argument(f"--{name}", type=_bounded(float, 0, 1), default=0.0, help="a share, from 0 to 1")
    sim.add_argument("--slow-seconds", type=_bounded(float, 0, 3600), default=35.0)
    sim.add_argument("--fault-operations", metavar="OP[,OP...]", help="only these operations meet the faults")
    sim.add_argument(
        "--contract",
        choices=GENERATIONS,
        default=DEFAULT_GENERATION,
        help="the contract generation served: 2022 (default, what public stubs were generated from), 2020 (no "
        "GetMessagesByDateRange; MessageInfo without Cost, SendMethod, SendStatus) or latest (newer enum values)",
    )
    sim.set_defaults(run=cmd_simulate)

    demo = commands.add_parser("demo", help="run the toolkit against a built-in simulator")
    demo.add_argument(
        "--messages", type=_bounded(int, 100, 1_000_000), default=None, help="records in the simulated history (3000)"
    )
    demo.add_argument("--db", default=None, help=STORE_HELP)
    demo.add_argument("--out", default="reports", help="folder of the HTML report")
    demo.set_defaults(run=cmd_demo)

    sync = commands.add_parser("sync", help="bring the local DuckDB copy up to date")
    sync.add_argument("--db", default=None, help=STORE_HELP)
    sync.add_argument("--line", action="append", help="only this line (repeatable)")
    sync.add_argument(
        "--workers", type=_bounded(int, 1, MAX_WORKERS), default=8, help=f"calls at once (1 to {MAX_WORKERS})"
    )
    sync.add_argument(
        "--since", help="how far back a first sync reaches: 2025-03-21, 1404-01-01, 2025-03-21T08:30, 7d, yesterday"
    )
    sync.add_argument("--rate", type=_bounded(float, 0, 1000, above=True), help="at most this many calls a second")
    sync.add_argument("--no-deliveries", action="store_true", help="messages only, no delivery reports")
    sync.add_argument(
        "--give-up-after",
        type=_bounded(float, 0, 7 * 86_400, above=True),
        default=120.0,
        metavar="SECONDS",
        help="stop when the service has answered nothing successfully for this long (default 120)",
    )
    sync.add_argument(
        "--new-address", action="store_true", help="the service has moved: record its new address in the store"
    )
    sync.set_defaults(run=cmd_sync)
    _one_line_usage_errors(sync)

    report = commands.add_parser("report", help="write the HTML delivery report, with PNGs and CSVs beside it")
    report.add_argument("--db", default=None, help=STORE_HELP)
    report.add_argument("--since", help="first send time: 2025-03-21, 1404-01-01 (Jalali), 7d, yesterday (Tehran time)")
    report.add_argument("--until", help="sends before this time")
    report.add_argument("--campaign", help="the campaign for the post-mortem section (default: the newest)")
    report.add_argument("--lang", choices=["en", "fa"], default="en")
    report.add_argument("--calendar", choices=["jalali", "gregorian"], default="jalali")
    report.add_argument("--out", default="reports")
    report.set_defaults(run=cmd_report)

    export = commands.add_parser("export", help="write the store as Parquet, partitioned by month")
    export.add_argument("--parquet", required=True, metavar="DIR")
    export.add_argument("--db", default=None, help=STORE_HELP)
    export.set_defaults(run=cmd_export)
    _one_line_usage_errors(export)

    campaign = commands.add_parser("campaign", help="send a long list in journaled chunks of 100")
    actions = campaign.add_subparsers(dest="action", required=True)
    send_campaign = actions.add_parser("send", help="plan and send a campaign")
    send_campaign.add_argument("--name", required=True)
    send_campaign.add_argument("--from", dest="from_number", required=True)
    send_campaign.add_argument("--numbers", required=True, metavar="FILE.csv", help="numbers in the first column")
    send_campaign.add_argument("--text", required=True)
    send_campaign.add_argument("--flash", action="store_true")
    send_campaign.add_argument("--dry-run", action="store_true", help="check, count and cost; send nothing")
    send_campaign.add_argument(
        "--same-as-unfinished",
        action="store_true",
        help="send even though an unfinished campaign has the same line, text and numbers (resume that one instead)",
    )
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
    listing.add_argument("--db", default=None, help=STORE_HELP)
    listing.add_argument("--since", help="first send from, e.g. 1404-08-01, 2025-10-23 or 30d")
    listing.add_argument("--until", help="first send before")
    listing.add_argument(
        "--sort",
        default="first_send",
        choices=["first_send", "delivered_rate", "recipients", "share_unknown", "cost_per_delivered", "opt_outs"],
    )
    listing.add_argument("--lang", choices=["en", "fa"], default="en")
    listing.add_argument("--calendar", choices=["jalali", "gregorian"], default="jalali")
    for action in (send_campaign, resume, status):
        action.add_argument("--db", default=None, help=STORE_HELP)
        action.add_argument(
            "--rate", type=_bounded(float, 0, 100, above=True), default=2.0, help="sends a second at most"
        )
        _one_line_usage_errors(action)
    _one_line_usage_errors(campaign)
    campaign.set_defaults(run=cmd_campaign)

    watch = commands.add_parser("watch", help="sync on a schedule and raise alerts when delivery drops")
    watch.add_argument("--db", default=None, help=STORE_HELP)
    watch.add_argument("--every", default="15m", help="time between cycles: 15m, 1h, 90s (default 15m)")
    watch.add_argument("--once", action="store_true", help="run one cycle and exit (cron, systemd timers)")
    watch.add_argument("--window", default="60m", help="the delivery window judged each cycle (default 60m)")
    watch.add_argument("--min-volume", type=int, default=100, help="telecom answers a window needs (default 100)")
    watch.add_argument("--drop", type=float, default=0.10, help="delivery-rate drop that alerts (default 0.10)")
    watch.add_argument("--credit-days", type=float, default=3.0, help="alert when credit lasts fewer days")
    watch.add_argument(
        "--webhook", help="POST each alert and its end as JSON to this URL (default: PAYAMAK_WEBHOOK_URL)"
    )
    watch.add_argument("--smtp", help="HOST:PORT of a mail server (login from PAYAMAK_SMTP_USER/_PASSWORD)")
    watch.add_argument("--mail-to", help="addresses, comma-separated")
    watch.add_argument("--mail-from", help="sender address (default PAYAMAK_SMTP_FROM or payamak-watch@host)")
    watch.add_argument("--alert-sms", help="on-call numbers, comma-separated: critical alerts by SMS (dry run)")
    watch.add_argument("--alert-sms-from", help="the line alert SMS go out from (default the account's first)")
    watch.add_argument("--really-send", action="store_true", help="send alert SMS for real (default: dry run)")
    watch.add_argument("--sms-per-hour", type=int, default=4, help="at most this many alert SMS an hour")
    watch.add_argument("--log", help="also append the log to this file")
    watch.set_defaults(run=cmd_watch)

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

    doctor = commands.add_parser("doctor", help="read-only checks of the account and the service (sends nothing)")
    doctor.add_argument("--lang", choices=["en", "fa"], default="en")
    doctor.add_argument("--json", default="payamak-doctor.json", metavar="PATH", help="where to write the report")
    doctor.set_defaults(run=cmd_doctor)
    return parser


INTERRUPTED = 130  # a shell's status for a command ended by Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)
    except PayamakError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return INTERRUPTED
    return status or 0


def run() -> None:
    """The `payamak` command. Interrupted, it ends at once: a sync's workers may still be in calls
    whose answers are unwanted, and Python would wait for each until its deadline (up to a
    minute), a second Ctrl-C meanwhile printing a traceback. By then everything read is
    committed, and the store let go; a connection cut short as by a kill is what DuckDB
    recovers from."""
    status = main()
    if status == INTERRUPTED:
        try:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:  # a second Ctrl-C meanwhile ends it all the same
            os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    run()
