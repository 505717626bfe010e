#!/usr/bin/env python3
"""Resolve the Unsloth stack for a DGX Spark and compare it with the role's pins.

The Spark's venv runs the NGC image's Python (3.12) on Linux aarch64, and never installs
torch, triton or torchvision (the image's builds) nor xformers (built from source in the image).
This asks uv which versions resolve there, from the index uv is configured for:

python3 tools/refresh_pins.py            the newest mutually compatible stack, as a diff to the pins
python3 tools/refresh_pins.py --check    exit 1 unless the current pins resolve together
python3 tools/refresh_pins.py --write    write the newest stack into the role's defaults and
                                         argument spec, then regenerate the docs made from them

The pins live twice, in roles/workspace/defaults/main.yml and in its meta/argument_specs.yml
(the spec's default); both are rewritten together and must stay equal.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = ROOT / "roles" / "workspace" / "defaults" / "main.yml"
SPEC = ROOT / "roles" / "workspace" / "meta" / "argument_specs.yml"
PYTHON = "3.12"
PLATFORM = "aarch64-manylinux_2_28"
# What the image provides (workspace_override_packages) and what the role builds (xformers).
NEVER = ("torch", "triton", "torchvision", "xformers")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)$")


def _block(text: str, indent: str, key: str) -> re.Match[str]:
    match = re.search(rf"^{indent}{key}:\n(?P<items>(?:{indent}  - .*\n)+)", text, re.M)
    if not match:
        raise SystemExit(f"refresh_pins: no `{key}:` list found")
    return match


def current_pins(path: Path = DEFAULTS) -> list[str]:
    """The pins in the role's defaults, in order."""
    return [line.strip()[2:] for line in _block(path.read_text(), "", "workspace_dependencies")["items"].splitlines()]


def spec_pins(path: Path = SPEC) -> list[str]:
    """The same pins as the argument spec's default."""
    text = path.read_text()
    start = text.index("      workspace_dependencies:\n")
    return [line.strip()[2:] for line in _block(text[start:], " " * 8, "default")["items"].splitlines()]


def names(pins: list[str]) -> list[str]:
    found = []
    for pin in pins:
        match = PIN.match(pin)
        if not match:
            raise SystemExit(f"refresh_pins: {pin!r} is not NAME==VERSION")
        found.append(match["name"])
    return found


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve(requirements: list[str], uv: str | None = None) -> dict[str, str]:
    """uv pip compile for the Spark: canonical name -> version, for the whole environment."""
    uv = uv or shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not uv:
        raise SystemExit("refresh_pins: uv not found (pip install uv)")
    with tempfile.NamedTemporaryFile("w", prefix="refresh-pins-", suffix=".txt") as overrides:
        overrides.write("".join(f"{name}; python_version < '0'\n" for name in NEVER))
        overrides.flush()
        proc = subprocess.run(
            [uv, "pip", "compile", "-", "--override", overrides.name, "--python-version", PYTHON,
             "--python-platform", PLATFORM, "--no-header", "--no-annotate", "--quiet"],
            input="\n".join(requirements) + "\n",
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"refresh_pins: the stack does not resolve for Python {PYTHON} on {PLATFORM}:\n{proc.stderr}")
    resolved = {}
    for line in proc.stdout.splitlines():
        match = PIN.match(line.strip())
        if match:
            resolved[_canonical(match["name"])] = match["version"]
    return resolved


def newest(pins: list[str], uv: str | None = None) -> list[str]:
    """The newest versions of the pinned names that resolve together, in the pins' order."""
    resolved = resolve(names(pins), uv)
    return [f"{name}=={resolved[_canonical(name)]}" for name in names(pins)]


def diff(old: list[str], new: list[str]) -> list[str]:
    return [f"{a} -> {b.split('==', 1)[1]}" for a, b in zip(old, new, strict=True) if a != b]


def write(new: list[str], defaults: Path = DEFAULTS, spec: Path = SPEC) -> None:
    text = defaults.read_text()
    match = _block(text, "", "workspace_dependencies")
    defaults.write_text(text[: match.start("items")] + "".join(f"  - {p}\n" for p in new) + text[match.end("items") :])
    text = spec.read_text()
    start = text.index("      workspace_dependencies:\n")
    match = _block(text[start:], " " * 8, "default")
    items = "".join(f"{' ' * 10}- {p}\n" for p in new)
    spec.write_text(text[: start + match.start("items")] + items + text[start + match.end("items") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="the current pins must resolve together")
    mode.add_argument("--write", action="store_true", help="write the newest stack into the role")
    args = parser.parse_args()
    pins = current_pins()
    if pins != spec_pins():
        raise SystemExit(f"refresh_pins: {DEFAULTS.relative_to(ROOT)} and {SPEC.relative_to(ROOT)} pin differently")
    if args.check:
        resolved = resolve(pins)
        print(f"the {len(pins)} pins resolve for Python {PYTHON} on {PLATFORM} ({len(resolved)} packages)")
        return
    new = newest(pins)
    changes = diff(pins, new)
    print("\n".join(changes) if changes else "the pins are the newest stack that resolves")
    if args.write and changes:
        write(new)
        for tool in ("role_readmes.py", "group_vars_doc.py"):
            subprocess.run([sys.executable, str(ROOT / "tools" / tool)], check=True)
        print(f"wrote {DEFAULTS.relative_to(ROOT)} and {SPEC.relative_to(ROOT)}; review, then run make test")


if __name__ == "__main__":
    main()
