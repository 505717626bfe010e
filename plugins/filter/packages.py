# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""Which distributions uv must never install into the venv (role workspace).

The venv sees the image's system site-packages. A distribution the venv installed itself
shadows the image's copy: native builds made for the image (torch, numpy, the Jupyter
server the image runs) are then replaced by PyPI's. ``never_install`` lists, for
``[tool.uv] override-dependencies``, every distribution the image ships and the ones the
role always blocks, minus those the inventory allows the venv to replace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

# PEP 503's normalized name, as the in-image builder compares names.
from ansible_collections.sparkfleet.spark.plugins.module_utils._venv_builder import canonical


def never_install(image_distributions: Mapping[str, Any], always: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """Canonical names, sorted: ``always`` plus the image's distributions, minus ``allowed``.

    ``always`` wins over ``allowed`` (torch, triton and torchvision are never replaced).
    """
    if not isinstance(image_distributions, Mapping):
        raise TypeError(
            f"never_install expects a mapping of distribution names, got {type(image_distributions).__name__}"
        )
    blocked = {canonical(str(name)) for name in always}
    allow = {canonical(str(name)) for name in allowed}
    names = {canonical(str(name)) for name in image_distributions} - allow
    return sorted(names | blocked)


def shadow_report(shadowed: Any, allowed: Iterable[str]) -> dict[str, list[str]]:
    """Split a venv's shadowed image distributions into allowed and not allowed.

    ``shadowed`` maps a name to {venv: version, image: version}; each entry becomes
    "NAME VENV over the image's IMAGE". Malformed entries count as not allowed.
    """
    allow = {canonical(str(name)) for name in allowed}
    report: dict[str, list[str]] = {"allowed": [], "not_allowed": []}
    if not isinstance(shadowed, Mapping):
        return report
    for name, versions in sorted(shadowed.items()):
        venv = versions.get("venv", "?") if isinstance(versions, Mapping) else "?"
        image = versions.get("image", "?") if isinstance(versions, Mapping) else "?"
        line = f"{name} {venv} over the image's {image}"
        report["allowed" if canonical(str(name)) in allow else "not_allowed"].append(line)
    return report


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"never_install": never_install, "shadow_report": shadow_report}
