"""`sparkfleet drift [--fix]`: a check run of site.yml, the verdict per host, one history line per run.

The verdicts themselves (what counts as drift, a pending rollout, a fix) are sparkfleet.drift's.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sparkfleet.drift
from sparkfleet import history
from sparkfleet.commands import OpenContext, Report
from sparkfleet.drift import HostDrift
from sparkfleet.errors import SparkfleetError, UsageError
from sparkfleet.events import HostResult, not_run
from sparkfleet.table import Block


@dataclass
class DriftReport(Report):
    fix: bool
    verdicts: list[HostDrift]

    @property
    def exit_code(self) -> int:
        return sparkfleet.drift.exit_code(self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "drift",
            "fix": self.fix,
            "exit_code": self.exit_code,
            "hosts": [v.as_dict() for v in self.verdicts],
        }

    def blocks(self) -> list[Block]:
        return [sparkfleet.drift.render_text(self.verdicts), sparkfleet.drift.summary(self.verdicts)]

    def history_hosts(self) -> dict[str, Any]:
        """The history line's `hosts`: per host its verdict and the tasks, without diffs."""
        return {
            v.host: {
                "state": v.state,
                "changes": [{"role": c.role, "task": c.task} for c in v.changes],
                "corrected": [{"role": c.role, "task": c.task} for c in v.corrected],
                "errors": v.errors,
            }
            for v in self.verdicts
        }


def run(args: argparse.Namespace, open_context: OpenContext) -> DriftReport:
    history_path = Path(args.history).expanduser() if args.history else history.default_history_path()
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "drift",
        "fix": bool(args.fix),
        "limit": args.limit,
    }
    started = time.monotonic()
    try:
        ctx = open_context()
        record["inventory"] = ctx.inventories
        check_outcome, check = ctx.run(ctx.project.site_playbook, ctx.hosts, limit=ctx.limit, check=True, diff=True)
        missing = not_run(check, check_outcome.stats)
        fixed: dict[str, HostResult] | None = None
        # A host on another image than the inventory's is a rollout for `upgrade`, never fixed here.
        to_fix = [h for h in sparkfleet.drift.fixable_hosts(check) if h not in missing]
        if args.fix and to_fix:
            if not ctx.as_json:
                print(f"Fixing drift on {', '.join(to_fix)} ...", file=ctx.err)
            _, fixed = ctx.run(ctx.project.site_playbook, to_fix, limit=",".join(to_fix), diff=True)
        elif args.fix:
            fixed = {}
        report = DriftReport(bool(args.fix), sparkfleet.drift.assess(check, missing, fixed))
    except SparkfleetError as error:
        if not isinstance(error, UsageError):
            record.update(exit_code=error.exit_code, error=str(error), seconds=round(time.monotonic() - started, 1))
            history.append(history_path, record)
        raise
    record.update(
        exit_code=report.exit_code,
        seconds=round(time.monotonic() - started, 1),
        hosts=report.history_hosts(),
    )
    history.append(history_path, record)
    return report
