"""From ansible-runner events and `r.stats` to per-host results, changes and failures.

Only structured data is read: `event`, `event_data.host/task/role/res/start/end` of the
`runner_on_*` events, and the stats of `playbook_on_stats`. Stdout is never parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sparkfleet.diffs import result_diff_lines, shorten

RESULT_EVENTS = {
    "runner_on_ok",
    "runner_on_failed",
    "runner_on_unreachable",
    "runner_on_skipped",
    "runner_on_async_failed",
    "runner_on_async_ok",
}


@dataclass
class TaskChange:
    """A task that changed (or, in check mode, would change) a host."""

    role: str
    task: str
    diff: list[str]

    @property
    def label(self) -> str:
        return f"{self.role} : {self.task}" if self.role else self.task

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "task": self.task, "diff": self.diff}


@dataclass
class HostResult:
    """One host's counts (from r.stats), its changes and problems (from the events)."""

    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    seconds: float = 0.0
    changes: list[TaskChange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": self.state,
            "ok": self.ok,
            "changed": self.changed,
            "failed": self.failed,
            "unreachable": self.unreachable,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 1),
            "changes": [change.as_dict() for change in self.changes],
            "errors": self.errors,
        }


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _message(res: Mapping[str, Any]) -> str:
    msg = res.get("msg") or res.get("stderr") or res.get("reason") or "failed"
    text = " ".join(str(msg).split()).removeprefix("Task failed: ")
    return text if len(text) <= 240 else text[:239] + "…"


def host_results(
    events: Iterable[Mapping[str, Any]],
    stats: Mapping[str, Mapping[str, int]],
    hosts: Iterable[str] = (),
) -> dict[str, HostResult]:
    """Per-host results, in inventory order (then any other host the run reported)."""
    results: dict[str, HostResult] = {}

    def get(host: str) -> HostResult:
        if host not in results:
            results[host] = HostResult(host)
        return results[host]

    for host in hosts:
        get(host)
    spans: dict[str, list[datetime]] = {}
    for event in events:
        kind = event.get("event")
        if kind not in RESULT_EVENTS:
            continue
        data = event.get("event_data") or {}
        name = data.get("host")
        if not name:
            continue
        result = get(str(name))
        res = data.get("res") or {}
        for moment in (_time(data.get("start")), _time(data.get("end")) or _time(event.get("created"))):
            if moment is not None:
                spans.setdefault(result.host, []).append(moment)
        task = str(data.get("task") or "")
        if kind == "runner_on_ok" and res.get("changed"):
            diff = shorten(result_diff_lines(res))
            result.changes.append(TaskChange(role=str(data.get("role") or ""), task=task, diff=diff))
        elif kind == "runner_on_unreachable":
            result.errors.append(f"unreachable: {_message(res)}")
        elif kind in ("runner_on_failed", "runner_on_async_failed") and not data.get("ignore_errors"):
            result.errors.append(f"{task}: {_message(res)}")
    for key, attr in (
        ("ok", "ok"),
        ("changed", "changed"),
        ("failures", "failed"),
        ("dark", "unreachable"),
        ("skipped", "skipped"),
    ):
        for host, count in (stats.get(key) or {}).items():
            setattr(get(str(host)), attr, int(count))
    for host, moments in spans.items():
        results[host].seconds = (max(moments) - min(moments)).total_seconds()
    return results


def problem_hosts(results: Mapping[str, HostResult]) -> tuple[list[str], list[str]]:
    """(failed, unreachable) host names."""
    failed = [h for h, r in results.items() if r.failed and not r.unreachable]
    unreachable = [h for h, r in results.items() if r.unreachable]
    return failed, unreachable


def not_run(results: Mapping[str, HostResult], stats: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Hosts the inventory lists but the run never reached (it stopped before them)."""
    processed = stats.get("processed") or {}
    return [h for h in results if h not in processed]


ACCESS_TASK = "Show how to reach Jupyter"


def jupyter_access(events: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Per host, the tunnel command and URL the jupyter role printed at the end of site.yml."""
    found: dict[str, dict[str, str]] = {}
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") != "runner_on_ok" or data.get("task") != ACCESS_TASK:
            continue
        lines = (data.get("res") or {}).get("msg")
        if not isinstance(lines, list):
            continue
        access = {}
        for line in map(str, lines):
            key, _, value = line.partition(":")
            if key in ("tunnel", "then", "direct") and value.strip():
                access["url" if key == "then" else key] = value.strip()
        if access:
            found[str(data.get("host"))] = access
    return found
