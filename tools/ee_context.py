#!/usr/bin/env python3
"""Assemble the execution environment's build directory, so that building it needs no Galaxy.

python3 tools/ee_context.py [--output DIR]     (default: build/ee)

DIR gets execution-environment.yml, ee/, and the two collection tarballs that ee/requirements.yml
installs as files:
- sparkfleet-spark-<version>.tar.gz, built from this checkout (ansible-galaxy collection build);
- community-docker-<version>.tar.gz, packed from the community.docker that this control node's
  pinned `ansible` package (pyproject's `test` extra, from PyPI) installed: the very copy CI
  runs the roles with. Its version must be the one ee/requirements.yml pins.

Then, from DIR: ansible-builder build --tag sparkfleet-ee:<version> (see README, "Outgrowing one
control node").
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TARBALL = re.compile(r"^(?:.*/)?(?P<ns>[a-z0-9_]+)-(?P<name>[a-z0-9_]+)-(?P<version>[0-9][^/]*)\.tar\.gz$")


def file_requirements() -> dict[str, tuple[str, str]]:
    """ee/requirements.yml's file entries: collection name -> (tarball file name, version)."""
    entries = yaml.safe_load((ROOT / "ee" / "requirements.yml").read_text())["collections"]
    found = {}
    for entry in entries:
        match = TARBALL.match(str(entry.get("name", ""))) if entry.get("type") == "file" else None
        if match:
            found[f"{match['ns']}.{match['name']}"] = (Path(entry["name"]).name, match["version"])
    return found


def installed_collection(fqcn: str) -> Path:
    """Where the control node's ansible-galaxy finds FQCN, outside this checkout's .collections."""
    ansible_galaxy = shutil.which("ansible-galaxy", path=str(Path(sys.executable).parent)) or "ansible-galaxy"
    listing = subprocess.run(
        [ansible_galaxy, "collection", "list", fqcn, "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    data = json.loads(listing.stdout or "{}")
    for root, collections in data.items():
        if fqcn in collections and ".collections" not in Path(root).parts:
            return Path(root) / fqcn.replace(".", "/")
    sys.exit(f"ee_context: {fqcn} is not installed on this control node (pip install -e '.[test]' installs it)")


def pack(source: Path, version: str, target: Path, listed: set[str]) -> None:
    """A collection artifact from an installed collection: its files with MANIFEST.json and FILES.json at the root."""
    manifest = json.loads((source / "MANIFEST.json").read_text())
    unlisted = sorted(set(manifest["collection_info"].get("dependencies") or {}) - listed)
    if unlisted:
        sys.exit(f"ee_context: {target.name} depends on {unlisted}: add their tarballs to ee/requirements.yml")
    found = manifest["collection_info"]["version"]
    if found != version:
        sys.exit(
            f"ee_context: ee/requirements.yml pins {target.name} at {version}, but this control node has {found} "
            f"in {source}: align the `ansible` pin in pyproject.toml or the tarball name in ee/requirements.yml"
        )
    # The `ansible` package leaves out CI files (.azure-pipelines, ...) that FILES.json still
    # lists, and ansible-galaxy refuses an artifact missing a listed file. The artifact lists
    # what is there, each file checked against the collection's own checksum first.
    files = json.loads((source / "FILES.json").read_text())
    kept = []
    for entry in files["files"]:
        path = source / entry["name"]
        if entry["ftype"] == "dir" and path.is_dir():
            kept.append(entry)
        elif entry["ftype"] == "file" and path.is_file():
            if hashlib.sha256(path.read_bytes()).hexdigest() != entry["chksum_sha256"]:
                sys.exit(f"ee_context: {path} differs from its collection's FILES.json: reinstall `ansible`")
            kept.append(entry)
    files_json = json.dumps({**files, "files": kept}, indent=4).encode()
    manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(files_json).hexdigest()
    with tarfile.open(target, "w:gz") as tar:
        for name, data in (("MANIFEST.json", json.dumps(manifest, indent=4).encode()), ("FILES.json", files_json)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for entry in kept:
            if entry["name"] != ".":
                tar.add(source / entry["name"], arcname=entry["name"], recursive=False)


def build_own(output: Path, tarball: str) -> None:
    ansible_galaxy = shutil.which("ansible-galaxy", path=str(Path(sys.executable).parent)) or "ansible-galaxy"
    built = subprocess.run(
        [ansible_galaxy, "collection", "build", "--force", "--output-path", str(output), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0 or not (output / tarball).is_file():
        sys.exit(f"ee_context: ansible-galaxy collection build did not make {tarball}:\n{built.stdout}{built.stderr}")


def assemble(output: Path) -> list[Path]:
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    shutil.copy2(ROOT / "execution-environment.yml", output)
    shutil.copytree(ROOT / "ee", output / "ee")
    made = []
    wanted = file_requirements()
    for fqcn, (tarball, version) in sorted(wanted.items()):
        if fqcn == "sparkfleet.spark":
            build_own(output, tarball)
        else:
            pack(installed_collection(fqcn), version, output / tarball, set(wanted))
        made.append(output / tarball)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "ee")
    args = parser.parse_args()
    for tarball in assemble(args.output.resolve()):
        print(f"{tarball} ({tarball.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
