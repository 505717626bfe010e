# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The Docker daemon's daemon.json: read safely, merged key by key, checked by dockerd, replaced atomically.

Shared by the modules docker_daemon_config (daemon.json alone) and docker_engine (the whole engine
in one task). The merge and the comparison are pure; DaemonJson does the reading and writing and
raises DaemonJsonError with a message (and extra result keys) that each module fails with.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import stat
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule

NOT_AN_OBJECT = "{path} is not a JSON object; fix or remove it, sparkfleet never overwrites a file it cannot read"
WRITTEN_MODE = 0o644

# (module, dockerd, candidate) -> (rc, stdout, stderr) of `dockerd --validate --config-file candidate`.
Validator = Callable[[AnsibleModule, str, str], tuple[int, str, str]]


class DaemonJsonError(Exception):
    """A failure to report: the message, and extra keys for the module's result (dockerd_output)."""

    def __init__(self, msg: str, **extra: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


# ---------------------------------------------------------------------------------------------
# The pure part
# ---------------------------------------------------------------------------------------------


def merge(existing: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """existing with options merged in, like combine(recursive=True): dicts merge key by key, the rest replaces."""
    merged = copy.deepcopy(existing)
    for key, value in options.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def same(a: Any, b: Any) -> bool:
    """JSON equality that, unlike ==, tells true from 1 and 1.0 from 1 (dockerd does)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return _kind(a) == _kind(b) and a == b


def _kind(value: Any) -> type:
    """The JSON type of a scalar (str subclasses count as str)."""
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind
    return type(value)


def _render(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def changes(existing: dict[str, Any], merged: dict[str, Any], prefix: str = "") -> list[str]:
    """What differs between the file's data and the merged data, one readable line per key; [] when the same."""
    lines = []
    for key, value in merged.items():
        where = f"{prefix}{_render(key)}"
        if key in existing and isinstance(existing[key], dict) and isinstance(value, dict):
            lines.extend(changes(existing[key], value, f"{where}."))
        elif key not in existing or not same(existing[key], value):
            lines.append(f"set {where}: {_render(value)}")
    lines.extend(f"remove {prefix}{_render(key)}" for key in existing if key not in merged)
    return lines


def render(config: dict[str, Any]) -> str:
    """The file's text, in the layout the roles always wrote (to_nice_json(indent=4) plus a newline)."""
    return json.dumps(config, indent=4, sort_keys=True, separators=(",", ": ")) + "\n"


def _version(text: str) -> str:
    found = re.search(r"version\s+([^\s,]+)", text)
    return found.group(1) if found else (text.strip().splitlines() or ["(version unknown)"])[0]


# ---------------------------------------------------------------------------------------------
# Reading, validating and writing the file
# ---------------------------------------------------------------------------------------------


def run_validate(module: AnsibleModule, dockerd: str, path: str) -> tuple[int, str, str]:
    """`dockerd --validate --config-file path`: (rc, stdout, stderr)."""
    return module.run_command([dockerd, "--validate", "--config-file", path])


def dockerd_version(module: AnsibleModule, dockerd: str) -> str:
    rc, out, err = module.run_command([dockerd, "--version"])
    return _version(out if rc == 0 and out.strip() else out + err)


class DaemonJson:
    """daemon.json at path; dockerd (a path or None) judges a merged file before it replaces the old one."""

    def __init__(
        self,
        module: AnsibleModule,
        path: str,
        validate: bool,
        dockerd: str | None,
        validator: Validator = run_validate,
    ) -> None:
        self.module = module
        self.path = path
        self.validate = validate
        self.dockerd = dockerd
        self.validator = validator

    def read(self) -> tuple[dict[str, Any], str | None]:
        """(the file's data, its text); ({}, None) when there is no file."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return {}, None
        except OSError as exc:
            raise DaemonJsonError(f"cannot read {self.path}: {exc}") from None
        if stat.S_ISLNK(st.st_mode):
            raise DaemonJsonError(
                f"{self.path} is a symlink; sparkfleet writes it only as a regular file, never through a link"
            )
        if not stat.S_ISREG(st.st_mode):
            raise DaemonJsonError(f"{self.path} is not a regular file; move it away, sparkfleet never replaces it")
        if st.st_uid != 0:
            raise DaemonJsonError(f"{self.path} is owned by uid {st.st_uid}, not root; sparkfleet never replaces it")
        try:
            # O_NOFOLLOW and the inode check: what is read is the file that was checked.
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as handle:
                opened = os.fstat(handle.fileno())
                if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                    raise DaemonJsonError(f"{self.path} was replaced while it was read; run again")
                raw = handle.read()
        except OSError as exc:
            raise DaemonJsonError(f"cannot read {self.path}: {exc}") from None
        try:
            text = raw.decode("utf-8")
            data = json.loads(text) if text.strip() else {}
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError both are
            raise DaemonJsonError(NOT_AN_OBJECT.format(path=self.path) + f" (invalid JSON: {exc})") from None
        if not isinstance(data, dict):
            raise DaemonJsonError(NOT_AN_OBJECT.format(path=self.path))
        return data, text

    def create_candidate(self, directory: str, text: str) -> tuple[int, str]:
        """A new file only this run knows (O_EXCL, O_NOFOLLOW, mode 0600), holding text and synced."""
        base = os.path.basename(self.path)
        for _attempt in range(10):
            candidate = os.path.join(directory, f".{base}.sparkfleet-{secrets.token_hex(4)}.tmp")
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue
            try:
                os.fchmod(fd, 0o600)  # the umask may only narrow it; say it plainly anyway
                data = text.encode("utf-8")
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                os.unlink(candidate)
                raise
            return fd, candidate
        raise FileExistsError(f"could not create a temporary file beside {self.path}")

    def check_with_dockerd(self, candidate: str) -> None:
        """Raise unless dockerd accepts candidate; the caller removes candidate whatever happens."""
        assert self.dockerd is not None
        rc, out, err = self.validator(self.module, self.dockerd, candidate)
        said = f"{err}\n{out}"
        if "unknown flag: --validate" in said:
            version = dockerd_version(self.module, self.dockerd)
            raise DaemonJsonError(
                f"dockerd {version} cannot validate a configuration (`dockerd --validate` needs Docker 23 or newer); "
                "upgrade the engine or set docker_daemon_validate: false to write daemon.json unvalidated"
            )
        if rc != 0:
            lines = [line.strip() for line in (err.strip() or out.strip()).splitlines() if line.strip()][-5:]
            # dockerd names the temporary file, which is gone once this fails: say what it means instead.
            prefix = f"unable to configure the Docker daemon with file {candidate}: "
            reason = "; ".join(line.removeprefix(prefix).replace(candidate, "the merged file") for line in lines)
            raise DaemonJsonError(
                f"docker_daemon_options would make dockerd refuse {self.path}: "
                f"{reason or f'exit {rc} without a message'} \u2014 daemon.json was left as it was",
                dockerd_output=lines,
            )

    def validator_ready(self) -> bool:
        """Whether dockerd can be run; False only in check mode with no dockerd yet (it warns)."""
        if self.dockerd and os.path.isfile(self.dockerd) and os.access(self.dockerd, os.X_OK):
            return True
        missing = f"dockerd {self.dockerd} is not an executable file" if self.dockerd else "dockerd is not installed"
        if self.module.check_mode:
            self.module.warn(f"{missing}; the merged daemon.json could not be validated in check mode")
            return False
        raise DaemonJsonError(f"{missing}, so the merged daemon.json cannot be validated; install the engine first")

    def write(self, text: str, directory: str, install: bool, validate: bool | None = None) -> None:
        """Write text to a candidate in directory, have dockerd check it (validate, default self.validate),
        then (install) rename it onto path."""
        validate = self.validate if validate is None else validate
        if not os.path.isdir(directory):
            raise DaemonJsonError(f"{directory} does not exist; install the Docker engine first")
        try:
            fd, candidate = self.create_candidate(directory, text)
        except OSError as exc:
            raise DaemonJsonError(f"cannot write a temporary file beside {self.path}: {exc}") from None
        try:
            try:
                if validate:
                    self.check_with_dockerd(candidate)
                if install:
                    os.fchmod(fd, WRITTEN_MODE)
                    os.fchown(fd, 0, 0)
            finally:
                os.close(fd)
            if install:
                os.replace(candidate, self.path)
                sync_directory(directory)
        except OSError as exc:
            raise DaemonJsonError(f"cannot replace {self.path}: {exc}; daemon.json was left as it was") from None
        finally:
            if os.path.lexists(candidate):
                os.unlink(candidate)


def sync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
