"""never_install and shadow_report (plugins/filter/packages.py): what uv may not install over the image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.spark.plugins.filter import packages
from through_ansible import ansible_bin, run_playbook

REPO = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Jupyter_Server", "jupyter-server"),
        ("jupyter-server", "jupyter-server"),
        ("jupyter.server", "jupyter-server"),
        ("JUPYTER__-.server", "jupyter-server"),
        ("torch", "torch"),
    ],
)
def test_canonical(name: str, expected: str) -> None:
    assert packages.canonical(name) == expected


@pytest.mark.parametrize(
    ("image", "always", "allowed", "expected"),
    [
        pytest.param(
            {"numpy": "1.26.4", "torch": "2.9.0", "jupyter-server": "2.3.2"},
            [],
            [],
            ["jupyter-server", "numpy", "torch"],
            id="the-image-sorted",
        ),
        pytest.param(
            {"Jupyter_Server": "2.3.2", "numpy": "1.26.4"},
            [],
            ["jupyter-server"],
            ["numpy"],
            id="allowed-canonicalized",
        ),
        pytest.param(
            {"jupyter-server": "2.3.2", "numpy": "1.26.4"},
            [],
            ["Jupyter_Server"],
            ["numpy"],
            id="image-key-canonicalized",
        ),
        pytest.param(
            {"Jupyter_Server": "2.3.2", "jupyter-server": "2.3.2", "jupyter.server": "1"},
            ["JUPYTER-SERVER"],
            [],
            ["jupyter-server"],
            id="unique",
        ),
        pytest.param(
            {"torch": "2.9.0", "numpy": "1.26.4"},
            ["torch", "Triton", "torchvision"],
            ["torch", "triton", "numpy"],
            ["torch", "torchvision", "triton"],
            id="always-wins-over-allowed",
        ),
        pytest.param({}, ["torch"], [], ["torch"], id="always-without-the-image"),
        pytest.param({}, [], ["torch"], [], id="nothing"),
        pytest.param({"zz": "1", "aa": "1", "Mm": "1"}, ["bb"], [], ["aa", "bb", "mm", "zz"], id="sorted"),
        pytest.param({"numpy": "1"}, (n for n in ["torch"]), iter(["numpy"]), ["torch"], id="iterables"),
    ],
)
def test_never_install(image: Any, always: Any, allowed: Any, expected: list[str]) -> None:
    assert packages.never_install(image, always, allowed) == expected


@pytest.mark.parametrize("image", [["numpy", "torch"], "numpy", None, 3, ("numpy",)])
def test_never_install_wants_a_mapping(image: Any) -> None:
    with pytest.raises(TypeError, match=f"got {type(image).__name__}"):
        packages.never_install(image, ["torch"], [])


@pytest.mark.parametrize(
    ("shadowed", "allowed", "expected"),
    [
        pytest.param({}, ["numpy"], {"allowed": [], "not_allowed": []}, id="nothing-shadowed"),
        pytest.param(
            {"tornado": {"venv": "6.5.2", "image": "6.4.1"}, "numpy": {"venv": "2.1.0", "image": "1.26.4"}},
            ["NumPy"],
            {
                "allowed": ["numpy 2.1.0 over the image's 1.26.4"],
                "not_allowed": ["tornado 6.5.2 over the image's 6.4.1"],
            },
            id="split-canonical-sorted",
        ),
        pytest.param(
            {"jupyter-server": {"venv": "2.4", "image": "2.3"}},
            ["Jupyter_Server"],
            {"allowed": ["jupyter-server 2.4 over the image's 2.3"], "not_allowed": []},
            id="allowed-canonicalized",
        ),
        pytest.param(
            {"b": {"venv": "1"}, "a": "1.0", "c": None, "d": {"image": "2"}},
            ["a"],
            {
                "allowed": ["a ? over the image's ?"],
                "not_allowed": ["b 1 over the image's ?", "c ? over the image's ?", "d ? over the image's 2"],
            },
            id="malformed-entries",
        ),
        pytest.param(["numpy"], [], {"allowed": [], "not_allowed": []}, id="a-list"),
        pytest.param(None, [], {"allowed": [], "not_allowed": []}, id="none"),
        pytest.param("numpy", [], {"allowed": [], "not_allowed": []}, id="a-string"),
    ],
)
def test_shadow_report(shadowed: Any, allowed: list[str], expected: dict[str, list[str]]) -> None:
    assert packages.shadow_report(shadowed, allowed) == expected


def test_filter_module_and_docs() -> None:
    assert packages.FilterModule().filters() == {
        "never_install": packages.never_install,
        "shadow_report": packages.shadow_report,
    }
    for name in ("never_install", "shadow_report"):
        assert (REPO / "plugins" / "filter" / f"{name}.yml").is_file()


PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "{{ image | sparkfleet.spark.never_install(always, allowed) }}"
    - ansible.builtin.debug:
        msg: "{{ shadowed | sparkfleet.spark.shadow_report(allowed) }}"
"""

INVENTORY = {
    "all": {
        "vars": {
            "ansible_connection": "local",
            "image": {"Jupyter_Server": "2.3.2", "numpy": "1.26.4", "torch": "2.9.0", "tornado": "6.4.1"},
            "always": ["torch", "{{ extra_always }}"],
            "extra_always": "Triton",
            "allowed": ["jupyter-server", "torch"],
            "shadowed": {"jupyter-server": {"venv": "2.4", "image": "2.3.2"}, "tornado": {"venv": "6.5", "image": "6"}},
        },
        "hosts": {"h1": {}},
    }
}

PLAYBOOK_BIN = ansible_bin("ansible-playbook")


@pytest.mark.skipif(PLAYBOOK_BIN is None, reason="ansible-playbook is not installed")
def test_never_install_through_ansible(tmp_path: Path) -> None:
    tasks = run_playbook(tmp_path, PLAYBOOK, INVENTORY)["plays"][0]["tasks"]
    # Templated list items are rendered before the filter sees them; always wins over allowed.
    assert tasks[0]["hosts"]["h1"]["msg"] == ["numpy", "torch", "tornado", "triton"]
    assert tasks[1]["hosts"]["h1"]["msg"] == {
        "allowed": ["jupyter-server 2.4 over the image's 2.3.2"],
        "not_allowed": ["tornado 6.5 over the image's 6"],
    }
