"""Drift: what a `--check --diff` run would change, per host, and what `--fix` corrected."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparkfleet.errors import EXIT_DRIFT, EXIT_FAILED, EXIT_OK
from sparkfleet.events import HostResult, TaskChange

# Per-host verdicts.
CLEAN, DRIFT, FIXED, FAILED, UNREACHABLE = "clean", "drift", "fixed", "failed", "unreachable"


@dataclass
class HostDrift:
    host: str
    state: str
    changes: list[TaskChange] = field(default_factory=list)
    corrected: list[TaskChange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": self.state,
            "changes": [c.as_dict() for c in self.changes],
            "corrected": [c.as_dict() for c in self.corrected],
            "errors": self.errors,
        }


def drifted_hosts(check: Mapping[str, HostResult]) -> list[str]:
    """Reachable hosts where the check run found something to change.

    A host that also failed in check mode is included: a task after an unapplied change
    can fail only because of check mode, and the converge gives the real answer.
    """
    return [h for h, r in check.items() if r.changes and not r.unreachable]


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
        if fix is not None and result.changes:
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
    if states & {DRIFT, FIXED}:
        return EXIT_DRIFT
    return EXIT_OK


def render_text(verdicts: Sequence[HostDrift]) -> str:
    """The human report: per host its verdict, then each task with its short diff."""
    width = max((len(v.host) for v in verdicts), default=0)
    lines: list[str] = []
    for v in verdicts:
        head = f"{v.host:<{width}}  {v.state}"
        shown = v.corrected if v.state == FIXED else v.changes
        if v.state == DRIFT:
            head += f" ({len(v.changes)} task{'s' if len(v.changes) != 1 else ''} would change)"
        elif v.state == FIXED:
            head += f" ({len(v.corrected)} task{'s' if len(v.corrected) != 1 else ''} corrected)"
        lines.append(head)
        for change in shown if v.state in (DRIFT, FIXED) else []:
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
    if named(FAILED):
        parts.append(f"failed: {', '.join(named(FAILED))}")
    if named(UNREACHABLE):
        parts.append(f"unreachable: {', '.join(named(UNREACHABLE))}")
    if not parts:
        return f"No drift: {len(verdicts)} host{'s' if len(verdicts) != 1 else ''} clean."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
