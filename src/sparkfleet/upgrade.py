"""Rolling upgrade: batches of hosts, and when a batch's failures stop the rollout.

The inventory is the one record of the image a fleet runs: `upgrade --image X` rolls out
only what the inventory already names (ngc_image_reference), and refuses otherwise, naming
the lines to change. So drift correction, which converges the inventory, keeps an upgrade,
and a rollback is the same two steps with the previous image.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sparkfleet.errors import UsageError

INVENTORY_IMAGE_PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "inventory_image.yml"
# roles/ngc_image/defaults/main.yml's ngc_image_reference (a unit test keeps them equal).
DEFAULT_IMAGE = "nvcr.io/nvidia/pytorch:25.11-py3"
IMAGE_LINE = re.compile(r"^\s*ngc_image_reference\s*:")
VARS_SUFFIXES = ("", ".yml", ".yaml", ".json")
DIGEST = re.compile(r"(?<=@)sha256:[a-f0-9]{64}$")


def stats_map(events: Iterable[Mapping[str, Any]], key: str) -> dict[str, str]:
    """A host -> value mapping the play published with set_stats (aggregated, not per host)."""
    for event in events:
        if event.get("event") == "playbook_on_stats":
            data = ((event.get("event_data") or {}).get("artifact_data") or {}).get(key)
            return {str(h): str(r) for h, r in data.items()} if isinstance(data, Mapping) else {}
    return {}


def inventory_images(events: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """sparkfleet_image (host -> reference), published by playbooks/inventory_image.yml."""
    return stats_map(events, "sparkfleet_image")


def rollout_digest(events: Iterable[Mapping[str, Any]], batch: Sequence[str]) -> str | None:
    """The digest a batch pulled (ngc_image's sparkfleet_image_digest), for the batches after it.

    The role pins one digest per run, so the batch's hosts agree; the first host in batch
    order that reported `REPOSITORY@sha256:...` decides. None when no host reported one.
    """
    reported = stats_map(events, "sparkfleet_image_digest")
    for host in batch:
        match = DIGEST.search(reported.get(host, ""))
        if match:
            return match.group(0)
    return None


def _vars_files(inventory: Path) -> list[Path]:
    """The inventory itself and the group_vars/host_vars files beside it."""
    base = inventory if inventory.is_dir() else inventory.parent
    files = [p for p in inventory.rglob("*") if p.is_file()] if inventory.is_dir() else [inventory]
    for kind in ("group_vars", "host_vars"):
        folder = base / kind
        if folder.is_dir():
            files += [p for p in folder.rglob("*") if p.is_file() and p.suffix in VARS_SUFFIXES]
    return sorted(set(files))


def image_lines(inventories: Sequence[str]) -> list[str]:
    """`path:line` of every ngc_image_reference setting in the inventories and their vars files."""
    found = []
    for inventory in inventories:
        if "," in inventory:
            continue
        for path in _vars_files(Path(inventory)):
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            found += [f"{path}:{number}" for number, line in enumerate(lines, 1) if IMAGE_LINE.match(line)]
    return found


def check_inventory_names(
    image: str, named: Mapping[str, str], inventories: Sequence[str], order: Sequence[str] = ()
) -> None:
    """Refuse an upgrade to an image the inventory does not name, saying which line to change."""
    rank = {host: index for index, host in enumerate(order)}
    others: dict[str, list[str]] = {}
    for host in sorted(named, key=lambda h: (rank.get(h, len(rank)), h)):
        if named[host] != image:
            others.setdefault(named[host], []).append(host)
    if not others:
        return
    now = "; ".join(f"{ref} for {', '.join(hosts)}" for ref, hosts in sorted(others.items()))
    lines = image_lines(inventories)
    where = (
        f"in {', '.join(lines)}, where it is set now"
        if lines
        else "in your inventory's group_vars (for example group_vars/all/sparkfleet.yml)"
    )
    raise UsageError(
        f"--image {image}: the inventory names {now}. The inventory is the record of the fleet's image"
        f" (drift correction converges to it): set `ngc_image_reference: {image}` {where}, then run"
        f" `sparkfleet upgrade --image {image}` again"
    )


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
