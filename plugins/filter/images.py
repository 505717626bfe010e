# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""The one digest a run pulls for a tag (role ngc_image).

Every host asks the registry which digest its tag names, at the same task. When the tag
moves while they ask, hosts would end on different images; ``run_digest`` settles one
answer per reference: the first host of the play (in play order) whose registry answered,
so every host of the run pulls the same digest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def _answer_digest(answer: Any) -> str:
    """The digest in a registry answer registered by ansible.builtin.uri, or ''."""
    if not isinstance(answer, Mapping) or answer.get("status") != 200:
        return ""
    body = answer.get("json")
    descriptor = body.get("Descriptor") if isinstance(body, Mapping) else None
    digest = descriptor.get("digest") if isinstance(descriptor, Mapping) else None
    return digest if isinstance(digest, str) and _DIGEST.match(digest) else ""


def run_digest(hostvars: Mapping[str, Any], hosts: Iterable[str], reference: str) -> str:
    """The digest the first host in ``hosts`` with the same reference got from the registry.

    Hosts that name another reference, skipped the question or got no digest are passed
    over; '' when no host has an answer (the caller then has nothing to pin).
    """
    for host in hosts:
        try:
            facts = hostvars[host]
            if facts["ngc_image_reference"] != reference:
                continue
            answer = facts["ngc_image_registry_answer"]
        except (KeyError, TypeError):
            continue
        digest = _answer_digest(answer)
        if digest:
            return digest
    return ""


class FilterModule:
    def filters(self) -> dict[str, Callable[..., str]]:
        return {"run_digest": run_digest}
