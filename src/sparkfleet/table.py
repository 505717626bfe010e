"""The final reports' text: plain aligned tables and lines.

A report is a list of blocks, each a `Table` or one line (or several) of text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def render(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = _numeric(headers, rows)
    lines = []
    for row in cells:
        parts = [cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(row, widths, numeric, strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _numeric(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[bool]:
    return [all(isinstance(row[i], int | float) for row in rows) and bool(rows) for i in range(len(headers))]


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[object]] = ()

    def plain(self) -> str:
        return render(self.headers, self.rows)


Block = Table | str


def plain_text(blocks: Sequence[Block]) -> str:
    """The report as a pipe gets it: each block on its own line(s)."""
    return "\n".join(block.plain() if isinstance(block, Table) else block for block in blocks)
