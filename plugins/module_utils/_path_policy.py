# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The path policy's `any_file` rule, for modules.

The filter `sparkfleet.spark.path_problem` (plugins/filter/validators.py) checks inventory
values and explains what is wrong; a module that must judge a path it was *told* (by a
program run from user space) only needs the verdict. Filters are not shipped to the host, so
the rule lives here too; tests/unit/plugins/modules/test_jupyter_service.py proves both agree.
"""

from __future__ import annotations

import posixpath
import re

PATH_MAX = 4096
_PATH_CHARS = re.compile(r"[A-Za-z0-9._+@/-]+")

SYSTEM_DIRS = frozenset(
    {
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media",
        "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/tmp", "/usr", "/var",
        "/var/lib", "/var/cache", "/var/log", "/var/tmp", "/var/lib/docker", "/etc/docker", "/usr/local",
        "/usr/local/bin", "/var/run", "/lost+found", "/etc/systemd", "/etc/systemd/system", "/etc/sudoers.d",
        "/etc/ssh", "/etc/apt",
    }
)  # fmt: skip


def plain_path_ok(value: object) -> bool:
    """Whether value passes path_problem(value, name, 'any_file'): absolute, normalized, plain
    characters (it is written into a unit), no component starting with -, not a system directory."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= PATH_MAX
        and value.startswith("/")
        and _PATH_CHARS.fullmatch(value) is not None
        and "//" not in value
        and value == posixpath.normpath(value)
        and not any(part.startswith("-") for part in value.split("/"))
        and value not in SYSTEM_DIRS
    )
