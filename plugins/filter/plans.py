# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""What a role installs, worked out from its settings and its read-only probes.

Each filter is the logic of one derived variable of a role's ``vars/main.yml`` that was once a
Jinja program, written so that it gives the same values, of the same types, as that program did
(tests/unit/plugins/filter/test_plans.py renders the old Jinja through Ansible and compares):

- ``collection_plan`` and ``collections_outdated`` (role drift_timer): which collections
  ansible-galaxy installs, each wanted copy compared with the installed one.
- ``pip_report_installs`` (role drift_timer): what ``pip install --dry-run --report -`` would install.
- ``apt_package_specs`` and ``installed_at_version`` (role nvidia_toolkit): apt's ``name=version``
  specs and the packages already installed at the pinned version.
- ``xformers_wheels`` (role workspace): the wheel the venv installs.

Where the Jinja looked up a key that is missing (``manifest.collection_info`` of a manifest
without one), Ansible failed the task; these filters raise AnsibleFilterError there. Where the
Jinja had a ``default``, they fall back the same way.
"""

from __future__ import annotations

import base64
import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.module_utils.compat.version import LooseVersion

_MISSING = object()


def _attr(obj: Any, name: str, where: str) -> Any:
    """``obj.name`` as a Jinja lookup that Ansible fails on when the key is missing."""
    value = obj.get(name, _MISSING) if isinstance(obj, Mapping) else _MISSING
    if value is _MISSING:
        raise AnsibleFilterError(f"{where}: object of type {type(obj).__name__!r} has no attribute {name!r}")
    return value


def _text(value: Any) -> str:
    """A value as Ansible's regex filters and tests see it (str() of a non-string)."""
    return to_text(value, errors="surrogate_or_strict", nonstring="simplerepr")


def _matches(pattern: str, value: Any) -> bool:
    """Ansible's ``match`` test: re.match, anchored at the start only."""
    return re.match(pattern, _text(value)) is not None


def _mapped(value: Any) -> Iterable[Any]:
    """What Jinja's ``map`` and ``select`` iterate: nothing for a false value (None, 0, '')."""
    return value if value else ()


def _b64_json(content: Any) -> Any:
    """``content | b64decode | from_json``."""
    return json.loads(to_text(base64.b64decode(to_bytes(content, errors="surrogate_or_strict")), encoding="utf-8"))


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def _version_ok(have: Any, want: str, op: str) -> bool:
    """``have is version(want, op)``: Ansible's version test with its default (loose) versions."""
    if not have:
        raise AnsibleFilterError("Input version value cannot be empty")
    if not want:
        raise AnsibleFilterError("Version parameter to compare against cannot be empty")
    try:
        return _OPERATORS[op](LooseVersion(to_text(have)), LooseVersion(to_text(want)))
    except Exception as e:
        raise AnsibleFilterError(f"Version comparison failed: {e}") from e


# --- role drift_timer -----------------------------------------------------------------------


def collection_plan(
    collections: Iterable[Any], tarball_results: Iterable[Any], tarball_pattern: str
) -> list[dict[str, Any]]:
    """One entry per requirement of ``drift_timer_collections``: what an installed copy must match.

    A requirement the ``match`` test finds ``tarball_pattern`` in (an absolute path) is a
    collection tarball: its MANIFEST.json, the ``stdout`` of the first of ``tarball_results``
    (the registered ``results`` of the tar loop) whose ``item`` is the requirement, gives
    ``fqcn``, ``version`` and ``checksum`` (FILES.json's sha256). Any other requirement is
    "namespace.name[:spec]": ``fqcn`` and ``spec`` are the parts around the first ":", stripped
    ('' without one). Every entry keeps the ``requirement`` and says whether it is a ``tarball``.
    """
    results = list(tarball_results)
    plan: list[dict[str, Any]] = []
    for item in collections:
        if _matches(tarball_pattern, item):
            found = [r for r in results if isinstance(r, Mapping) and r.get("item", _MISSING) == item]
            if not found:
                raise AnsibleFilterError(f"collection_plan: no manifest was read from the tarball {item!r}")
            manifest = json.loads(_attr(found[0], "stdout", "collection_plan"))
            info = _attr(manifest, "collection_info", "collection_plan")
            fqcn = str(_attr(info, "namespace", "collection_plan")) + "." + str(_attr(info, "name", "collection_plan"))
            plan.append(
                {
                    "requirement": item,
                    "tarball": True,
                    "fqcn": fqcn,
                    "version": _attr(info, "version", "collection_plan"),
                    "checksum": _attr(
                        _attr(manifest, "file_manifest_file", "collection_plan"), "chksum_sha256", "collection_plan"
                    ),
                }
            )
        else:
            parts = item.split(":", 1)
            plan.append(
                {
                    "requirement": item,
                    "tarball": False,
                    "fqcn": parts[0].strip(),
                    "spec": (parts[1] if ":" in item else "").strip(),
                }
            )
    return plan


def _collection_met(want: Any, have: Any, constraint_pattern: str) -> bool:
    """Whether the installed manifest ``have`` ({} when none was read) meets the plan entry ``want``."""
    met = len(have) > 0
    if met and _attr(want, "tarball", "collections_outdated"):
        info = _attr(have, "collection_info", "collections_outdated")
        return bool(
            _attr(info, "version", "collections_outdated") == _attr(want, "version", "collections_outdated")
            and _attr(
                _attr(have, "file_manifest_file", "collections_outdated"), "chksum_sha256", "collections_outdated"
            )
            == _attr(want, "checksum", "collections_outdated")
        )
    if met:
        for constraint in (part.strip() for part in _attr(want, "spec", "collections_outdated").split(",")):
            if constraint in ("", "*"):
                continue
            parsed = re.search(constraint_pattern, _text(constraint))
            # Every constraint is judged (no early exit): a comparison that fails raises, as it did.
            if parsed is None or not _version_ok(
                _attr(_attr(have, "collection_info", "collections_outdated"), "version", "collections_outdated"),
                parsed.group(2),
                parsed.group(1) or "==",
            ):
                met = False
    return met


def collections_outdated(probes: Iterable[Any], constraint_pattern: str) -> list[Any]:
    """The requirements whose installed collection is missing or does not meet its plan entry.

    ``probes`` are the registered ``results`` of the slurp loop over ``collection_plan``: each
    ``item`` a plan entry, with ``content`` (base64 MANIFEST.json) when the collection is
    installed. A tarball's copy must have its version and FILES.json checksum. A Galaxy
    requirement's spec is split at "," and each constraint ("1.2.3", ">=1.2.0"; empty and "*"
    are skipped) must parse with ``constraint_pattern`` (group 1 the operator, "==" when
    absent; group 2 the version) and hold for the installed version (Ansible's loose version
    comparison); one that does not parse counts as unmet. An empty manifest counts as missing.
    """
    outdated: list[Any] = []
    for probe in probes:
        want = probe.get("item", _MISSING) if isinstance(probe, Mapping) else _MISSING
        have = _b64_json(probe["content"]) if isinstance(probe, Mapping) and "content" in probe else {}
        if not _collection_met(want, have, constraint_pattern):
            requirement = want.get("requirement", _MISSING) if isinstance(want, Mapping) else _MISSING
            # As in the Jinja, where appending an undefined value did nothing: a result without
            # its plan entry is passed over (every result of a loop has its item).
            if requirement is not _MISSING:
                outdated.append(requirement)
    return outdated


def pip_report_installs(report: str) -> list[str]:
    """The "name==version" of each distribution in a pip installation report (``--report``), in order.

    ``report`` is the report's JSON text; a report that is not a mapping, has no ``install``,
    or whose ``install`` is false (null, empty) installs nothing. Name and version are written
    as str() writes them.
    """
    parsed = json.loads(report)
    installs = parsed.get("install", []) if isinstance(parsed, Mapping) else []
    pins: list[str] = []
    for entry in _mapped(installs):
        metadata = _attr(entry, "metadata", "pip_report_installs")
        name = _attr(metadata, "name", "pip_report_installs")
        version = _attr(metadata, "version", "pip_report_installs")
        pins.append(f"{name!s}=={version!s}")
    return pins


# --- role nvidia_toolkit --------------------------------------------------------------------


def apt_package_specs(packages: Iterable[Any], version: Any) -> list[str]:
    """apt's spec of each package: "name=version", or the name alone when ``version`` is empty.

    As the ``regex_replace('$', ...)`` this replaces, the suffix goes at each end of the name
    re's ``$`` finds, so "name\\n" (which validate.yml's ``match`` lets through) becomes
    "name=version\\n=version". A false ``packages`` (None, '') gives [].
    """
    suffix = "=" + str(version) if len(version) > 0 else ""
    return [re.sub("$", suffix, _text(package)) for package in _mapped(packages)]


def installed_at_version(installed: Mapping[str, Any], version: Any) -> list[Any]:
    """The names in ``installed`` (name -> installed version), in order, at the pinned version.

    The version must be ``version`` exactly (a ``match`` of the escaped version between ^ and
    $); with an empty ``version`` every non-empty one counts (a ``match`` of ".").
    """
    if not isinstance(installed, Mapping):
        raise AnsibleFilterError(f"installed_at_version requires a dictionary, got {type(installed).__name__}")
    pattern = "^" + re.escape(_text(version)) + "$" if len(version) > 0 else "."
    return [name for name, have in installed.items() if _matches(pattern, have)]


# --- role workspace -------------------------------------------------------------------------


def _jinja_lower(value: Any) -> Any:
    """Jinja's ``sort`` key without case_sensitive: strings compared lower-cased."""
    return value.lower() if isinstance(value, str) else value


def xformers_wheels(local: Any, final: Any) -> list[Any]:
    """The wheel the venv installs: [path], or [] when there is none.

    ``local`` and ``final`` are the registered results of ansible.builtin.find for the wheel,
    before and after it was built or copied. ``local`` counts when its ``matched`` (0 when
    absent) is not 0, else ``final``; of its ``files`` (none when absent or false), the first path in
    Jinja's ``sort`` order (case-insensitive, stable).
    """
    matched = local.get("matched", 0) if isinstance(local, Mapping) else 0
    chosen = final if matched == 0 else local
    files = chosen.get("files", []) if isinstance(chosen, Mapping) else []
    paths = [_attr(found, "path", "xformers_wheels") for found in _mapped(files)]
    return sorted(paths, key=_jinja_lower)[:1]


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "collection_plan": collection_plan,
            "collections_outdated": collections_outdated,
            "pip_report_installs": pip_report_installs,
            "apt_package_specs": apt_package_specs,
            "installed_at_version": installed_at_version,
            "xformers_wheels": xformers_wheels,
        }
