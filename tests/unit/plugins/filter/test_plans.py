"""plugins/filter/plans.py: the derived variables that were Jinja programs, as filters.

Each variable of roles/*/vars/main.yml that now calls a filter of plans.py (or was only
reformatted) is compared, case by case, with the Jinja it replaced (REFERENCE_YAML, verbatim),
both rendered by ansible-playbook in one run: the variable as the role's vars file defines it
now, and the original expression, with the same inputs. The filters called directly must give
the same values too; where the original failed, so must the variable and the filter.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.plugins.filter.core import to_bool
from ansible_collections.sparkfleet.spark.plugins.filter import plans
from through_ansible import ansible_bin, run_ansible

REPO = Path(__file__).resolve().parents[4]

# The definitions as they were before the filters (git show a107858:roles/<role>/vars/main.yml).
REFERENCE_YAML = r"""
drift_timer_argv: >-
  {{ [drift_timer_executable, 'drift'] + (['--fix'] if drift_timer_fix | bool else [])
     + (['-i'] | product(drift_timer_inventory) | list | flatten)
     + ['--history', drift_timer_history_file, '--playbook-dir', drift_timer_playbook_dir]
     + (['--limit', drift_timer_limit] if drift_timer_limit | length > 0 else []) }}
drift_timer_install_env: >-
  {{ drift_timer_environment | combine({'PIP_DISABLE_PIP_VERSION_CHECK': '1'},
     {'PIP_CERT': drift_timer_ca_bundle, 'SSL_CERT_FILE': drift_timer_ca_bundle,
      'REQUESTS_CA_BUNDLE': drift_timer_ca_bundle} if drift_timer_ca_bundle | length > 0 else {}) }}
drift_timer_collection_plan: >-
  {% set plan = [] %}
  {% for item in drift_timer_collections %}
  {%   if item is match(drift_timer_tarball_pattern) %}
  {%     set manifest = (drift_timer_tarball_manifests.results | selectattr('item', 'equalto', item) | first).stdout | from_json %}
  {%     set _ = plan.append({'requirement': item, 'tarball': true,
           'fqcn': manifest.collection_info.namespace ~ '.' ~ manifest.collection_info.name,
           'version': manifest.collection_info.version, 'checksum': manifest.file_manifest_file.chksum_sha256}) %}
  {%   else %}
  {%     set _ = plan.append({'requirement': item, 'tarball': false, 'fqcn': item.split(':', 1)[0] | trim,
           'spec': (item.split(':', 1)[1] if ':' in item else '') | trim}) %}
  {%   endif %}
  {% endfor %}
  {{ plan | to_json }}
drift_timer_collections_outdated: >-
  {% set outdated = [] %}
  {% for probe in drift_timer_installed_manifests.results %}
  {%   set want = probe.item %}
  {%   set have = (probe.content | b64decode | from_json) if probe.content is defined else {} %}
  {%   set state = namespace(met=have | length > 0) %}
  {%   if state.met and want.tarball %}
  {%     set state.met = have.collection_info.version == want.version
                         and have.file_manifest_file.chksum_sha256 == want.checksum %}
  {%   elif state.met %}
  {%     for constraint in want.spec.split(',') | map('trim') | reject('in', ['', '*']) %}
  {%       set parts = constraint | regex_search(drift_timer_constraint_pattern, '\\1', '\\2') %}
  {%       if parts is none or not (have.collection_info.version is version(parts[1], parts[0] or '==')) %}
  {%         set state.met = false %}
  {%       endif %}
  {%     endfor %}
  {%   endif %}
  {%   if not state.met %}
  {%     set _ = outdated.append(want.requirement) %}
  {%   endif %}
  {% endfor %}
  {{ outdated | to_json }}
drift_timer_pip_installs: >-
  {{ ((drift_timer_pip_plan.stdout | default('{}', true) | from_json).install | default([]))
     | map(attribute='metadata') | map(attribute='name') | zip(
       ((drift_timer_pip_plan.stdout | default('{}', true) | from_json).install | default([]))
       | map(attribute='metadata') | map(attribute='version')) | map('join', '==') | list }}
nvidia_toolkit_package_specs: >-
  {{ nvidia_toolkit_packages
     | map('regex_replace', '$', ('=' ~ nvidia_toolkit_version) if nvidia_toolkit_version | length > 0 else '')
     | list }}
nvidia_toolkit_packages_ok: >-
  {{ nvidia_toolkit_installed | dict2items
     | selectattr('value', 'match', ('^' ~ (nvidia_toolkit_version | regex_escape) ~ '$') if nvidia_toolkit_version | length > 0 else '.')
     | map(attribute='key') | list }}
workspace_xformers_wheels: >-
  {{ ((workspace_wheel_final if workspace_wheel_local.matched | default(0) == 0 else workspace_wheel_local).files
      | default([]) | map(attribute='path') | sort | list)[:1]
     if workspace_xformers_enabled | bool else [] }}
"""  # noqa: E501 - verbatim
REFERENCE: dict[str, str] = yaml.safe_load(REFERENCE_YAML)

VARS_FILES = [REPO / "roles" / role / "vars" / "main.yml" for role in ("drift_timer", "nvidia_toolkit", "workspace")]
# These two are JSON text (the tasks read them with from_json); the others are values.
JSON_TEXT = {"drift_timer_collection_plan", "drift_timer_collections_outdated"}


def b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def manifest(
    namespace: Any = "acme", name: Any = "tools", version: Any = "1.2.0", checksum: Any = "c0ffee"
) -> dict[str, Any]:
    return {
        "collection_info": {"namespace": namespace, "name": name, "version": version},
        "file_manifest_file": {"name": "FILES.json", "chksum_sha256": checksum},
    }


def tar_result(item: str, stdout: str) -> dict[str, Any]:
    """One result of the tar loop (Read the manifests of the collection tarballs)."""
    return {"item": item, "stdout": stdout, "rc": 0, "changed": False, "ansible_loop_var": "item"}


def galaxy(requirement: str, fqcn: str = "acme.tools", spec: str = "") -> dict[str, Any]:
    return {"requirement": requirement, "tarball": False, "fqcn": fqcn, "spec": spec}


def tarball(requirement: str, version: str = "1.2.0", checksum: str = "c0ffee") -> dict[str, Any]:
    return {"requirement": requirement, "tarball": True, "fqcn": "acme.tools", "version": version, "checksum": checksum}


def probe(want: dict[str, Any], content: Any = None, **extra: Any) -> dict[str, Any]:
    """One result of the slurp loop: content when the manifest was read, else a failure."""
    if content is None and not extra:
        return {"item": want, "failed": True, "msg": "file not found", "changed": False}
    return {"item": want, "content": content, "encoding": "base64", "changed": False, **extra}


def pip_report(*pins: tuple[Any, Any]) -> str:
    install = [{"requested": True, "metadata": {"name": name, "version": version}} for name, version in pins]
    return json.dumps({"version": "1", "pip_version": "24.0", "install": install, "environment": {}})


def find(*paths: str, matched: int | None = None) -> dict[str, Any]:
    """A registered ansible.builtin.find result."""
    files = [{"path": path, "mode": "0644"} for path in paths]
    return {
        "files": files,
        "matched": len(paths) if matched is None else matched,
        "examined": len(paths),
        "changed": False,
    }


SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
TAR = "/srv/collections/acme-tools-1.2.0.tar.gz"
MISSING = object()  # an input left undefined

ARGV_DEFAULTS: dict[str, Any] = {
    "drift_timer_executable": "/opt/sparkfleet/venv/bin/sparkfleet",
    "drift_timer_fix": True,
    "drift_timer_inventory": ["/etc/sparkfleet/hosts.yml"],
    "drift_timer_history_file": "/var/lib/sparkfleet/drift.jsonl",
    "drift_timer_playbook_dir": "/opt/sparkfleet/collections/ansible_collections/sparkfleet/spark",
    "drift_timer_limit": "",
}

ARGV_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("defaults", {}),
    ("no-fix", {"drift_timer_fix": False}),
    ("fix-as-string", {"drift_timer_fix": "yes"}),
    ("no-fix-as-string", {"drift_timer_fix": "false"}),
    ("two-inventories", {"drift_timer_inventory": ["/etc/a.yml", "/etc/b"]}),
    ("no-inventory", {"drift_timer_inventory": []}),
    ("limit", {"drift_timer_limit": "sparks:!spark-3"}),
    # flatten drops null entries (validate.yml allows only absolute paths).
    ("inventory-null-entries", {"drift_timer_inventory": ["/a", None, "null", "/b"]}),
]

# (variable, id, inputs): each input is a variable the expression reads; MISSING leaves it undefined.
CASES: list[tuple[str, str, dict[str, Any]]] = [
    # --- drift_timer_argv -------------------------------------------------------------------
    *[("drift_timer_argv", case_id, {**ARGV_DEFAULTS, **inputs}) for case_id, inputs in ARGV_VARIANTS],
    # --- drift_timer_install_env ------------------------------------------------------------
    ("drift_timer_install_env", "nothing", {"drift_timer_environment": {}, "drift_timer_ca_bundle": ""}),
    (
        "drift_timer_install_env",
        "proxy-and-ca",
        {"drift_timer_environment": {"HTTPS_PROXY": "http://p:3128"}, "drift_timer_ca_bundle": "/etc/ssl/corp.pem"},
    ),
    (
        "drift_timer_install_env",
        "settings-win-over-environment",
        {
            "drift_timer_environment": {"PIP_DISABLE_PIP_VERSION_CHECK": "0", "PIP_CERT": "/x", "A": "1"},
            "drift_timer_ca_bundle": "/etc/ssl/corp.pem",
        },
    ),
    (
        "drift_timer_install_env",
        "environment-kept-without-ca",
        {"drift_timer_environment": {"PIP_CERT": "/x", "NO_PROXY": "localhost"}, "drift_timer_ca_bundle": ""},
    ),
    # --- drift_timer_collection_plan --------------------------------------------------------
    (
        "drift_timer_collection_plan",
        "default",
        {"drift_timer_collections": ["sparkfleet.spark:==0.1.0"], "drift_timer_tarball_manifests": MISSING},
    ),
    ("drift_timer_collection_plan", "none", {"drift_timer_collections": [], "drift_timer_tarball_manifests": MISSING}),
    (
        "drift_timer_collection_plan",
        "galaxy-forms",
        {
            "drift_timer_collections": [
                "community.docker",
                "community.docker:>=4.0.0,<5.0.0",
                "a.b: >= 1.0 , <2",
                "a.b:",
                "a.b:==1:2",
                " a.b ",
                "x.tar.gz",
            ],
            "drift_timer_tarball_manifests": {"results": [], "skipped": True},
        },
    ),
    (
        "drift_timer_collection_plan",
        "tarball-and-galaxy",
        {
            "drift_timer_collections": [TAR, "community.docker:==4.8.1"],
            "drift_timer_tarball_manifests": {"results": [tar_result(TAR, json.dumps(manifest()))], "changed": False},
        },
    ),
    (
        "drift_timer_collection_plan",
        "tarballs-matched-by-item",
        {
            "drift_timer_collections": ["/b.tar.gz", "/a.tar.gz", "/b.tar.gz", ".tar.gz"],
            "drift_timer_tarball_manifests": {
                "results": [
                    tar_result("/a.tar.gz", json.dumps(manifest("a", "a", "1.0.0", "aa"))),
                    tar_result("/b.tar.gz", json.dumps(manifest("b", "b", "2.0.0", "bb"))),
                    tar_result("/b.tar.gz", json.dumps(manifest("b", "later", "3.0.0", "b3"))),
                    tar_result(".tar.gz", "  " + json.dumps(manifest("dot", "tar", "0.0.1", "dd")) + "\n"),
                ]
            },
        },
    ),
    (
        "drift_timer_collection_plan",
        "manifest-value-types",
        {
            "drift_timer_collections": ["/t.tar.gz"],
            "drift_timer_tarball_manifests": {
                "results": [tar_result("/t.tar.gz", json.dumps(manifest(7, True, 1.5, None)))]
            },
        },
    ),
    (
        "drift_timer_collection_plan",
        "tarball-without-manifest-fails",
        {
            "drift_timer_collections": [TAR],
            "drift_timer_tarball_manifests": {"results": [tar_result("/other.tar.gz", "{}")]},
        },
    ),
    (
        "drift_timer_collection_plan",
        "tarball-without-results-fails",
        {"drift_timer_collections": [TAR], "drift_timer_tarball_manifests": MISSING},
    ),
    (
        "drift_timer_collection_plan",
        "manifest-without-checksum-fails",
        {
            "drift_timer_collections": [TAR],
            "drift_timer_tarball_manifests": {
                "results": [tar_result(TAR, json.dumps({"collection_info": manifest()["collection_info"]}))]
            },
        },
    ),
    (
        "drift_timer_collection_plan",
        "manifest-not-json-fails",
        {"drift_timer_collections": [TAR], "drift_timer_tarball_manifests": {"results": [tar_result(TAR, "")]}},
    ),
    (
        "drift_timer_collection_plan",
        "manifest-without-name-fails",
        {
            "drift_timer_collections": [TAR],
            "drift_timer_tarball_manifests": {
                "results": [
                    tar_result(TAR, json.dumps({**manifest(), "collection_info": {"namespace": "a", "version": "1"}}))
                ]
            },
        },
    ),
    (
        "drift_timer_collection_plan",
        "manifest-without-version-fails",
        {
            "drift_timer_collections": [TAR],
            "drift_timer_tarball_manifests": {
                "results": [
                    tar_result(TAR, json.dumps({**manifest(), "collection_info": {"namespace": "a", "name": "b"}}))
                ]
            },
        },
    ),
    (
        "drift_timer_collection_plan",
        "collections-as-string",
        {"drift_timer_collections": "a.b", "drift_timer_tarball_manifests": MISSING},
    ),
    (
        "drift_timer_collection_plan",
        "non-string-requirement-fails",
        {"drift_timer_collections": [5], "drift_timer_tarball_manifests": MISSING},
    ),
    (
        "drift_timer_collection_plan",
        "collections-null-fails",
        {"drift_timer_collections": None, "drift_timer_tarball_manifests": MISSING},
    ),
    # --- drift_timer_collections_outdated ---------------------------------------------------
    ("drift_timer_collections_outdated", "none", {"drift_timer_installed_manifests": {"results": []}}),
    (
        "drift_timer_collections_outdated",
        "galaxy-specs",
        {
            "drift_timer_installed_manifests": {
                "results": [
                    probe(galaxy("any"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("star", spec="*"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("empties", spec=" , * ,"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("range-ok", spec=">=1.0.0,<2.0.0"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("range-high", spec=">=1.0.0,<1.2.0"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("exact", spec="==1.2.0"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("bare", spec="1.2.0"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("bare-other", spec="1.2.1"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("not", spec="!=1.2.0"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("spaced", spec="> 1.1 ,  <= 1.2.0"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("loose", spec=">1.2"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("prerelease", spec=">=1.2.0"), b64(manifest(version="1.2.0-beta.1"))),
                    probe(galaxy("unparsed", spec="~=1.2"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("unparsed-then-met", spec="bogus,>=1"), b64(manifest(version="1.2.0"))),
                    probe(galaxy("missing", spec=">=1"), None),
                    probe(galaxy("missing-any"), None),
                    probe(galaxy("empty-manifest"), b64({})),
                    probe(galaxy("int-version", spec=">=1"), b64(manifest(version=2))),
                    probe(galaxy("no-info-no-spec"), b64({"other": 1})),
                ]
            }
        },
    ),
    (
        "drift_timer_collections_outdated",
        "tarballs",
        {
            "drift_timer_installed_manifests": {
                "results": [
                    probe(tarball("/same.tar.gz"), b64(manifest())),
                    probe(tarball("/other-version.tar.gz"), b64(manifest(version="1.1.0"))),
                    probe(tarball("/other-content.tar.gz"), b64(manifest(checksum="bad"))),
                    probe(tarball("/missing.tar.gz"), None),
                    probe(tarball("/empty.tar.gz"), b64({})),
                    probe(tarball("/version-only.tar.gz"), b64({"collection_info": {"version": "0.9"}})),
                ]
            }
        },
    ),
    (
        "drift_timer_collections_outdated",
        "unmet-then-comparison-fails",
        {
            "drift_timer_installed_manifests": {
                "results": [probe(galaxy("x", spec="<1,>=1.0.a"), b64(manifest(version="1.0.0")))]
            }
        },
    ),
    (
        "drift_timer_collections_outdated",
        "empty-installed-version-fails",
        {"drift_timer_installed_manifests": {"results": [probe(galaxy("x", spec=">=1"), b64(manifest(version="")))]}},
    ),
    (
        "drift_timer_collections_outdated",
        "no-collection-info-fails",
        {"drift_timer_installed_manifests": {"results": [probe(galaxy("x", spec=">=1"), b64({"x": 1}))]}},
    ),
    (
        "drift_timer_collections_outdated",
        "tarball-no-checksum-fails",
        {
            "drift_timer_installed_manifests": {
                "results": [probe(tarball("/t"), b64({"collection_info": {"version": "1.2.0"}}))]
            }
        },
    ),
    (
        "drift_timer_collections_outdated",
        "manifest-list-fails",
        {"drift_timer_installed_manifests": {"results": [probe(galaxy("x", spec=">=1"), b64([1]))]}},
    ),
    (
        "drift_timer_collections_outdated",
        "manifest-number-fails",
        {"drift_timer_installed_manifests": {"results": [probe(galaxy("x"), b64(5))]}},
    ),
    (
        "drift_timer_collections_outdated",
        "content-not-base64-fails",
        {"drift_timer_installed_manifests": {"results": [probe(galaxy("x"), "not base64!")]}},
    ),
    (
        "drift_timer_collections_outdated",
        "no-results-fails",
        {"drift_timer_installed_manifests": {"skipped": True}},
    ),
    (
        "drift_timer_collections_outdated",
        "spec-null-fails",
        {"drift_timer_installed_manifests": {"results": [probe(galaxy("x") | {"spec": None}, b64(manifest()))]}},
    ),
    (
        "drift_timer_collections_outdated",
        "content-null-fails",
        {"drift_timer_installed_manifests": {"results": [{"item": galaxy("x"), "content": None}]}},
    ),
    # Not from a loop (every loop result has its item): the Jinja's append of an undefined
    # requirement did nothing; a manifest to compare with it failed.
    (
        "drift_timer_collections_outdated",
        "unmet-without-requirement-passed-over",
        {
            "drift_timer_installed_manifests": {
                "results": [
                    {"failed": True, "msg": "file not found"},
                    "not a result",
                    probe({"tarball": False, "spec": ">=2"}, b64(manifest(version="1.0"))),
                    probe({"tarball": False, "spec": ""}),
                    probe(galaxy("r")),
                ]
            }
        },
    ),
    (
        "drift_timer_collections_outdated",
        "manifest-without-item-fails",
        {"drift_timer_installed_manifests": {"results": [{"content": b64(manifest())}]}},
    ),
    (
        "drift_timer_collections_outdated",
        "entry-without-tarball-fails",
        {"drift_timer_installed_manifests": {"results": [probe({"requirement": "r", "spec": ""}, b64(manifest()))]}},
    ),
    (
        "drift_timer_collections_outdated",
        "tarball-entry-without-version-fails",
        {
            "drift_timer_installed_manifests": {
                "results": [probe({"requirement": "/t", "tarball": True, "checksum": "c0ffee"}, b64(manifest()))]
            }
        },
    ),
    # --- drift_timer_pip_installs -----------------------------------------------------------
    ("drift_timer_pip_installs", "skipped", {"drift_timer_pip_plan": SKIPPED}),
    ("drift_timer_pip_installs", "undefined", {"drift_timer_pip_plan": MISSING}),
    ("drift_timer_pip_installs", "empty-stdout", {"drift_timer_pip_plan": {"rc": 0, "stdout": ""}}),
    ("drift_timer_pip_installs", "nothing-to-install", {"drift_timer_pip_plan": {"rc": 0, "stdout": pip_report()}}),
    (
        "drift_timer_pip_installs",
        "installs",
        {
            "drift_timer_pip_plan": {
                "rc": 0,
                "stdout": pip_report(("sparkfleet", "0.1.0"), ("ansible-core", "2.19.4"), ("PyYAML", "6.0.3")),
            }
        },
    ),
    ("drift_timer_pip_installs", "no-install-key", {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"version": "1"}'}}),
    ("drift_timer_pip_installs", "report-null", {"drift_timer_pip_plan": {"rc": 0, "stdout": "null"}}),
    ("drift_timer_pip_installs", "report-list", {"drift_timer_pip_plan": {"rc": 0, "stdout": "[1, 2]"}}),
    ("drift_timer_pip_installs", "report-string", {"drift_timer_pip_plan": {"rc": 0, "stdout": '"text"'}}),
    (
        "drift_timer_pip_installs",
        "install-empty-mapping",
        {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"install": {}}'}},
    ),
    (
        "drift_timer_pip_installs",
        "install-empty-string",
        {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"install": ""}'}},
    ),
    (
        "drift_timer_pip_installs",
        "odd-value-types",
        {"drift_timer_pip_plan": {"rc": 0, "stdout": pip_report((1, None), (True, 2.5), ("x", [1]))}},
    ),
    # Jinja's map yields nothing for a false value, and fails on a true one it cannot iterate.
    ("drift_timer_pip_installs", "install-null", {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"install": null}'}}),
    ("drift_timer_pip_installs", "install-false", {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"install": false}'}}),
    ("drift_timer_pip_installs", "install-zero", {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"install": 0}'}}),
    (
        "drift_timer_pip_installs",
        "install-true-fails",
        {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"install": true}'}},
    ),
    (
        "drift_timer_pip_installs",
        "install-number-fails",
        {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"install": 3}'}},
    ),
    (
        "drift_timer_pip_installs",
        "install-mapping-fails",
        {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"install": {"a": 1}}'}},
    ),
    (
        "drift_timer_pip_installs",
        "install-string-fails",
        {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"install": "ab"}'}},
    ),
    (
        "drift_timer_pip_installs",
        "no-metadata-fails",
        {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"install": [{"requested": true}]}'}},
    ),
    (
        "drift_timer_pip_installs",
        "no-version-fails",
        {"drift_timer_pip_plan": {"rc": 0, "stdout": '{"install": [{"metadata": {"name": "a"}}]}'}},
    ),
    ("drift_timer_pip_installs", "not-json-fails", {"drift_timer_pip_plan": {"rc": 0, "stdout": "WARNING: x"}}),
    # --- nvidia_toolkit_package_specs -------------------------------------------------------
    *[
        (
            "nvidia_toolkit_package_specs",
            case_id,
            {"nvidia_toolkit_packages": packages, "nvidia_toolkit_version": version},
        )
        for case_id, packages, version in [
            ("newest", ["nvidia-container-toolkit", "libnvidia-container1"], ""),
            ("pinned", ["nvidia-container-toolkit", "libnvidia-container1"], "1.18.0-1"),
            ("epoch-tilde", ["a"], "1:2.0~rc1+b.2"),
            ("no-packages", [], "1.18.0-1"),
            ("name-with-final-newline", ["a\n", "b"], "1.0"),
            ("version-with-final-newline", ["a"], "1.0\n"),
            ("non-string-name", [7], "1.0"),
            ("packages-null", None, "1.0"),
            ("packages-empty-string", "", "1.0"),
            ("version-number-fails", ["a"], 1),
        ]
    ],
    # --- nvidia_toolkit_packages_ok ---------------------------------------------------------
    *[
        (
            "nvidia_toolkit_packages_ok",
            case_id,
            {"nvidia_toolkit_installed": installed, "nvidia_toolkit_version": version},
        )
        for case_id, installed, version in [
            ("none-installed", {}, "1.18.0-1"),
            ("any-version", {"b": "1.17.0-1", "a": "1.18.0-1", "python3-debian": "0.1.49"}, ""),
            ("pinned", {"b": "1.17.0-1", "a": "1.18.0-1", "c": "1.18.0-10", "d": "01.18.0-1"}, "1.18.0-1"),
            ("dots-are-literal", {"a": "1x18", "b": "1.18"}, "1.18"),
            ("regex-characters", {"a": "1:2.0~rc1+b.2", "b": "1:2.0~rc1+bb2"}, "1:2.0~rc1+b.2"),
            ("final-newline", {"a": "1.0\n", "b": "1.0"}, "1.0"),
            ("empty-and-newline-values", {"a": "", "b": "\nx", "c": "x"}, ""),
            ("non-string-values", {"a": 1, "b": 1.5}, "1"),
            ("version-number-fails", {"a": "1"}, 1),
        ]
    ],
    (
        "nvidia_toolkit_packages_ok",
        "not-a-mapping-fails",
        {"nvidia_toolkit_installed": ["a"], "nvidia_toolkit_version": ""},
    ),
    # --- workspace_xformers_wheels ----------------------------------------------------------
    *[
        (
            "workspace_xformers_wheels",
            case_id,
            {"workspace_xformers_enabled": enabled, "workspace_wheel_local": local, "workspace_wheel_final": final},
        )
        for case_id, enabled, local, final in [
            ("disabled", False, MISSING, MISSING),
            ("disabled-as-string", "no", find("/w/xformers-1.whl"), MISSING),
            ("on-the-host", True, find("/w/xformers-b.whl", "/w/xformers-a.whl"), MISSING),
            ("on-the-host-final-ignored", True, find("/w/xformers-b.whl"), find("/w/xformers-a.whl")),
            ("built-or-copied", True, find(), find("/w/xformers-2.whl", "/w/xformers-10.whl")),
            (
                "case-insensitive-order",
                True,
                find(),
                find("/w/xformers-b.whl", "/w/Xformers-a.whl", "/w/xformers-C.whl"),
            ),
            ("stable-on-equal-keys", True, find(), find("/w/X.whl", "/w/x.whl")),
            ("stable-on-equal-keys-reversed", True, find(), find("/w/x.whl", "/w/X.whl")),
            ("nothing-found", True, find(), find()),
            ("final-skipped", True, find(), SKIPPED),
            ("local-skipped", True, SKIPPED, find("/w/xformers-1.whl")),
            ("both-skipped", True, SKIPPED, SKIPPED),
            ("both-undefined", True, MISSING, MISSING),
            ("local-undefined", True, MISSING, find("/w/xformers-1.whl")),
            ("enabled-as-string", "yes", find("/w/xformers-1.whl"), MISSING),
            ("matched-but-no-files", True, find(matched=2), MISSING),
            ("files-without-matched", True, {"files": [{"path": "/w/l.whl"}]}, find("/w/f.whl")),
            ("matched-null", True, {"matched": None, "files": [{"path": "/w/l.whl"}]}, find("/w/f.whl")),
            ("files-null", True, find(), {"files": None}),
            ("files-empty-string", True, find(), {"files": ""}),
            ("files-number-fails", True, find(), {"files": 3}),
            ("file-without-path-fails", True, find(), {"files": [{"mode": "0644"}], "matched": 1}),
        ]
    ],
]


def defined(inputs: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in inputs.items() if value is not MISSING}


# The filter calls each variable makes, on the same inputs (None: no filter, only reformatted).
def _plan(i: dict[str, Any]) -> Any:
    results = i.get("drift_timer_tarball_manifests", {}).get("results", [])
    return plans.collection_plan(i["drift_timer_collections"], results, r"^/|\.tar\.gz$")


def _outdated(i: dict[str, Any]) -> Any:
    return plans.collections_outdated(
        i["drift_timer_installed_manifests"]["results"], r"^(==|!=|>=|<=|>|<)?\s*([0-9][0-9A-Za-z.+-]*)$"
    )


def _pip(i: dict[str, Any]) -> Any:
    return plans.pip_report_installs(i.get("drift_timer_pip_plan", {}).get("stdout") or "{}")


def _wheels(i: dict[str, Any]) -> Any:
    if not to_bool(i["workspace_xformers_enabled"]):
        return []
    return plans.xformers_wheels(i.get("workspace_wheel_local", {}), i.get("workspace_wheel_final", {}))


FILTER_CALLS: dict[str, Callable[[dict[str, Any]], Any] | None] = {
    "drift_timer_argv": None,
    "drift_timer_install_env": None,
    "drift_timer_collection_plan": _plan,
    "drift_timer_collections_outdated": _outdated,
    "drift_timer_pip_installs": _pip,
    "nvidia_toolkit_package_specs": lambda i: plans.apt_package_specs(
        i["nvidia_toolkit_packages"], i["nvidia_toolkit_version"]
    ),
    "nvidia_toolkit_packages_ok": lambda i: plans.installed_at_version(
        i["nvidia_toolkit_installed"], i["nvidia_toolkit_version"]
    ),
    "workspace_xformers_wheels": _wheels,
}


def test_every_variable_has_its_reference_and_cases() -> None:
    assert set(REFERENCE) == set(FILTER_CALLS) == {variable for variable, _, _ in CASES}


def test_patterns_of_the_calls_are_the_roles() -> None:
    drift = yaml.safe_load((REPO / "roles" / "drift_timer" / "vars" / "main.yml").read_text())
    assert drift["drift_timer_tarball_pattern"] == r"^/|\.tar\.gz$"
    assert drift["drift_timer_constraint_pattern"] == r"^(==|!=|>=|<=|>|<)?\s*([0-9][0-9A-Za-z.+-]*)$"


def test_no_jinja_program_in_vars_is_longer_than_three_lines() -> None:
    """The project's rule, for every role: decisions longer than that are Python filters."""
    long = []
    for path in sorted(REPO.glob("roles/*/vars/main.yml")):
        node = yaml.compose(path.read_text())
        for key, value in node.value:
            if isinstance(value, yaml.ScalarNode) and ("{{" in value.value or "{%" in value.value):
                block = value.style in (">", "|")
                if value.end_mark.line - value.start_mark.line + (0 if block else 1) > 3:
                    long.append(f"{path.relative_to(REPO)}: {key.value}")
    assert long == []


# --- the original Jinja and the variables now, through ansible-playbook ---------------------

PLAYBOOK_BIN = ansible_bin("ansible-playbook")


def playbook() -> list[dict[str, Any]]:
    """old/new task pairs, one pair per variable, each looping over the variable's cases."""
    tasks: list[dict[str, Any]] = []
    for variable, reference in REFERENCE.items():
        names = sorted({name for var, _, inputs in CASES if var == variable for name in inputs})
        task_vars = {name: "{{ item." + name + " }}" for name in names}
        for side, msg in (("old", reference), ("new", "{{ " + variable + " }}")):
            tasks.append(
                {
                    "name": f"{side} {variable}",
                    "ansible.builtin.debug": {"msg": "{{ value_under_test }}"},
                    "loop": "{{ cases['" + variable + "'] }}",
                    "ignore_errors": True,
                    "vars": {**task_vars, "value_under_test": msg},
                }
            )
    return [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars_files": [str(path) for path in VARS_FILES],
            "tasks": tasks,
        }
    ]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(side, variable, case id) -> the loop item's result: msg, or failed and msg."""
    if PLAYBOOK_BIN is None:
        pytest.skip("ansible-playbook is not installed")
    tmp_path = tmp_path_factory.mktemp("plans")
    cases: dict[str, list[dict[str, Any]]] = {}
    for variable, _, inputs in CASES:
        cases.setdefault(variable, []).append(defined(inputs))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook(), sort_keys=False, width=1000))
    (tmp_path / "cases.json").write_text(json.dumps({"cases": cases}))
    result = run_ansible(
        [PLAYBOOK_BIN, "-i", "localhost,", "-c", "local", "-e", "@cases.json", "play.yml"],
        tmp_path,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads(result.stdout)
    got: dict[tuple[str, str, str], dict[str, Any]] = {}
    for task in report["plays"][0]["tasks"]:
        side, variable = task["task"]["name"].split(" ", 1)
        ids = [case_id for var, case_id, _ in CASES if var == variable]
        results = task["hosts"]["localhost"]["results"]
        assert len(results) == len(ids), task["task"]["name"]
        for case_id, item in zip(ids, results, strict=True):
            got[side, variable, case_id] = item
    return got


CASE_PARAMS = [
    pytest.param(variable, case_id, inputs, id=f"{variable}-{case_id}") for variable, case_id, inputs in CASES
]
FILTER_CASE_PARAMS = [
    pytest.param(variable, case_id, inputs, id=f"{variable}-{case_id}")
    for variable, case_id, inputs in CASES
    if FILTER_CALLS[variable] is not None
]


def _fails(case_id: str) -> bool:
    return case_id.endswith("-fails")


@pytest.mark.parametrize(("variable", "case_id", "inputs"), CASE_PARAMS)
def test_variable_now_renders_as_the_original(
    rendered: dict[tuple[str, str, str], dict[str, Any]], variable: str, case_id: str, inputs: dict[str, Any]
) -> None:
    old = rendered["old", variable, case_id]
    new = rendered["new", variable, case_id]
    # The table says which cases fail: a reference that started failing (or stopped) shows here.
    assert bool(old.get("failed")) is _fails(case_id), old.get("msg")
    assert bool(new.get("failed")) is _fails(case_id), new.get("msg")
    if _fails(case_id):
        return
    if variable in JSON_TEXT:
        # The old template also rendered the whitespace around its {% %} lines.
        assert isinstance(old["msg"], str) and isinstance(new["msg"], str)
        assert new["msg"] == old["msg"].strip()
    else:
        assert new["msg"] == old["msg"]
        assert type(new["msg"]) is type(old["msg"])


@pytest.mark.parametrize(("variable", "case_id", "inputs"), FILTER_CASE_PARAMS)
def test_filter_gives_what_the_original_rendered(
    rendered: dict[tuple[str, str, str], dict[str, Any]], variable: str, case_id: str, inputs: dict[str, Any]
) -> None:
    call = FILTER_CALLS[variable]
    assert call is not None
    if _fails(case_id):
        with pytest.raises(Exception):  # noqa: B017 - Ansible fails on any error of a filter
            call(defined(inputs))
        return
    value = call(defined(inputs))
    old = rendered["old", variable, case_id]["msg"]
    if variable in JSON_TEXT:
        assert json.dumps(value) == old.strip()
        assert value == json.loads(old)
    else:
        assert value == old


# --- the filters on their own -----------------------------------------------------------------

TARBALL_PATTERN = r"^/|\.tar\.gz$"
CONSTRAINT_PATTERN = r"^(==|!=|>=|<=|>|<)?\s*([0-9][0-9A-Za-z.+-]*)$"


def test_filter_module_and_docs() -> None:
    filters = plans.FilterModule().filters()
    assert filters == {
        "collection_plan": plans.collection_plan,
        "collections_outdated": plans.collections_outdated,
        "pip_report_installs": plans.pip_report_installs,
        "apt_package_specs": plans.apt_package_specs,
        "installed_at_version": plans.installed_at_version,
        "xformers_wheels": plans.xformers_wheels,
    }
    for name, function in filters.items():
        doc = yaml.safe_load((REPO / "plugins" / "filter" / f"{name}.yml").read_text())
        assert doc["DOCUMENTATION"]["name"] == name
        positional = [arg.strip() for arg in doc["DOCUMENTATION"]["positional"].split(",")]
        assert len(positional) == function.__code__.co_argcount, name
        assert set(doc["DOCUMENTATION"]["options"]) == set(positional), name
        assert function.__doc__, name


@pytest.mark.parametrize(
    ("collections", "results", "expected"),
    [
        ([], [], []),
        (
            ["a.b", "a.b:>=1.0, <2", "a.b:", " a.b : 1:2 "],
            [],
            [
                {"requirement": "a.b", "tarball": False, "fqcn": "a.b", "spec": ""},
                {"requirement": "a.b:>=1.0, <2", "tarball": False, "fqcn": "a.b", "spec": ">=1.0, <2"},
                {"requirement": "a.b:", "tarball": False, "fqcn": "a.b", "spec": ""},
                {"requirement": " a.b : 1:2 ", "tarball": False, "fqcn": "a.b", "spec": "1:2"},
            ],
        ),
        # re.match: a relative name ending in .tar.gz is no tarball, ".tar.gz" itself is.
        (["x.tar.gz"], [], [{"requirement": "x.tar.gz", "tarball": False, "fqcn": "x.tar.gz", "spec": ""}]),
        (
            [TAR, ".tar.gz"],
            [
                tar_result("/else.tar.gz", "not read"),
                tar_result(TAR, json.dumps(manifest())),
                tar_result(TAR, json.dumps(manifest(version="9"))),
                tar_result(".tar.gz", json.dumps(manifest("n", 1, 2, "x"))),
            ],
            [
                {"requirement": TAR, "tarball": True, "fqcn": "acme.tools", "version": "1.2.0", "checksum": "c0ffee"},
                {"requirement": ".tar.gz", "tarball": True, "fqcn": "n.1", "version": 2, "checksum": "x"},
            ],
        ),
    ],
)
def test_collection_plan(collections: list[str], results: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert plans.collection_plan(collections, results, TARBALL_PATTERN) == expected


@pytest.mark.parametrize(
    "results",
    [
        [],
        [tar_result("/other.tar.gz", json.dumps(manifest()))],
        [tar_result(TAR, json.dumps({"collection_info": {"namespace": "a", "name": "b", "version": "1"}}))],
        [tar_result(TAR, json.dumps({"file_manifest_file": {"chksum_sha256": "c"}}))],
        [tar_result(TAR, "[]")],
    ],
)
def test_collection_plan_raises_without_a_manifest(results: list[dict[str, Any]]) -> None:
    with pytest.raises(AnsibleFilterError):
        plans.collection_plan([TAR], results, TARBALL_PATTERN)


@pytest.mark.parametrize(
    ("want", "have", "outdated"),
    [
        (galaxy("r"), None, True),
        (galaxy("r"), {}, True),
        (galaxy("r"), {"anything": 1}, False),
        (galaxy("r"), [1], False),
        (galaxy("r", spec="*"), manifest(version="0.0.1"), False),
        (galaxy("r", spec=" , *,"), manifest(version="0.0.1"), False),
        (galaxy("r", spec="1.2.0"), manifest(version="1.2.0"), False),
        (galaxy("r", spec="1.2"), manifest(version="1.2.0"), True),
        (galaxy("r", spec="==1.2.0"), manifest(version="1.2.0"), False),
        (galaxy("r", spec="!=1.2.0"), manifest(version="1.2.0"), True),
        (galaxy("r", spec=">= 1.0.0, < 2"), manifest(version="1.10.0"), False),
        (galaxy("r", spec=">=1.0.0,<1.9"), manifest(version="1.10.0"), True),
        (galaxy("r", spec=">1.2"), manifest(version="1.2.0"), False),
        (galaxy("r", spec="~=1.2"), manifest(version="1.2.0"), True),
        (galaxy("r", spec="latest"), manifest(version="1.2.0"), True),
        (galaxy("r", spec="bogus,>=1"), manifest(version="1.2.0"), True),
        (galaxy("r", spec=">=1"), manifest(version=2), False),
        (tarball("r"), manifest(), False),
        (tarball("r"), manifest(version="1.2.1"), True),
        (tarball("r"), manifest(checksum="other"), True),
        (tarball("r"), {"collection_info": {"version": "0.1"}}, True),
        (tarball("r", version="1"), manifest(version=1), True),
    ],
)
def test_collections_outdated(want: dict[str, Any], have: Any, outdated: bool) -> None:
    result = probe(want) if have is None else probe(want, b64(have))
    assert plans.collections_outdated([result], CONSTRAINT_PATTERN) == (["r"] if outdated else [])


@pytest.mark.parametrize(
    ("want", "have"),
    [
        (galaxy("r", spec=">=1"), {"x": 1}),
        (galaxy("r", spec=">=1"), manifest(version="")),
        (galaxy("r", spec=">=1"), manifest(version=None)),
        # Every constraint is compared, also after one that is not met.
        (galaxy("r", spec="<1,>=1.0.a"), manifest(version="1.0.0")),
        (tarball("r"), {"collection_info": {"version": "1.2.0"}}),
        (galaxy("r", spec=">=1"), [1]),
        (galaxy("r"), 5),
        (galaxy("r", spec=">=1"), "text"),
    ],
)
def test_collections_outdated_raises(want: dict[str, Any], have: Any) -> None:
    with pytest.raises(Exception):  # noqa: B017 - AnsibleFilterError, TypeError: Ansible fails the task either way
        plans.collections_outdated([probe(want, b64(have))], CONSTRAINT_PATTERN)


def test_collections_outdated_keeps_order_and_passes_over_results_without_an_entry() -> None:
    results = [probe(galaxy("b")), {"failed": True}, probe(galaxy("a")), probe(galaxy("c"), b64(manifest()))]
    assert plans.collections_outdated(results, CONSTRAINT_PATTERN) == ["b", "a"]


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ("{}", []),
        (pip_report(), []),
        (pip_report(("b", "2"), ("a", "1.0")), ["b==2", "a==1.0"]),
        (pip_report((1, None), (True, 2.5)), ["1==None", "True==2.5"]),
        ('{"install": null}', []),
        ('{"install": ""}', []),
        ('{"install": {}}', []),
        ("null", []),
        ("[1]", []),
        ('"text"', []),
    ],
)
def test_pip_report_installs(report: str, expected: list[str]) -> None:
    assert plans.pip_report_installs(report) == expected


@pytest.mark.parametrize(
    "report",
    ["", "not json", '{"install": true}', '{"install": [{}]}', '{"install": [{"metadata": {"version": "1"}}]}'],
)
def test_pip_report_installs_raises(report: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 - any error fails the task
        plans.pip_report_installs(report)


@pytest.mark.parametrize(
    ("packages", "version", "expected"),
    [
        (["a", "b"], "", ["a", "b"]),
        (["a", "b"], "1.18.0-1", ["a=1.18.0-1", "b=1.18.0-1"]),
        ([], "1", []),
        (None, "1", []),
        ([3], "1", ["3=1"]),
        # re's $ also matches before a final newline, as in the regex_replace this replaces.
        (["a\n"], "1", ["a=1\n=1"]),
    ],
)
def test_apt_package_specs(packages: Any, version: str, expected: list[str]) -> None:
    assert plans.apt_package_specs(packages, version) == expected


@pytest.mark.parametrize(
    ("installed", "version", "expected"),
    [
        ({}, "", []),
        ({"b": "1", "a": "2", "c": ""}, "", ["b", "a"]),
        ({"b": "1.18.0-1", "a": "1.18.0-10", "c": "1x18.0-1", "d": "1.18.0-1\n"}, "1.18.0-1", ["b", "d"]),
        ({"a": "1:2.0~rc1+b", "b": "1:2.0~rc1+bb"}, "1:2.0~rc1+b", ["a"]),
        ({"a": "\nx"}, "", []),
    ],
)
def test_installed_at_version(installed: dict[str, Any], version: str, expected: list[str]) -> None:
    assert plans.installed_at_version(installed, version) == expected


def test_installed_at_version_needs_a_mapping() -> None:
    with pytest.raises(AnsibleFilterError):
        plans.installed_at_version(["a"], "")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("local", "final", "expected"),
    [
        ({}, {}, []),
        (SKIPPED, SKIPPED, []),
        (find("/h/b.whl", "/h/a.whl"), find("/c/0.whl"), ["/h/a.whl"]),
        (find(), find("/c/b.whl", "/c/A.whl", "/c/a.whl"), ["/c/A.whl"]),
        (find(), find("/c/a.whl", "/c/A.whl"), ["/c/a.whl"]),
        (find(), find("/c/b.whl", "/c/C.whl"), ["/c/b.whl"]),
        (SKIPPED, find("/c/x.whl"), ["/c/x.whl"]),
        ({"matched": None, "files": [{"path": "/h/x.whl"}]}, find("/c/y.whl"), ["/h/x.whl"]),
        (find(matched=1), find("/c/y.whl"), []),
        (find(), {"files": None}, []),
    ],
)
def test_xformers_wheels(local: dict[str, Any], final: dict[str, Any], expected: list[str]) -> None:
    assert plans.xformers_wheels(local, final) == expected


def test_xformers_wheels_needs_paths() -> None:
    with pytest.raises(AnsibleFilterError):
        plans.xformers_wheels({}, {"files": [{"mode": "0644"}]})
