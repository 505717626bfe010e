# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""A project's venv link, stamp and kernelspec, read as root without trusting them.

Shared by the modules venv_info (which returns this reading) and jupyter_service (which runs
the venv the link names). Every path is walked with O_NOFOLLOW (_userspace); only values of
the builder's exact shapes come back, anything else is a sentence under `problems`.
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any

from ansible_collections.sparkfleet.spark.plugins.module_utils import _userspace
from ansible_collections.sparkfleet.spark.plugins.module_utils._venv_builder import STAMP_FILE

# The only argv words `ipykernel install` writes besides the interpreter.
_KERNEL_ARGS = {"-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"}
_KERNEL_KEYS = {"argv", "display_name", "language", "metadata", "interrupt_mode", "kernel_protocol_version"}
KERNEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def venv_link(project_dir: str, venv_name: str) -> tuple[dict[str, Any], list[str]]:
    path = os.path.join(project_dir, venv_name)
    problems: list[str] = []
    info: dict[str, Any] = {"exists": False, "link_ok": False, "id": None, "target": None}
    try:
        st = _userspace.lstat(path)
    except (_userspace.UnsafePath, OSError) as exc:
        return info, [str(exc)]
    if st is None:
        return info, []
    info["exists"] = True
    if not stat.S_ISLNK(st.st_mode):
        return info, [f"{path} is not the link sparkfleet makes"]
    link = _userspace.read_link(path)
    build_id = _userspace.venv_id_of_link(link)
    if build_id is None:
        return info, [f"{path} links somewhere other than .venvs/venv-<time>-<random>"]
    target = os.path.join(project_dir, ".venvs", build_id)
    try:
        target_st = _userspace.lstat(target)
    except (_userspace.UnsafePath, OSError) as exc:
        return info, [str(exc)]
    if target_st is None or not stat.S_ISDIR(target_st.st_mode):
        return info, [f"{path} links to {target}, which is not a directory"]
    info.update(link_ok=True, id=build_id, target=target)
    return info, problems


def kernelspec_ok(spec: dict[str, Any], python: str, display_name: str | None) -> bool:
    """Whether kernel.json is what `ipykernel install --sys-prefix` writes for this venv."""
    argv = spec.get("argv")
    return (
        set(spec) <= _KERNEL_KEYS
        and isinstance(argv, list)
        and len(argv) >= 5
        and argv[0] == python
        and all(isinstance(word, str) for word in argv)
        and set(argv[1:]) <= _KERNEL_ARGS
        and {"-m", "ipykernel_launcher", "-f", "{connection_file}"} <= set(argv[1:])
        and spec.get("language") == "python"
        and (display_name is None or spec.get("display_name") == display_name)
    )


def read_venv(
    project_dir: str,
    venv_name: str = ".venv",
    kernel_name: str | None = None,
    kernel_display_name: str | None = None,
) -> dict[str, Any]:
    """{venv, stamp, stamp_ok, kernelspec, problems}: what root may use of the project's venv.

    The caller has checked that project_dir is absolute and normalized, venv_name a plain
    name and kernel_name (when given) a kernel name (KERNEL_NAME_RE).
    """
    venv, problems = venv_link(project_dir, venv_name)
    stamp: dict[str, Any] = {}
    stamp_ok = False
    if venv["link_ok"]:
        raw, why = _userspace.read_json(os.path.join(venv["target"], STAMP_FILE), _userspace.STAMP_LIMIT)
        if why:
            problems.append(why)
        elif raw is None:
            problems.append(f"the venv {venv['id']} has no stamp")
        else:
            stamp, stamp_problems = _userspace.checked_stamp(raw, venv["id"])
            problems.extend(stamp_problems)
            stamp_ok = not stamp_problems
            stamp = {key: value for key, value in stamp.items() if value is not None}

    kernelspec: dict[str, Any] = {"exists": False, "ok": False}
    if kernel_name is not None and venv["link_ok"]:
        path = os.path.join(venv["target"], "share", "jupyter", "kernels", kernel_name, "kernel.json")
        spec, why = _userspace.read_json(path, _userspace.KERNELSPEC_LIMIT)
        if why:
            kernelspec["exists"] = True
            problems.append(why)
        elif spec is not None:
            kernelspec["exists"] = True
            python = os.path.join(project_dir, venv_name, "bin", "python")
            kernelspec["ok"] = kernelspec_ok(spec, python, kernel_display_name)
            if not kernelspec["ok"]:
                problems.append(f"the kernelspec {kernel_name} is not the one sparkfleet installs")
    return {"venv": venv, "stamp": stamp, "stamp_ok": stamp_ok, "kernelspec": kernelspec, "problems": problems}
