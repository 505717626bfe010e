"""The `sparkfleet` command: provision, drift, status and upgrade over ansible-runner."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from sparkfleet import __version__, drift, history, status, table, upgrade
from sparkfleet.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, SparkfleetError, UsageError
from sparkfleet.events import HostResult, host_results, jupyter_access, not_run, problem_hosts
from sparkfleet.inventory import check_inventory_paths, list_hosts, testbed_inventory
from sparkfleet.lock import EXIT_LOCKED, LOCK_DIR_ENV, FleetLock, Locked, lock_path
from sparkfleet.progress import ProgressView
from sparkfleet.runner import PLAYBOOK_DIR_ENV, Project, RunOutcome, find_project, run_playbook

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
    out: TextIO
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


def _context(args: argparse.Namespace) -> Context:
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
    return Context(project, inventories, hosts, args.limit, args.json, sys.stdout, sys.stderr)


def _emit_json(ctx: Context, payload: Mapping[str, Any]) -> None:
    ctx.out.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _host_table(results: Mapping[str, HostResult]) -> str:
    rows = [(r.host, r.ok, r.changed, r.failed, r.unreachable, f"{r.seconds:.1f}s") for r in results.values()]
    return table.render(("host", "ok", "changed", "failed", "unreachable", "time"), rows)


def _problems(results: Mapping[str, HostResult], missing: Sequence[str]) -> list[str]:
    lines = [f"{r.host}: {error}" for r in results.values() for error in r.errors]
    lines += [f"{host}: not run (the play stopped before it)" for host in missing]
    return lines


# --- provision ---------------------------------------------------------------------------------


def cmd_provision(args: argparse.Namespace) -> int:
    ctx = _context(args)
    outcome, results = ctx.run(ctx.project.site_playbook, ctx.hosts, limit=ctx.limit)
    failed, unreachable = problem_hosts(results)
    missing = [h for h in not_run(results, outcome.stats) if h not in unreachable]
    code = EXIT_FAILED if failed or unreachable or missing else EXIT_OK
    access = jupyter_access(outcome.events)
    if ctx.as_json:
        hosts = [{**r.as_dict(), **({"jupyter": access[h]} if h in access else {})} for h, r in results.items()]
        _emit_json(ctx, {"command": "provision", "exit_code": code, "hosts": hosts})
        return code
    print(_host_table(results), file=ctx.out)
    for line in _problems(results, missing):
        print(line, file=ctx.out)
    if access:
        # How to open each Spark's Jupyter (the token stays on the Spark).
        width = max(len(h) for h in access)
        for host, where in access.items():
            print(f"{host:<{width}}  {where.get('tunnel', '')}  then {where.get('url', '')}".rstrip(), file=ctx.out)
    converged = [h for h in results if h not in failed and h not in unreachable and h not in missing]
    print(f"Converged {len(converged)} of {len(results)} hosts.", file=ctx.out)
    return code


# --- drift -------------------------------------------------------------------------------------


def cmd_drift(args: argparse.Namespace) -> int:
    history_path = Path(args.history).expanduser() if args.history else history.default_history_path()
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "drift",
        "fix": bool(args.fix),
        "limit": args.limit,
    }
    started = time.monotonic()
    try:
        ctx = _context(args)
        record["inventory"] = ctx.inventories
        check_outcome, check = ctx.run(ctx.project.site_playbook, ctx.hosts, limit=ctx.limit, check=True, diff=True)
        missing = not_run(check, check_outcome.stats)
        fixed: dict[str, HostResult] | None = None
        # A host on another image than the inventory's is a rollout for `upgrade`, never fixed here.
        to_fix = [h for h in drift.fixable_hosts(check) if h not in missing]
        if args.fix and to_fix:
            if not ctx.as_json:
                print(f"Fixing drift on {', '.join(to_fix)} ...", file=ctx.err)
            _, fixed = ctx.run(ctx.project.site_playbook, to_fix, limit=",".join(to_fix), diff=True)
        elif args.fix:
            fixed = {}
        verdicts = drift.assess(check, missing, fixed)
        code = drift.exit_code(verdicts)
    except SparkfleetError as error:
        if not isinstance(error, UsageError):
            record.update(exit_code=error.exit_code, error=str(error), seconds=round(time.monotonic() - started, 1))
            history.append(history_path, record)
        raise
    record.update(
        exit_code=code,
        seconds=round(time.monotonic() - started, 1),
        hosts={
            v.host: {
                "state": v.state,
                "changes": [{"role": c.role, "task": c.task} for c in v.changes],
                "corrected": [{"role": c.role, "task": c.task} for c in v.corrected],
                "errors": v.errors,
            }
            for v in verdicts
        },
    )
    history.append(history_path, record)
    if ctx.as_json:
        _emit_json(
            ctx,
            {"command": "drift", "fix": bool(args.fix), "exit_code": code, "hosts": [v.as_dict() for v in verdicts]},
        )
        return code
    print(drift.render_text(verdicts), file=ctx.out)
    print(drift.summary(verdicts), file=ctx.out)
    return code


# --- status ------------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    ctx = _context(args)
    outcome, results = ctx.run(status.STATUS_PLAYBOOK, ctx.hosts, limit=ctx.limit)
    reported = status.reported(outcome.events)
    rows = [status.host_row(host, reported.get(host)) for host in results]
    failed, unreachable = problem_hosts(results)
    silent = [r["host"] for r in rows if not r["reported"] and r["host"] not in unreachable]
    code = EXIT_FAILED if failed or unreachable or silent else EXIT_OK
    splits = status.digest_splits(rows)
    if ctx.as_json:
        _emit_json(
            ctx,
            {
                "command": "status",
                "exit_code": code,
                "hosts": rows,
                "unreachable": unreachable,
                "failed": failed,
                "digest_splits": splits,
            },
        )
        return code
    headers = ("host", "image", "digest", "venv", "torch", "xformers", "jupyter", "url")
    lines = []
    for row in rows:
        if not row["reported"]:
            state = "unreachable" if row["host"] in unreachable else "no report"
            lines.append((row["host"], state, "", "", "", "", "", ""))
            continue
        lines.append(
            (
                row["host"],
                row["tag"],
                row["digest_short"],
                row["venv"],
                row["torch"],
                row["xformers"],
                row["jupyter"],
                row["jupyter_url"] or "-",
            )
        )
    print(table.render(headers, lines), file=ctx.out)
    for line in _problems({h: results[h] for h in unreachable + failed + silent}, []):
        print(line, file=ctx.out)
    for line in splits:
        print(line, file=ctx.out)
    for row in rows:
        if row.get("shadowed"):
            print(f"{row['host']}: the venv shadows the image's {', '.join(row['shadowed'])}", file=ctx.out)
    for row in rows:
        if row.get("versions_error"):
            print(
                f"{row['host']}: venv check failed: {' '.join(str(row['versions_error']).split())[-200:]}", file=ctx.out
            )
    return code


# --- upgrade -----------------------------------------------------------------------------------


def cmd_upgrade(args: argparse.Namespace) -> int:
    image = args.image.strip()
    if not image or any(c.isspace() for c in image):
        raise UsageError(f"--image {args.image!r}: give an image reference such as nvcr.io/nvidia/pytorch:25.12-py3")
    size, percent = upgrade.parse_batch_size(args.batch_size)
    if not 0 <= args.max_fail_percentage <= 100:
        raise UsageError("--max-fail-percentage must be between 0 and 100")
    ctx = _context(args)
    # The inventory must already name the image (upgrade.py): read it without touching a host.
    named_outcome, _ = ctx.run(
        upgrade.INVENTORY_IMAGE_PLAYBOOK,
        ctx.hosts,
        limit=ctx.limit,
        extravars={"sparkfleet_default_image": upgrade.DEFAULT_IMAGE},
        quiet=True,
    )
    upgrade.check_inventory_names(image, upgrade.inventory_images(named_outcome.events), ctx.inventories, ctx.hosts)
    plan = upgrade.batches(ctx.hosts, size, percent)
    outcome_of: dict[str, str] = dict.fromkeys(ctx.hosts, "untouched")
    batch_of: dict[str, int] = {}
    results: dict[str, HostResult] = {}
    stopped: tuple[int, list[str]] | None = None
    # One digest per rollout: the tag is resolved by the first batch that pulls, and every later
    # batch pulls that digest (ngc_image_digest), even when the tag moves meanwhile.
    digest: str | None = None
    for number, batch in enumerate(plan, start=1):
        if not ctx.as_json:
            print(f"Batch {number}/{len(plan)}: {', '.join(batch)}", file=ctx.err)
        try:
            outcome, batch_results = ctx.run(
                ctx.project.site_playbook,
                batch,
                limit=",".join(batch),
                extravars={"ngc_image_digest": digest} if digest else None,
            )
            missing = not_run(batch_results, outcome.stats)
            digest = digest or upgrade.rollout_digest(outcome.events, batch)
        except SparkfleetError as error:
            batch_results = {h: HostResult(h, failed=1, errors=[str(error)]) for h in batch}
            missing = []
        results.update(batch_results)
        bad = []
        for host in batch:
            batch_of[host] = number
            result = batch_results[host]
            if result.unreachable:
                outcome_of[host] = "unreachable"
            elif result.failed or host in missing:
                outcome_of[host] = "failed"
            else:
                outcome_of[host] = "upgraded"
                continue
            bad.append(host)
        if upgrade.batch_stops(len(bad), len(batch), args.max_fail_percentage):
            stopped = (number, bad)
            break
    upgraded = [h for h, o in outcome_of.items() if o == "upgraded"]
    untouched = [h for h, o in outcome_of.items() if o == "untouched"]
    problems = [h for h, o in outcome_of.items() if o in ("failed", "unreachable")]
    code = EXIT_FAILED if problems or untouched else EXIT_OK
    if ctx.as_json:
        _emit_json(
            ctx,
            {
                "command": "upgrade",
                "image": image,
                "digest": digest,
                "exit_code": code,
                "batches": plan,
                "stopped_at_batch": stopped[0] if stopped else None,
                "hosts": [
                    {
                        "host": h,
                        "result": o,
                        "batch": batch_of.get(h),
                        **({"errors": results[h].errors} if h in results else {}),
                    }
                    for h, o in outcome_of.items()
                ],
            },
        )
        return code
    rows = [
        (
            h,
            o,
            batch_of.get(h, "-"),
            results[h].changed if h in results else "-",
            f"{results[h].seconds:.1f}s" if h in results else "-",
        )
        for h, o in outcome_of.items()
    ]
    print(table.render(("host", "result", "batch", "changed", "time"), rows), file=ctx.out)
    for line in _problems({h: results[h] for h in problems}, []):
        print(line, file=ctx.out)
    message = f"Upgraded {len(upgraded)} of {len(outcome_of)} hosts to {image}" + (f" ({digest})" if digest else "")
    if stopped:
        message += (
            f"; batch {stopped[0]}/{len(plan)} failed on {', '.join(stopped[1])}: rollout stopped"
            f" (over --max-fail-percentage {args.max_fail_percentage:g})"
        )
    if untouched:
        message += f"; untouched, still on their old image: {', '.join(untouched)}"
    print(message + ".", file=ctx.out)
    return code


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
    p.set_defaults(func=cmd_provision)

    p = command("drift", "what a check run would change; --fix converges it")
    p.add_argument("--fix", action="store_true", help="converge the drifted hosts and report what was corrected")
    p.add_argument("--history", metavar="FILE", help="JSON-lines file each run appends to")
    p.set_defaults(func=cmd_drift)

    p = command("status", "image, venv, torch/xformers and Jupyter per host", lock=False)
    p.set_defaults(func=cmd_status)

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
    p.set_defaults(func=cmd_upgrade)
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
        try:
            return int(args.func(args))
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
