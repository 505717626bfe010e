"""Short diffs from a task result's `diff` (what `--diff` shows), for the drift report."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

MAX_LINES = 6
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _lines(value: Any) -> list[str]:
    """Text as its lines; a mapping (file state, a stamp) as `key: value` lines."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [
            f"{key}: {json.dumps(value[key], sort_keys=True) if not isinstance(value[key], str) else value[key]}"
            for key in sorted(value)
        ]
    if isinstance(value, list):
        return [str(item) for item in value]
    return str(value).splitlines()


def _one(diff: Mapping[str, Any]) -> list[str]:
    if "prepared" in diff:
        prepared = _ANSI.sub("", str(diff["prepared"]))
        return [line for line in prepared.splitlines() if line.strip()]
    if "before" not in diff and "after" not in diff:
        return []
    changed = difflib.unified_diff(_lines(diff.get("before")), _lines(diff.get("after")), n=0, lineterm="")
    return [line for line in changed if not line.startswith(("---", "+++", "@@"))]


def diff_lines(diff: Any) -> list[str]:
    """Every changed line of a result's diff: a mapping, a list of them, or `prepared` text."""
    if isinstance(diff, list):
        return [line for part in diff for line in diff_lines(part)]
    if isinstance(diff, Mapping):
        return _one(diff)
    return []


def result_diff_lines(res: Mapping[str, Any]) -> list[str]:
    """A task result's changed lines, including those of each changed loop item."""
    lines = diff_lines(res.get("diff"))
    for item in res.get("results") or []:
        if isinstance(item, Mapping) and item.get("changed"):
            lines += diff_lines(item.get("diff"))
    return lines


def shorten(lines: list[str], max_lines: int = MAX_LINES) -> list[str]:
    """The first lines, and how many more there were."""
    if len(lines) <= max_lines:
        return lines
    return [*lines[:max_lines], f"… {len(lines) - max_lines} more lines"]
