"""One sparkfleet run per inventory at a time: an flock on the control node.

The lock file is named after the inventories' real paths, in a directory that every user of
the control node shares, so that the drift timer (its own user) and the admins (theirs) meet on
the same file: $SPARKFLEET_LOCK_DIR, else /run/lock (Debian's and Ubuntu's sticky,
world-writable lock directory, a tmpfs cleared at boot), else the system's temporary directory.
The holder writes who it is into the file; a run that finds the lock held says so and exits
EXIT_LOCKED (75, sysexits' EX_TEMPFAIL: try again later), after waiting --wait seconds.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sparkfleet.errors import SparkfleetError

LOCK_DIR_ENV = "SPARKFLEET_LOCK_DIR"
EXIT_LOCKED = 75


class Locked(SparkfleetError):
    """Another sparkfleet run holds this inventory's lock."""

    exit_code = EXIT_LOCKED


def lock_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(LOCK_DIR_ENV):
        return Path(env[LOCK_DIR_ENV])
    run_lock = Path("/run/lock")
    if run_lock.is_dir() and os.access(run_lock, os.W_OK | os.X_OK):
        return run_lock
    return Path(tempfile.gettempdir())


def lock_path(inventories: Sequence[str], directory: Path | None = None) -> Path:
    """The inventories' lock: one name for the same set of real paths, whatever their order."""
    key = "\n".join(sorted(str(Path(i).resolve()) if "," not in i else i for i in inventories))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return (directory or lock_dir()) / f"sparkfleet-{digest}.lock"


def _holder(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode() or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another sparkfleet run"
    return (
        f"pid {holder.get('pid', '?')} ({holder.get('user', '?')}, {holder.get('command', 'sparkfleet')},"
        f" since {holder.get('since', '?')})"
    )


class FleetLock:
    """Hold with `with FleetLock(path, command).acquire(wait):`; released when the process ends."""

    def __init__(self, path: Path, command: str) -> None:
        self.path = path
        self.command = command
        self.fd: int | None = None
        self.waited = 0.0

    def _open(self) -> int:
        flags = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, os.O_RDWR | flags, 0o644)
        except PermissionError:
            # Made by another user: a read-only descriptor locks just as well.
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise SparkfleetError(f"lock file {self.path} is a symbolic link: remove it") from error
            raise SparkfleetError(f"cannot open the lock file {self.path}: {error.strerror}") from error
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, 0o644)
        return fd

    def acquire(
        self,
        wait: float = 0.0,
        poll: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> FleetLock:
        fd = self._open()
        started = clock()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if clock() - started >= wait:
                holder = _holder(fd)
                os.close(fd)
                waited = f" after waiting {wait:g} s" if wait else ""
                raise Locked(
                    f"skipped: {describe(holder)} holds the lock for this inventory ({self.path}){waited};"
                    " run again when it ends, or pass --wait SECONDS"
                )
            sleep(poll)
        self.fd = fd
        self.waited = clock() - started
        record = {
            "pid": os.getpid(),
            "user": _user(),
            "command": self.command,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        except OSError:
            pass  # a read-only descriptor: the lock holds, the holder just goes unnamed
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FleetLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.geteuid())
