"""The commands of `sparkfleet`, one module each; each returns a report that cli.main prints.

A command gets its parsed arguments and a function that opens the run's Context (inventory,
hosts, lock): a command checks its own arguments first, and `drift` records in its history a
run that could not even start (its lock held, say).
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sparkfleet.events import HostResult
from sparkfleet.table import Block, plain_text

if TYPE_CHECKING:
    from sparkfleet.cli import Context

OpenContext = Callable[[], "Context"]


class Report(ABC):
    """What a command found: its exit code, its JSON document and its text for people."""

    @property
    @abstractmethod
    def exit_code(self) -> int: ...

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The document `--json` prints."""

    @abstractmethod
    def blocks(self) -> list[Block]:
        """The text report as tables and lines (table.py prints them plain or with rich)."""

    def render_text(self) -> str:
        """The text report as a pipe or the journal gets it."""
        return plain_text(self.blocks())


Command = Callable[[argparse.Namespace, OpenContext], Report]


def problem_lines(results: Mapping[str, HostResult], missing: Sequence[str] = ()) -> list[str]:
    """`host: error` per error, and a line per host the play stopped before."""
    lines = [f"{r.host}: {error}" for r in results.values() for error in r.errors]
    lines += [f"{host}: not run (the play stopped before it)" for host in missing]
    return lines
