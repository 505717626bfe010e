#!/usr/bin/python
# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's module shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_daemon_config
short_description: Merge options into the Docker daemon's daemon.json, only once dockerd accepts the result
version_added: 0.1.0
description:
  - Merges O(options) key by key into the Docker daemon's configuration file O(path) (C(/etc/docker/daemon.json)),
    recursively, like C(combine(recursive=true)) (nested objects merge key by key, any other value, a list
    included, replaces). Keys that other tools own, such as the C(nvidia) runtime that C(nvidia-ctk) writes, are kept.
  - The file and the merge are compared as data, not bytes, so a file in another tool's layout is not rewritten
    for its layout alone.
  - Before anything is written, the merged file is checked with C(dockerd --validate --config-file <candidate>)
    (Docker 23 or newer). A file dockerd refuses fails the task and leaves O(path) as it was, so an unknown key
    never keeps the Docker daemon, and every container, down after the next restart.
  - The new file replaces the old one atomically (a temporary file in the same directory, then a rename), owned
    by root with mode C(0644).
  - The module does not restart Docker; it returns RV(restart_needed) for a handler to act on.
author:
  - sparkfleet maintainers (@sparkfleet)
attributes:
  check_mode:
    support: full
    description: Validates the merged file with dockerd too (as a temporary file, removed afterwards), so a check
      run fails on an option dockerd would refuse, and reports the change otherwise, without writing O(path).
  diff_mode:
    support: full
    description: Shows the file's text before and after (empty before when there was no file).
  idempotent:
    support: full
    description: A second run with the same O(options) finds them merged already and changes nothing.
options:
  path:
    description:
      - The daemon configuration file. A missing file counts as an empty object and is created.
      - An existing file must be a regular file owned by root and hold a JSON object (an empty file counts as an
        empty object); a symlink, another kind of file or a file that does not parse is refused, never replaced.
    type: path
    default: /etc/docker/daemon.json
  options:
    description:
      - The keys to merge into the file, as dockerd spells them (C(log-opts), C(insecure-registries), ...).
      - Nested objects are merged key by key; lists and other values replace what the file had.
    type: dict
    required: true
  dockerd:
    description:
      - Path of the C(dockerd) binary that validates the merged file.
      - Defaults to C(dockerd) found on the C(PATH) (and in C(/sbin), C(/usr/sbin), C(/usr/local/sbin)).
    type: path
  validate:
    description:
      - Check the merged file with C(dockerd --validate) before writing it. This needs Docker 23 or newer; with an
        older engine the task fails rather than write an unchecked file, unless this is V(false).
      - With V(false) the file is written unvalidated, and the module warns.
    type: bool
    default: true
notes:
  - In check mode on a host where C(dockerd) is not installed yet (an earlier task would install it), the change is
    reported with a warning that it could not be validated.
  - Keys are written sorted, with an indent of 4, as the collection's roles always wrote the file.
seealso:
  - name: dockerd daemon configuration file
    description: The keys dockerd accepts in daemon.json, and C(dockerd --validate).
    link: https://docs.docker.com/reference/cli/dockerd/#daemon-configuration-file
"""

EXAMPLES = r"""
- name: Merge the fleet's daemon options into daemon.json
  sparkfleet.spark.docker_daemon_config:
    options:
      log-driver: json-file
      log-opts:
        max-size: 10m
        max-file: "3"
      insecure-registries: ["registry.lab.example:5000"]
  register: docker_daemon
  notify: sparkfleet restart docker

- name: An engine older than Docker 23 cannot validate; write without the check
  sparkfleet.spark.docker_daemon_config:
    options: "{{ docker_daemon_options }}"
    validate: false
"""

RETURN = r"""
actions:
  description: The keys that were (or, in check mode, would be) set, one line each; empty when nothing changes.
  type: list
  elements: str
  returned: always
  sample: ['set "insecure-registries": ["registry.lab.example:5000"]', 'set "log-opts"."max-size": "10m"']
config:
  description: The merged configuration, as it is (or, in check mode, would be) in O(path).
  type: dict
  returned: success
  sample: {"log-opts": {"max-size": "10m"}, "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}
restart_needed:
  description: Whether O(path) changed (or would change), so the Docker daemon must restart to apply it.
  type: bool
  returned: success
  sample: true
path:
  description: The configuration file.
  type: str
  returned: always
  sample: /etc/docker/daemon.json
dockerd_output:
  description: When dockerd refused the merged file, the last lines of what it printed.
  type: list
  elements: str
  returned: failed
  sample: ["unable to configure the Docker daemon with file /etc/docker/.daemon.json.sparkfleet-4f2a9c1e.tmp:
    the following directives don't match any configuration option: no-such-key"]
"""

import copy
import json
import os
import re
import secrets
import stat
from typing import Any, NoReturn

from ansible.module_utils.basic import AnsibleModule

NOT_AN_OBJECT = "{path} is not a JSON object; fix or remove it, sparkfleet never overwrites a file it cannot read"
WRITTEN_MODE = 0o644


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


def plan(existing: dict[str, Any], merged: dict[str, Any], prefix: str = "") -> list[str]:
    """What differs between the file's data and the merged data, one readable line per key; [] when the same."""
    lines = []
    for key, value in merged.items():
        where = f"{prefix}{_render(key)}"
        if key in existing and isinstance(existing[key], dict) and isinstance(value, dict):
            lines.extend(plan(existing[key], value, f"{where}."))
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


def run_validate(module: AnsibleModule, dockerd: str, path: str) -> tuple[int, str, str]:
    """`dockerd --validate --config-file path`: (rc, stdout, stderr). Tests replace this."""
    return module.run_command([dockerd, "--validate", "--config-file", path])


def dockerd_version(module: AnsibleModule, dockerd: str) -> str:
    rc, out, err = module.run_command([dockerd, "--version"])
    return _version(out if rc == 0 and out.strip() else out + err)


class DaemonConfig:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.path: str = module.params["path"]
        self.options: dict[str, Any] = module.params["options"]
        self.validate: bool = module.params["validate"]
        self.dockerd: str | None = module.params["dockerd"] or module.get_bin_path("dockerd")
        self.actions: list[str] = []

    def fail(self, msg: str, **kwargs: Any) -> NoReturn:
        self.module.fail_json(msg=msg, changed=False, path=self.path, actions=self.actions, **kwargs)
        raise SystemExit(1)  # not reached: fail_json exits (its annotation does not say so)

    def read(self) -> tuple[dict[str, Any], str | None]:
        """(the file's data, its text); ({}, None) when there is no file."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return {}, None
        except OSError as exc:
            self.fail(f"cannot read {self.path}: {exc}")
        if stat.S_ISLNK(st.st_mode):
            self.fail(f"{self.path} is a symlink; sparkfleet writes it only as a regular file, never through a link")
        if not stat.S_ISREG(st.st_mode):
            self.fail(f"{self.path} is not a regular file; move it away, sparkfleet never replaces it")
        if st.st_uid != 0:
            self.fail(f"{self.path} is owned by uid {st.st_uid}, not root; sparkfleet never replaces it")
        try:
            # O_NOFOLLOW and the inode check: what is read is the file that was checked.
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as handle:
                opened = os.fstat(handle.fileno())
                if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                    self.fail(f"{self.path} was replaced while it was read; run again")
                raw = handle.read()
        except OSError as exc:
            self.fail(f"cannot read {self.path}: {exc}")
        try:
            text = raw.decode("utf-8")
            data = json.loads(text) if text.strip() else {}
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError both are
            self.fail(NOT_AN_OBJECT.format(path=self.path) + f" (invalid JSON: {exc})")
        if not isinstance(data, dict):
            self.fail(NOT_AN_OBJECT.format(path=self.path))
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
        """Fail unless dockerd accepts candidate; the caller removes candidate whatever happens."""
        assert self.dockerd is not None
        rc, out, err = run_validate(self.module, self.dockerd, candidate)
        said = f"{err}\n{out}"
        if "unknown flag: --validate" in said:
            version = dockerd_version(self.module, self.dockerd)
            self.fail(
                f"dockerd {version} cannot validate a configuration (`dockerd --validate` needs Docker 23 or newer); "
                "upgrade the engine or set docker_daemon_validate: false to write daemon.json unvalidated"
            )
        if rc != 0:
            lines = [line.strip() for line in (err.strip() or out.strip()).splitlines() if line.strip()][-5:]
            # dockerd names the temporary file, which is gone once this fails: say what it means instead.
            prefix = f"unable to configure the Docker daemon with file {candidate}: "
            reason = "; ".join(line.removeprefix(prefix).replace(candidate, "the merged file") for line in lines)
            self.fail(
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
        self.fail(f"{missing}, so the merged daemon.json cannot be validated; install the engine first")

    def run(self) -> dict[str, Any]:
        existing, before = self.read()
        merged = merge(existing, self.options)
        self.actions = plan(existing, merged)
        changed = bool(self.actions)
        try:
            after = render(merged) if changed else before or ""
        except (TypeError, ValueError) as exc:
            self.fail(f"options cannot be written as JSON: {exc}")
        results: dict[str, Any] = {
            "changed": changed,
            "actions": self.actions,
            "restart_needed": changed,
            "config": merged,
            "path": self.path,
        }
        if self.module._diff:
            results["diff"] = {"before": before or "", "after": after}
        if not changed:
            return results
        if not self.validate:
            self.module.warn(f"daemon.json {'would be ' if self.module.check_mode else ''}written without validation")
        if self.module.check_mode:
            if self.validate and self.validator_ready():
                # The candidate goes to the module's own temporary directory: a check writes nothing beside path.
                self.write(after, self.module.tmpdir, install=False)
            return results
        if self.validate:
            self.validator_ready()
        self.write(after, os.path.dirname(self.path) or ".", install=True)
        return results

    def write(self, text: str, directory: str, install: bool) -> None:
        """Write text to a candidate in directory, have dockerd check it, then (install) rename it onto path."""
        if not os.path.isdir(directory):
            self.fail(f"{directory} does not exist; install the Docker engine first")
        try:
            fd, candidate = self.create_candidate(directory, text)
        except OSError as exc:
            self.fail(f"cannot write a temporary file beside {self.path}: {exc}")
        try:
            try:
                if self.validate:
                    self.check_with_dockerd(candidate)
                if install:
                    os.fchmod(fd, WRITTEN_MODE)
                    os.fchown(fd, 0, 0)
            finally:
                os.close(fd)
            if install:
                os.replace(candidate, self.path)
                self.sync_directory(directory)
        except OSError as exc:
            self.fail(f"cannot replace {self.path}: {exc}; daemon.json was left as it was")
        finally:
            if os.path.lexists(candidate):
                os.unlink(candidate)

    @staticmethod
    def sync_directory(directory: str) -> None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/docker/daemon.json"},
            "options": {"type": "dict", "required": True},
            "dockerd": {"type": "path"},
            "validate": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    module.exit_json(**DaemonConfig(module).run())


if __name__ == "__main__":
    main()
