"""Role READMEs are generated from meta/argument_specs.yml and must not drift from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_role_readmes_match_argument_specs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "role_readmes.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_role_has_argument_specs() -> None:
    roles = [p for p in (ROOT / "roles").iterdir() if p.is_dir()]
    assert roles
    missing = [r.name for r in roles if not (r / "meta" / "argument_specs.yml").is_file()]
    assert missing == []
