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

import os
from typing import Any, NoReturn

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.spark.plugins.module_utils import _daemon_json
from ansible_collections.sparkfleet.spark.plugins.module_utils._daemon_json import (
    NOT_AN_OBJECT,
    DaemonJson,
    DaemonJsonError,
    merge,
    render,
)
from ansible_collections.sparkfleet.spark.plugins.module_utils._daemon_json import changes as plan

__all__ = ["NOT_AN_OBJECT", "main", "merge", "plan", "render", "run_validate"]


def run_validate(module: AnsibleModule, dockerd: str, path: str) -> tuple[int, str, str]:
    """`dockerd --validate --config-file path`: (rc, stdout, stderr). Tests replace this."""
    return _daemon_json.run_validate(module, dockerd, path)


class DaemonConfig:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.path: str = module.params["path"]
        self.options: dict[str, Any] = module.params["options"]
        self.validate: bool = module.params["validate"]
        # The validator is looked up at each call, so a test's replacement of run_validate counts.
        self.file = DaemonJson(
            module,
            self.path,
            self.validate,
            module.params["dockerd"] or module.get_bin_path("dockerd"),
            validator=lambda m, dockerd, path: run_validate(m, dockerd, path),
        )
        self.actions: list[str] = []

    def fail(self, msg: str, **kwargs: Any) -> NoReturn:
        self.module.fail_json(msg=msg, changed=False, path=self.path, actions=self.actions, **kwargs)
        raise SystemExit(1)  # not reached: fail_json exits (its annotation does not say so)

    def run(self) -> dict[str, Any]:
        try:
            return self.reconcile()
        except DaemonJsonError as exc:
            self.fail(exc.msg, **exc.extra)

    def reconcile(self) -> dict[str, Any]:
        existing, before = self.file.read()
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
            if self.validate and self.file.validator_ready():
                # The candidate goes to the module's own temporary directory: a check writes nothing beside path.
                self.file.write(after, self.module.tmpdir, install=False)
            return results
        if self.validate:
            self.file.validator_ready()
        self.file.write(after, os.path.dirname(self.path) or ".", install=True)
        return results


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
