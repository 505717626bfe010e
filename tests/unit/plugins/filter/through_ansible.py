"""Run an Ansible command line against this checkout's collection, as a filter test needs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]


def ansible_bin(name: str) -> str | None:
    """The venv's own Ansible command, else the one on PATH, else None."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else shutil.which(name)


def run_ansible(argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """argv run in tmp_path with the checkout's collections and no ansible.cfg of the caller's."""
    environ = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        **env,
    }
    environ.pop("ANSIBLE_CONFIG", None)
    return subprocess.run(argv, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300, check=False)


def run_playbook(tmp_path: Path, playbook: str, inventory: dict) -> dict:
    """playbook (YAML text) run with ansible-playbook on inventory (a JSON inventory); its json callback report."""
    binary = ansible_bin("ansible-playbook")
    assert binary is not None, "ansible-playbook is not installed"
    (tmp_path / "play.yml").write_text(playbook)
    (tmp_path / "hosts.json").write_text(json.dumps(inventory))
    result = run_ansible(
        [binary, "-i", "hosts.json", "play.yml"],
        tmp_path,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(json.loads(result.stdout))
