#!/usr/bin/python
# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's module shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: directories
short_description: Ensure several directories exist with one owner, in one call
version_added: 0.1.0
description:
  - Creates each directory of O(paths) that is missing (parents included) and sets owner, group and
    mode on each listed directory, like M(ansible.builtin.file) with C(state=directory) in a loop —
    but in one module call, so a converge pays one round trip to the host instead of one per path.
  - Directories that already exist keep their contents; nothing is ever removed.
  - Parents that had to be created get the same owner and group (and the mode of the entry that
    needed them), so a user never finds a root-owned directory in the middle of their own path.
author:
  - sparkfleet maintainers (@sparkfleet)
attributes:
  check_mode:
    support: full
    description: Reports what would be created or changed, without changing anything.
  diff_mode:
    support: full
    description: Shows each directory's state (absent, or owner, group and mode) before and after.
  idempotent:
    support: full
    description: A second run with the same arguments reports no change.
options:
  paths:
    description:
      - The directories, in order. Each is an absolute path, or a dictionary with C(path) and
        C(mode) to give one directory a mode of its own.
    type: list
    elements: raw
    required: true
  owner:
    description: User name or uid that owns every directory of O(paths).
    type: str
    required: true
  group:
    description: Group name or gid of every directory of O(paths).
    type: str
    required: true
  mode:
    description: Mode of the directories without a mode of their own, as an octal string such as C("0755").
      Omitted, an existing directory keeps its mode and a new one gets C(0755).
    type: str
"""

EXAMPLES = r"""
- name: Create the project directory and the user's caches
  sparkfleet.spark.directories:
    paths:
      - /home/spark/spark-project
      - /home/spark/.cache/uv
      - path: /home/spark/.local/share/sparkfleet/jupyter
        mode: "0700"
    owner: spark
    group: spark
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be done), one line per directory that changed.
  type: list
  elements: str
  returned: always
  sample: ["created /home/spark/.cache/uv", "owner of /home/spark/.cache: 0 -> 1000"]
"""

import grp
import os
import pwd
import stat
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DEFAULT_NEW_MODE = 0o755


def resolve_id(value: str, kind: str) -> int:
    """A uid or gid from a name or a number; ValueError names what is unknown."""
    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid if kind == "owner" else grp.getgrnam(value).gr_gid
    except KeyError:
        raise ValueError(f"unknown {'user' if kind == 'owner' else 'group'} {value!r}") from None


def parse_mode(value: Any) -> int | None:
    if value is None or value == "":
        return None
    text = str(value)
    if not text.isdigit() or any(c not in "01234567" for c in text) or int(text, 8) > 0o7777:
        raise ValueError(f"mode {text!r} is not an octal mode such as '0755'")
    return int(text, 8)


def normalize(paths: list[Any], default_mode: int | None) -> list[tuple[str, int | None]]:
    """(path, mode) pairs; a relative path or an entry without a path is refused."""
    entries = []
    for item in paths:
        if isinstance(item, dict):
            path = item.get("path")
            mode = parse_mode(item["mode"]) if item.get("mode") not in (None, "") else default_mode
        else:
            path, mode = item, default_mode
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{item!r} is not an absolute path")
        entries.append((os.path.normpath(path), mode))
    return entries


def describe(path: str) -> str:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"{path}: absent"
    kind = "directory" if stat.S_ISDIR(st.st_mode) else "not a directory"
    return f"{path}: {kind} {st.st_uid}:{st.st_gid} {stat.S_IMODE(st.st_mode):04o}"


def predict(path: str, uid: int, gid: int, mode: int | None) -> str:
    """describe() of the directory once apply() ran (for check mode's diff)."""
    try:
        current = stat.S_IMODE(os.lstat(path).st_mode)
    except FileNotFoundError:
        current = DEFAULT_NEW_MODE
    return f"{path}: directory {uid}:{gid} {(mode if mode is not None else current):04o}"


def plan(path: str, uid: int, gid: int, mode: int | None) -> list[str]:
    """What must change for one directory: [] when it is as wanted."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        missing = [path]
        parent = os.path.dirname(path)
        while parent != "/" and not os.path.lexists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        return [f"created {p}" for p in reversed(missing)]
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path} exists and is not a directory; move it away, sparkfleet never replaces it")
    actions = []
    if st.st_uid != uid:
        actions.append(f"owner of {path}: {st.st_uid} -> {uid}")
    if st.st_gid != gid:
        actions.append(f"group of {path}: {st.st_gid} -> {gid}")
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        actions.append(f"mode of {path}: {stat.S_IMODE(st.st_mode):04o} -> {mode:04o}")
    return actions


def apply(path: str, uid: int, gid: int, mode: int | None) -> None:
    """Create what is missing (parents first), then set owner, group and mode."""
    created = []
    parent = path
    while not os.path.lexists(parent):
        created.append(parent)
        parent = os.path.dirname(parent)
    for new in reversed(created):
        os.mkdir(new, DEFAULT_NEW_MODE)
    # An existing directory keeps its mode unless one is asked; a new one never depends on the umask.
    for target in reversed(created) if created else [path]:
        os.chown(target, uid, gid)
        wanted = mode if mode is not None else (DEFAULT_NEW_MODE if created else None)
        if wanted is not None:
            os.chmod(target, wanted)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "raw", "required": True},
            "owner": {"type": "str", "required": True},
            "group": {"type": "str", "required": True},
            "mode": {"type": "str"},
        },
        supports_check_mode=True,
    )
    try:
        uid = resolve_id(module.params["owner"], "owner")
        gid = resolve_id(module.params["group"], "group")
        entries = normalize(module.params["paths"], parse_mode(module.params["mode"]))
        plans = [(path, mode, plan(path, uid, gid, mode)) for path, mode in entries]
    except (ValueError, OSError) as exc:
        module.fail_json(msg=str(exc))

    actions = [line for _, _, steps in plans for line in steps]
    before = "\n".join(describe(path) for path, _ in entries) + "\n"
    if actions and not module.check_mode:
        for path, mode, steps in plans:
            if steps:
                try:
                    apply(path, uid, gid, mode)
                except OSError as exc:
                    module.fail_json(msg=f"{path}: {exc}", actions=actions)
    if module.check_mode:
        after = "\n".join(predict(path, uid, gid, mode) if steps else describe(path) for path, mode, steps in plans)
    else:
        after = "\n".join(describe(path) for path, _ in entries)
    after += "\n"
    module.exit_json(changed=bool(actions), actions=actions, diff={"before": before, "after": after})


if __name__ == "__main__":
    main()
