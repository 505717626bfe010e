# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""A host-wide exclusive lock (flock on a root-owned file), waited for a bounded time.

Serialises work that must not run twice at once on one host, whoever starts it (two
sparkfleet runs from different control nodes, an admin's ansible-playbook next to the
timer): the xformers wheel build.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

DEFAULT_DIR = "/run/lock"


class LockTimeout(Exception):
    """The lock stayed held for the whole wait."""


@contextmanager
def host_lock(
    path: str,
    timeout: float,
    poll: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[float]:
    """Hold an exclusive flock on PATH; yields the seconds spent waiting.

    The file is opened without following a link (O_NOFOLLOW) and never truncated; the lock
    goes with the descriptor, so a crashed holder releases it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    started = clock()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if clock() - started >= timeout:
                raise LockTimeout(f"{path} stayed locked for {timeout:g} s (another build on this host)")
            sleep(poll)
        yield clock() - started
    finally:
        os.close(fd)
