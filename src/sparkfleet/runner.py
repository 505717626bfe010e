"""The one place that builds the ansible-runner call.

Every command runs a playbook through `run_playbook`: a private data dir that is removed
afterwards (the artifacts would hold the environment), JSON events handed to the caller as
they arrive, per-host results from `r.stats` and the `runner_on_*` events.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparkfleet.errors import UsageError

Event = dict[str, Any]
EventCallback = Callable[[Event], None]

PLAYBOOK_DIR_ENV = "SPARKFLEET_PLAYBOOK_DIR"
STATS_KEYS = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored", "processed")


@dataclass(frozen=True)
class Project:
    """Where the playbooks live: a checkout (or an installed collection) holding playbooks/site.yml."""

    root: Path

    @property
    def site_playbook(self) -> Path:
        return self.root / "playbooks" / "site.yml"

    @property
    def testbed_script(self) -> Path:
        return self.root / "tests" / "testbed" / "testbed.py"

    def envvars(self) -> dict[str, str]:
        """The environment every Ansible process of ours gets, on top of the caller's."""
        env = {
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            # An inventory that does not parse is an error, not a warning and zero hosts.
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
            # ansible-runner starts ansible-playbook through PATH: this interpreter's bin comes first, so
            # `/opt/venv/bin/sparkfleet` (a systemd unit, cron) works without an activated venv.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]),
        }
        config = self.root / "ansible.cfg"
        if config.is_file():
            env["ANSIBLE_CONFIG"] = str(config)
        collections = self.root / ".collections"
        if collections.is_dir():
            env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
        return env


def find_project(explicit: str | None = None) -> Project:
    """--playbook-dir, else $SPARKFLEET_PLAYBOOK_DIR, else the checkout this package sits in."""
    if explicit:
        source, root = "--playbook-dir", Path(explicit)
    elif os.environ.get(PLAYBOOK_DIR_ENV):
        source, root = PLAYBOOK_DIR_ENV, Path(os.environ[PLAYBOOK_DIR_ENV])
    else:
        # src/sparkfleet/runner.py -> the checkout root.
        source, root = "the checkout", Path(__file__).resolve().parents[2]
    project = Project(root.expanduser().resolve())
    if not project.site_playbook.is_file():
        raise UsageError(
            f"no playbooks/site.yml under {project.root} (from {source}): set --playbook-dir or "
            f"{PLAYBOOK_DIR_ENV} to a sparkfleet checkout or the installed collection sparkfleet.spark"
        )
    return project


@dataclass
class RunOutcome:
    """What a finished playbook run left: its status, rc, the final stats and every event."""

    status: str
    rc: int
    stats: dict[str, dict[str, int]]
    events: list[Event] = field(default_factory=list)

    def fatal_message(self) -> str:
        """The error Ansible printed when it stopped before any host ran (a syntax error, say)."""
        for event in reversed(self.events):
            for line in reversed(str(event.get("stdout", "")).splitlines()):
                text = line.strip()
                if text.startswith(("ERROR!", "[ERROR]")):
                    return text
        return f"ansible-playbook ended with status {self.status} (rc {self.rc})"


def ansible_executable(name: str) -> str:
    """An Ansible command from this interpreter's environment, else from PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise UsageError(f"{name} not found: install ansible-core in this Python environment")
    return found


def build_cmdline(*, check: bool = False, diff: bool = False, extravars: Mapping[str, Any] | None = None) -> str | None:
    args: list[str] = []
    if check:
        args.append("--check")
    if diff:
        args.append("--diff")
    if extravars:
        # JSON keeps any value (an image reference with '@', spaces) intact through -e.
        args += ["-e", json.dumps(dict(extravars), sort_keys=True)]
    return shlex.join(args) if args else None


def run_playbook(
    project: Project,
    playbook: Path,
    inventory: Sequence[str],
    *,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    extravars: Mapping[str, Any] | None = None,
    on_event: EventCallback | None = None,
    settings: Mapping[str, Any] | None = None,
) -> RunOutcome:
    """Run one playbook through ansible-runner and return its outcome."""
    import ansible_runner

    events: list[Event] = []

    def handle(event: Event) -> bool:
        events.append(event)
        if on_event is not None:
            on_event(event)
        # Returning anything but True drops the event, and r.stats with it.
        return True

    kwargs: dict[str, Any] = {
        "playbook": str(playbook.resolve()),
        "inventory": list(inventory),
        "json_mode": True,
        "quiet": True,
        "envvars": project.envvars(),
        "suppress_env_files": True,
        "event_handler": handle,
    }
    if limit:
        kwargs["limit"] = limit
    cmdline = build_cmdline(check=check, diff=diff, extravars=extravars)
    if cmdline:
        kwargs["cmdline"] = cmdline
    if settings:
        kwargs["settings"] = dict(settings)

    with tempfile.TemporaryDirectory(prefix="sparkfleet-runner-") as private_data_dir:
        result = ansible_runner.run(private_data_dir=private_data_dir, **kwargs)
        raw_stats = result.stats or {}
        status, rc = str(result.status), int(result.rc if result.rc is not None else 1)
    stats = {key: dict(raw_stats.get(key) or {}) for key in STATS_KEYS}
    return RunOutcome(status=status, rc=rc, stats=stats, events=events)
