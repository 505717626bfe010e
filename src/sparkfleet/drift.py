"""Drift: what a `--check --diff` run would change, per host, and what `--fix` corrected."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparkfleet.errors import EXIT_DRIFT, EXIT_FAILED, EXIT_OK
from sparkfleet.events import HostResult, TaskChange

# Per-host verdicts. ROLLOUT: the host runs another image than the inventory names, which is an
# unfinished (or not yet started) upgrade, not drift: `--fix` leaves it to `sparkfleet upgrade`,
# so that a stopped rollout is neither undone nor pushed past its failed batch unattended.
CLEAN, DRIFT, FIXED, FAILED, UNREACHABLE, ROLLOUT = "clean", "drift", "fixed", "failed", "unreachable", "rollout"
# The ngc_image role's pull task is named "Pull <ngc_image_reference>".
PULL_TASK = re.compile(r"^Pull (?P<reference>\S+)$")
# A line of the state file's diff: `-` what the host records running, `+` what a converge records.
STATE_LINE = re.compile(r'^(?P<side>[-+])\s*"(?P<key>reference|id)":\s*"(?P<value>[^"]*)"')


@dataclass
class HostDrift:
    host: str
    state: str
    changes: list[TaskChange] = field(default_factory=list)
    corrected: list[TaskChange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # ROLLOUT: the image the host runs (from its state file, when known) and the inventory's.
    image: dict[str, str | None] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": self.state,
            "changes": [c.as_dict() for c in self.changes],
            "corrected": [c.as_dict() for c in self.corrected],
            "errors": self.errors,
            **({"image": self.image} if self.image else {}),
        }


def _state_images(result: HostResult) -> tuple[dict[str, str], dict[str, str]]:
    """(recorded, converged): the image's reference and id in the ngc_image state file's diff."""
    sides: dict[str, dict[str, str]] = {"-": {}, "+": {}}
    for change in result.changes:
        if change.role.endswith("ngc_image") and change.task.startswith("Write the image"):
            for match in map(STATE_LINE.match, change.diff):
                if match:
                    sides[match["side"]][match["key"]] = match["value"]
    return sides["-"], sides["+"]


def image_rollout(result: HostResult) -> dict[str, str | None] | None:
    """{'runs': ..., 'inventory': ...} when the check run would put another image on the host.

    Either the run would pull (the image is not on the host, or its tag moved), or the host's
    state file records another image (reference or ID) than the converge would: an image
    pulled earlier, by a stopped rollout, is on the host but not what it runs. A state file
    that only gains a digest, or did not exist, is ordinary drift.
    """
    wanted = None
    for change in result.changes:
        match = PULL_TASK.match(change.task)
        if change.role.endswith("ngc_image") and match:
            wanted = match["reference"]
    recorded, converged = _state_images(result)
    runs = recorded.get("reference") or None
    if wanted is None and recorded:
        moved = any(recorded.get(k) and converged.get(k) and recorded[k] != converged[k] for k in ("reference", "id"))
        wanted = converged.get("reference") if moved else None
    if wanted is None:
        return None
    return {"runs": runs, "inventory": wanted}


def next_step(image: Mapping[str, str | None]) -> str:
    if image.get("runs") == image["inventory"]:
        return (
            f"the tag of {image['inventory']} names another digest in the registry than the one this host runs:"
            f" roll the new digest out with `sparkfleet upgrade --image {image['inventory']}`"
        )
    runs = image.get("runs") or "another image"
    return (
        f"runs {runs}, the inventory names {image['inventory']}: an image rollout is pending."
        f" Continue it with `sparkfleet upgrade --image {image['inventory']}`; to roll back, set"
        f" ngc_image_reference back{' to ' + runs if image.get('runs') else ''} and run"
        f" `sparkfleet upgrade --image {image.get('runs') or '<that image>'}`"
    )


def drifted_hosts(check: Mapping[str, HostResult]) -> list[str]:
    """Reachable hosts where the check run found something to change.

    A host that also failed in check mode is included: a task after an unapplied change
    can fail only because of check mode, and the converge gives the real answer.
    """
    return [h for h, r in check.items() if r.changes and not r.unreachable]


def fixable_hosts(check: Mapping[str, HostResult]) -> list[str]:
    """Drifted hosts `--fix` converges: not those whose image differs (a rollout for `upgrade`)."""
    return [h for h in drifted_hosts(check) if image_rollout(check[h]) is None]


def assess(
    check: Mapping[str, HostResult],
    not_run: Sequence[str] = (),
    fix: Mapping[str, HostResult] | None = None,
) -> list[HostDrift]:
    """One verdict per host from the check run and, with --fix, the converge of drifted hosts."""
    verdicts = []
    for host, result in check.items():
        if result.unreachable:
            verdicts.append(HostDrift(host, UNREACHABLE, errors=result.errors))
            continue
        if host in not_run:
            verdicts.append(HostDrift(host, FAILED, errors=["not run: the play stopped before this host"]))
            continue
        verdict = HostDrift(host, CLEAN, changes=result.changes, errors=list(result.errors))
        if result.changes:
            verdict.state = DRIFT
        rollout = image_rollout(result)
        if rollout is not None:
            verdict.state, verdict.image = ROLLOUT, rollout
            verdict.errors = [next_step(rollout)]
        elif fix is not None and result.changes:
            fixed = fix.get(host)
            if fixed is None or fixed.unreachable or fixed.failed:
                verdict.state = UNREACHABLE if fixed is not None and fixed.unreachable else FAILED
                verdict.errors = (fixed.errors if fixed is not None else []) or ["the converge did not run on it"]
            else:
                verdict.state = FIXED
                verdict.corrected = fixed.changes
                verdict.errors = []
        elif result.failed:
            verdict.state = FAILED
        verdicts.append(verdict)
    return verdicts


def exit_code(verdicts: Sequence[HostDrift]) -> int:
    """1 when any host failed or was unreachable, else 2 when any drifted (or was fixed), else 0."""
    states = {v.state for v in verdicts}
    if states & {FAILED, UNREACHABLE}:
        return EXIT_FAILED
    if states & {DRIFT, FIXED, ROLLOUT}:
        return EXIT_DRIFT
    return EXIT_OK


def render_text(verdicts: Sequence[HostDrift]) -> str:
    """The human report: per host its verdict, then each task with its short diff."""
    width = max((len(v.host) for v in verdicts), default=0)
    lines: list[str] = []
    for v in verdicts:
        head = f"{v.host:<{width}}  {v.state}"
        shown = v.corrected if v.state == FIXED else v.changes
        if v.state in (DRIFT, ROLLOUT):
            head += f" ({len(v.changes)} task{'s' if len(v.changes) != 1 else ''} would change)"
        elif v.state == FIXED:
            head += f" ({len(v.corrected)} task{'s' if len(v.corrected) != 1 else ''} corrected)"
        lines.append(head)
        for change in shown if v.state in (DRIFT, FIXED, ROLLOUT) else []:
            lines.append(f"    {change.label}")
            lines += [f"      {line}" for line in change.diff] or ["      (no diff)"]
        lines += [f"    ! {error}" for error in v.errors]
    return "\n".join(lines)


def summary(verdicts: Sequence[HostDrift]) -> str:
    def named(state: str) -> list[str]:
        return [v.host for v in verdicts if v.state == state]

    parts = []
    if named(DRIFT):
        parts.append(f"drift on {len(named(DRIFT))} of {len(verdicts)} hosts ({', '.join(named(DRIFT))})")
    if named(FIXED):
        parts.append(f"fixed drift on {len(named(FIXED))} of {len(verdicts)} hosts ({', '.join(named(FIXED))})")
    if named(ROLLOUT):
        wanted = sorted({str((v.image or {}).get("inventory")) for v in verdicts if v.state == ROLLOUT})
        parts.append(
            f"image rollout pending on {', '.join(named(ROLLOUT))} (not fixed by --fix: run"
            f" `sparkfleet upgrade --image {' / '.join(wanted)}` to continue it)"
        )
    if named(FAILED):
        parts.append(f"failed: {', '.join(named(FAILED))}")
    if named(UNREACHABLE):
        parts.append(f"unreachable: {', '.join(named(UNREACHABLE))}")
    if not parts:
        return f"No drift: {len(verdicts)} host{'s' if len(verdicts) != 1 else ''} clean."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
