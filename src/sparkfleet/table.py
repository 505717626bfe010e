"""The final reports' text: plain aligned tables and lines, or rich tables on a terminal.

A report is a list of blocks, each a `Table` or one line (or several) of text. In a pipe or the
journal the blocks are plain text, the same whatever the terminal; on a terminal a table is drawn
by rich when it fits the terminal's width, and as plain text otherwise (a folded tunnel command or
URL could not be pasted).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


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


def print_blocks(console: Console, blocks: Sequence[Block]) -> None:
    """The report on a terminal: tables by rich where they fit, text as it is (no markup)."""
    from rich import box
    from rich.measure import Measurement
    from rich.table import Table as RichTable
    from rich.text import Text

    for block in blocks:
        if isinstance(block, str):
            console.print(Text(block), soft_wrap=True)
            continue
        drawn = RichTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
        for header, numeric in zip(block.headers, _numeric(block.headers, block.rows), strict=True):
            drawn.add_column(header, justify="right" if numeric else "left", no_wrap=True)
        for row in block.rows:
            drawn.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
        # Measured without the terminal's limit: rich would fit the table by cutting cells short.
        if Measurement.get(console, console.options.update_width(sys.maxsize), drawn).maximum > console.width:
            console.print(Text(block.plain()), soft_wrap=True)
        else:
            console.print(drawn)
