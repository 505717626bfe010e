# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's plugin shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
name: name
author: sparkfleet maintainers (@sparkfleet)
version_added: 0.1.0
short_description: A name sparkfleet's parts share (state file, unit, project path), from its one definition
description:
  - Returns names defined once in C(plugins/module_utils/_names.py), so that roles, the CLI's status playbook,
    verify and bench agree on them.
  - "Constants: C(state_dir), C(state_file), C(image_info_dir), C(venv_link), C(venvs_dir), C(stamp_file),
    C(lock_file), C(jupyter_unit_prefix)."
  - "Functions, with keyword arguments: C(jupyter_unit) (C(project)), C(project_path) (C(home), C(project),
    optional C(project_dir)), C(stamp_path) (C(project_dir))."
options:
  _terms:
    description: The names wanted.
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: The state file
  ansible.builtin.debug:
    msg: "{{ lookup('sparkfleet.spark.name', 'state_file') }}"

- name: The Jupyter unit of a project
  ansible.builtin.debug:
    msg: "{{ lookup('sparkfleet.spark.name', 'jupyter_unit', project='spark-project') }}"
"""

RETURN = r"""
_raw:
  description: One value per term.
  type: list
  elements: str
"""

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.sparkfleet.spark.plugins.module_utils._names import FUNCTIONS, NAMES


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        values = []
        for term in terms:
            if term in NAMES:
                if kwargs:
                    raise AnsibleLookupError(f"sparkfleet.spark.name: {term} takes no arguments, got {sorted(kwargs)}")
                values.append(NAMES[term])
            elif term in FUNCTIONS:
                try:
                    values.append(FUNCTIONS[term](**{k: str(v) for k, v in kwargs.items()}))
                except TypeError as exc:
                    raise AnsibleLookupError(f"sparkfleet.spark.name: {term}: {exc}") from exc
            else:
                known = ", ".join(sorted([*NAMES, *FUNCTIONS]))
                raise AnsibleLookupError(f"sparkfleet.spark.name: unknown name {term!r}; known: {known}")
        return values
