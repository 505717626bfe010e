#!/usr/bin/python
# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's module shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_python
short_description: The Python version and the Python distributions a container image ships
version_added: 0.1.0
description:
  - Reports the C(python3) version of a local image and every Python distribution its system interpreter
    sees (name and version, the copy Python would import when a name is installed twice).
  - The workspace role writes each of them into C([tool.uv] override-dependencies) as never-install, so that
    the venv uses the image's builds (see O(cache_dir)).
  - Asks the image once (C(docker run --rm --network none --user 65534:65534), the image's own C(python3)) and
    keeps the answer in a root-owned file per image ID; later runs read that file and start no container.
  - The answer is container output. Only valid PEP 508 names and versions of a plain shape are kept; others are
    dropped with a warning.
author:
  - sparkfleet maintainers (@sparkfleet)
requirements:
  - The C(docker) CLI on the managed host; the image present (it is never pulled).
attributes:
  check_mode:
    support: full
    description: Asks the image (a read-only container run) when there is no cached answer, and reports the cache
      file it would write.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Once the answer for an image ID is cached, a run reads it and changes nothing.
options:
  image_id:
    description:
      - Full ID of the local image (C(sha256:) and 64 hex digits).
    type: str
    required: true
  cache_dir:
    description:
      - Root-owned directory of the cached answers, one C(<hex>.json) per image ID.
    type: path
    default: /var/lib/sparkfleet/images
  python:
    description:
      - The interpreter inside the image.
    type: str
    default: python3
"""

EXAMPLES = r"""
- name: Ask the image for its Python and its distributions
  sparkfleet.spark.image_python:
    image_id: "{{ ngc_image_id }}"
  register: workspace_image_python
"""

RETURN = r"""
python_version:
  description: MAJOR.MINOR of the image's C(python3).
  returned: success
  type: str
  sample: "3.12"
distributions:
  description: The image's Python distributions, canonical name (PEP 503) to version.
  returned: success
  type: dict
  sample: {numpy: 1.26.4, torch: 2.9.0a0+145a3a7.nv25.10, jupyterlab: 2.3.2}
cache_file:
  description: The file that holds (or, in check mode, would hold) the answer.
  returned: always
  type: str
source:
  description: C(cache) when the answer was read from O(cache_file), C(image) when the image was asked.
  returned: success
  type: str
ignored:
  description: Entries of the image's answer that were dropped (not a valid name or version).
  returned: success
  type: list
  elements: str
"""

import json
import os
import re
import stat
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.spark.plugins.module_utils._names import IMAGE_INFO_DIR
from ansible_collections.sparkfleet.spark.plugins.module_utils._venv_builder import canonical

IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
# PEP 508 names; versions are kept to PEP 440's character set (local labels included).
NAME = re.compile(r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,127}$")
PYTHON = re.compile(r"^3\.[0-9]{1,2}$")
MAX_DISTRIBUTIONS = 5000
CACHE_LIMIT = 4 * 1024 * 1024
CACHE_FORMAT = 1

# Runs as nobody in the image, offline. importlib.metadata walks sys.path in order, so the
# first copy of a name is the one `import` would load.
PROBE = r"""
import importlib.metadata as m, json, sys
seen = []
for dist in m.distributions():
    name = dist.metadata["Name"]
    if name:
        seen.append([name, dist.version])
print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "distributions": seen}))
"""


def parse_answer(data: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """({python_version, distributions}, dropped entries) from the probe's JSON, or (None, [why])."""
    if not isinstance(data, dict):
        return None, ["the answer is not a JSON object"]
    python = data.get("python")
    if not isinstance(python, str) or not PYTHON.fullmatch(python):
        return None, [f"python {str(python)[:40]!r} is not MAJOR.MINOR"]
    entries = data.get("distributions")
    if not isinstance(entries, list) or len(entries) > MAX_DISTRIBUTIONS:
        return None, [f"distributions is not a list of at most {MAX_DISTRIBUTIONS} entries"]
    found: dict[str, str] = {}
    ignored: list[str] = []
    for entry in entries:
        if (
            isinstance(entry, list)
            and len(entry) == 2
            and all(isinstance(part, str) for part in entry)
            and NAME.fullmatch(entry[0])
            and VERSION.fullmatch(entry[1])
        ):
            found.setdefault(canonical(entry[0]), entry[1])
        else:
            ignored.append(repr(entry)[:80])
    return {"python_version": python, "distributions": dict(sorted(found.items()))}, ignored


def read_cache(path: str) -> dict[str, Any] | None:
    """The cached answer, when the file is root's own regular file of the current format."""
    try:
        # O_NONBLOCK: a FIFO in its place must not hang the run; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return None
        chunks, size = [], 0
        while size <= CACHE_LIMIT:
            chunk = os.read(fd, CACHE_LIMIT + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        raw = b"".join(chunks)
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return None
    answer, ignored = parse_answer(data.get("answer"))
    return answer if answer is not None and not ignored else None


def write_cache(path: str, answer: dict[str, Any]) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise OSError(f"{directory} is not a directory only its owner ({os.geteuid()}) can write")
    data = {
        "format": CACHE_FORMAT,
        "answer": {"python": answer["python_version"], "distributions": sorted(answer["distributions"].items())},
    }
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".image-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1)
            handle.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            image_id=dict(type="str", required=True),
            cache_dir=dict(type="path", default=IMAGE_INFO_DIR),
            python=dict(type="str", default="python3"),
        ),
        supports_check_mode=True,
    )
    image_id = module.params["image_id"]
    if not IMAGE_ID.fullmatch(image_id):
        module.fail_json(msg=f"image_id must be sha256: and 64 hex digits, got {image_id[:80]!r}")
    cache_file = os.path.join(module.params["cache_dir"], image_id.split(":", 1)[1] + ".json")
    cached = read_cache(cache_file)
    if cached is not None:
        module.exit_json(changed=False, cache_file=cache_file, source="cache", ignored=[], **cached)
    docker = module.get_bin_path("docker", required=True)
    argv = [docker, "run", "--rm", "--pull=never", "--network", "none", "--user", "65534:65534"]
    argv += ["--env", "PYTHONDONTWRITEBYTECODE=1", "--entrypoint", module.params["python"], image_id, "-c", PROBE]
    rc, out, err = module.run_command(argv)
    lines = out.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if rc == 0 and lines else None
    except ValueError:
        data = None
    answer, ignored = parse_answer(data) if data is not None else (None, [])
    if answer is None:
        why = "; ".join(ignored) or (err.strip().splitlines() or ["no output"])[-1]
        module.fail_json(
            msg=f"the image {image_id} did not report its Python and distributions (exit {rc}): {why[:300]}; "
            "check that it runs python3 (>= 3.8)",
            cache_file=cache_file,
        )
        return
    for entry in ignored:
        module.warn(f"the image reported a distribution that is not a valid name and version, ignored: {entry}")
    if not module.check_mode:
        try:
            write_cache(cache_file, answer)
        except OSError as exc:
            module.fail_json(msg=f"cannot write {cache_file}: {exc}", cache_file=cache_file)
    module.exit_json(changed=True, cache_file=cache_file, source="image", ignored=ignored, **answer)


if __name__ == "__main__":
    main()
