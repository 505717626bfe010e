#!/usr/bin/python
# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's module shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_engine
short_description: Reconcile the Docker engine - packages, daemon.json, service, docker group - in one task
version_added: 0.2.0
description:
  - Reads in one go whether C(dockerd) is installed (any packaging - DGX OS ships docker-ce, which is kept; nothing is
    installed when an engine is present), which of O(python_packages) dpkg knows as installed, the C(docker) group's
    members, O(daemon_config_path), and C(docker.service)'s state in systemd (C(systemctl show)).
  - Compares that with what is wanted in a pure function (C(plan)), and applies only the difference - C(apt-get install)
    the engine and the missing Python libraries (one C(apt-get update) first, only when something is installed), merge
    O(daemon_options) into daemon.json, enable or disable, start or stop, restart (only when daemon.json changed and the
    engine runs, after C(systemctl reset-failed)), and add the missing O(users) to the C(docker) group.
  - daemon.json is handled as M(sparkfleet.spark.docker_daemon_config) does (the same code) - merged key by key so keys
    other tools own (the C(nvidia) runtime) are kept, compared as data, checked with C(dockerd --validate) before it is
    written, replaced atomically (root, 0644).
  - Every command runs as an argument list, never through a shell; apt runs with C(DEBIAN_FRONTEND=noninteractive) and
    each apt step is tried three times, ten seconds apart, before the task fails naming the mirror apt could not reach.
  - A fresh install counts as a running, enabled engine (Debian's and Ubuntu's packages start and enable it), so a
    daemon.json written right after the install restarts the engine, and O(service_state=stopped) stops it.
author:
  - sparkfleet maintainers (@sparkfleet)
attributes:
  check_mode:
    support: full
    description: Writes nothing and runs no apt, systemctl or gpasswd; reports the actions a real run would take. With
      an engine present, the merged daemon.json is checked by dockerd (as a temporary file, removed afterwards). On a
      host without an engine, reports that it would be installed, the service enabled and started, and the users added
      (changed), never failing for the missing C(docker.service) or C(docker) group.
  diff_mode:
    support: full
    description: daemon.json's text before and after.
  idempotent:
    support: full
options:
  packages:
    description: Packages installed only when no C(dockerd) is found.
    type: list
    elements: str
    default: [docker.io]
  python_packages:
    description: Debian packages of the Python libraries the C(community.docker) modules need on the host; those dpkg
      does not list as installed are installed.
    type: list
    elements: str
    default: [python3-requests]
  daemon_options:
    description: Keys merged recursively into daemon.json, as dockerd spells them; lists and other values replace.
    type: dict
    default: {}
  daemon_config_path:
    description: The daemon's configuration file; it must be a regular file owned by root holding a JSON object, or
      missing.
    type: path
    default: /etc/docker/daemon.json
  daemon_validate:
    description: Check the merged daemon.json with C(dockerd --validate) (Docker 23 or newer) before it is written;
      V(false) writes it unvalidated, with a warning.
    type: bool
    default: true
  dockerd:
    description: The C(dockerd) binary whose presence means an engine is installed, and which validates daemon.json.
      Defaults to C(dockerd) found on the C(PATH) (and in C(/sbin), C(/usr/sbin), C(/usr/local/sbin)).
    type: path
  service_enabled:
    description: Whether C(docker.service) starts at boot.
    type: bool
    default: true
  service_state:
    description: The state of C(docker.service) after the run.
    type: str
    choices: [started, stopped]
    default: started
  users:
    description: Existing users added to the C(docker) group; an unknown user fails the task before any change.
    type: list
    elements: str
    default: []
seealso:
  - module: sparkfleet.spark.docker_daemon_config
"""

EXAMPLES = r"""
- name: Docker engine present, configured, running, with its users
  sparkfleet.spark.docker_engine:
    packages: [docker.io]
    python_packages: [python3-requests]
    daemon_options:
      log-opts:
        max-size: 50m
    users: [spark]
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be), in order.
  returned: always
  type: list
  elements: str
  sample: [install_python_libs, write_daemon_json, reset_failed, restart, "add_user:spark"]
engine_present:
  description: Whether C(dockerd) was found before this run.
  returned: always
  type: bool
daemon_config:
  description: The merged daemon configuration, as it is (or, in check mode, would be) in O(daemon_config_path).
  returned: success
  type: dict
  sample: {"log-opts": {"max-size": "50m"}, "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}
daemon_changes:
  description: The keys of daemon.json that were (or would be) set or removed, one line each.
  returned: success
  type: list
  elements: str
  sample: ['set "log-opts"."max-size": "50m"']
users_added:
  description: The users added (or, in check mode, that would be added) to the docker group.
  returned: always
  type: list
  elements: str
done:
  description: The actions completed before the failure.
  returned: failed
  type: list
  elements: str
dockerd_output:
  description: When dockerd refused the merged daemon.json, the last lines of what it printed.
  returned: failed
  type: list
  elements: str
msg:
  description: In check mode on a host without an engine, what the install would set up.
  returned: sometimes
  type: str
"""

import grp
import os
import pwd
import re
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.spark.plugins.module_utils._daemon_json import (
    DaemonJson,
    DaemonJsonError,
    changes,
    merge,
    render,
)

GROUP = "docker"
UNIT = "docker.service"
ENABLED_STATES = {"enabled", "enabled-runtime", "static", "alias", "indirect", "generated"}
RUNNING_STATES = {"active", "activating", "reloading"}
APT_ATTEMPTS = 3
APT_DELAY = 10
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
# Keep a changed config file the package ships rather than ask (there is no one to ask).
APT_INSTALL = ["-y", "-q", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "install"]
# Debian package names (policy 5.6.1), optionally with an architecture and a version.
PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?")
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
URL_RE = re.compile(r"(?:https?|ftp)://[^\s'\"]+")


class EngineError(Exception):
    """A failure to report, with extra keys for the result."""

    def __init__(self, msg: str, **extra: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


# ---------------------------------------------------------------------------------------------
# The pure part: what to do, from what is and what is wanted
# ---------------------------------------------------------------------------------------------


def plan(current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    """The actions, in order, that take `current` to `desired`.

    current: engine_present, enabled, active (bools; enabled and active are False without an
      engine), python_missing (package names), daemon_changes (the lines that differ in
      daemon.json), members (the docker group's members, or None when there is no group).
    desired: enabled (bool), state ('started' | 'stopped'), users (names).
    """
    actions: list[str] = []
    install = not current["engine_present"]
    if install:
        actions.append("install_engine")
    if current["python_missing"]:
        actions.append("install_python_libs")
    daemon_changed = bool(current["daemon_changes"])
    if daemon_changed:
        actions.append("write_daemon_json")
    # The distribution's package enables and starts the engine it installs, before daemon.json is written.
    enabled = current["enabled"] or install
    running = current["active"] or install
    if desired["enabled"] and not current["enabled"]:
        actions.append("enable")
    elif not desired["enabled"] and enabled:
        actions.append("disable")
    if desired["state"] == "started":
        if daemon_changed and running:
            actions += ["reset_failed", "restart"]
        elif not current["active"]:
            actions.append("start")
    elif running:
        actions.append("stop")
    members = current["members"] or []
    actions += [f"add_user:{user}" for user in dict.fromkeys(desired["users"]) if user not in members]
    return actions


def systemd_state(show: str) -> dict[str, bool]:
    """enabled and active from `systemctl show` output (KEY=VALUE lines)."""
    props = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
    return {
        "enabled": props.get("UnitFileState", "") in ENABLED_STATES,
        "active": props.get("ActiveState", "") in RUNNING_STATES,
    }


def installed_packages(dpkg_output: str) -> set[str]:
    """The names dpkg-query lists as installed ('NAME STATUS' lines)."""
    found = set()
    for line in dpkg_output.splitlines():
        words = line.split()
        if len(words) == 2 and words[1] == "installed":
            found.add(words[0])
    return found


def package_name(spec: str) -> str:
    """python3-requests:arm64=2.31.0 -> python3-requests."""
    return re.split(r"[:=]", spec, maxsplit=1)[0]


def apt_failure(what: str, rc: int, out: str, err: str) -> str:
    said = (err.strip() or out.strip())[-600:]
    mirrors = list(dict.fromkeys(URL_RE.findall(f"{err}\n{out}")))[:3]
    where = (
        f"apt could not use {', '.join(mirrors)}: check that mirror, or the host's network and proxy"
        if mirrors
        else "check the host's apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d) and its network"
    )
    return f"{what} failed {APT_ATTEMPTS} times (last exit {rc}): {said or 'no message'}. {where}."


def check_mode_message(desired: dict[str, Any], users: list[str]) -> str:
    state = desired["state"] + (" and enabled" if desired["enabled"] else "")
    added = f", and {', '.join(users)} added to the docker group" if users else ""
    return f"docker.service would be {state} once the engine is installed{added}."


# ---------------------------------------------------------------------------------------------
# Reading and changing the host
# ---------------------------------------------------------------------------------------------


def group_members(name: str) -> list[str] | None:
    """The group's members, those whose primary group it is included; None when there is no such group."""
    try:
        group = grp.getgrnam(name)
    except KeyError:
        return None
    members = set(group.gr_mem)
    members.update(user.pw_name for user in pwd.getpwall() if user.pw_gid == group.gr_gid)
    return sorted(members)


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class DockerEngine:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.p = module.params
        self.path: str = self.p["daemon_config_path"]
        self.file = DaemonJson(module, self.path, self.p["daemon_validate"], self.find_dockerd())
        self.desired = {
            "enabled": self.p["service_enabled"],
            "state": self.p["service_state"],
            "users": self.p["users"],
        }
        self.done: list[str] = []
        self.result: dict[str, Any] = {"changed": False, "actions": [], "engine_present": False, "users_added": []}

    def find_dockerd(self) -> str | None:
        given = self.p["dockerd"]
        if given:
            return given if os.path.isfile(given) and os.access(given, os.X_OK) else None
        found = self.module.get_bin_path("dockerd")
        return str(found) if found else None

    def run_checked(self, argv: list[str], what: str) -> str:
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            raise EngineError(f"{what} failed (exit {rc}): {(err or out).strip()[-400:]}")
        return str(out)

    def python_missing(self) -> list[str]:
        wanted = self.p["python_packages"]
        if not wanted:
            return []
        rc, out, err = self.module.run_command(
            ["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Status}\\n", *map(package_name, wanted)]
        )
        if rc not in (0, 1):  # 1: some package is unknown to dpkg, which is an answer too
            raise EngineError(f"dpkg-query failed (exit {rc}): {(err or out).strip()[-400:]}")
        installed = installed_packages(out)
        return [spec for spec in wanted if package_name(spec) not in installed]

    def read(self) -> dict[str, Any]:
        engine = self.file.dockerd is not None
        existing, before = self.file.read()
        merged = merge(existing, self.p["daemon_options"])
        state = {"enabled": False, "active": False}
        if engine:
            show = self.run_checked(
                ["systemctl", "show", UNIT, "--property=UnitFileState,ActiveState"], f"systemctl show {UNIT}"
            )
            state = systemd_state(show)
        self.result["engine_present"] = engine
        return {
            "engine_present": engine,
            "python_missing": self.python_missing(),
            "existing": existing,
            "before": before,
            "merged": merged,
            "daemon_changes": changes(existing, merged),
            "members": group_members(GROUP),
            **state,
        }

    def apt(self, words: list[str], what: str) -> None:
        argv = ["apt-get", *words]
        for attempt in range(1, APT_ATTEMPTS + 1):
            rc, out, err = self.module.run_command(argv, environ_update=APT_ENV)
            if rc == 0:
                return
            if attempt < APT_ATTEMPTS:
                time.sleep(APT_DELAY)
        raise EngineError(apt_failure(what, rc, out, err))

    def install(self, packages: list[str]) -> None:
        if not any(action.startswith("install_") for action in self.done):
            self.apt(["-q", "update"], "apt-get update")
        self.apt([*APT_INSTALL, *packages], f"apt-get install {' '.join(packages)}")

    def write_daemon_json(self, text: str, validated: bool) -> None:
        directory = os.path.dirname(self.path) or "."
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755)
        validate = self.file.validate and not validated
        if validate:
            self.file.dockerd = self.find_dockerd()  # the engine may have been installed by this run
            self.file.validator_ready()
        self.file.write(text, directory, install=True, validate=validate)

    def apply(self, actions: list[str], current: dict[str, Any], text: str, validated: bool) -> None:
        for action in actions:
            if action == "install_engine":
                self.install(self.p["packages"])
            elif action == "install_python_libs":
                self.install(current["python_missing"])
            elif action == "write_daemon_json":
                self.write_daemon_json(text, validated)
            elif action == "reset_failed":
                # Docker allows a few starts a minute; a converge may restart it more than once.
                self.module.run_command(["systemctl", "reset-failed", UNIT])
            elif action in ("enable", "disable", "start", "stop", "restart"):
                self.run_checked(["systemctl", action, UNIT], f"systemctl {action} {UNIT}")
            elif action.startswith("add_user:"):
                user = action.split(":", 1)[1]
                self.run_checked(["gpasswd", "-a", user, GROUP], f"Adding {user} to the {GROUP} group")
            self.done.append(action)

    def run(self) -> dict[str, Any]:
        unknown = [user for user in self.p["users"] if not user_exists(user)]
        if unknown:
            raise EngineError(
                f"docker_users lists user(s) that do not exist on this host: {', '.join(unknown)}. "
                "Create them first, or remove them from docker_users."
            )
        current = self.read()
        actions = plan(current, self.desired)
        try:
            text = render(current["merged"]) if current["daemon_changes"] else current["before"] or ""
        except (TypeError, ValueError) as exc:
            raise EngineError(f"docker_daemon_options cannot be written as JSON: {exc}") from None
        users = [action.split(":", 1)[1] for action in actions if action.startswith("add_user:")]
        self.result.update(
            changed=bool(actions),
            actions=actions,
            daemon_config=current["merged"],
            daemon_changes=current["daemon_changes"],
            users_added=users,
        )
        if self.module._diff:
            self.result["diff"] = {
                "before": current["before"] or "",
                "after": text,
                "before_header": self.path,
                "after_header": self.path,
            }
        if self.module.check_mode and not current["engine_present"]:
            self.result["msg"] = check_mode_message(self.desired, users)
        validated = False
        if "write_daemon_json" in actions:
            if not self.file.validate:
                would = "would be " if self.module.check_mode else ""
                self.module.warn(f"daemon.json {would}written without validation")
            elif current["engine_present"] and self.file.validator_ready():
                # Checked before any change, as a candidate in the module's own temporary directory.
                self.file.write(text, self.module.tmpdir, install=False)
                validated = True
            elif self.module.check_mode:
                self.module.warn("the engine is not installed yet; the merged daemon.json could not be validated")
        if not self.module.check_mode:
            self.apply(actions, current, text, validated)
        return self.result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": ["docker.io"]},
            "python_packages": {"type": "list", "elements": "str", "default": ["python3-requests"]},
            "daemon_options": {"type": "dict", "default": {}},
            "daemon_config_path": {"type": "path", "default": "/etc/docker/daemon.json"},
            "daemon_validate": {"type": "bool", "default": True},
            "dockerd": {"type": "path"},
            "service_enabled": {"type": "bool", "default": True},
            "service_state": {"type": "str", "choices": ["started", "stopped"], "default": "started"},
            "users": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not p["packages"]:
        module.fail_json(msg="packages must name at least one package (the engine installed when none is present)")
    for key in ("packages", "python_packages"):
        bad = [name for name in p[key] if not PACKAGE_RE.fullmatch(name)]
        if bad:
            module.fail_json(msg=f"{key}: {', '.join(map(repr, bad))} is not a Debian package name")
    bad = [name for name in p["users"] if not USER_RE.fullmatch(name)]
    if bad:
        module.fail_json(msg=f"users: {', '.join(map(repr, bad))} is not a user name")
    engine = DockerEngine(module)
    try:
        result = engine.run()
    except (EngineError, DaemonJsonError) as exc:
        module.fail_json(
            msg=exc.msg,
            changed=bool(engine.done),
            actions=engine.result["actions"],
            done=engine.done,
            **exc.extra,
        )
    except OSError as exc:
        module.fail_json(msg=f"{exc}", changed=bool(engine.done), actions=engine.result["actions"], done=engine.done)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
