"""Which inventory a command uses, and which hosts it names.

With no -i, a checkout that has the test bed uses the local simulated Spark (the same one
`make provision` uses); anywhere else -i is required.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sparkfleet.errors import SparkfleetError, UsageError
from sparkfleet.runner import Project, ansible_executable

FLEET_GROUP = "sparks"
TESTBED_SPARK = "sparkfleet-spark-1"


def _one_line(text: str) -> str:
    """The most telling line of an Ansible error output, on one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for marker in ("[ERROR]", "ERROR!"):
        hits = [line for line in lines if line.startswith(marker)]
        if hits:
            return " ".join(hits[0].removeprefix(marker).split()).lstrip(": ")
    return lines[-1] if lines else "no output"


def check_inventory_paths(inventories: Sequence[str]) -> list[str]:
    """Each -i must be a file or directory (or an inline host list such as `host1,host2,`)."""
    checked = []
    for inventory in inventories:
        if "," in inventory:
            checked.append(inventory)
            continue
        path = Path(inventory).expanduser()
        if not path.exists():
            raise UsageError(
                f"inventory {inventory} does not exist: give -i the path of an inventory file or directory"
            )
        checked.append(str(path.resolve()))
    return checked


def testbed_inventory(project: Project, stream: Any = sys.stderr) -> list[str]:
    """Bring up the local simulated Spark and return its inventory (only in a checkout)."""
    script = project.testbed_script
    if not script.is_file():
        raise UsageError("no inventory given: pass -i INVENTORY (the local test bed exists only in a checkout)")
    print(f"No -i: using the local simulated Spark {TESTBED_SPARK} (tests/testbed).", file=stream)
    path = ""
    for args in (["up"], ["spark", "up", TESTBED_SPARK], ["inventory", "--ssh", TESTBED_SPARK]):
        proc = subprocess.run(
            [sys.executable, str(script), *args], cwd=project.root, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise SparkfleetError(
                f"test bed `testbed.py {' '.join(args)}` failed: {_one_line(proc.stderr or proc.stdout)}"
                " (or pass -i INVENTORY)"
            )
        path = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if not path or not Path(path).exists():
        raise SparkfleetError(f"test bed printed no inventory path (got {path!r}); pass -i INVENTORY")
    return [path]


def _group_hosts(data: Mapping[str, Any], group: str) -> list[str]:
    """Hosts of a group and its children, in inventory order, without repeats."""
    seen: dict[str, None] = {}
    stack = [group]
    visited: set[str] = set()
    while stack:
        name = stack.pop(0)
        if name in visited:
            continue
        visited.add(name)
        entry = data.get(name) or {}
        for host in entry.get("hosts") or []:
            seen.setdefault(host, None)
        stack.extend(entry.get("children") or [])
    return list(seen)


def list_hosts(
    project: Project, inventories: Sequence[str], limit: str | None = None, group: str = FLEET_GROUP
) -> list[str]:
    """The hosts of `group` (after --limit), read with `ansible-inventory --list`."""
    command = [ansible_executable("ansible-inventory"), "--list"]
    for inventory in inventories:
        command += ["-i", inventory]
    if limit:
        command += ["--limit", limit]
    env = {**os.environ, **project.envvars()}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    where = ", ".join(inventories)
    if proc.returncode != 0:
        raise UsageError(f"inventory {where}: {_one_line(proc.stderr)}")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as error:
        raise UsageError(f"inventory {where}: ansible-inventory printed no JSON ({error})") from None
    hosts = _group_hosts(data, group)
    if not hosts:
        if limit:
            raise UsageError(f"--limit {limit} matches no host of group '{group}' in {where}")
        raise UsageError(f"inventory {where} has no hosts in group '{group}': list your Sparks under `{group}`")
    return hosts
