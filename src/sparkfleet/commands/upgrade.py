"""`sparkfleet upgrade --image REF`: site.yml batch by batch, one digest per rollout.

The rules (the inventory names the image, batch sizes, when a batch stops the rollout) are
sparkfleet.upgrade's; this module runs the batches and reports.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

import sparkfleet.upgrade
from sparkfleet.commands import OpenContext, Report, problem_lines
from sparkfleet.errors import EXIT_FAILED, EXIT_OK, SparkfleetError, UsageError
from sparkfleet.events import HostResult, not_run
from sparkfleet.table import Block, Table

HEADERS = ("host", "result", "batch", "changed", "time")
# A host's result: UPGRADED, FAILED or UNREACHABLE in its batch, or UNTOUCHED (its batch never ran).
UPGRADED, FAILED, UNREACHABLE, UNTOUCHED = "upgraded", "failed", "unreachable", "untouched"


@dataclass
class UpgradeReport(Report):
    image: str
    # The batches planned, in order.
    plan: list[list[str]]
    # Per host, in inventory order: UPGRADED, FAILED, UNREACHABLE or UNTOUCHED.
    outcomes: dict[str, str]
    # The digest the first batch pulled, which every later batch pulled too.
    digest: str | None = None
    # The batch each host ran in, and its results there.
    batch_of: dict[str, int] = field(default_factory=dict)
    results: dict[str, HostResult] = field(default_factory=dict)
    # The batch that stopped the rollout, and its failed hosts.
    stopped: tuple[int, list[str]] | None = None
    max_fail_percentage: float = 0.0

    def named(self, *outcomes: str) -> list[str]:
        return [h for h, o in self.outcomes.items() if o in outcomes]

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.named(FAILED, UNREACHABLE, UNTOUCHED) else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "upgrade",
            "image": self.image,
            "digest": self.digest,
            "exit_code": self.exit_code,
            "batches": self.plan,
            "stopped_at_batch": self.stopped[0] if self.stopped else None,
            "hosts": [
                {
                    "host": h,
                    "result": o,
                    "batch": self.batch_of.get(h),
                    **({"errors": self.results[h].errors} if h in self.results else {}),
                }
                for h, o in self.outcomes.items()
            ],
        }

    def blocks(self) -> list[Block]:
        results = self.results
        rows: list[tuple[object, ...]] = [
            (
                h,
                o,
                self.batch_of.get(h, "-"),
                results[h].changed if h in results else "-",
                f"{results[h].seconds:.1f}s" if h in results else "-",
            )
            for h, o in self.outcomes.items()
        ]
        problems = {h: results[h] for h in self.named(FAILED, UNREACHABLE) if h in results}
        message = f"Upgraded {len(self.named(UPGRADED))} of {len(self.outcomes)} hosts to {self.image}"
        if self.digest:
            message += f" ({self.digest})"
        if self.stopped:
            message += (
                f"; batch {self.stopped[0]}/{len(self.plan)} failed on {', '.join(self.stopped[1])}: rollout stopped"
                f" (over --max-fail-percentage {self.max_fail_percentage:g})"
            )
        if self.named(UNTOUCHED):
            message += f"; untouched, still on their old image: {', '.join(self.named(UNTOUCHED))}"
        return [Table(HEADERS, rows), *problem_lines(problems), message + "."]


def run(args: argparse.Namespace, open_context: OpenContext) -> UpgradeReport:
    image = args.image.strip()
    if not image or any(c.isspace() for c in image):
        raise UsageError(f"--image {args.image!r}: give an image reference such as nvcr.io/nvidia/pytorch:25.12-py3")
    size, percent = sparkfleet.upgrade.parse_batch_size(args.batch_size)
    if not 0 <= args.max_fail_percentage <= 100:
        raise UsageError("--max-fail-percentage must be between 0 and 100")
    ctx = open_context()
    # The inventory must already name the image (sparkfleet.upgrade): read it without touching a host.
    named_outcome, _ = ctx.run(
        sparkfleet.upgrade.INVENTORY_IMAGE_PLAYBOOK,
        ctx.hosts,
        limit=ctx.limit,
        extravars={"sparkfleet_default_image": sparkfleet.upgrade.DEFAULT_IMAGE},
        quiet=True,
    )
    named = sparkfleet.upgrade.inventory_images(named_outcome.events)
    sparkfleet.upgrade.check_inventory_names(image, named, ctx.inventories, ctx.hosts)
    report = UpgradeReport(
        image,
        sparkfleet.upgrade.batches(ctx.hosts, size, percent),
        dict.fromkeys(ctx.hosts, UNTOUCHED),
        max_fail_percentage=args.max_fail_percentage,
    )
    # One digest per rollout: the tag is resolved by the first batch that pulls, and every later
    # batch pulls that digest (ngc_image_digest), even when the tag moves meanwhile.
    for number, batch in enumerate(report.plan, start=1):
        if not ctx.as_json:
            print(f"Batch {number}/{len(report.plan)}: {', '.join(batch)}", file=ctx.err)
        try:
            outcome, batch_results = ctx.run(
                ctx.project.site_playbook,
                batch,
                limit=",".join(batch),
                extravars={"ngc_image_digest": report.digest} if report.digest else None,
            )
            missing = not_run(batch_results, outcome.stats)
            report.digest = report.digest or sparkfleet.upgrade.rollout_digest(outcome.events, batch)
        except SparkfleetError as error:
            batch_results = {h: HostResult(h, failed=1, errors=[str(error)]) for h in batch}
            missing = []
        report.results.update(batch_results)
        bad = []
        for host in batch:
            report.batch_of[host] = number
            result = batch_results[host]
            if result.unreachable:
                report.outcomes[host] = UNREACHABLE
            elif result.failed or host in missing:
                report.outcomes[host] = FAILED
            else:
                report.outcomes[host] = UPGRADED
                continue
            bad.append(host)
        if sparkfleet.upgrade.batch_stops(len(bad), len(batch), args.max_fail_percentage):
            report.stopped = (number, bad)
            break
    return report
