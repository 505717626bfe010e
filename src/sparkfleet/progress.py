"""The live per-host view: one line per host, updated as task results arrive.

On a terminal the block of host lines is redrawn in place (carriage return, cursor up).
Otherwise (the journal, a pipe, CI) each host prints one line per role it finished, with that
role's counts, and a line at once when it becomes unreachable: not one line per task.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from sparkfleet.events import RESULT_EVENTS


@dataclass
class _RoleCounts:
    role: str = ""
    ok: int = 0
    changed: int = 0
    failed: int = 0

    def render(self, host: str, width: int) -> str:
        counts = f"{self.ok} ok, {self.changed} changed" + (f", {self.failed} failed" if self.failed else "")
        return f"{host:<{width}}  {self.role or 'play tasks'}: {counts}"


@dataclass
class _HostLine:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: bool = False
    task: str = ""

    def render(self, host: str, width: int) -> str:
        counts = f"{self.ok} ok, {self.changed} changed"
        if self.failed:
            counts += f", {self.failed} failed"
        if self.unreachable:
            counts = "UNREACHABLE"
        return f"{host:<{width}}  [{counts}]  {self.task}".rstrip()


def _tally(counts: _RoleCounts | _HostLine, kind: object, data: Mapping[str, Any]) -> None:
    """Add one task result to ok/changed/failed (an ignored failure is not one)."""
    if kind == "runner_on_ok":
        counts.ok += 1
        counts.changed += 1 if (data.get("res") or {}).get("changed") else 0
    elif kind == "runner_on_failed" and not data.get("ignore_errors"):
        counts.failed += 1


class ProgressView:
    """Feed it runner events; it writes the per-host lines to `stream`."""

    def __init__(self, stream: TextIO, hosts: Iterable[str] = (), *, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.lines: dict[str, _HostLine] = {host: _HostLine() for host in hosts}
        self._drawn = 0
        self._roles: dict[str, _RoleCounts] = {}

    def __call__(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event")
        data = event.get("event_data") or {}
        host = data.get("host")
        if kind == "playbook_on_stats" and not self.tty:
            for name in list(self._roles):
                self._end_role(name)
            return
        if not host:
            return
        line = self.lines.setdefault(str(host), _HostLine())
        task = str(data.get("task") or "")
        role = data.get("role")
        line.task = f"{role} : {task}" if role else task
        if kind not in RESULT_EVENTS and kind != "runner_on_start":
            return
        _tally(line, kind, data)
        if kind == "runner_on_unreachable":
            line.unreachable = True
        if self.tty:
            self._redraw()
        elif kind != "runner_on_start":
            self._count(str(host), str(role or ""), kind, data)

    def _count(self, host: str, role: str, kind: object, data: Mapping[str, Any]) -> None:
        current = self._roles.get(host)
        if current is not None and current.role != role:
            self._end_role(host)
            current = None
        if current is None:
            current = self._roles[host] = _RoleCounts(role)
        _tally(current, kind, data)
        if kind == "runner_on_unreachable":
            task = self.lines[host].task
            self._write(f"{host:<{self._width()}}  UNREACHABLE at {task}")

    def _end_role(self, host: str) -> None:
        counts = self._roles.pop(host, None)
        if counts is not None and (counts.ok or counts.failed):
            self._write(counts.render(host, self._width()))

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _width(self) -> int:
        return max((len(h) for h in self.lines), default=0)

    def _redraw(self) -> None:
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}A")
        width = self._width()
        for host, line in self.lines.items():
            out.append("\r\x1b[2K" + line.render(host, width)[: shutil.get_terminal_size().columns - 1] + "\n")
        self._drawn = len(self.lines)
        self.stream.write("".join(out))
        self.stream.flush()
