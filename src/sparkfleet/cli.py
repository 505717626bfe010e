"""The `sparkfleet` command: provision, drift, status and upgrade over ansible-runner."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

from sparkfleet import __version__, history
from sparkfleet.commands import Command, Report, drift, provision, status, upgrade
from sparkfleet.errors import EXIT_USAGE, SparkfleetError, UsageError
from sparkfleet.events import HostResult, host_results
from sparkfleet.inventory import check_inventory_paths, list_hosts, testbed_inventory
from sparkfleet.lock import EXIT_LOCKED, LOCK_DIR_ENV, FleetLock, Locked, lock_path
from sparkfleet.progress import ProgressView
from sparkfleet.runner import PLAYBOOK_DIR_ENV, Project, RunOutcome, find_project, run_playbook
from sparkfleet.table import print_blocks

EPILOG = f"""\
exit codes:
  0   clean: every host ran, nothing drifted
  1   a host failed or was unreachable (the others still ran), or Ansible stopped
  2   drift: `drift` found changes (with --fix: found and corrected them)
  {EXIT_USAGE}  bad arguments or inventory (one line on stderr says what to fix)
  {EXIT_LOCKED}  skipped: another provision, drift or upgrade holds this inventory's lock

Without -i, a checkout with tests/testbed uses the local simulated Spark.
The playbooks come from --playbook-dir, ${PLAYBOOK_DIR_ENV}, or this checkout.
Drift history: --history, ${history.HISTORY_ENV}, or ~/.local/state/sparkfleet/drift.jsonl.
Lock (one provision, drift or upgrade per inventory at a time): a file named after the
inventory in ${LOCK_DIR_ENV}, else /run/lock; --wait SECONDS waits for it.
"""


# The locks this command holds, released when it returns (main()).
_HELD: list[FleetLock] = []


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 64 (2 means drift here)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


@dataclass
class Context:
    project: Project
    inventories: list[str]
    hosts: list[str]
    limit: str | None
    as_json: bool
    # Notes for people (the live view, `Batch 1/3: ...`); the report goes to stdout.
    err: TextIO

    def run(
        self,
        playbook: Path,
        hosts: Sequence[str],
        *,
        limit: str | None = None,
        check: bool = False,
        diff: bool = False,
        extravars: Mapping[str, Any] | None = None,
        quiet: bool = False,
    ) -> tuple[RunOutcome, dict[str, HostResult]]:
        view = None if self.as_json or quiet else ProgressView(self.err, hosts)
        with view or contextlib.nullcontext():
            outcome = run_playbook(
                self.project,
                playbook,
                self.inventories,
                limit=limit,
                check=check,
                diff=diff,
                extravars=extravars,
                on_event=view,
            )
        if not outcome.stats["processed"]:
            raise SparkfleetError(outcome.fatal_message())
        return outcome, host_results(outcome.events, outcome.stats, hosts)


def open_context(args: argparse.Namespace) -> Context:
    """The run's project, inventories and hosts; the inventory's lock for provision, drift and upgrade."""
    project = find_project(args.playbook_dir)
    inventories = check_inventory_paths(args.inventory) if args.inventory else testbed_inventory(project, sys.stderr)
    if getattr(args, "wait", None) is not None:
        # Held until the process ends: one provision, drift or upgrade per inventory.
        command = f"sparkfleet {args.command}" + (" --fix" if getattr(args, "fix", False) else "")
        lock = FleetLock(lock_path(inventories), command).acquire(args.wait)
        _HELD.append(lock)
        if lock.waited >= 1 and not args.json:
            print(f"Waited {lock.waited:.0f} s for the inventory's lock ({lock.path}).", file=sys.stderr)
    hosts = list_hosts(project, inventories, args.limit)
    return Context(project, inventories, hosts, args.limit, args.json, sys.stderr)


def emit(report: Report, out: TextIO, *, as_json: bool) -> None:
    """The report as JSON, as rich tables on a terminal, or as plain text."""
    if as_json:
        out.write(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
    elif out.isatty():
        from rich.console import Console

        print_blocks(Console(file=out, highlight=False), report.blocks())
    else:
        out.write(report.render_text() + "\n")
    out.flush()


# --- the parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "-i",
        "--inventory",
        action="append",
        metavar="INV",
        help="inventory file or directory (repeatable); default: the local test bed",
    )
    common.add_argument("--limit", metavar="PATTERN", help="only hosts matching this Ansible pattern")
    common.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    common.add_argument(
        "--playbook-dir",
        metavar="DIR",
        help=f"checkout or collection holding playbooks/site.yml (default: ${PLAYBOOK_DIR_ENV}, else this checkout)",
    )
    parser = _Parser(
        prog="sparkfleet",
        description="Provision and keep a fleet of DGX Sparks in shape.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    locked = _Parser(add_help=False)
    locked.add_argument(
        "--wait",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help=f"wait up to SECONDS for another run's lock on this inventory (default 0: exit {EXIT_LOCKED} at once)",
    )

    def command(name: str, help_text: str, *, lock: bool = True) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[common, locked] if lock else [common],
            help=help_text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = command("provision", "run site.yml with a live per-host view")
    p.set_defaults(func=provision.run)

    p = command("drift", "what a check run would change; --fix converges it")
    p.add_argument("--fix", action="store_true", help="converge the drifted hosts and report what was corrected")
    p.add_argument("--history", metavar="FILE", help="JSON-lines file each run appends to")
    p.set_defaults(func=drift.run)

    p = command("status", "image, venv, torch/xformers and Jupyter per host", lock=False)
    p.set_defaults(func=status.run)

    p = command("upgrade", "rolling upgrade to another image")
    p.add_argument("--image", required=True, metavar="REF", help="image reference, by tag or @sha256: digest")
    p.add_argument("--batch-size", default="1", metavar="N|P%", help="hosts per batch, or a share of the fleet")
    p.add_argument(
        "--max-fail-percentage",
        type=float,
        default=0.0,
        metavar="P",
        help="stop the rollout when more than P%% of a batch fails (default 0: any failure)",
    )
    p.set_defaults(func=upgrade.run)
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds between 0 and 86400")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        command: Command = args.func
        try:
            report = command(args, functools.partial(open_context, args))
            emit(report, sys.stdout, as_json=args.json)
            return report.exit_code
        finally:
            while _HELD:
                _HELD.pop().release()
    except Locked as error:
        # The timer's journal line when it skips: not an error, a run for later.
        print(f"sparkfleet: {error}", file=sys.stderr)
        return error.exit_code
    except SparkfleetError as error:
        print(f"sparkfleet: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("sparkfleet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
