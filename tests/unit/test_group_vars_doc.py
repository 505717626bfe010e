"""inventory/group_vars/all/sparkfleet.yml is generated from the argument specs and lists every knob."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "group_vars_doc.py"
TARGET = ROOT / "inventory" / "group_vars" / "all" / "sparkfleet.yml"


def test_the_file_is_what_the_specs_render() -> None:
    result = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_every_knob_of_every_site_role_is_listed_with_its_default() -> None:
    text = TARGET.read_text()
    listed = set(re.findall(r"^# ([a-z][a-z0-9_]*):", text, re.M))
    for role in ("docker", "ngc_image", "nvidia_toolkit", "workspace", "jupyter"):
        spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
        options = spec["argument_specs"]["main"]["options"]
        assert options, role
        missing = sorted(set(options) - listed)
        assert missing == [], f"{role}: {missing}"
    assert "# ngc_image_reference: nvcr.io/nvidia/pytorch:25.11-py3\n" in text
    # Everything is commented out: the file changes nothing until the admin uncomments a line.
    assert yaml.safe_load(text) is None


def test_the_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "tools"
    stale.mkdir()
    (stale / "group_vars_doc.py").write_text(TOOL.read_text())
    (tmp_path / "roles").symlink_to(ROOT / "roles")
    (tmp_path / "inventory" / "group_vars" / "all").mkdir(parents=True)
    (tmp_path / "inventory" / "group_vars" / "all" / "sparkfleet.yml").write_text(TARGET.read_text() + "# edited\n")
    result = subprocess.run(
        [sys.executable, str(stale / "group_vars_doc.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1 and "is stale" in result.stderr
