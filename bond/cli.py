"""`bond`: the command-line entry point."""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bond import __version__
from bond import config as config_module
from bond.config import Config
from bond.errors import BondError, StorageError
from bond.logs import log
from bond.storage.dirlock import COLLECTOR, WORKER, DirectoryInUse, Role
from bond.storage.sqlite import refused_for_room

Command = Callable[[argparse.Namespace, Config], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        config = config_module.load(args.config, data_dir=args.data_dir)
        return int(args.run(args, config))
    except BondError as exc:
        print(f"bond: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`bond export ... | head`). Nothing more can reach it, and Python's
        # own flush of stdout at exit would fail again, with a traceback, unless it goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type for a whole number from `low` (to `high`), written as people write
    large numbers (1,000,000 or 1_000_000). A port of 70000 would otherwise bind 4464."""

    def parse(text: str) -> int:
        try:
            number = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if number < low or (high is not None and number > high):
            span = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"it must be {span}, not {number}")
        return number

    return parse


_port = _whole(1, 65535)
_positive = _whole(1)
_event_count = _whole(0)


def _duration(*, zero: bool) -> Callable[[str], float]:
    """An argparse type for a finite number of seconds, above 0 (or from 0 with `zero`)."""

    def parse(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not (math.isfinite(number) and (number >= 0 if zero else number > 0)):
            span = "0 or more" if zero else "more than 0"
            raise argparse.ArgumentTypeError(f"it must be {span} seconds, not {text}")
        return number

    return parse


_seconds = _duration(zero=True)
_positive_seconds = _duration(zero=False)


_DATA_DIR_HELP = "where the databases live (default: ./bond-data, or BOND_DATA_DIR)"
_CONFIG_HELP = "bond.toml to read (default: ./bond.toml, or BOND_CONFIG)"


def _data_options() -> argparse.ArgumentParser:
    """--data-dir and --config for the commands that read them, so that they may also follow
    the command (`bond worker --data-dir DIR`); given there, they win over those before it."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--config", default=argparse.SUPPRESS, help=_CONFIG_HELP)
    options.add_argument("--data-dir", default=argparse.SUPPRESS, help=_DATA_DIR_HELP)
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bond", description="Real-time identity resolution.")
    parser.add_argument("--version", action="version", version=f"bond {__version__}")
    parser.add_argument("--config", help=_CONFIG_HELP)
    parser.add_argument("--data-dir", help=_DATA_DIR_HELP)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    data = [_data_options()]

    serve = commands.add_parser(
        "serve", help="run the collector (ingest, SDK files, health, metrics)", parents=data
    )
    serve.add_argument(
        "--host", default=None, help="interface to bind (default: [collector] host, 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=_port, default=None, help="port to bind (default: [collector] port, 8000)"
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker", help="run the engine worker (identity graph, hooks)", parents=data
    )
    worker.set_defaults(run=_worker)

    api = commands.add_parser(
        "api", help="run the read API (persons, timelines) under /api", parents=data
    )
    api.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    api.add_argument("--port", type=_port, default=8001, help="port to bind (default 8001)")
    api.set_defaults(run=_api)

    person = commands.add_parser("person", help="print a person's stitched timeline", parents=data)
    person.add_argument("who", help="an email, user id or anonymous id")
    person.add_argument(
        "--limit", type=_positive, default=50, help="newest events to show (default 50)"
    )
    person.set_defaults(run=_person)

    erase = commands.add_parser(
        "erase",
        help="erase a person: keys, events, identity graph, households, alerts",
        parents=data,
    )
    erase.add_argument("who", help="the person's email or user id")
    erase.add_argument(
        "--wait", type=_seconds, default=60.0, help="seconds to wait for a running worker (60)"
    )
    erase.set_defaults(run=_erase)

    unsuppress = commands.add_parser(
        "unsuppress",
        help="accept events with an erased identifier again (after a mistake)",
        parents=data,
    )
    unsuppress.add_argument("who", help="the email, user id or anonymous id")
    unsuppress.set_defaults(run=_unsuppress)

    export = commands.add_parser(
        "export", help="print everything held about a person as JSON", parents=data
    )
    export.add_argument("who", help="the person's email or user id")
    export.set_defaults(run=_export)

    identity_map = commands.add_parser(
        "identity-map",
        help="print every browser's time ranges and their persons, to join into a warehouse",
        parents=data,
    )
    identity_map.add_argument(
        "--format", choices=("jsonl", "csv"), default="jsonl", help="jsonl (default) or csv"
    )
    identity_map.add_argument(
        "--output", type=Path, default=None, help="write to this file (default: stdout)"
    )
    identity_map.add_argument(
        "--changed-since",
        default=None,
        metavar="SYNC",
        help="only the browsers changed (or erased) since the pull that gave this sync token",
    )
    identity_map.set_defaults(run=_identity_map)

    backup = commands.add_parser(
        "backup",
        help="copy the data directory, consistent, while Bond runs on it",
        parents=data,
    )
    backup.add_argument("dest", help="a new directory (or an empty one) outside the data directory")
    backup.set_defaults(run=_backup)

    demo = commands.add_parser(
        "demo",
        help="run everything: collector, worker, read API and the demo storefront",
        parents=data,
    )
    demo.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    demo.add_argument(
        "--port", type=_port, default=None, help="collector port (default: [collector] port, 8000)"
    )
    demo.add_argument("--api-port", type=_port, default=8001, help="read API port (default 8001)")
    demo.add_argument(
        "--shop-port", type=_port, default=8080, help="storefront port (default 8080)"
    )
    demo.set_defaults(run=_demo)

    alerts = commands.add_parser("alerts", help="Discord alerts: check the webhook, send, list")
    alert_kinds = alerts.add_subparsers(title="actions", metavar="ACTION", required=True)
    alert_test = alert_kinds.add_parser(
        "test", help="send a sample message to the webhook", parents=data
    )
    alert_test.set_defaults(run=_alerts_test)
    alert_send = alert_kinds.add_parser("send", help="deliver pending alerts now", parents=data)
    alert_send.add_argument(
        "--retry-failed", action="store_true", help="also retry failed ones (webhook fixed)"
    )
    alert_send.set_defaults(run=_alerts_send)
    alert_list = alert_kinds.add_parser(
        "list", help="recent alerts and their delivery state", parents=data
    )
    alert_list.add_argument("--limit", type=_positive, default=20, help="how many (default 20)")
    alert_list.add_argument("--json", action="store_true", help="print one JSON object")
    alert_list.set_defaults(run=_alerts_list)

    bench = commands.add_parser("bench", help="measure Bond against a baseline in the same run")
    bench_kinds = bench.add_subparsers(title="benchmarks", metavar="BENCH", required=True)
    ingest = bench_kinds.add_parser(
        "ingest", help="collector throughput and latency vs a trivial endpoint"
    )
    ingest.add_argument("--json", action="store_true", help="print one JSON object")
    ingest.add_argument(
        "--seconds",
        type=_positive_seconds,
        default=5.0,
        help="length of each measurement (default 5)",
    )
    ingest.add_argument(
        "--connections",
        type=_positive,
        default=64,
        help="concurrent keep-alive connections (default 64)",
    )
    ingest.add_argument(
        "--history",
        type=_event_count,
        default=None,
        help="events in the collector's log before the bench starts (default: three times "
        "the digests it keeps in memory, so that its duplicate checks reach the runs on disk)",
    )
    ingest.set_defaults(run=_bench_ingest)
    concurrency = bench_kinds.add_parser(
        "concurrency",
        help="single events vs the trivial endpoint at 8 to 256 connections: rates and p99",
    )
    concurrency.add_argument("--json", action="store_true", help="print one JSON object")
    concurrency.add_argument(
        "--seconds",
        type=_positive_seconds,
        default=3.0,
        help="length of each server's measurement per level (default 3)",
    )
    concurrency.add_argument(
        "--history", type=_event_count, default=None, help="as for bench ingest"
    )
    concurrency.set_defaults(run=_bench_concurrency)
    stitch = bench_kinds.add_parser(
        "stitch", help="identify to complete timeline vs the naive UPDATE; worker events/s"
    )
    stitch.add_argument("--json", action="store_true", help="print one JSON object")
    stitch.add_argument(
        "--trials", type=_positive, default=20, help="identifies per history size (default 20)"
    )
    stitch.set_defaults(run=_bench_stitch)
    dashboard = bench_kinds.add_parser(
        "dashboard", help="what each dashboard page asks of the read API: 10,000 vs 1M events"
    )
    dashboard.add_argument("--json", action="store_true", help="print one JSON object")
    dashboard.add_argument(
        "--events", type=_positive, default=1_000_000, help="events in the large state (default 1M)"
    )
    dashboard.add_argument(
        "--repeat", type=_positive, default=50, help="calls per measurement (default 50)"
    )
    dashboard.add_argument(
        "--keep", metavar="DIR", help="build the states here and reuse them on the next run"
    )
    dashboard.set_defaults(run=_bench_dashboard)

    simulate = commands.add_parser(
        "simulate",
        help="canaries: synthetic traffic through the real collector and worker, scored "
        "against its ground truth",
        description="Two canaries, each run through a real `bond serve` and `bond worker` on "
        "a temporary data directory. --households N (the default, 200 households): shared "
        "accounts, scored on which member made each order. --visitors N: people on several "
        "devices, shared computers, cleared cookies, late logins, server-side events and "
        "aliases, scored on whether each event lands on its own person's record.",
    )
    mode = simulate.add_mutually_exclusive_group()
    mode.add_argument(
        "--households",
        type=_positive,
        help="the households canary: how many households (the default mode, 200)",
    )
    mode.add_argument(
        "--visitors",
        type=_positive,
        help="the identity canary: how many simulated people (2,000 take about 10 s)",
    )
    simulate.add_argument("--seed", type=int, default=7, help="the generator's seed (default 7)")
    simulate.add_argument("--json", action="store_true", help="print one JSON object")
    households = simulate.add_argument_group("households canary only")
    households.add_argument(
        "--sessions", type=_positive, default=None, help="stop generating at this many sessions"
    )
    households.add_argument("--weeks", type=_positive, help="simulated weeks (default 8)")
    households.add_argument("--difficulty", type=_fraction, help="0 easy .. 1 hard (default 0.5)")
    households.add_argument(
        "--offline", action="store_true", help="score the model in-process, without HTTP"
    )
    households.add_argument(
        "--calibrate",
        action="store_true",
        help="fit the attribution calibration on simulated households and save it with the model",
    )
    simulate.set_defaults(run=_simulate)
    return parser


def _serve(args: argparse.Namespace, config: Config) -> int:
    from bond.serving import serve_collector

    try:
        return serve_collector(config, host=args.host, port=args.port)
    except DirectoryInUse as exc:
        return _refused(exc)
    except (StorageError, sqlite3.Error) as exc:
        if not refused_for_room(exc):
            raise
        return _no_room(exc, COLLECTOR, config)


def _worker(args: argparse.Namespace, config: Config) -> int:
    from engine.worker import run_worker

    try:
        run_worker(config)
    except DirectoryInUse as exc:
        return _refused(exc)
    except (StorageError, sqlite3.Error) as exc:
        if not refused_for_room(exc):
            raise
        return _no_room(exc, WORKER, config)
    return 0


def _refused(exc: DirectoryInUse) -> int:
    """A service's stderr is its log, so its refusal to start is a JSON line like the rest."""
    log(
        "data_dir_in_use",
        app=exc.role.name,
        lock=str(exc.path),
        pid=exc.pid,
        reason=str(exc),
    )
    return 1


def _no_room(exc: Exception, role: Role, config: Config) -> int:
    """A service's stderr is its log, so that it could not start for want of room is one JSON
    line like the rest, not main's plain one."""
    log(
        "data_dir_full",
        app=role.name,
        data_dir=str(config.data_dir),
        reason=(
            f"the disk under {config.data_dir} is full ({exc}): free space there, then start "
            f"{role.command} again"
        ),
    )
    return 1


def _api(args: argparse.Namespace, config: Config) -> int:
    from engine.api import serve_read_api

    return serve_read_api(config, host=args.host, port=args.port)


def _person(args: argparse.Namespace, config: Config) -> int:
    from engine.report import print_person

    _require_data(config)
    print_person(config, args.who, limit=args.limit)
    return 0


def _erase(args: argparse.Namespace, config: Config) -> int:
    from engine.privacy.commands import erase

    _require_data(config)
    return erase(config, args.who, wait_s=args.wait)


def _unsuppress(args: argparse.Namespace, config: Config) -> int:
    from engine.privacy.commands import unsuppress

    _require_data(config)
    return unsuppress(config, args.who)


def _export(args: argparse.Namespace, config: Config) -> int:
    from engine.privacy.commands import export

    _require_data(config)
    return export(config, args.who)


def _identity_map(args: argparse.Namespace, config: Config) -> int:
    from engine.identity_map import write_map

    _require_data(config)
    return write_map(config, fmt=args.format, output=args.output, changed_since=args.changed_since)


def _backup(args: argparse.Namespace, config: Config) -> int:
    from bond.backup import backup

    _require_data(config)
    return backup(config, Path(args.dest))


def _demo(args: argparse.Namespace, config: Config) -> int:
    from bond.demo import run_demo

    return run_demo(
        config,
        config_file=args.config,
        host=args.host,
        port=args.port or config.collector.port,
        api_port=args.api_port,
        shop_port=args.shop_port,
    )


def _alerts_test(args: argparse.Namespace, config: Config) -> int:
    from engine.alerts.commands import test_webhook

    return test_webhook(config)


def _alerts_send(args: argparse.Namespace, config: Config) -> int:
    from engine.alerts.commands import send_pending

    _require_data(config)
    return send_pending(config, retry_failed=args.retry_failed)


def _alerts_list(args: argparse.Namespace, config: Config) -> int:
    from engine.alerts.commands import list_alerts

    _require_data(config)
    return list_alerts(config, limit=args.limit, as_json=args.json)


def _fraction(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"it is from 0 (easy) to 1 (hard), not {number}")
    return number


def _require_data(config: Config) -> None:
    """Refuse a data directory with no Bond data rather than create empty databases in it: a
    mistyped --data-dir would otherwise answer 'no such person', and an erasure 'done'."""
    if not (config.events_db.exists() or config.state_db.exists()):
        raise StorageError(
            f"no Bond data in {config.data_dir} (no events.db or state.db): check --data-dir "
            "or BOND_DATA_DIR"
        )


def _bench_ingest(args: argparse.Namespace, config: Config) -> int:
    from bond.bench.history import HISTORY_EVENTS
    from bond.bench.ingest import run

    history = HISTORY_EVENTS if args.history is None else args.history
    return run(
        seconds=args.seconds, connections=args.connections, history=history, as_json=args.json
    )


def _bench_concurrency(args: argparse.Namespace, config: Config) -> int:
    from bond.bench.concurrency import run
    from bond.bench.history import HISTORY_EVENTS

    history = HISTORY_EVENTS if args.history is None else args.history
    return run(seconds=args.seconds, history=history, as_json=args.json)


def _bench_stitch(args: argparse.Namespace, config: Config) -> int:
    from engine.bench import run

    return run(trials=args.trials, as_json=args.json)


def _bench_dashboard(args: argparse.Namespace, config: Config) -> int:
    from engine.dashboard.bench import run

    return run(events=args.events, keep=args.keep, repeat=args.repeat, as_json=args.json)


def _simulate(args: argparse.Namespace, config: Config) -> int:
    household_options = {
        "households": args.households,
        "sessions": args.sessions,
        "weeks": args.weeks,
        "difficulty": args.difficulty,
    }
    if args.visitors is not None:
        given = [name for name, value in household_options.items() if value is not None]
        given += [name for name in ("offline", "calibrate") if getattr(args, name)]
        if given:
            flags = ", ".join(f"--{name}" for name in given)
            raise BondError(f"{flags}: options of the households canary, not of --visitors")
        from bond.simulate.visitors import Settings as VisitorSettings
        from bond.simulate.visitors_canary import run as run_visitors

        return run_visitors(VisitorSettings(args.visitors, seed=args.seed), as_json=args.json)

    from bond.simulate.households import Settings

    chosen = {name: value for name, value in household_options.items() if value is not None}
    settings = Settings(seed=args.seed, **chosen)
    if args.calibrate:
        from bond.simulate.offline import fit_and_save

        return fit_and_save(settings)
    if args.offline:
        from bond.simulate.offline import run_and_report

        return run_and_report(settings, as_json=args.json)
    from bond.simulate.canary import run

    return run(settings, as_json=args.json)


if __name__ == "__main__":
    raise SystemExit(main())
