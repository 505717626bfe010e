"""TEST STAND-IN helper: give the image's torch an NGC-style version for one release.

NGC builds carry the release in torch's version (2.9.0a0+145a3a7.nv25.10). The stand-in
appends `.nvYY.MM` to the local part of the CPU wheel's version, in torch/version.py
and in the installed distribution's metadata, and writes /etc/ngc-release.

Then, as NGC images do since 25.03, it writes the pip constraints file
/etc/pip/constraint.txt: NAME==VERSION for every Python distribution installed in the
image's dist-packages, torch with its suffixed version (the image sets PIP_CONSTRAINT to it).
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import re
import shutil
import sys

SITE = pathlib.Path("/usr/local/lib/python3.11/dist-packages")
CONSTRAINTS = pathlib.Path("/etc/pip/constraint.txt")


def write_constraints(site: pathlib.Path = SITE, path: pathlib.Path = CONSTRAINTS) -> list[str]:
    """NAME==VERSION, one a line, for the distributions installed in `site` (sorted by name)."""
    pins: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=[str(site)]):
        name, version = dist.metadata["Name"], dist.version
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in pins:
            sys.exit(f"two distributions named {name} in {site}")
        pins[key] = f"{name}=={version}"
    lines = [pins[key] for key in sorted(pins)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return lines


def main(release: str) -> None:
    if not re.fullmatch(r"\d{2}\.\d{2}", release):
        sys.exit(f"release must look like 25.11, got {release!r}")
    (dist_info,) = SITE.glob("torch-*.dist-info")
    metadata = dist_info / "METADATA"
    text = metadata.read_text()
    found = re.search(r"^Version: (\S+)$", text, re.MULTILINE)
    if found is None:
        sys.exit(f"no Version in {metadata}")
    old = found.group(1)
    new = f"{old}.nv{release}" if "+" in old else f"{old}+nv{release}"
    metadata.write_text(text.replace(f"Version: {old}", f"Version: {new}", 1))
    version_py = SITE / "torch" / "version.py"
    version_py.write_text(version_py.read_text().replace(repr(old), repr(new)))
    # overlayfs cannot rename a directory of a lower layer (EXDEV): copy, then remove.
    shutil.copytree(dist_info, SITE / f"torch-{new}.dist-info")
    shutil.rmtree(dist_info)
    pathlib.Path("/etc/ngc-release").write_text(f"{release}\n")
    print(f"torch {old} -> {new}")
    lines = write_constraints()
    if f"torch=={new}" not in lines:
        sys.exit(f"{CONSTRAINTS} lacks torch=={new}")
    print(f"{CONSTRAINTS}: {len(lines)} distributions")


if __name__ == "__main__":
    main(sys.argv[1])
