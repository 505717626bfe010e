"""The real builder script, in the NGC PyTorch stand-in image, with a real uv and PyPI.

Skipped when docker, the image, uv or PyPI (through the host's CA bundle) is not available.
One lifecycle: create (six, which the image also ships, allowed to be replaced) → the venv's
torch is the image's → current (plan none) → broken interpreter (plan repair) → repaired → an
unresolvable dependency fails the build and the old venv still works → a pin the image's copy
does not meet fails the requirements check → a copy the venv may not shadow fails the
verification. Then the module itself, through ansible, for check mode, a real run and an
idempotent re-run. Takes about 40 s with a warm Docker.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.spark.plugins.module_utils import _container_venv as cv
from ansible_collections.sparkfleet.spark.plugins.module_utils import _venv_builder

IMAGE = os.environ.get("SPARKFLEET_TEST_IMAGE", "sparkfleet-testbed/ngc-pytorch:25.11-py3")
IMAGE_TORCH = os.environ.get("SPARKFLEET_TEST_IMAGE_TORCH", "2.13.0+cpu.nv25.11")
IMAGE_SITE = "/usr/local/lib/python3.11/dist-packages/"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
REPO_ROOT = Path(__file__).resolve().parents[4]
UNPRIVILEGED = 4242

PYPROJECT = """\
[project]
name = "sparkfleet-it"
version = "0.1.0"
requires-python = ">=3.9"
dependencies = [{deps}]

[tool.uv]
override-dependencies = [
    "torch; python_version < '0'",
    "triton; python_version < '0'",
    "torchvision; python_version < '0'",{never}
]
"""


def _uv_binary() -> str | None:
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


def _image_id() -> str | None:
    if shutil.which("docker") is None:
        return None
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", IMAGE], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def _pypi_reachable() -> bool:
    context = ssl.create_default_context(cafile=CA_BUNDLE if os.path.exists(CA_BUNDLE) else None)
    try:
        with urllib.request.urlopen("https://pypi.org/simple/six/", timeout=10, context=context) as response:
            return bool(response.status == 200)
    except OSError:
        return False


IMAGE_ID = _image_id()
UV = _uv_binary()
pytestmark = [
    pytest.mark.skipif(IMAGE_ID is None, reason=f"docker or the image {IMAGE} is not available"),
    pytest.mark.skipif(UV is None, reason="no uv binary (pip install uv==0.13.9)"),
]


@pytest.fixture(scope="module")
def online() -> None:
    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable")


class Bed:
    """A project dir and the docker runs of the builder on it, as the module makes them."""

    def __init__(self, root: Path) -> None:
        self.project = root / "project"
        self.project.mkdir()
        self.cache = root / "uv-cache"
        self.cache.mkdir()
        self.user = f"{os.getuid()}:{os.getgid()}"
        self.write_pyproject(['"six"'])

    def write_pyproject(self, deps: list[str], never: tuple[str, ...] = ()) -> None:
        blocked = "".join(f"\n    \"{name}; python_version < '0'\"," for name in never)
        (self.project / "pyproject.toml").write_text(PYPROJECT.format(deps=", ".join(deps), never=blocked))

    def docker(self, args: list[str], build: bool = False) -> tuple[int, dict[str, Any] | None, str]:
        argv = cv.docker_run_argv(
            "docker",
            IMAGE,
            user=self.user,
            project_dir=str(self.project),
            script=_venv_builder.__file__,
            args=args,
            uv_binary=UV if build else None,
            uv_cache_dir=str(self.cache) if build else None,
            ca_bundle=CA_BUNDLE if build and os.path.exists(CA_BUNDLE) else None,
        )
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        return proc.returncode, cv.parse_result(proc.stdout), proc.stderr

    def probe(self) -> dict[str, Any]:
        rc, result, err = self.docker(cv.probe_args(str(self.project), ".venv"))
        assert rc == 0 and result is not None, err
        return result

    def plan(self) -> dict[str, Any]:
        probe = self.probe()
        return cv.plan(cv.desired_stamp(str(IMAGE_ID), None, [], probe), probe)

    def build(self, allow_replace: tuple[str, ...] = ("six",)) -> tuple[int, dict[str, Any], str]:
        stamp: dict[str, Any] = {"image_id": IMAGE_ID, "repo_digest": None, "wheels": []}
        args = cv.build_args(str(self.project), ".venv", stamp, verify_imports=["six"], allow_replace=allow_replace)
        rc, result, err = self.docker(args, True)
        assert result is not None, err
        return rc, result, err

    def venv_python(self, code: str) -> dict[str, Any]:
        venv_python = str(self.project / ".venv" / "bin" / "python")
        proc = subprocess.run(
            [
                *("docker", "run", "--rm", "--pull=never", "--user", self.user),
                *("-v", f"{self.project}:{self.project}", IMAGE, venv_python, "-c", code),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _image_six() -> str | None:
    if IMAGE_ID is None:
        return None
    proc = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--pull=never",
            "--network",
            "none",
            "--entrypoint",
            "python3",
            IMAGE,
            "-c",
            "import importlib.metadata as m; print(m.version('six'))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


IMAGE_SIX = _image_six()


WHICH_TORCH = (
    "import json, torch, six; "
    "print(json.dumps({'torch': torch.__version__, 'torch_file': torch.__file__, 'six': six.__file__}))"
)


def test_lifecycle_in_the_image(tmp_path: Path, online: None) -> None:
    if IMAGE_SIX is None:
        pytest.skip(f"the image {IMAGE} does not ship six")
    bed = Bed(tmp_path)
    assert bed.plan()["action"] == "create"

    rc, first, _err = bed.build()
    assert rc == 0, first
    target = Path(first["venv"]["target"])
    assert os.readlink(bed.project / ".venv") == os.path.join(".venvs", target.name)
    assert first["stamp"]["torch"]["version"] == IMAGE_TORCH
    assert (bed.project / "uv.lock").exists()
    # The image ships six too: the venv's copy is reported, allowed.
    assert set(first["shadowed"]) == {"six"} and first["shadowed"]["six"]["image"] == IMAGE_SIX, first
    assert bed.probe()["venv"]["shadowed"] == first["shadowed"]

    seen = bed.venv_python(WHICH_TORCH)
    assert seen["torch"] == IMAGE_TORCH
    assert seen["torch_file"].startswith(IMAGE_SITE)
    assert os.path.realpath(seen["six"]).startswith(str(target) + os.sep)

    # Idempotence: the stamp's lock hash was taken after uv sync wrote uv.lock.
    assert bed.plan() == {"action": "none", "reasons": []}

    (target / "bin" / "python").unlink()
    decision = bed.plan()
    assert decision["action"] == "repair", decision
    assert "dangling" in decision["reasons"][0]

    rc, second, _err = bed.build()
    assert rc == 0, second
    assert not target.exists(), "the superseded venv is removed"
    assert bed.plan()["action"] == "none"

    bed.write_pyproject(['"six"', '"nonexistent-package-xyz==1.0"'])
    decision = bed.plan()
    assert decision["action"] == "recreate" and decision["reasons"][0].startswith("lock_hash changed")
    rc, failed, _err = bed.build()
    assert rc == 1 and failed["failed"] is True and failed["stage"] == "sync", failed
    assert "nonexistent-package-xyz" in failed["msg"] and "not found" in failed["msg"]
    assert os.readlink(bed.project / ".venv") == os.path.join(".venvs", second["venv"]["id"])
    assert sorted(n for n in os.listdir(bed.project / ".venvs") if n.startswith("venv-")) == [second["venv"]["id"]]
    assert bed.venv_python(WHICH_TORCH)["torch"] == IMAGE_TORCH

    # six blocked (the image's copy is used) while the project pins another version: the
    # check names the pin, the image's version and the remedy; the old venv stays live.
    other = "1.16.0" if IMAGE_SIX != "1.16.0" else "1.15.0"
    bed.write_pyproject([f'"six=={other}"'], never=("six",))
    rc, conflict, _err = bed.build()
    assert rc == 1 and conflict["stage"] == "check", conflict
    assert f"the project requires six=={other}, the image has six {IMAGE_SIX}" in conflict["msg"], conflict
    assert "workspace_image_replace_packages" in conflict["msg"]
    assert os.readlink(bed.project / ".venv") == os.path.join(".venvs", second["venv"]["id"])

    # six neither blocked nor allowed: the new venv's own copy shadows the image's.
    bed.write_pyproject(['"six"'])
    rc, shadowing, _err = bed.build(allow_replace=())
    assert rc == 1 and shadowing["stage"] == "verify", shadowing
    assert "shadows the image's distributions: six " in shadowing["msg"], shadowing
    assert (
        f"over the image's {IMAGE_SIX}" in shadowing["msg"] and "workspace_image_replace_packages" in shadowing["msg"]
    )
    assert os.readlink(bed.project / ".venv") == os.path.join(".venvs", second["venv"]["id"])


@pytest.mark.skipif(shutil.which("ansible") is None, reason="no ansible CLI")
def test_module_through_ansible(tmp_path: Path, online: None) -> None:
    bed = Bed(tmp_path)
    if os.geteuid() == 0:
        # The module takes its container user from the project's owner and refuses root
        # (a root-owned project is never built in): hand the bed to an unprivileged uid, as
        # the workspace role does with the project user's.
        tmp_path.chmod(0o755)
        for path in (bed.project, bed.cache, *bed.project.rglob("*"), *bed.cache.rglob("*")):
            os.chown(path, UNPRIVILEGED, UNPRIVILEGED, follow_symlinks=False)
    args = {
        "project_dir": str(bed.project),
        "image": IMAGE,
        "image_id": IMAGE_ID,
        "uv_binary": UV,
        "uv_cache_dir": str(bed.cache),
        "verify_imports": ["six"],
        "image_replace_allowed": ["six"],
    }
    if os.path.exists(CA_BUNDLE):
        args["ca_bundle"] = CA_BUNDLE
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".collections"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "true",
        # One line per host: "localhost | CHANGED => {...}". (ansible.posix.json would
        # overwrite the result's `action` key with the task's action name.)
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.oneline",
        "ANSIBLE_REMOTE_TMP": str(tmp_path / "ansible-tmp"),
    }

    def module(*flags: str) -> dict[str, Any]:
        proc = subprocess.run(
            [
                "ansible",
                "localhost",
                "-c",
                "local",
                "-m",
                "sparkfleet.spark.container_venv",
                "-a",
                json.dumps(args),
                *flags,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )
        line = next((x for x in proc.stdout.splitlines() if x.startswith("localhost |")), "")
        assert " => " in line, proc.stdout + proc.stderr
        return dict(json.loads(line.split(" => ", 1)[1]))

    checked = module("--check", "--diff")
    assert checked["changed"] is True and checked["action"] == "create"
    assert not (bed.project / ".venv").exists()
    made = module()
    assert made["changed"] is True and made["stamp"]["image_id"] == IMAGE_ID, made
    assert list(made["shadowed"]) == ["six"], made
    again = module("--check")
    assert again["changed"] is False and again["action"] == "none", again
    assert module()["changed"] is False
