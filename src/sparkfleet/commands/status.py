"""`sparkfleet status`: per host its image, venv, torch/xformers and Jupyter (read by playbooks/status.yml).

The rows are sparkfleet.status's; this module runs the playbook and reports.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import sparkfleet.status
from sparkfleet.commands import OpenContext, Report, problem_lines
from sparkfleet.errors import EXIT_FAILED, EXIT_OK
from sparkfleet.events import HostResult, problem_hosts
from sparkfleet.table import Block, Table

HEADERS = ("host", "image", "digest", "venv", "torch", "xformers", "jupyter", "url")


@dataclass
class StatusReport(Report):
    # sparkfleet.status.host_row per host, in inventory order.
    rows: list[dict[str, Any]]
    # The status run's results, for the failed and unreachable hosts and their errors.
    results: dict[str, HostResult]

    @property
    def silent(self) -> list[str]:
        """Reachable hosts that reported nothing."""
        _, unreachable = problem_hosts(self.results)
        return [r["host"] for r in self.rows if not r["reported"] and r["host"] not in unreachable]

    @property
    def exit_code(self) -> int:
        failed, unreachable = problem_hosts(self.results)
        return EXIT_FAILED if failed or unreachable or self.silent else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        failed, unreachable = problem_hosts(self.results)
        return {
            "command": "status",
            "exit_code": self.exit_code,
            "hosts": self.rows,
            "unreachable": unreachable,
            "failed": failed,
            "digest_splits": sparkfleet.status.digest_splits(self.rows),
        }

    def blocks(self) -> list[Block]:
        failed, unreachable = problem_hosts(self.results)
        lines: list[tuple[object, ...]] = []
        for row in self.rows:
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
        blocks: list[Block] = [Table(HEADERS, lines)]
        blocks += problem_lines({h: self.results[h] for h in unreachable + failed + self.silent if h in self.results})
        blocks += sparkfleet.status.digest_splits(self.rows)
        blocks += [
            f"{row['host']}: the venv shadows the image's {', '.join(row['shadowed'])}"
            for row in self.rows
            if row.get("shadowed")
        ]
        blocks += [
            f"{row['host']}: venv check failed: {' '.join(str(row['versions_error']).split())[-200:]}"
            for row in self.rows
            if row.get("versions_error")
        ]
        return blocks


def run(args: argparse.Namespace, open_context: OpenContext) -> StatusReport:
    ctx = open_context()
    outcome, results = ctx.run(sparkfleet.status.STATUS_PLAYBOOK, ctx.hosts, limit=ctx.limit)
    reported = sparkfleet.status.reported(outcome.events)
    return StatusReport([sparkfleet.status.host_row(host, reported.get(host)) for host in results], results)
