"""Bad arguments and inventories: one line on stderr, exit 64, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEMO_PROJECT, demo_inventory

from sparkfleet.cli import main
from sparkfleet.errors import EXIT_USAGE


@pytest.fixture(autouse=True)
def demo_project(monkeypatch):
    monkeypatch.setenv("SPARKFLEET_PLAYBOOK_DIR", str(DEMO_PROJECT))


@pytest.fixture
def inventory(tmp_path: Path) -> str:
    return str(demo_inventory(tmp_path))


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


CASES = [
    (lambda t, inv: ["frobnicate"], "invalid choice: 'frobnicate'"),
    (lambda t, inv: [], "the following arguments are required: COMMAND"),
    (lambda t, inv: ["drift", "--bogus"], "unrecognized arguments: --bogus"),
    (lambda t, inv: ["drift", "-i", str(t / "missing.yml")], "missing.yml does not exist: give -i the path"),
    (lambda t, inv: ["drift", "-i", write(t, "bad.yml", "sparks: [unclosed\n")], "inventory "),
    (
        lambda t, inv: ["drift", "-i", write(t, "empty.yml", "others:\n  hosts:\n    x:\n")],
        "has no hosts in group 'sparks'",
    ),
    (lambda t, inv: ["status", "-i", inv, "--limit", "nosuchhost"], "--limit nosuchhost matches no host"),
    (lambda t, inv: ["upgrade", "-i", inv], "the following arguments are required: --image"),
    (lambda t, inv: ["upgrade", "-i", inv, "--image", " "], "--image ' ': give an image reference"),
    (lambda t, inv: ["upgrade", "-i", inv, "--image", "x:1", "--batch-size", "0"], "--batch-size '0'"),
    (
        lambda t, inv: ["upgrade", "-i", inv, "--image", "x:1", "--max-fail-percentage", "150"],
        "--max-fail-percentage must be between 0 and 100",
    ),
    (lambda t, inv: ["upgrade", "-i", inv, "--image", "x:1", "--max-fail-percentage", "lots"], "invalid float value"),
    (lambda t, inv: ["drift", "-i", inv, "--playbook-dir", str(t)], "no playbooks/site.yml under"),
    # The demo project has no tests/testbed, so no -i is an error there.
    (lambda t, inv: ["drift"], "no inventory given: pass -i INVENTORY"),
]


@pytest.mark.parametrize(("argv", "message"), CASES)
def test_usage_errors_are_one_line(tmp_path, inventory, capsys, argv, message):
    code = main(argv(tmp_path, inventory))
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("sparkfleet: error: ")
    assert message in err


def test_a_broken_inventory_names_the_file(tmp_path, capsys):
    bad = write(tmp_path, "bad.yml", "sparks: [unclosed\n")
    assert main(["status", "-i", bad]) == EXIT_USAGE
    assert f"inventory {bad}: " in capsys.readouterr().err


def test_no_traceback_from_the_installed_command(tmp_path):
    env = {**os.environ, "SPARKFLEET_PLAYBOOK_DIR": str(DEMO_PROJECT)}
    proc = subprocess.run(
        [sys.executable, "-m", "sparkfleet", "drift", "-i", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "2   drift" in out
    assert "64  bad arguments or inventory" in out
