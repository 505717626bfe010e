"""Shared helpers for the CLI tests and the event recorder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEMO_PROJECT = FIXTURES / "project"


def demo_inventory(
    demo_dir: Path, *, unreachable: bool = False, fail_on: tuple[str, ...] = (), status: bool = False
) -> Path:
    """Hosts a and b on a local connection (plus c, unreachable, on request) in group `sparks`."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts: dict[str, dict[str, object]] = {name: {**local, "demo_fail": name in fail_on} for name in ("a", "b")}
    if status:
        for name in ("a", "b"):
            hosts[name]["ngc_image_state_file"] = str(demo_dir / f"{name}.state.json")
            hosts[name]["workspace_project_dir"] = str(demo_dir / f"{name}.project")
            hosts[name]["workspace_user"] = "root"
    if unreachable:
        hosts["c"] = {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": 1,
            "ansible_ssh_common_args": "-o ConnectTimeout=2 -o StrictHostKeyChecking=no",
        }
    inventory = {"sparks": {"hosts": hosts, "vars": {"demo_dir": str(demo_dir), "demo_port": 8080}}}
    path = demo_dir / "inventory.json"
    path.write_text(json.dumps(inventory, indent=1))
    return path


def recorded(name: str) -> dict[str, Any]:
    """A recorded run (fixtures/events/<name>.json): status, rc, stats and events."""
    data: dict[str, Any] = json.loads((FIXTURES / "events" / f"{name}.json").read_text())
    return data
