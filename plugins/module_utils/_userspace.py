# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Reading what a non-root user can write, as root, without trusting it.

Private to this collection. sparkfleet's modules run as root; the project, its venv, the
venv's stamp and kernelspec belong to the project user, who may replace any of them with a
symbolic link or fill them with anything at any moment. Everything here therefore:

- walks a path from ``/`` one component at a time with ``O_NOFOLLOW``, so a link anywhere
  in the path is refused, never followed (no check-then-use race: the descriptor that was
  checked is the one that is read);
- reads at most a small, fixed number of bytes;
- hands back values only after they match a strict pattern. A value that does not match is
  reported as a problem (drift to repair), never used.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Mapping
from typing import Any

# The names the builder gives things (plugins/module_utils/_venv_builder.py).
VENV_LINK_RE = re.compile(r"^\.venvs/(venv-\d{8}T\d{6}Z-[0-9a-f]{8})$")
IMAGE_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
REPO_DIGEST_RE = re.compile(r"^[a-z0-9][a-z0-9._/:-]{0,254}@sha256:[0-9a-f]{64}$")
PYTHON_VERSION_RE = re.compile(r"^[0-9]{1,2}\.[0-9]{1,3}\.[0-9]{1,3}(?:(?:a|b|rc)[0-9]{1,3})?\+?$")
LOCK_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
WHEEL_NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,200}\.whl$")

STAMP_LIMIT = 64 * 1024
KERNELSPEC_LIMIT = 64 * 1024

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(Exception):
    """A path that root must not use: a link in it, or not the kind of file expected."""


def _components(path: str) -> list[str]:
    if not path.startswith("/") or os.path.normpath(path) != path:
        raise UnsafePath(f"{path!r} is not a normalized absolute path")
    return [part for part in path.split("/") if part]


def open_parent(path: str) -> tuple[int, str]:
    """(descriptor of the parent directory, last component), every directory opened with O_NOFOLLOW.

    Raises FileNotFoundError when a directory on the way is missing, UnsafePath on a link.
    """
    parts = _components(path)
    if not parts:
        raise UnsafePath("/ has no parent")
    fd = os.open("/", _DIR_FLAGS)
    walked = ""
    try:
        for part in parts[:-1]:
            walked += "/" + part
            try:
                new_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    kind = "a symbolic link" if _is_link(fd, part) else "not a directory"
                    raise UnsafePath(f"{walked} is {kind}; sparkfleet never follows it as root") from None
                raise
            os.close(fd)
            fd = new_fd
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def lstat(path: str) -> os.stat_result | None:
    """lstat of path through a link-free walk; None when it does not exist."""
    try:
        fd, name = open_parent(path)
    except FileNotFoundError:
        return None
    try:
        return os.lstat(name, dir_fd=fd)
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def read_link(path: str) -> str | None:
    """The target of the symbolic link at path (not followed); None when path is missing or not a link."""
    try:
        fd, name = open_parent(path)
    except FileNotFoundError:
        return None
    try:
        st = os.lstat(name, dir_fd=fd)
        if not stat.S_ISLNK(st.st_mode):
            return None
        return os.readlink(name, dir_fd=fd)
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def read_file(path: str, limit: int) -> bytes | None:
    """At most `limit` bytes of the regular file at path; None when it is missing.

    Raises UnsafePath when a component is a link, the file is not a regular file, or it is
    larger than `limit`.
    """
    try:
        fd, name = open_parent(path)
    except FileNotFoundError:
        return None
    try:
        try:
            file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(f"{path} is a symbolic link; sparkfleet never follows it as root") from None
            raise
    finally:
        os.close(fd)
    with os.fdopen(file_fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(f"{path} is not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafePath(f"{path} is larger than {limit} bytes")
    return data


def read_json(path: str, limit: int) -> tuple[dict[str, Any] | None, str | None]:
    """(the JSON object at path, None) or (None, why it cannot be used); (None, None) when missing."""
    try:
        data = read_file(path, limit)
    except (UnsafePath, OSError) as exc:
        return None, str(exc)
    if data is None:
        return None, None
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"{path} is not JSON ({exc})"
    if not isinstance(value, dict):
        return None, f"{path} is not a JSON object"
    return value, None


def venv_id_of_link(target: str | None) -> str | None:
    """The build ID the .venv link names, when the link has the builder's exact form."""
    match = VENV_LINK_RE.match(target or "")
    return match.group(1) if match else None


def _check(problems: list[str], key: str, value: Any, pattern: re.Pattern[str], optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if isinstance(value, str) and pattern.match(value):
        return value
    problems.append(f"stamp field {key} is malformed")
    return None


def checked_stamp(stamp: Mapping[str, Any] | None, venv_id: str | None) -> tuple[dict[str, Any], list[str]]:
    """The stamp's fields that passed their patterns, and what did not.

    A stamp is written by the builder inside the container, into a directory the user owns:
    it is the user's file. Only values of these exact shapes leave this function; a stamp
    whose venv_id is not the build the .venv link names has been altered or copied.
    """
    if not stamp:
        return {}, []
    problems: list[str] = []
    clean: dict[str, Any] = {
        "image_id": _check(problems, "image_id", stamp.get("image_id"), IMAGE_ID_RE),
        "repo_digest": _check(problems, "repo_digest", stamp.get("repo_digest"), REPO_DIGEST_RE, optional=True),
        "python_version": _check(problems, "python_version", stamp.get("python_version"), PYTHON_VERSION_RE),
        "lock_hash": _check(problems, "lock_hash", stamp.get("lock_hash"), LOCK_HASH_RE),
    }
    wheels = stamp.get("wheels")
    if isinstance(wheels, list) and all(isinstance(w, str) and WHEEL_NAME_RE.match(w) for w in wheels):
        clean["wheels"] = sorted(wheels)
    else:
        problems.append("stamp field wheels is malformed")
        clean["wheels"] = None
    stamp_id = stamp.get("venv_id")
    if stamp_id != venv_id or venv_id is None:
        problems.append("stamp field venv_id does not name the build that .venv links to")
    clean["venv_id"] = venv_id if stamp_id == venv_id else None
    return clean, problems
