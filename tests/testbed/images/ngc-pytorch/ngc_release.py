"""TEST STAND-IN helper: give the image's torch an NGC-style version for one release.

NGC builds carry the release in torch's version (2.9.0a0+145a3a7.nv25.10). The stand-in
appends `.nvYY.MM` to the local part of the CPU wheel's version, in torch/version.py
and in the installed distribution's metadata, and writes /etc/ngc-release.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import sys

SITE = pathlib.Path("/usr/local/lib/python3.11/dist-packages")


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


if __name__ == "__main__":
    main(sys.argv[1])
