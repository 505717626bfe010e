"""Rolling upgrade: batches of hosts, and when a batch's failures stop the rollout."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sparkfleet.errors import UsageError


def parse_batch_size(text: str) -> tuple[int, bool]:
    """`3` hosts, or `25%` of the fleet."""
    value = text.strip()
    percent = value.endswith("%")
    number = value[:-1] if percent else value
    if not number.isdigit() or int(number) < 1 or (percent and int(number) > 100):
        raise UsageError(f"--batch-size {text!r}: give a number of hosts (2) or a percentage of the fleet (25%)")
    return int(number), percent


def batches(hosts: Sequence[str], size: int, percent: bool = False) -> list[list[str]]:
    """Consecutive batches in inventory order; a percentage rounds up to at least one host."""
    count = max(1, math.ceil(len(hosts) * size / 100)) if percent else size
    return [list(hosts[i : i + count]) for i in range(0, len(hosts), count)]


def batch_stops(failed: int, batch_size: int, max_fail_percentage: float) -> bool:
    """True when the batch's failed share exceeds the threshold (0: any failure stops)."""
    return batch_size > 0 and failed * 100 / batch_size > max_fail_percentage
