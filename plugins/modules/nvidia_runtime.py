#!/usr/bin/python
# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's module shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvidia_runtime
short_description: Reconcile Docker's nvidia runtime and the GPU smoke check in one task
version_added: 0.2.0
description:
  - Reads in one go Docker's C(daemon.json) (is there a C(runtimes.nvidia), which C(default-runtime)), the record of
    the last passed GPU smoke check (read without following links; a missing, unreadable or corrupt record means the
    check is due) and C(docker.service)'s state (C(systemctl show)).
  - Compares that with what is wanted in a pure function (C(plan)) and applies only the difference -
    C(nvidia-ctk runtime configure --runtime=docker) when the runtime is absent (nvidia-ctk owns this edit, as NVIDIA
    documents), C(systemctl reset-failed) and C(systemctl restart docker) after it (or after the toolkit packages
    were installed, while Docker runs), then waits until C(docker info) answers.
  - The smoke check, C(docker run --rm --gpus all IMAGE COMMAND), runs only when its result could differ from the
    last pass - a first run, another image, command or toolkit packages, a runtime added or a toolkit installed in
    this run - or on every run with O(smoke_every_run). A pass is recorded in O(record_path) (root, 0644, in a root
    0755 directory, written atomically).
  - Every command runs as an argument list, never through a shell.
author:
  - sparkfleet maintainers (@sparkfleet)
attributes:
  check_mode:
    support: full
    description: Runs nothing that changes the host and no GPU container (the image may not be pulled yet, nor
      nvidia-ctk installed); reports the actions a real run would take.
  diff_mode:
    support: full
    description: daemon.json's C(runtimes) and C(default-runtime), and the smoke record, before and after.
  idempotent:
    support: full
    description: A second run finds the runtime and the record as wanted and runs no command.
options:
  config_path:
    description: Docker's daemon.json, where nvidia-ctk registers the runtime.
    type: path
    default: /etc/docker/daemon.json
  set_as_default:
    description: Also make nvidia Docker's default runtime (C(--set-as-default)); nvidia-ctk runs again when
      C(default-runtime) is another one.
    type: bool
    default: false
  packages:
    description: The installed toolkit packages, name to Debian version; part of the smoke record.
    type: dict
    default: {}
  installed_changed:
    description: The toolkit packages were installed or upgraded in this run - Docker is restarted (when it runs)
      and the smoke check runs.
    type: bool
    default: false
  smoke_enabled:
    description: Run the GPU smoke check.
    type: bool
    default: true
  smoke_every_run:
    description: Run the smoke check on every run, not only when its result could differ from the last pass.
    type: bool
    default: false
  smoke_image:
    description: The image of the smoke container; required when O(smoke_enabled).
    type: str
  smoke_command:
    description: The command run in the smoke container.
    type: list
    elements: str
    default: [nvidia-smi, -L]
  record_path:
    description: The record of the last passed smoke check (JSON - image, command, packages).
    type: path
    default: /var/lib/sparkfleet/gpu-smoke.json
  docker:
    description: The docker CLI (a name looked up on the PATH, or a path).
    type: str
    default: docker
  nvidia_ctk:
    description: The nvidia-ctk CLI (a name looked up on the PATH, or a path).
    type: str
    default: nvidia-ctk
  restart_timeout:
    description: Seconds to wait, after a restart, until C(docker info) answers.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: Register the nvidia runtime with Docker and smoke-check a GPU container
  sparkfleet.spark.nvidia_runtime:
    config_path: /etc/docker/daemon.json
    packages: {nvidia-container-toolkit: 1.18.0-1, nvidia-container-toolkit-base: 1.18.0-1}
    installed_changed: "{{ nvidia_toolkit_install is changed }}"
    smoke_image: nvcr.io/nvidia/pytorch:25.11-py3
    smoke_command: [nvidia-smi, -L]
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be), in order - among configure_runtime, reset_failed,
    restart_docker, smoke, record.
  returned: always
  type: list
  elements: str
  sample: [configure_runtime, reset_failed, restart_docker, smoke, record]
runtime_present:
  description: Whether daemon.json had the nvidia runtime before this run.
  returned: always
  type: bool
smoke_ran:
  description: Whether the GPU container ran (never in check mode).
  returned: always
  type: bool
smoke_rc:
  description: The smoke container's exit code; null when it did not run.
  returned: always
  type: int
msg:
  description: In check mode, what would be done and what is not there yet.
  returned: sometimes
  type: str
"""

import contextlib
import json
import os
import stat
import tempfile
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.spark.plugins.module_utils import _userspace
from ansible_collections.sparkfleet.spark.plugins.module_utils._names import STATE_DIR

RECORD_LIMIT = 64 * 1024
DAEMON_LIMIT = 1024 * 1024
RUNNING_STATES = {"active", "activating", "reloading"}
# The smoke check verifies; it changes nothing on the host, so alone it does not make the task changed.
READ_ONLY_ACTIONS = {"smoke"}
# What nvidia-ctk writes for the docker runtime (its layout may differ: only the data is shown in the diff).
NVIDIA_RUNTIME = {"args": [], "path": "nvidia-container-runtime"}


class NvidiaRuntimeError(Exception):
    """A failure with a message meant for the lab admin."""


# ---------------------------------------------------------------------------------------------
# The pure part: what to do, from what is and what is wanted
# ---------------------------------------------------------------------------------------------


def plan(current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    """The actions, in order, that take `current` to `desired`.

    current: runtime_present (bool), default_runtime (str or None), docker_active (bool),
      record (the last passed smoke record as a dict, or None when missing or unusable).
    desired: set_as_default, installed_changed, smoke_enabled, smoke_every_run (bools),
      record (the record a pass now would write).
    """
    actions: list[str] = []
    configure = not current["runtime_present"] or (desired["set_as_default"] and current["default_runtime"] != "nvidia")
    if configure:
        actions.append("configure_runtime")
    if configure or (desired["installed_changed"] and current["docker_active"]):
        actions += ["reset_failed", "restart_docker"]
    record_differs = current["record"] != desired["record"]
    if desired["smoke_enabled"] and (
        desired["smoke_every_run"] or record_differs or configure or desired["installed_changed"]
    ):
        actions.append("smoke")
        if record_differs:
            actions.append("record")
    return actions


def runtime_view(daemon: dict[str, Any]) -> dict[str, Any]:
    """The part of daemon.json this module is about: the runtimes and the default one."""
    view: dict[str, Any] = {"runtimes": daemon.get("runtimes") if isinstance(daemon.get("runtimes"), dict) else {}}
    if "default-runtime" in daemon:
        view["default-runtime"] = daemon["default-runtime"]
    return view


def configured_view(view: dict[str, Any], set_as_default: bool) -> dict[str, Any]:
    """What nvidia-ctk would make of the runtime view (check mode's prediction)."""
    after: dict[str, Any] = {"runtimes": {**view["runtimes"], "nvidia": view["runtimes"].get("nvidia", NVIDIA_RUNTIME)}}
    default = "nvidia" if set_as_default else view.get("default-runtime")
    if default is not None:
        after["default-runtime"] = default
    return after


def record_text(record: dict[str, Any] | None) -> str:
    return "" if record is None else json.dumps(record, sort_keys=True) + "\n"


def smoke_message(image: str, command: list[str], rc: int, stderr: str, config_path: str) -> str:
    """The failure the role's smoke assert gave (tasks/smoke.yml), word for word."""
    return (
        f"`docker run --gpus all {image} {' '.join(command)}` failed (rc {rc}): {stderr.strip()}. "
        f"Check the driver (nvidia-smi on the host) and the runtime in {config_path}; "
        "set nvidia_toolkit_smoke_enabled=false to skip this check."
    )


def active_state(show: str) -> bool:
    props = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
    return props.get("ActiveState", "") in RUNNING_STATES


# ---------------------------------------------------------------------------------------------
# Reading and writing on the host
# ---------------------------------------------------------------------------------------------


def read_daemon(path: str) -> dict[str, Any]:
    """daemon.json as an object; {} when missing or empty. NvidiaRuntimeError when it is not a JSON object."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(DAEMON_LIMIT + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise NvidiaRuntimeError(f"Reading {path} failed: {exc}") from None
    if not data.strip():
        return {}
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NvidiaRuntimeError(f"{path} is not JSON ({exc}); dockerd would not start with it either") from None
    if not isinstance(value, dict):
        raise NvidiaRuntimeError(f"{path} is not a JSON object; dockerd would not start with it either")
    return value


def read_record(path: str) -> dict[str, Any] | None:
    """The last passed record; None when it is missing or not to be trusted (then the smoke check is due).

    Not trusted: a link anywhere in the path (never followed), another kind of file, not a JSON
    object, or a directory that someone other than root could write.
    """
    try:
        st = _userspace.lstat(os.path.dirname(path))
    except (_userspace.UnsafePath, OSError):
        return None
    if st is None or not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        return None
    record, _problem = _userspace.read_json(path, RECORD_LIMIT)
    return record


def make_root_dir(path: str) -> None:
    """The record's directory, root 0755; created when absent, never followed when it is a link."""
    try:
        st = _userspace.lstat(path)
    except _userspace.UnsafePath as exc:
        raise NvidiaRuntimeError(str(exc)) from None
    if st is None:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o755)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.fchown(fd, 0, 0)
            os.fchmod(fd, 0o755)
        finally:
            os.close(fd)
    elif not stat.S_ISDIR(st.st_mode):
        raise NvidiaRuntimeError(f"{path} is not a directory (a link is never followed): remove it")


def write_record(path: str, text: str) -> None:
    """The record, root 0644, through a temporary file in its directory and a rename (a link is replaced)."""
    directory = os.path.dirname(path)
    make_root_dir(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    try:
        os.fchmod(fd, 0o644)
        os.fchown(fd, 0, 0)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class NvidiaRuntime:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.p = module.params
        self.result: dict[str, Any] = {
            "changed": False,
            "actions": [],
            "runtime_present": False,
            "smoke_ran": False,
            "smoke_rc": None,
        }

    def binary(self, name: str) -> str | None:
        if os.path.isabs(name):
            return name if os.access(name, os.X_OK) else None
        found = self.module.get_bin_path(name)
        return str(found) if found else None

    def run_checked(self, argv: list[str], what: str) -> str:
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            raise NvidiaRuntimeError(f"{what} failed (exit {rc}): {(err or out).strip()[-400:]}")
        return str(out)

    def wanted_record(self) -> dict[str, Any]:
        return {"image": self.p["smoke_image"], "command": self.p["smoke_command"], "packages": self.p["packages"]}

    def read(self) -> tuple[dict[str, Any], dict[str, Any]]:
        daemon = read_daemon(self.p["config_path"])
        runtimes = daemon.get("runtimes")
        record = read_record(self.p["record_path"]) if self.p["smoke_enabled"] else None
        rc, out, _ = self.module.run_command(["systemctl", "show", "docker.service", "--property=ActiveState"])
        current = {
            "runtime_present": isinstance(runtimes, dict) and "nvidia" in runtimes,
            "default_runtime": daemon.get("default-runtime"),
            "docker_active": rc == 0 and active_state(out),
            "record": record,
        }
        return current, daemon

    def configure(self) -> None:
        ctk = self.binary(self.p["nvidia_ctk"])
        if ctk is None:
            raise NvidiaRuntimeError(
                f"{self.p['nvidia_ctk']} was not found: the nvidia-container-toolkit package installs it. "
                "Install the toolkit (the nvidia_toolkit role does, before this task) and run again."
            )
        argv = [ctk, "runtime", "configure", "--runtime=docker", f"--config={self.p['config_path']}"]
        if self.p["set_as_default"]:
            argv.append("--set-as-default")
        self.run_checked(argv, "nvidia-ctk runtime configure")

    def wait_for_docker(self, docker: str) -> None:
        timeout = self.p["restart_timeout"]
        deadline = time.monotonic() + timeout
        while True:
            rc, _, err = self.module.run_command([docker, "info"])
            if rc == 0:
                return
            if time.monotonic() >= deadline:
                raise NvidiaRuntimeError(
                    f"Docker did not answer `docker info` within {timeout} s of its restart: {err.strip()[-400:]}. "
                    "See `journalctl -u docker`."
                )
            time.sleep(1)

    def smoke(self, docker: str) -> None:
        image, command = self.p["smoke_image"], self.p["smoke_command"]
        rc, _, err = self.module.run_command([docker, "run", "--rm", "--gpus", "all", image, *command])
        self.result.update(smoke_ran=True, smoke_rc=rc)
        if rc != 0:
            raise NvidiaRuntimeError(smoke_message(image, command, rc, err or "", self.p["config_path"]))

    def apply(self, actions: list[str], record: dict[str, Any]) -> None:
        docker = self.binary(self.p["docker"]) or self.p["docker"]
        for action in actions:
            if action == "configure_runtime":
                self.configure()
            elif action == "reset_failed":
                # docker.service allows a few starts a minute; its counter may be spent by the docker role.
                self.module.run_command(["systemctl", "reset-failed", "docker.service"])
            elif action == "restart_docker":
                self.run_checked(["systemctl", "restart", "docker.service"], "systemctl restart docker.service")
                self.wait_for_docker(docker)
            elif action == "smoke":
                self.smoke(docker)
            elif action == "record":
                try:
                    write_record(self.p["record_path"], record_text(record))
                except OSError as exc:
                    raise NvidiaRuntimeError(
                        f"Writing the smoke record {self.p['record_path']} failed: {exc}"
                    ) from None

    def check_mode_msg(self, actions: list[str]) -> str:
        parts = []
        if "configure_runtime" in actions:
            parts.append(
                f"{self.p['config_path']} has no nvidia runtime: nvidia-ctk runtime configure would add it"
                if not self.result["runtime_present"]
                else f"nvidia-ctk runtime configure would make nvidia the default runtime in {self.p['config_path']}"
            )
            if self.binary(self.p["nvidia_ctk"]) is None:
                parts.append(f"{self.p['nvidia_ctk']} is not installed yet (the toolkit packages bring it)")
        if "restart_docker" in actions:
            parts.append("Docker would be restarted")
        if "smoke" in actions:
            parts.append(f"the GPU smoke check would run {self.p['smoke_image']}")
        return "; ".join(parts) + "." if parts else ""

    def run(self) -> dict[str, Any]:
        current, daemon = self.read()
        record = self.wanted_record()
        actions = plan(
            current,
            {
                "set_as_default": self.p["set_as_default"],
                "installed_changed": self.p["installed_changed"],
                "smoke_enabled": self.p["smoke_enabled"],
                "smoke_every_run": self.p["smoke_every_run"],
                "record": record,
            },
        )
        self.result.update(
            actions=actions,
            changed=bool(set(actions) - READ_ONLY_ACTIONS),
            runtime_present=current["runtime_present"],
        )
        if self.module.check_mode:
            msg = self.check_mode_msg(actions)
            if msg:
                self.result["msg"] = msg
        else:
            self.apply(actions, record)
        if self.module._diff:
            diff = [
                part
                for part in self.diff(actions, daemon, current["record"], record)
                if part["before"] != part["after"]
            ]
            if diff:
                self.result["diff"] = diff
        return self.result

    def diff(
        self, actions: list[str], daemon: dict[str, Any], old: dict[str, Any] | None, new: dict[str, Any]
    ) -> list[dict[str, str]]:
        before = runtime_view(daemon)
        if "configure_runtime" not in actions:
            after = before
        elif self.module.check_mode:
            after = configured_view(before, self.p["set_as_default"])
        else:
            after = runtime_view(read_daemon(self.p["config_path"]))
        path, record_path = self.p["config_path"], self.p["record_path"]
        return [
            {
                "before": json.dumps(before, indent=4, sort_keys=True) + "\n",
                "after": json.dumps(after, indent=4, sort_keys=True) + "\n",
                "before_header": f"{path} (runtimes)",
                "after_header": f"{path} (runtimes)",
            },
            {
                "before": record_text(old),
                "after": record_text(new) if "record" in actions else record_text(old),
                "before_header": record_path,
                "after_header": record_path,
            },
        ]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "config_path": {"type": "path", "default": "/etc/docker/daemon.json"},
            "set_as_default": {"type": "bool", "default": False},
            "packages": {"type": "dict", "default": {}},
            "installed_changed": {"type": "bool", "default": False},
            "smoke_enabled": {"type": "bool", "default": True},
            "smoke_every_run": {"type": "bool", "default": False},
            "smoke_image": {"type": "str"},
            "smoke_command": {"type": "list", "elements": "str", "default": ["nvidia-smi", "-L"]},
            "record_path": {"type": "path", "default": f"{STATE_DIR}/gpu-smoke.json"},
            "docker": {"type": "str", "default": "docker"},
            "nvidia_ctk": {"type": "str", "default": "nvidia-ctk"},
            "restart_timeout": {"type": "int", "default": 60},
        },
        required_if=[("smoke_enabled", True, ("smoke_image",))],
        supports_check_mode=True,
    )
    p = module.params
    if p["smoke_enabled"] and not p["smoke_command"]:
        module.fail_json(msg="smoke_command must name a command, such as [nvidia-smi, -L]")
    try:
        result = NvidiaRuntime(module).run()
    except NvidiaRuntimeError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
