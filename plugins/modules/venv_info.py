#!/usr/bin/python
# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's module shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: venv_info
short_description: Read a project's venv link, stamp and kernelspec as root, without trusting them
version_added: 0.1.0
description:
  - The project, its C(.venv) link, the venv's C(sparkfleet-stamp.json) and its Jupyter kernelspec belong to the project
    user, who can write anything there. This module reads them for root without following any symbolic link (every
    path is walked with C(O_NOFOLLOW)), reads at most a few KiB, and returns only values that match the exact shapes
    the builder writes. Anything else is reported under RV(problems) as drift to repair, never returned as a value.
  - The venv's ID comes from the C(.venv) link itself (C(.venvs/venv-<time>-<random>)), read with C(readlink), not from
    the stamp; a stamp that names another build is reported as altered.
  - Never changes anything.
author:
  - sparkfleet maintainers (@sparkfleet)
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Never changes anything.
options:
  project_dir:
    description: The project directory (absolute, normalized).
    type: path
    required: true
  venv_name:
    description: Name of the venv link in the project.
    type: str
    default: .venv
  kernel_name:
    description: Name of the kernelspec the venv should carry; omitted, the kernelspec is not read.
    type: str
  kernel_display_name:
    description: The display name that kernelspec should have.
    type: str
"""

EXAMPLES = r"""
- name: Read the venv the service should run
  sparkfleet.spark.venv_info:
    project_dir: /home/spark/spark-project
    kernel_name: spark-project
    kernel_display_name: Python (spark-project)
  register: jupyter_venv_info
"""

RETURN = r"""
venv:
  description: The venv link.
  returned: always
  type: dict
  contains:
    exists:
      description: Whether anything exists at the link's path.
      type: bool
    link_ok:
      description: Whether it is a link of the builder's exact form to an existing directory.
      type: bool
    id:
      description: The build ID the link names (C(venv-20251125T160616Z-f87688e0)), null unless link_ok.
      type: str
    target:
      description: The absolute path of the build directory, null unless link_ok.
      type: str
  sample: {exists: true, link_ok: true, id: venv-20251125T160616Z-f87688e0,
           target: /home/spark/spark-project/.venvs/venv-20251125T160616Z-f87688e0}
stamp:
  description: The stamp's fields that match their patterns (image_id, repo_digest, python_version, lock_hash, wheels,
    venv_id); {} when there is no usable stamp.
  returned: always
  type: dict
stamp_ok:
  description: Whether the stamp exists and every field passed.
  returned: always
  type: bool
kernelspec:
  description: The kernelspec, when O(kernel_name) is given.
  returned: always
  type: dict
  contains:
    exists:
      description: Whether kernel.json exists in the venv.
      type: bool
    ok:
      description: Whether it is exactly what C(ipykernel install) writes for this venv and name.
      type: bool
problems:
  description: What was found altered or unsafe, one sentence each; empty when all is as the builder left it.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.spark.plugins.module_utils._venv_info import (
    KERNEL_NAME_RE,
    kernelspec_ok,
    read_venv,
    venv_link,
)

# The reading itself lives in module_utils/_venv_info.py: jupyter_service reads the venv it runs the same way.
__all__ = ["kernelspec_ok", "main", "venv_link"]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "project_dir": {"type": "path", "required": True},
            "venv_name": {"type": "str", "default": ".venv"},
            "kernel_name": {"type": "str"},
            "kernel_display_name": {"type": "str"},
        },
        supports_check_mode=True,
    )
    project_dir: str = module.params["project_dir"]
    venv_name: str = module.params["venv_name"]
    kernel_name: str | None = module.params["kernel_name"]
    if not project_dir.startswith("/") or os.path.normpath(project_dir) != project_dir:
        module.fail_json(msg=f"project_dir {project_dir!r} must be a normalized absolute path")
    if "/" in venv_name or venv_name in ("", ".", "..", ".venvs"):
        module.fail_json(msg=f"venv_name {venv_name!r} must be a plain name such as .venv")
    if kernel_name is not None and not KERNEL_NAME_RE.match(kernel_name):
        module.fail_json(msg=f"kernel_name {kernel_name!r} must be a lower-case plain name")

    found = read_venv(project_dir, venv_name, kernel_name, module.params["kernel_display_name"])
    module.exit_json(changed=False, **found)


if __name__ == "__main__":
    main()
