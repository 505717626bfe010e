"""run_digest (plugins/filter/images.py): one digest per run, the first answering host's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.spark.plugins.filter import images
from through_ansible import ansible_bin, run_playbook

REPO = Path(__file__).resolve().parents[4]
REF = "reg:5000/nvidia/pytorch:25.11-py3"
OTHER = "reg:5000/nvidia/pytorch:25.10-py3"
D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def answer(digest: str, status: int = 200) -> dict[str, Any]:
    return {"status": status, "json": {"Descriptor": {"digest": digest}}}


@pytest.mark.parametrize(
    ("hostvars", "hosts", "expected"),
    [
        # The tag moved between two hosts' questions: both pull the first host's answer.
        (
            {
                "a": {"ngc_image_reference": REF, "ngc_image_registry_answer": answer(D1)},
                "b": {"ngc_image_reference": REF, "ngc_image_registry_answer": answer(D2)},
            },
            ["a", "b"],
            D1,
        ),
        # Play order decides, not the mapping's order.
        (
            {
                "a": {"ngc_image_reference": REF, "ngc_image_registry_answer": answer(D1)},
                "b": {"ngc_image_reference": REF, "ngc_image_registry_answer": answer(D2)},
            },
            ["b", "a"],
            D2,
        ),
        # A host on another reference, a failed answer, a skipped question, a host without
        # the variables and a malformed digest are passed over.
        (
            {
                "a": {"ngc_image_reference": OTHER, "ngc_image_registry_answer": answer(D1)},
                "b": {"ngc_image_reference": REF, "ngc_image_registry_answer": answer(D1, 500)},
                "c": {"ngc_image_reference": REF, "ngc_image_registry_answer": {"skipped": True}},
                "d": {},
                "e": {"ngc_image_reference": REF, "ngc_image_registry_answer": answer("sha256:xyz")},
                "f": {"ngc_image_reference": REF, "ngc_image_registry_answer": answer(D2)},
            },
            ["a", "b", "c", "d", "e", "f", "missing"],
            D2,
        ),
        ({"a": {"ngc_image_reference": REF, "ngc_image_registry_answer": {"status": 200, "json": "text"}}}, ["a"], ""),
        ({}, [], ""),
    ],
)
def test_run_digest(hostvars: dict[str, Any], hosts: list[str], expected: str) -> None:
    assert images.run_digest(hostvars, hosts, REF) == expected


def test_filter_module_and_doc() -> None:
    assert images.FilterModule().filters() == {"run_digest": images.run_digest}
    assert (REPO / "plugins" / "filter" / "run_digest.yml").is_file()


PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        ngc_image_registry_answer: "{{ {'status': 200, 'json': {'Descriptor': {'digest': mine}}} }}"
    - ansible.builtin.debug:
        msg: "{{ hostvars | sparkfleet.spark.run_digest(ansible_play_hosts, ngc_image_reference) }}"
"""

INVENTORY = {
    "all": {
        "vars": {"ansible_connection": "local", "ngc_image_reference": "{{ repo }}:25.11-py3", "repo": "reg/x"},
        "hosts": {"h1": {"mine": D1}, "h2": {"mine": D2}, "h3": {"mine": D2, "repo": "reg/y"}},
    }
}

PLAYBOOK_BIN = ansible_bin("ansible-playbook")


@pytest.mark.skipif(PLAYBOOK_BIN is None, reason="ansible-playbook is not installed")
def test_run_digest_reads_other_hosts_templated_vars_through_ansible(tmp_path: Path) -> None:
    report = run_playbook(tmp_path, PLAYBOOK, INVENTORY)
    got = {host: r["msg"] for host, r in report["plays"][0]["tasks"][1]["hosts"].items()}
    # h1 and h2 share a (templated) reference: h1's answer, once; h3 names another repository.
    assert got == {"h1": D1, "h2": D1, "h3": D2}
