"""tools/refresh_pins.py: the role's pins read and written in both places, and resolved for a Spark."""

from __future__ import annotations

import importlib.util
import os
import shutil
import ssl
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("refresh_pins", ROOT / "tools" / "refresh_pins.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pypi_reachable() -> bool:
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    context = ssl.create_default_context(cafile=bundle if os.path.exists(bundle) else None)
    try:
        with urllib.request.urlopen("https://pypi.org/simple/unsloth/", timeout=10, context=context) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_the_defaults_and_the_spec_pin_the_same_stack() -> None:
    tool = _tool()
    pins = tool.current_pins()
    assert pins == tool.spec_pins()
    assert {"unsloth", "unsloth_zoo", "transformers", "trl", "peft", "bitsandbytes"} <= set(tool.names(pins))


def test_write_rewrites_both_lists_and_nothing_else(tmp_path: Path) -> None:
    tool = _tool()
    defaults, spec = tmp_path / "main.yml", tmp_path / "argument_specs.yml"
    shutil.copy(tool.DEFAULTS, defaults)
    shutil.copy(tool.SPEC, spec)
    old = tool.current_pins(defaults)
    new = [f"{name}==99.0" for name in tool.names(old)]
    tool.write(new, defaults, spec)
    assert tool.current_pins(defaults) == new and tool.spec_pins(spec) == new
    for path, original in ((defaults, tool.DEFAULTS), (spec, tool.SPEC)):
        changed = [
            a for a, b in zip(path.read_text().splitlines(), original.read_text().splitlines(), strict=True) if a != b
        ]
        assert len(changed) == len(new) and all("==99.0" in line for line in changed)
    assert tool.diff(old, new)[0] == f"{old[0]} -> 99.0"


def test_a_pin_must_be_name_equals_version() -> None:
    with pytest.raises(SystemExit, match="is not NAME==VERSION"):
        _tool().names(["unsloth>=2026.1"])


@pytest.mark.skipif(not _pypi_reachable(), reason="PyPI is not reachable")
def test_the_default_pins_resolve_for_a_spark() -> None:
    """A pin that stops resolving (yanked, or a new conflict) fails CI here."""
    tool = _tool()
    resolved = tool.resolve(tool.current_pins())
    for pin in tool.current_pins():
        name, version = pin.split("==")
        assert resolved[tool._canonical(name)] == version
    # The image's builds are never part of the venv.
    assert not {"torch", "triton", "torchvision", "xformers"} & set(resolved)
