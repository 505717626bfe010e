"""Tests for build.sh, the signed apt repository of TEST STAND-INS for NVIDIA's
container toolkit packages.

A real apt client, confined to a temporary directory, reads the repository from a
local HTTP server, so signature checking and dependency resolution are apt's own.
Nothing is installed on this machine: debs are downloaded and unpacked into
temporary roots, and the stand-in tools are run from there.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build.sh"
ARCHES = ("amd64", "arm64")
VERSIONS = ("1.17.8-1", "1.18.0-1")
PACKAGES = (
    "libnvidia-container1",
    "libnvidia-container-tools",
    "nvidia-container-toolkit-base",
    "nvidia-container-toolkit",
)
TOOLS = {"dpkg-deb": "dpkg", "apt-ftparchive": "apt-utils", "gpg": "gnupg", "apt-get": "apt"}

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS), reason=f"needs {', '.join(sorted(set(TOOLS.values())))}"
)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def build(out: Path, keys: Path) -> Path:
    result = run([str(BUILD), str(out), str(keys)])
    assert result.returncode == 0, result.stderr
    return out / "libnvidia-container"


@contextlib.contextmanager
def http_server(root: Path) -> Iterator[str]:
    # Port 0: the kernel picks a free port and http.server prints it.
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        match = re.search(r"port (\d+)", proc.stdout.readline())
        assert match, "http.server did not report its port"
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class AptClient:
    """apt-get/apt-cache that never read or write the host's sources, keys, pins or state."""

    def __init__(self, root: Path, arch: str = "amd64") -> None:
        self.root = root
        for sub in (
            "lists/partial",
            "cache/archives/partial",
            "state",
            "log",
            "apt.conf.d",
            "preferences.d",
            "trusted.gpg.d",
            "sources.list.d",
        ):
            (root / sub).mkdir(parents=True, exist_ok=True)
        # python3 counts as installed, so install simulations resolve like on the target.
        (root / "status").write_text(
            "Package: python3\nStatus: install ok installed\nPriority: optional\n"
            f"Maintainer: test\nArchitecture: {arch}\nVersion: 3.11.2-1+b1\n"
            "Description: test\n"
        )
        self.config = root / "apt.conf"
        self.config.write_text(f"""
Dir::Etc::Main "/dev/null";
Dir::Etc::Parts "{root}/apt.conf.d";
Dir::Etc::SourceList "{root}/nvidia.sources";
Dir::Etc::SourceParts "{root}/sources.list.d";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "{root}/preferences.d";
Dir::Etc::Trusted "/dev/null";
Dir::Etc::TrustedParts "{root}/trusted.gpg.d";
Dir::State "{root}/state";
Dir::State::Lists "{root}/lists";
Dir::State::status "{root}/status";
Dir::Cache "{root}/cache";
Dir::Log "{root}/log";
APT::Architecture "{arch}";
APT::Architectures {{ "{arch}"; }};
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::http::Proxy "DIRECT";
Debug::NoLocking "true";
""")

    def use_repo(self, base_url: str, arch: str, key: Path) -> None:
        # The same shape ansible.builtin.deb822_repository writes.
        lines = [
            "Types: deb",
            f"URIs: {base_url}/libnvidia-container/stable/deb/{arch}/",
            "Suites: /",
            f"Signed-By: {key}",
        ]
        (self.root / "nvidia.sources").write_text("\n".join(lines) + "\n")

    def __call__(self, tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["APT_CONFIG"] = str(self.config)
        return run([tool, *args], env=env, cwd=cwd)


def fetch_key(base_url: str, dest: Path) -> Path:
    # .asc: apt reads armored keys given to Signed-By only under that extension.
    with urllib.request.urlopen(f"{base_url}/libnvidia-container/gpgkey", timeout=10) as resp:
        dest.write_bytes(resp.read())
    return dest


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def repo(tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Path:
    return build(tmp_path_factory.mktemp("out"), keys)


@pytest.fixture(scope="session")
def base_url(repo: Path) -> Iterator[str]:
    with http_server(repo.parent) as url:
        yield url


@pytest.fixture(scope="session")
def standin_root(tmp_path_factory: pytest.TempPathFactory, base_url: str) -> Path:
    """The 1.18.0-1 packages as apt downloads them, unpacked into a fake root."""
    work = tmp_path_factory.mktemp("apt")
    apt = AptClient(work / "apt")
    apt.use_repo(base_url, "amd64", fetch_key(base_url, work / "nvidia.asc"))
    assert apt("apt-get", "update").returncode == 0
    downloads = work / "debs"
    downloads.mkdir()
    result = apt("apt-get", "download", *(f"{p}=1.18.0-1" for p in PACKAGES), cwd=downloads)
    assert result.returncode == 0, result.stdout + result.stderr
    root = work / "root"
    for deb in sorted(downloads.glob("*.deb")):
        assert run(["dpkg-deb", "-x", str(deb), str(root)]).returncode == 0
    return root


# --- build.sh -----------------------------------------------------------------


def test_layout_matches_nvidia_flat_repo(repo: Path) -> None:
    assert (repo / "gpgkey").read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    for arch in ARCHES:
        flat = repo / "stable" / "deb" / arch
        for name in ("Packages", "Packages.gz", "Release", "InRelease", "Release.gpg"):
            assert (flat / name).is_file(), name
        assert (flat / "InRelease").read_text().startswith("-----BEGIN PGP SIGNED MESSAGE-----")
        assert (flat / "Release.gpg").read_text().startswith("-----BEGIN PGP SIGNATURE-----")
        release = (flat / "Release").read_text()
        assert "Origin: sparkfleet test stand-in" in release
        assert "Label: sparkfleet test stand-in" in release
        packages = (flat / "Packages").read_bytes()
        assert gzip.decompress((flat / "Packages.gz").read_bytes()) == packages
        debs = sorted(p.name for p in flat.glob("*.deb"))
        assert debs == sorted(f"{p}_{v}_{arch}.deb" for p in PACKAGES for v in VERSIONS)


@pytest.mark.parametrize("package", PACKAGES)
def test_control_fields(repo: Path, package: str) -> None:
    deb = repo / "stable/deb/amd64" / f"{package}_1.17.8-1_amd64.deb"
    fields = run(["dpkg-deb", "-f", str(deb), "Description", "Depends"]).stdout
    assert fields.startswith("Description: TEST STAND-IN:")
    if package == "nvidia-container-toolkit":
        assert "nvidia-container-toolkit-base (= 1.17.8-1)" in fields
        assert "libnvidia-container-tools (>= 1.17.8-1)" in fields


def test_rebuild_reuses_key_and_is_deterministic(repo: Path, keys: Path, tmp_path: Path) -> None:
    again = build(tmp_path / "out", keys)
    assert (again / "gpgkey").read_bytes() == (repo / "gpgkey").read_bytes()
    for arch in ARCHES:
        rel = Path("stable/deb", arch, "Packages")
        assert (again / rel).read_bytes() == (repo / rel).read_bytes()
    assert oct(keys.stat().st_mode & 0o777) == "0o700"


def test_missing_tools_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    result = run(["/bin/bash", str(BUILD), str(tmp_path / "out"), str(tmp_path / "keys")], env={"PATH": str(empty)})
    assert result.returncode == 1
    assert "apt-get install -y dpkg apt-utils gnupg" in result.stderr


# --- apt against the served repository ----------------------------------------


@pytest.mark.parametrize("arch", ARCHES)
def test_apt_verifies_resolves_and_downloads(base_url: str, tmp_path: Path, arch: str) -> None:
    apt = AptClient(tmp_path / "apt", arch)
    apt.use_repo(base_url, arch, fetch_key(base_url, tmp_path / "nvidia.asc"))
    update = apt("apt-get", "update")
    assert update.returncode == 0, update.stdout + update.stderr
    assert "W:" not in update.stderr, update.stderr

    madison = apt("apt-cache", "madison", "nvidia-container-toolkit").stdout
    assert "1.17.8-1" in madison and "1.18.0-1" in madison

    newest = apt("apt-get", "install", "-s", "nvidia-container-toolkit")
    assert newest.returncode == 0, newest.stdout
    for package in PACKAGES:
        assert f"Inst {package} (1.18.0-1" in newest.stdout

    # As with NVIDIA's repository, pinning only the toolkit cannot resolve (base is "= V")...
    alone = apt("apt-get", "install", "-s", "nvidia-container-toolkit=1.17.8-1")
    assert alone.returncode != 0
    assert "Depends: nvidia-container-toolkit-base (= 1.17.8-1)" in alone.stdout
    # ...so NVIDIA's recipe pins every package of the family to the same version.
    pinned = apt("apt-get", "install", "-s", *(f"{p}=1.17.8-1" for p in PACKAGES))
    assert pinned.returncode == 0, pinned.stdout
    for package in PACKAGES:
        assert f"Inst {package} (1.17.8-1" in pinned.stdout

    download = apt("apt-get", "download", "nvidia-container-toolkit=1.18.0-1", cwd=tmp_path)
    assert download.returncode == 0, download.stderr
    deb = tmp_path / f"nvidia-container-toolkit_1.18.0-1_{arch}.deb"
    assert run(["dpkg-deb", "-f", str(deb), "Architecture"]).stdout.strip() == arch


def _tamper_packages(flat: Path) -> str:
    text = (flat / "Packages").read_text().replace("TEST STAND-IN", "NOT A STAND-IN", 1)
    (flat / "Packages").write_text(text)
    (flat / "Packages.gz").write_bytes(gzip.compress(text.encode()))
    return "Failed to fetch"


def _tamper_inrelease(flat: Path) -> str:
    inrelease = flat / "InRelease"
    inrelease.write_text(inrelease.read_text().replace("Label: sparkfleet", "Label: sparkfleeT", 1))
    return "BADSIG"


@pytest.mark.parametrize("tamper", [_tamper_packages, _tamper_inrelease], ids=["packages", "inrelease"])
def test_apt_rejects_tampered_index(repo: Path, tmp_path: Path, tamper: Callable[[Path], str]) -> None:
    copy = tmp_path / "served" / "libnvidia-container"
    shutil.copytree(repo, copy)
    expected = tamper(copy / "stable/deb/amd64")
    with http_server(copy.parent) as url:
        apt = AptClient(tmp_path / "apt")
        apt.use_repo(url, "amd64", fetch_key(url, tmp_path / "nvidia.asc"))
        update = apt("apt-get", "update")
    assert update.returncode != 0
    assert expected in update.stderr
    assert apt("apt-cache", "madison", "nvidia-container-toolkit").stdout == ""


def test_apt_rejects_tampered_deb(repo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "served" / "libnvidia-container"
    shutil.copytree(repo, copy)
    deb = copy / "stable/deb/amd64/nvidia-container-toolkit_1.18.0-1_amd64.deb"
    data = bytearray(deb.read_bytes())
    data[-1] ^= 0xFF  # same size: only the hashes in the signed Packages can tell
    deb.write_bytes(bytes(data))
    with http_server(copy.parent) as url:
        apt = AptClient(tmp_path / "apt")
        apt.use_repo(url, "amd64", fetch_key(url, tmp_path / "nvidia.asc"))
        assert apt("apt-get", "update").returncode == 0
        download = apt("apt-get", "download", "nvidia-container-toolkit=1.18.0-1", cwd=tmp_path)
    assert download.returncode != 0
    assert "Hash Sum mismatch" in download.stderr
    assert not list(tmp_path.glob("*.deb"))


def test_apt_rejects_repo_signed_by_another_key(base_url: str, tmp_path: Path) -> None:
    other = build(tmp_path / "other", tmp_path / "other-keys")
    key = tmp_path / "other.asc"
    shutil.copy(other / "gpgkey", key)
    apt = AptClient(tmp_path / "apt")
    apt.use_repo(base_url, "amd64", key)
    update = apt("apt-get", "update")
    assert update.returncode != 0
    assert "NO_PUBKEY" in update.stdout + update.stderr


# --- the stand-in tools, run from the unpacked packages -------------------------


def test_every_script_says_it_is_a_stand_in(standin_root: Path) -> None:
    scripts = sorted((standin_root / "usr/bin").iterdir())
    assert [s.name for s in scripts] == [
        "nvidia-container-cli",
        "nvidia-container-runtime",
        "nvidia-container-runtime-hook",
        "nvidia-ctk",
    ]
    for script in scripts:
        header = "".join(script.read_text().splitlines(keepends=True)[:4])
        assert "TEST STAND-IN" in header and "used only by" in header, script
        assert os.access(script, os.X_OK)


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("nvidia-ctk", ["--version"], "NVIDIA Container Toolkit CLI version 1.18.0"),
        ("nvidia-container-runtime-hook", ["-version"], "NVIDIA Container Runtime Hook version 1.18.0"),
        ("nvidia-container-cli", ["--version"], "cli-version: 1.18.0"),
    ],
)
def test_versions(standin_root: Path, tool: str, args: list[str], expected: str) -> None:
    result = run([str(standin_root / "usr/bin" / tool), *args])
    assert result.returncode == 0
    assert result.stdout.startswith(expected)


def test_cli_info_fails_without_gpu(standin_root: Path) -> None:
    result = run([str(standin_root / "usr/bin/nvidia-container-cli"), "info"])
    assert result.returncode == 1
    assert "no NVIDIA GPU (test stand-in)" in result.stderr


def ctk(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tool = root / "usr/bin/nvidia-ctk"
    return run([str(tool), "runtime", "configure", "--runtime=docker", *args])


CONFIGURED = """{
    "insecure-registries": [
        "r:5000"
    ],
    "log-driver": "json-file",
    "runtimes": {
        "nvidia": {
            "args": [],
            "path": "nvidia-container-runtime"
        }
    }
}"""


def test_ctk_configure_merges_like_the_go_tool(standin_root: Path, tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    daemon.write_text('{"log-driver": "json-file", "insecure-registries": ["r:5000"]}')
    first = ctk(standin_root, f"--config={daemon}")
    assert first.returncode == 0, first.stderr
    assert daemon.read_text() == CONFIGURED
    assert f"INFO[0000] Wrote updated config to {daemon}" in first.stderr
    assert "INFO[0000] It is recommended that docker daemon be restarted." in first.stderr

    before = daemon.read_bytes()
    assert ctk(standin_root, "--config", str(daemon)).returncode == 0
    assert daemon.read_bytes() == before

    assert ctk(standin_root, f"--config={daemon}", "--set-as-default").returncode == 0
    config = json.loads(daemon.read_text())
    assert config["default-runtime"] == "nvidia"
    assert config["log-driver"] == "json-file"


def test_ctk_keeps_other_runtimes(standin_root: Path, tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    daemon.write_text('{"runtimes": {"crun": {"path": "/usr/bin/crun"}}}')
    assert ctk(standin_root, f"--config={daemon}").returncode == 0
    assert json.loads(daemon.read_text())["runtimes"] == {
        "crun": {"path": "/usr/bin/crun"},
        "nvidia": {"args": [], "path": "nvidia-container-runtime"},
    }


@pytest.mark.parametrize("content", [None, "", "\n"], ids=["missing", "empty", "blank"])
def test_ctk_treats_missing_or_empty_config_as_empty(standin_root: Path, tmp_path: Path, content: str | None) -> None:
    daemon = tmp_path / "etc" / "docker" / "daemon.json"
    if content is not None:
        daemon.parent.mkdir(parents=True)
        daemon.write_text(content)
    assert ctk(standin_root, f"--config={daemon}").returncode == 0
    assert json.loads(daemon.read_text()) == {"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}


def test_ctk_dry_run_writes_nothing(standin_root: Path, tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    daemon.write_text('{"log-driver": "json-file"}')
    result = ctk(standin_root, f"--config={daemon}", "--dry-run", "--set-as-default")
    assert result.returncode == 0
    assert json.loads(result.stdout)["default-runtime"] == "nvidia"
    assert daemon.read_text() == '{"log-driver": "json-file"}'


@pytest.mark.parametrize("runtime", ["podman", "containerd"])
def test_ctk_refuses_other_runtimes(standin_root: Path, tmp_path: Path, runtime: str) -> None:
    daemon = tmp_path / "daemon.json"
    result = run(
        [str(standin_root / "usr/bin/nvidia-ctk"), "runtime", "configure", f"--runtime={runtime}", f"--config={daemon}"]
    )
    assert result.returncode == 1
    assert result.stderr.startswith("ERRO[0000]")
    assert not daemon.exists()


def test_hook_logs_prestart(standin_root: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(
        json.dumps({"process": {"env": ["PATH=/usr/bin", "NVIDIA_VISIBLE_DEVICES=all"]}})
    )
    state = {"ociVersion": "1.0.2", "id": "abc123", "status": "creating", "pid": 4242, "bundle": str(bundle)}
    log = tmp_path / "hook.log"
    env = {**os.environ, "NVIDIA_HOOK_STANDIN_LOG": str(log)}
    hook = str(standin_root / "usr/bin/nvidia-container-runtime-hook")
    for _ in range(2):
        result = run([hook, "prestart"], input=json.dumps(state), env=env)
        assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["command"] for line in lines] == ["prestart", "prestart"]
    assert lines[0]["container_id"] == "abc123"
    assert lines[0]["argv"][1:] == ["prestart"]
    assert lines[0]["nvidia_visible_devices"] == "all"


@pytest.mark.parametrize("stdin", ["not json", "[1, 2]", ""])
def test_hook_never_fails_a_container_start(standin_root: Path, tmp_path: Path, stdin: str) -> None:
    env = {**os.environ, "NVIDIA_HOOK_STANDIN_LOG": str(tmp_path / "missing-dir" / "hook.log")}
    result = run([str(standin_root / "usr/bin/nvidia-container-runtime-hook"), "prestart"], input=stdin, env=env)
    assert result.returncode == 0
    assert "not logged" in result.stderr


def test_runtime_execs_runc(standin_root: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "runc").write_text('#!/bin/sh\necho "runc $*"\n')
    (fake / "runc").chmod(0o755)
    shim = standin_root / "usr/bin/nvidia-container-runtime"
    result = run(
        [str(shim), "--root", "/x", "create", "id1"], env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    )
    assert result.returncode == 0
    assert result.stdout == "runc --root /x create id1\n"
