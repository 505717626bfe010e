#!/usr/bin/python
# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's module shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: directories
short_description: Ensure several directories exist with one owner, in one call, never following a link
version_added: 0.1.0
description:
  - Creates each directory of O(paths) that is missing (parents included) and settles group and
    mode on each listed directory, like M(ansible.builtin.file) with C(state=directory) in a loop —
    but in one module call, so a converge pays one round trip to the host instead of one per path.
  - Made to run as root inside the home of a user who is not trusted with root. Every path is
    walked from C(/) one component at a time, through file descriptors opened with C(O_NOFOLLOW),
    and owner and mode are set on the opened descriptor, never on a path name. A directory
    swapped for a symbolic link at any moment, even between the check and the change, is
    refused, not followed.
  - Directories that already exist keep their contents; nothing is ever removed.
author:
  - sparkfleet maintainers (@sparkfleet)
notes:
  - B(Symbolic links.) No component of a path is ever followed as a link, whoever owns it. A link
    anywhere on the way (C(~/.cache) pointing elsewhere, or C(/home) itself) fails the task and
    names the link. Replace the link with a real directory, or give the module the real path.
  - B(Ownership.) The module gives an owner (and group) only to the directories it creates in this
    run. A listed directory that already exists must already belong to O(owner); its group is then
    set to O(group). One that belongs to another uid fails the task, unchanged; sparkfleet does not
    chown what it did not create. Existing parents that are not listed themselves (C(/), C(/home),
    the home directory) are only walked through, never changed, whoever owns them.
  - B(Mode.) A new directory gets exactly its mode (C(0755) when none is given), whatever the umask.
    A listed directory that exists only loses the bits its mode does not have, it never gains any;
    a user's C(0700) stays C(0700) where C(0755) is asked, a C(0777) becomes C(0755). Without a
    mode, an existing directory keeps its own.
  - Parents that had to be created get O(owner) and O(group) and the mode of the entry that needed
    them (or their own mode when they are listed too), so a user never finds a root-owned directory
    in the middle of their own path.
  - Every path is checked before anything changes; the change walks the paths again with the same
    rules, so a change between the two fails rather than being followed.
  - Check mode opens and stats only, without following links, and fails exactly where the real run
    would fail.
attributes:
  check_mode:
    support: full
    description: Reports what would be created or changed, without changing anything; a link or a
      directory of another owner fails check mode too.
  diff_mode:
    support: full
    description: Shows each directory's state (absent, or owner, group and mode) before and after.
  idempotent:
    support: full
    description: A second run with the same arguments reports no change.
options:
  paths:
    description:
      - The directories, in order. Each is a normalized absolute path (no C(.), C(..), doubled or
        trailing C(/)), or a dictionary with C(path) and C(mode) to give one directory a mode of its own.
      - A path listed twice must have the same mode both times.
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
    description:
      - Mode of the directories without a mode of their own, as an octal string such as C("0755").
      - A new directory gets exactly this mode; an existing one only loses the bits it does not have.
      - Omitted, an existing directory keeps its mode and a new one gets C(0755).
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
  sample: ["created /home/spark/.cache/uv", "mode of /home/spark/spark-project: 0777 -> 0755"]
"""

import errno
import grp
import os
import pwd
import stat
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from ansible.module_utils.basic import AnsibleModule

DEFAULT_NEW_MODE = 0o755
T = TypeVar("T")
OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Entries = list[tuple[str, int | None]]


class State(NamedTuple):
    """What one name is, read without following it."""

    uid: int
    gid: int
    mode: int
    is_dir: bool
    is_link: bool


def resolve_id(value: str, kind: str) -> int:
    """A uid or gid from a name or a number; ValueError names what is unknown."""
    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid if kind == "owner" else grp.getgrnam(value).gr_gid
    except KeyError:
        raise ValueError(f"unknown {'user' if kind == 'owner' else 'group'} {value!r}") from None


def owner_label(value: str) -> str:
    """The owner as a person reads it: the user name, even when a uid was given."""
    if not value.isdigit():
        return value
    try:
        return pwd.getpwuid(int(value)).pw_name
    except KeyError:
        return value


def parse_mode(value: Any) -> int | None:
    if value is None or value == "":
        return None
    text = str(value)
    if not text.isdigit() or any(c not in "01234567" for c in text) or int(text, 8) > 0o7777:
        raise ValueError(f"mode {text!r} is not an octal mode such as '0755'")
    return int(text, 8)


def normalize(paths: list[Any], default_mode: int | None) -> Entries:
    """(path, mode) pairs; a relative, unnormalized or root path, or an entry without a path, is refused."""
    entries: Entries = []
    modes: dict[str, int | None] = {}
    for item in paths:
        if isinstance(item, dict):
            path = item.get("path")
            mode = parse_mode(item["mode"]) if item.get("mode") not in (None, "") else default_mode
        else:
            path, mode = item, default_mode
        shown = repr(path) if isinstance(path, str) else repr(item)
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or path.startswith("//")
            or "\0" in path
            or os.path.normpath(path) != path
        ):
            raise ValueError(f"{shown} is not a normalized absolute path")
        if path == "/":
            raise ValueError("'/' is the root directory; sparkfleet never manages it")
        if modes.setdefault(path, mode) != mode:
            raise ValueError(f"{shown} is listed twice with different modes")
        entries.append((path, mode))
    return entries


# --- The decision: pure, no file system. ---------------------------------------------------------


def link_message(path: str) -> str:
    return (
        f"{path} is a symbolic link; sparkfleet never follows a link in a directory it manages as root: "
        "replace it with a real directory (or point the variable at the real path)"
    )


def outcome(
    existing: tuple[int, int, int, bool, bool] | None,
    wanted_uid: int,
    wanted_gid: int,
    wanted_mode: int | None,
    listed: bool,
) -> State:
    """The state of a directory once settled (decide() says whether it may be)."""
    if existing is None:
        return State(wanted_uid, wanted_gid, DEFAULT_NEW_MODE if wanted_mode is None else wanted_mode, True, False)
    uid, gid, mode, is_dir, is_link = existing
    if not listed:
        return State(uid, gid, mode, is_dir, is_link)
    # Bits are only ever removed: the user's stricter mode stays.
    return State(uid, wanted_gid, mode if wanted_mode is None else mode & wanted_mode, is_dir, is_link)


def decide(
    path: str,
    existing: tuple[int, int, int, bool, bool] | None,
    wanted_uid: int,
    wanted_gid: int,
    wanted_mode: int | None,
    listed: bool,
    owner: str = "",
) -> list[str]:
    """What must change for one path component: [] when nothing; ValueError when it must not be touched.

    existing is (uid, gid, mode, is_dir, is_link) read without following a link, None when absent;
    listed says whether the component is one of the module's paths or only a parent on the way.
    """
    if existing is None:
        return [f"created {path}"]
    uid, gid, mode, is_dir, is_link = existing
    if is_link:
        raise ValueError(link_message(path))
    if not is_dir:
        raise ValueError(f"{path} exists and is not a directory; move it away, sparkfleet never replaces it")
    if not listed:
        return []
    if uid != wanted_uid:
        who = owner or str(wanted_uid)
        raise ValueError(
            f"{path} exists and belongs to uid {uid} (gid {gid}), not {who} (uid {wanted_uid}): "
            f"sparkfleet only chowns directories it creates. Run `chown {wanted_uid}:{wanted_gid} {path}` "
            f"if it should belong to {who}, or choose another path"
        )
    settled = outcome(existing, wanted_uid, wanted_gid, wanted_mode, listed)
    actions = []
    if settled.gid != gid:
        actions.append(f"group of {path}: {gid} -> {settled.gid}")
    if settled.mode != mode:
        actions.append(f"mode of {path}: {mode:04o} -> {settled.mode:04o}")
    return actions


# --- Reading and changing the file system, one descriptor at a time. -----------------------------


def components(path: str) -> list[tuple[str, str]]:
    """(name, full path) of each component below /, from the top."""
    names = path.strip("/").split("/")
    return [(name, "/" + "/".join(names[: i + 1])) for i, name in enumerate(names)]


def state_of(st: os.stat_result) -> State:
    return State(st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), stat.S_ISDIR(st.st_mode), stat.S_ISLNK(st.st_mode))


def open_dir(parent_fd: int, name: str, path: str) -> tuple[State | None, int | None]:
    """(state, descriptor) of name in parent_fd, never following it.

    A directory comes back opened; a link or anything else comes back as its lstat state and no
    descriptor (decide() refuses it); an absent name as (None, None).
    """
    try:
        fd = os.open(name, OPEN_DIR, dir_fd=parent_fd)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        try:
            st = state_of(os.stat(name, dir_fd=parent_fd, follow_symlinks=False))
        except FileNotFoundError:
            return None, None
        if st.is_dir and not st.is_link:
            raise ValueError(
                f"{path} changed while sparkfleet was opening it; nothing was followed, run again"
            ) from exc
        return st, None
    try:
        return state_of(os.fstat(fd)), fd
    except BaseException:
        os.close(fd)
        raise


def is_fresh(fd: int, st: State) -> bool:
    """Whether the directory behind fd is the one we just made: ours and empty."""
    return st.uid == os.geteuid() and not os.listdir(fd)


def with_path(path: str, step: Callable[..., T], *args: Any) -> T:
    """step(*args), with an OSError told as a ValueError that names the full path, not one component."""
    try:
        return step(*args)
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from exc


class Plan(NamedTuple):
    actions: list[str]
    before: dict[str, State | None]
    after: dict[str, State]


def plan(entries: Entries, uid: int, gid: int, owner: str = "") -> Plan:
    """What apply() would do, read without changing or following anything; ValueError where it would fail."""
    modes = dict(entries)
    simulated: dict[str, State] = {}
    actions: list[str] = []
    before: dict[str, State | None] = {}
    after: dict[str, State] = {}
    for path, mode in entries:
        fd: int | None = os.open("/", OPEN_DIR)
        try:
            for name, current in components(path):
                real, child = (None, None) if fd is None else with_path(current, open_dir, fd, name, current)
                if fd is not None:
                    os.close(fd)
                fd = child
                listed = current in modes
                wanted_mode = modes[current] if listed else mode
                if listed:
                    before.setdefault(current, real)
                existing = simulated.get(current, real)
                actions += decide(current, existing, uid, gid, wanted_mode, listed, owner)
                simulated[current] = outcome(existing, uid, gid, wanted_mode, listed)
                if listed:
                    after[current] = simulated[current]
        finally:
            if fd is not None:
                os.close(fd)
    return Plan(actions, before, after)


def settle(
    parent_fd: int, name: str, path: str, uid: int, gid: int, mode: int | None, listed: bool, owner: str
) -> tuple[int, list[str], State]:
    """Make one component as wanted; (its descriptor, what was done, its state)."""
    existing, fd = open_dir(parent_fd, name, path)
    if existing is None:
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            made = False
        else:
            made = True
        existing, fd = open_dir(parent_fd, name, path)
        if existing is None:
            raise ValueError(f"{path} vanished while sparkfleet was creating it; run again")
        if made and fd is not None and is_fresh(fd, existing):
            target = outcome(None, uid, gid, mode, listed)
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, target.mode)
            except BaseException:
                os.close(fd)
                raise
            return fd, [f"created {path}"], target
        # Made by someone else in the meantime: an existing directory, with the same rules.
    try:
        steps = decide(path, existing, uid, gid, mode, listed, owner)
        if fd is None:  # decide() refuses anything that is not a directory: not reached
            raise ValueError(f"{path} changed while sparkfleet was opening it; nothing was followed, run again")
        target = outcome(existing, uid, gid, mode, listed)
        if target.gid != existing.gid:
            os.fchown(fd, -1, target.gid)
        if target.mode != existing.mode:
            os.fchmod(fd, target.mode)
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    return fd, steps, target


def apply(entries: Entries, uid: int, gid: int, owner: str = "", done: list[str] | None = None) -> dict[str, State]:
    """Walk each path from / again and make it as planned; the state of each listed path after.

    Each step appends to done as it happens, so a failure half-way still says what was changed.
    """
    done = [] if done is None else done
    modes = dict(entries)
    after: dict[str, State] = {}
    for path, mode in entries:
        fd = os.open("/", OPEN_DIR)
        try:
            for name, current in components(path):
                listed = current in modes
                wanted_mode = modes[current] if listed else mode
                child, steps, state = with_path(
                    current, settle, fd, name, current, uid, gid, wanted_mode, listed, owner
                )
                os.close(fd)
                fd = child
                done += steps
                if listed:
                    after[current] = state
        finally:
            os.close(fd)
    return after


def show(path: str, st: State | None) -> str:
    if st is None:
        return f"{path}: absent"
    kind = "symbolic link" if st.is_link else "directory" if st.is_dir else "not a directory"
    return f"{path}: {kind} {st.uid}:{st.gid} {st.mode:04o}"


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
        owner = owner_label(module.params["owner"])
        entries = normalize(module.params["paths"], parse_mode(module.params["mode"]))
        planned = plan(entries, uid, gid, owner)
    except (ValueError, OSError) as exc:
        module.fail_json(msg=str(exc), actions=[])

    actions, after = planned.actions, planned.after
    if actions and not module.check_mode:
        done: list[str] = []
        try:
            after = apply(entries, uid, gid, owner, done)
        except (ValueError, OSError) as exc:
            module.fail_json(msg=str(exc), actions=done, changed=bool(done))
        actions = done
    paths = [path for path, _ in entries]
    diff = {
        "before": "".join(show(path, planned.before[path]) + "\n" for path in paths),
        "after": "".join(show(path, after[path]) + "\n" for path in paths),
    }
    module.exit_json(changed=bool(actions), actions=actions, diff=diff)


if __name__ == "__main__":
    main()
