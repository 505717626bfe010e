"""`sparkfleet provision`: site.yml over the fleet, then per host its counts and how to reach Jupyter."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from sparkfleet.commands import OpenContext, Report, problem_lines
from sparkfleet.errors import EXIT_FAILED, EXIT_OK
from sparkfleet.events import HostResult, jupyter_access, not_run, problem_hosts
from sparkfleet.table import Block, Table

HOST_HEADERS = ("host", "ok", "changed", "failed", "unreachable", "time")
JUPYTER_HEADERS = ("host", "tunnel (run on your laptop)", "then open")


@dataclass
class ProvisionReport(Report):
    results: dict[str, HostResult]
    # Hosts the play stopped before (not the unreachable ones: they have their own errors).
    missing: list[str] = field(default_factory=list)
    # Per host, the tunnel command and URL the jupyter role printed (events.jupyter_access).
    jupyter: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def converged(self) -> list[str]:
        failed, unreachable = problem_hosts(self.results)
        return [h for h in self.results if h not in failed and h not in unreachable and h not in self.missing]

    @property
    def exit_code(self) -> int:
        failed, unreachable = problem_hosts(self.results)
        return EXIT_FAILED if failed or unreachable or self.missing else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        hosts = [
            {**r.as_dict(), **({"jupyter": self.jupyter[h]} if h in self.jupyter else {})}
            for h, r in self.results.items()
        ]
        return {"command": "provision", "exit_code": self.exit_code, "hosts": hosts}

    def blocks(self) -> list[Block]:
        rows = [(r.host, r.ok, r.changed, r.failed, r.unreachable, f"{r.seconds:.1f}s") for r in self.results.values()]
        blocks: list[Block] = [Table(HOST_HEADERS, rows), *problem_lines(self.results, self.missing)]
        if self.jupyter:
            # How to open each Spark's Jupyter (the token stays on the Spark).
            access = [(h, where.get("tunnel", ""), where.get("url", "")) for h, where in self.jupyter.items()]
            blocks += ["", Table(JUPYTER_HEADERS, access)]
        blocks.append(f"Converged {len(self.converged)} of {len(self.results)} hosts.")
        return blocks


def run(args: argparse.Namespace, open_context: OpenContext) -> ProvisionReport:
    ctx = open_context()
    outcome, results = ctx.run(ctx.project.site_playbook, ctx.hosts, limit=ctx.limit)
    _, unreachable = problem_hosts(results)
    missing = [h for h in not_run(results, outcome.stats) if h not in unreachable]
    return ProvisionReport(results, missing, jupyter_access(outcome.events))
