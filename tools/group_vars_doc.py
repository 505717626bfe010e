#!/usr/bin/env python3
"""Render inventory/group_vars/all/sparkfleet.yml from the roles' meta/argument_specs.yml.

Every knob of every role site.yml runs, commented out, with its description and default, so the
file an admin copies cannot drift from the code.

python3 tools/group_vars_doc.py          write the file
python3 tools/group_vars_doc.py --check  exit 1 when it is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "inventory" / "group_vars" / "all" / "sparkfleet.yml"
# In the order site.yml runs them.
ROLES = ["docker", "ngc_image", "nvidia_toolkit", "workspace", "jupyter"]
WIDTH = 96
HEADER = """\
---
# Every knob of sparkfleet, with its default. Uncomment what you change.
# Generated from each role's meta/argument_specs.yml by tools/group_vars_doc.py: edit the specs,
# not this file (tests/unit/test_group_vars_doc.py fails when it is stale).
# Secrets (the NGC API key) belong in an ansible-vault file beside this one, e.g.
#   ansible-vault create inventory/group_vars/all/vault.yml   # vault_ngc_api_key: nvapi-...
# and here: ngc_image_api_key: "{{ vault_ngc_api_key }}"
# The image the fleet runs is ngc_image_reference: change it here, then run
# `sparkfleet upgrade --image <the same reference>` (README, "Upgrade and rollback").
"""


def _plain(text: str) -> str:
    """Ansible doc markup (C(), O(), V(), I(), B(), U()) as plain text."""
    return re.sub(r"\b[COVIBU]\(([^)]*)\)", r"\1", text)


def _comment(text: str) -> list[str]:
    return textwrap.wrap(_plain(" ".join(text.split())), WIDTH - 2, initial_indent="# ", subsequent_indent="# ")


def _value(default: Any) -> str:
    if default is None:
        return ""
    text = yaml.safe_dump(default, default_flow_style=True, width=10**6, allow_unicode=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def render_role(role: str) -> list[str]:
    spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    main = spec["main"]
    lines = ["", f"# ===== {role} ".ljust(WIDTH, "="), *_comment(main.get("short_description", ""))]
    for name, option in main.get("options", {}).items():
        description = option.get("description", "")
        parts = description if isinstance(description, list) else [description]
        lines += [line for part in parts for line in _comment(str(part))]
        if option.get("choices"):
            lines += _comment("One of: " + ", ".join(str(c) for c in option["choices"]) + ".")
        if option.get("required"):
            lines.append(f"# {name}:   # required")
        else:
            default = option.get("default")
            line = f"# {name}: {_value(default)}".rstrip()
            if len(line) > WIDTH and isinstance(default, list):
                lines += [f"# {name}:", *(f"#   - {_value(item)}" for item in default)]
            else:
                lines.append(line)
    return lines


def render() -> str:
    lines = HEADER.rstrip("\n").splitlines()
    for role in ROLES:
        lines += render_role(role)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not TARGET.is_file() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python3 tools/group_vars_doc.py", file=sys.stderr)
            sys.exit(1)
        return
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
