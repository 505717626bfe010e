"""The execution environment (execution-environment.yml, ee/) holds what the roles and playbooks use.

Every collection named by FQCN in roles/ and playbooks/ (modules, roles, connections, lookups,
filters, tests) must be among the EE's collection requirements; its pins must be the ones CI
runs; and ansible-builder must turn the definition into a build context whose galaxy
requirements install.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EE_FILE = ROOT / "execution-environment.yml"
BUILTIN = {"ansible.builtin", "ansible.legacy"}
NAME = r"[a-z0-9_]+"
FQCN = re.compile(rf"^({NAME}\.{NAME})\.{NAME}$")
# lookup('ns.coll.x'), query("ns.coll.x"), `| ns.coll.filter`, `is ns.coll.test`
IN_TEMPLATE = re.compile(
    rf"""(?:lookup|query|q)\(\s*['"]({NAME}\.{NAME})\.{NAME}"""
    rf"""|\|\s*({NAME}\.{NAME})\.{NAME}\b"""
    rf"""|\bis\s+(?:not\s+)?({NAME}\.{NAME})\.{NAME}\b"""
)
# Keys whose string value names a plugin or role by FQCN.
NAMING_KEYS = {"role", "connection", "ansible_connection", "action", "module", "become_method"}
INCLUDES = {"include_role", "import_role", "ansible.builtin.include_role", "ansible.builtin.import_role"}


def _collection(fqcn: str) -> str | None:
    match = FQCN.match(fqcn)
    return match.group(1) if match else None


def _in_templates(text: str) -> set[str]:
    return {next(group for group in match.groups() if group) for match in IN_TEMPLATE.finditer(text)}


def collections_named(node: Any, key: str | None = None) -> set[str]:
    """Collections a parsed playbook, task file or vars file names by FQCN."""
    found: set[str] = set()
    if isinstance(node, dict):
        for name, value in node.items():
            name = str(name)
            if (collection := _collection(name)) is not None:
                found.add(collection)
            if name in INCLUDES and isinstance(value, dict) and isinstance(value.get("name"), str):
                found |= {c for c in [_collection(value["name"])] if c}
            found |= collections_named(value, name)
    elif isinstance(node, list):
        for item in node:
            if key == "roles" and isinstance(item, str):
                found |= {c for c in [_collection(item)] if c}
            found |= collections_named(item, key if key == "roles" else None)
    elif isinstance(node, str):
        if key in NAMING_KEYS and (collection := _collection(node.strip())):
            found.add(collection)
        found |= _in_templates(node)
    return found


def _content_files() -> Iterator[Path]:
    yield ROOT / "site.yml"
    yield from sorted((ROOT / "playbooks").glob("*.yml"))
    for part in ("tasks", "handlers", "defaults", "vars", "meta"):
        yield from sorted((ROOT / "roles").glob(f"*/{part}/*.yml"))


def named_in_content() -> set[str]:
    found: set[str] = set()
    for path in _content_files():
        found |= collections_named(yaml.safe_load(path.read_text()))
    for template in sorted((ROOT / "roles").glob("*/templates/*.j2")):
        found |= _in_templates(template.read_text())
    return found - BUILTIN


def _tarball_collection(name: str) -> tuple[str, str]:
    """`dir/ns-name-1.2.3.tar.gz` -> ("ns.name", "1.2.3")."""
    match = re.fullmatch(rf"(?:.*/)?({NAME})-({NAME})-([0-9][^/]*)\.tar\.gz", name)
    assert match, f"{name} is not a collection tarball name"
    return f"{match.group(1)}.{match.group(2)}", match.group(3)


def ee_definition() -> dict[str, Any]:
    return yaml.safe_load(EE_FILE.read_text())


def ee_collections() -> dict[str, dict[str, Any]]:
    """The EE's collection requirements by collection name (a tarball by the name in its file name)."""
    galaxy = ROOT / ee_definition()["dependencies"]["galaxy"]
    entries = yaml.safe_load(galaxy.read_text())["collections"]
    by_name = {}
    for entry in entries:
        name = entry["name"]
        if entry.get("type") == "file":
            name, version = _tarball_collection(name)
            entry = {**entry, "version": version}
        by_name[name] = entry
    return by_name


def galaxy_version() -> str:
    return str(yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"])


def ci_pins() -> dict[str, str]:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    return dict(pin.split("==", 1) for pin in extra if "==" in pin)


# --- the scanner sees every way a collection is named -------------------------------------------

SCAN_CASES: list[tuple[str, set[str]]] = [
    ("- name: t\n  community.general.ufw: {rule: allow}\n", {"community.general"}),
    ("- name: t\n  ansible.builtin.debug: {msg: hi}\n", {"ansible.builtin"}),
    ("- ansible.builtin.include_role: {name: acme.tools.base}\n", {"ansible.builtin", "acme.tools"}),
    ("- import_role: {name: acme.tools.base}\n", {"acme.tools"}),
    ("- hosts: all\n  roles: [acme.tools.base, {role: other.ns.web}]\n", {"acme.tools", "other.ns"}),
    ("x: \"{{ lookup('community.hashi_vault.hashi_vault', 'p') }}\"\n", {"community.hashi_vault"}),
    ("x: \"{{ addr | ansible.utils.ipaddr('net') }}\"\n", {"ansible.utils"}),
    ('x: "{{ v is community.general.a_module }}"\n', {"community.general"}),
    ("ansible_connection: community.docker.docker\n", {"community.docker"}),
    # Dotted text that names no plugin: a host name in a URL, a file name.
    ("url: https://nvidia.github.io/libnvidia-container/gpgkey\nf: sources.list.d\n", set()),
]


@pytest.mark.parametrize(("text", "expected"), SCAN_CASES)
def test_scanner_finds_collections(text: str, expected: set[str]) -> None:
    assert collections_named(yaml.safe_load(text)) == expected


# --- the EE covers the content ------------------------------------------------------------------


def test_ee_covers_every_collection_the_roles_and_playbooks_name() -> None:
    named = named_in_content()
    # The scan must see what the roles are known to use; an empty scan would prove nothing.
    assert {"community.docker", "sparkfleet.spark"} <= named
    missing = sorted(named - set(ee_collections()))
    assert missing == [], f"add {missing} to {ee_definition()['dependencies']['galaxy']}"


def test_ee_pins_are_the_checkout_and_ci_versions() -> None:
    definition = ee_definition()
    collections = ee_collections()
    assert collections["sparkfleet.spark"]["version"] == galaxy_version()
    tarball = Path(collections["sparkfleet.spark"]["name"]).name
    assert tarball in [entry["src"] for entry in definition["additional_build_files"]]
    pins = ci_pins()
    deps = definition["dependencies"]
    assert deps["ansible_core"]["package_pip"] == f"ansible-core=={pins['ansible-core']}"
    assert deps["ansible_runner"]["package_pip"] == f"ansible-runner=={pins['ansible-runner']}"
    # community.docker as the `ansible` package CI installs ships it.
    manifest = _installed_manifest("community", "docker")
    if manifest is not None:
        assert collections["community.docker"]["version"] == manifest["collection_info"]["version"]


def _installed_manifest(namespace: str, name: str) -> dict[str, Any] | None:
    for entry in sys.path:
        path = Path(entry) / "ansible_collections" / namespace / name / "MANIFEST.json"
        if path.is_file() and ".collections" not in path.parts:
            data: dict[str, Any] = json.loads(path.read_text())
            return data
    return None


def test_drift_timer_installs_this_version() -> None:
    defaults = yaml.safe_load((ROOT / "roles" / "drift_timer" / "defaults" / "main.yml").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version == galaxy_version()
    assert defaults["drift_timer_packages"] == [f"sparkfleet=={version}"]
    assert defaults["drift_timer_collections"] == [f"sparkfleet.spark:=={version}"]


# --- ansible-builder makes a build context ------------------------------------------------------


def _ansible(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        pytest.skip(f"{name} not installed")
    return found


def _run(argv: Sequence[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, env={**os.environ, **env}, check=False)
    assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout}\n{result.stderr}"
    return result


def _ee_context() -> Any:
    spec = importlib.util.spec_from_file_location("ee_context", ROOT / "tools" / "ee_context.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ansible_builder_creates_a_build_context(tmp_path: Path) -> None:
    pytest.importorskip("ansible_builder")
    _ansible("ansible-galaxy")
    work = tmp_path / "ee"
    # The build directory as the README says to make it: the definition, ee/ and the tarballs.
    made = _ee_context().assemble(work)
    assert sorted(p.name for p in made) == sorted(
        Path(e["src"]).name for e in ee_definition()["additional_build_files"]
    )
    context = tmp_path / "context"
    builder = [sys.executable, "-m", "ansible_builder", "create", "--output-filename", "Containerfile"]
    _run([*builder, "--file", str(work / EE_FILE.name), "--context", str(context)], cwd=work)
    containerfile = (context / "Containerfile").read_text()
    base = ee_definition()["images"]["base_image"]["name"]
    assert f'ARG EE_BASE_IMAGE="{base}"' in containerfile
    # What the test bed's build passes to move the definition onto its Debian base.
    for arg in ("EE_BASE_IMAGE", "PKGMGR", "PYPKG", "PYCMD"):
        assert f"ARG {arg}" in containerfile
    pins = ci_pins()
    assert f"ansible-core=={pins['ansible-core']} ansible-runner=={pins['ansible-runner']}" in containerfile
    build = context / "_build"
    tarball = build / "collections" / f"sparkfleet-spark-{galaxy_version()}.tar.gz"
    assert tarball.is_file()
    assert (build / "requirements.yml").read_text() == (ROOT / "ee" / "requirements.yml").read_text()
    assert (build / "bindep.txt").is_file() and (build / "requirements.txt").is_file()

    # The galaxy stage, offline and into an empty path (as in the image): every collection and
    # dependency comes from the tarballs in the context, checked against their FILES.json.
    installed = tmp_path / "collections"
    _run(
        [_ansible("ansible-galaxy"), "collection", "install", "-r", "requirements.yml", "-p", str(installed)],
        cwd=build,
        ANSIBLE_COLLECTIONS_PATH=str(installed),
        ANSIBLE_GALAXY_SERVER="http://127.0.0.1:9",
    )
    manifest = json.loads((installed / "ansible_collections/sparkfleet/spark/MANIFEST.json").read_text())
    assert manifest["collection_info"]["version"] == galaxy_version()
    assert (installed / "ansible_collections/sparkfleet/spark/playbooks/site.yml").is_file()
    docker = json.loads((installed / "ansible_collections/community/docker/MANIFEST.json").read_text())
    assert docker["collection_info"]["version"] == ee_collections()["community.docker"]["version"]
    assert (installed / "ansible_collections/community/docker/plugins/modules/docker_image_pull.py").is_file()


def test_ee_context_refuses_a_pin_the_control_node_does_not_have(tmp_path: Path) -> None:
    ee_context = _ee_context()
    source = ee_context.installed_collection("community.docker")
    with pytest.raises(SystemExit, match=r"pins community-docker-0.0.1.tar.gz at 0.0.1, but this control node has"):
        ee_context.pack(
            source, "0.0.1", tmp_path / "community-docker-0.0.1.tar.gz", {"community.library_inventory_filtering_v1"}
        )
    with pytest.raises(SystemExit, match=r"depends on \['community.library_inventory_filtering_v1'\]"):
        ee_context.pack(source, "4.8.5", tmp_path / "community-docker-4.8.5.tar.gz", set())
