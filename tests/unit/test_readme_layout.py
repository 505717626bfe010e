"""The README's layout names every module, module_util, molecule scenario and CLI command."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = ROOT.joinpath("README.md").read_text().split("## Layout", 1)[-1].split("\n## ", 1)[0]


def _names(folder: str, pattern: str, *, keep_suffix: bool = False) -> list[str]:
    found = sorted(p for p in (ROOT / folder).glob(pattern) if not p.name.startswith("__"))
    return [p.name if keep_suffix else p.stem for p in found]


@pytest.mark.parametrize(
    ("folder", "pattern", "keep_suffix"),
    [
        ("plugins/modules", "*.py", False),
        ("plugins/module_utils", "*.py", True),
        ("src/sparkfleet/commands", "*.py", False),
    ],
)
def test_every_file_is_named(folder: str, pattern: str, keep_suffix: bool) -> None:
    names = _names(folder, pattern, keep_suffix=keep_suffix)
    assert names, folder
    assert [n for n in names if n not in LAYOUT] == []


def test_every_scenario_is_named() -> None:
    scenarios = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
    assert len(scenarios) >= 4
    assert [s for s in scenarios if s not in LAYOUT] == []
