"""Make the CLI tests' helpers importable (tests/unit has no packages)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def private_lock_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's inventory locks live in its own directory, never the machine's /run/lock."""
    directory = tmp_path_factory.mktemp("locks")
    monkeypatch.setenv("SPARKFLEET_LOCK_DIR", str(directory))
    return directory
