"""The live per-host view, updated as task results arrive.

On a terminal, a table (host, role, ok, changed, failed, current task) redrawn in place by
rich while the view is open (`with ProgressView(...)`). Otherwise (the journal, a pipe, CI)
each host prints one line per role it finished, with that role's counts, and a line at once
when it becomes unreachable: not one line per task.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from sparkfleet.events import RESULT_EVENTS

if TYPE_CHECKING:
    from rich.live import Live
    from rich.table import Table

# Redraws per second of the terminal's table: enough to follow, little CPU.
REFRESH_PER_SECOND = 4


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
    role: str = ""
    task: str = ""

    @property
    def label(self) -> str:
        return f"{self.role} : {self.task}" if self.role else self.task


def _tally(counts: _RoleCounts | _HostLine, kind: object, data: Mapping[str, Any]) -> None:
    """Add one task result to ok/changed/failed (an ignored failure is not one)."""
    if kind == "runner_on_ok":
        counts.ok += 1
        counts.changed += 1 if (data.get("res") or {}).get("changed") else 0
    elif kind == "runner_on_failed" and not data.get("ignore_errors"):
        counts.failed += 1


class ProgressView:
    """Feed it runner events; it shows the per-host progress on `stream`.

    Open it (`with`) around the run: on a terminal that starts and stops the live table.
    """

    def __init__(self, stream: TextIO, hosts: Iterable[str] = (), *, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.lines: dict[str, _HostLine] = {host: _HostLine() for host in hosts}
        self._roles: dict[str, _RoleCounts] = {}
        # The live table is drawn from another thread (rich's refresh) while events arrive.
        self._state = threading.Lock()
        self._live: Live | None = None

    def __enter__(self) -> ProgressView:
        if self.tty:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, force_terminal=True)
            self._live = Live(
                console=console,
                get_renderable=self.table,
                refresh_per_second=REFRESH_PER_SECOND,
                # Our stdout is the report (or JSON): never drawn into the table's stream.
                redirect_stdout=False,
            )
            self._live.start(refresh=True)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._live is not None:
            # The last state stays on the screen, above the report.
            self._live.stop()
            self._live = None

    def __call__(self, event: Mapping[str, Any]) -> None:
        with self._state:
            self._take(event)

    def _take(self, event: Mapping[str, Any]) -> None:
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
        role = data.get("role")
        line.role, line.task = str(role or ""), str(data.get("task") or "")
        if kind not in RESULT_EVENTS and kind != "runner_on_start":
            return
        _tally(line, kind, data)
        if kind == "runner_on_unreachable":
            line.unreachable = True
        if not self.tty and kind != "runner_on_start":
            self._count(str(host), str(role or ""), kind, data)

    def table(self) -> Table:
        """The terminal's table: per host its counts and the task it runs (or where it was lost)."""
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("host", no_wrap=True)
        table.add_column("role", no_wrap=True)
        for name in ("ok", "changed", "failed"):
            table.add_column(name, justify="right", no_wrap=True)
        table.add_column("current task", no_wrap=True, overflow="ellipsis")
        with self._state:
            for host, line in self.lines.items():
                task = Text(f"UNREACHABLE at {line.task}", style="red") if line.unreachable else Text(line.task)
                table.add_row(
                    Text(host, style="red" if line.unreachable or line.failed else ""),
                    # A role's short name: sparkfleet.spark.docker is docker.
                    Text(line.role.rsplit(".", 1)[-1]),
                    str(line.ok),
                    str(line.changed),
                    Text(str(line.failed), style="red" if line.failed else ""),
                    task,
                )
        return table

    def _count(self, host: str, role: str, kind: object, data: Mapping[str, Any]) -> None:
        current = self._roles.get(host)
        if current is not None and current.role != role:
            self._end_role(host)
            current = None
        if current is None:
            current = self._roles[host] = _RoleCounts(role)
        _tally(current, kind, data)
        if kind == "runner_on_unreachable":
            task = self.lines[host].label
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
