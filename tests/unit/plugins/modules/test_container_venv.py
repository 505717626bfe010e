"""container_venv, the module: its decisions with `docker` replaced by a recording fake."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sparkfleet.spark.plugins.module_utils import _container_venv as cv
from ansible_collections.sparkfleet.spark.plugins.module_utils import _venv_builder
from ansible_collections.sparkfleet.spark.plugins.modules import container_venv

IMAGE_ID = "sha256:" + "1" * 64
OLD_IMAGE = "sha256:" + "0" * 64
LOCK = "sha256:" + "a" * 64
OLD_LOCK = "sha256:" + "b" * 64
BUILD1 = "venv-20250101T000000Z-0000aaaa"
BUILD2 = "venv-20250102T000000Z-0000bbbb"
SECRET = "http://alice:hunter2@proxy.lab.example:3128"


class FakeDocker:
    """Answers `docker run ... probe|build` with canned builder JSON and records every call."""

    def __init__(
        self,
        probe: dict[str, Any],
        build: tuple[int, dict[str, Any]] | None = None,
        image_id: str | None = IMAGE_ID,
        on_build: Callable[[], None] | None = None,
    ) -> None:
        self.probe = probe
        self.image_id = image_id
        self.build = build or (0, {"changed": True, "stamp": {"image_id": IMAGE_ID}, "actions": ["built"], "venv": {}})
        self.on_build = on_build
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, module: AnsibleModule, argv: list[str], environ_update: dict | None = None, **kw: Any):
        if argv[1:3] == ["image", "inspect"]:
            if self.image_id is None:
                return 1, "", f"Error: No such image: {argv[-1]}\n"
            return 0, self.image_id + "\n", ""
        self.calls.append((list(argv), dict(environ_update or {})))
        command = argv[argv.index(cv.CONTAINER_SCRIPT) + 1]
        if command == "probe":
            return 0, "== NVIDIA banner ==\n" + json.dumps(self.probe) + "\n", ""
        rc, result = self.build
        if self.on_build is not None:
            self.on_build()
        return rc, json.dumps(result) + "\n", "[venv_builder] log\n"

    def commands(self) -> list[str]:
        return [argv[argv.index(cv.CONTAINER_SCRIPT) + 1] for argv, _env in self.calls]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "pyproject.toml").write_text("[project]\nname='p'\nversion='0'\n")
    # A project belongs to its (non-root) user: the module runs containers as that owner.
    os.chown(tmp_path / "project", 65534, 65534)
    uv = tmp_path / "uv"
    uv.write_text("#!/bin/sh\n")
    uv.chmod(0o755)
    return tmp_path / "project"


def live_venv(project: Path, build_id: str, stamp: dict | None) -> None:
    """What the builder leaves on the host: .venvs/<build>/ with its stamp, and .venv linking to it."""
    build = project / ".venvs" / build_id
    build.mkdir(parents=True, exist_ok=True)
    if stamp is not None:
        (build / "sparkfleet-stamp.json").write_text(json.dumps({**stamp, "venv_id": build_id}))
    link = project / ".venv"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(f".venvs/{build_id}")


def probe_result(project: Path, stamp: dict | None, exists: bool = True, interpreter_ok: bool = True) -> dict:
    """The builder's probe report; an existing venv is also laid out on the host (live_venv)."""
    if exists:
        live_venv(project, BUILD1, stamp)
    return {
        "python_version": "3.11.2",
        "lock_hash": LOCK,
        "system_torch": {"version": "2.13.0+cpu.nv25.11", "file": "/usr/local/lib/torch/__init__.py"},
        "venv": {
            "path": str(project / ".venv"),
            "exists": exists,
            "target": str(project / ".venvs" / BUILD1) if exists else None,
            "interpreter_ok": interpreter_ok,
            "interpreter_error": None
            if interpreter_ok
            else "venv interpreter bin/python is missing or a dangling link",
            "stamp": {**stamp, "venv_id": BUILD1} if stamp else stamp,
        },
    }


CURRENT: dict[str, Any] = {
    "image_id": IMAGE_ID,
    "repo_digest": None,
    "python_version": "3.11.2",
    "lock_hash": LOCK,
    "wheels": [],
}


def run_module(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, fake: Callable[..., Any], args: dict, **flags: bool
) -> dict:

    def run_command(module: AnsibleModule, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
        # A plain function binds to the module instance as a method does; a callable object would not.
        return fake(module, argv, **kwargs)

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/docker")
    internal = {f"_ansible_{k}": v for k, v in flags.items()}
    with patch_module_args({**args, **internal}), pytest.raises(SystemExit):
        container_venv.main()
    return json.loads(capsys.readouterr().out)


def module_args(project: Path, **extra: Any) -> dict:
    return {
        "project_dir": str(project),
        "image": "sparkfleet-testbed/ngc-pytorch:25.11-py3",
        "image_id": IMAGE_ID,
        "uv_binary": str(project.parent / "uv"),
        "_ansible_remote_tmp": str(project.parent / "remote-tmp"),
        **extra,
    }


@pytest.mark.parametrize(
    ("stamp", "exists", "interpreter_ok", "action"),
    [
        (CURRENT, True, True, "none"),
        (None, False, False, "create"),
        ({**CURRENT, "image_id": OLD_IMAGE}, True, True, "recreate"),
        (CURRENT, True, False, "repair"),
    ],
)
def test_check_mode_predicts_without_building(
    monkeypatch, capsys, project: Path, stamp, exists: bool, interpreter_ok: bool, action: str
) -> None:
    fake = FakeDocker(probe_result(project, stamp, exists, interpreter_ok))
    result = run_module(monkeypatch, capsys, fake, module_args(project), check_mode=True, diff=True)
    assert result["action"] == action
    assert result["changed"] is (action != "none")
    assert fake.commands() == ["probe"]
    assert result["diff"]["after"] == CURRENT
    assert result["diff"]["before"] == cv.stamp_subset(stamp)


def test_current_venv_is_left_alone(monkeypatch, capsys, project: Path) -> None:
    fake = FakeDocker(probe_result(project, CURRENT))
    result = run_module(monkeypatch, capsys, fake, module_args(project))
    assert result["changed"] is False and result["action"] == "none" and result["actions"] == []
    assert fake.commands() == ["probe"]


def test_recreate_builds_and_returns_the_new_stamp(monkeypatch, capsys, project: Path, tmp_path: Path) -> None:
    wheel = tmp_path / "xformers-0.0.33-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"PK")
    built = {
        "changed": True,
        "stamp": {**CURRENT, "wheels": [wheel.name], "venv_id": BUILD2},
        "actions": [f"building a new venv in .venvs/{BUILD2}", f"switched .venv to .venvs/{BUILD2}"],
        "venv": {"target": str(project / ".venvs" / BUILD2)},
        "cleanup_errors": [],
    }
    fake = FakeDocker(
        probe_result(project, {**CURRENT, "image_id": OLD_IMAGE}),
        (0, built),
        on_build=lambda: live_venv(project, BUILD2, {**CURRENT, "wheels": [wheel.name]}),
    )
    args = module_args(
        project,
        wheels=[str(wheel)],
        no_install_packages=["xformers"],
        verify_imports=["xformers"],
        proxy_env={"HTTPS_PROXY": SECRET, "NO_PROXY": "localhost"},
    )
    result = run_module(monkeypatch, capsys, fake, args)
    assert result["changed"] is True and result["action"] == "recreate"
    assert result["reasons"] == [
        f"image_id changed: {OLD_IMAGE} \u2192 {IMAGE_ID}",
        f"wheels changed: (none) \u2192 {wheel.name}",
    ]
    assert result["stamp"]["venv_id"] == BUILD2 and result["actions"] == built["actions"]
    assert result["venv_target"] == str(project / ".venvs" / BUILD2)
    assert fake.commands() == ["probe", "build"]
    build_argv, build_env = fake.calls[1]
    stamp_arg = json.loads(build_argv[build_argv.index("--stamp") + 1])
    assert stamp_arg == {"image_id": IMAGE_ID, "repo_digest": None, "wheels": [wheel.name]}
    assert build_argv.count("--no-install-package") == 1 and build_argv.count("--verify-import") == 1
    # Proxy values reach docker through its environment only.
    assert build_env == {"HTTPS_PROXY": SECRET, "NO_PROXY": "localhost"}
    for argv, _env in fake.calls:
        assert not any("hunter2" in arg or "proxy.lab" in arg for arg in argv)
    # The probe gets no proxy, no build mounts and no network.
    assert fake.calls[0][1] == {} and "/opt/sparkfleet/bin/uv" not in " ".join(fake.calls[0][0])
    probe_argv = fake.calls[0][0]
    assert probe_argv[probe_argv.index("--network") + 1] == "none"
    # The proxy password never shows in the module's output.
    assert "hunter2" not in json.dumps(result)


def test_failed_build_says_the_old_venv_is_in_place(monkeypatch, capsys, project: Path) -> None:
    failure = {
        "failed": True,
        "stage": "sync",
        "msg": "uv sync failed (exit 1): error: No solution found when resolving dependencies",
        "log_tail": ["error: No solution found when resolving dependencies"],
    }
    fake = FakeDocker(probe_result(project, {**CURRENT, "lock_hash": OLD_LOCK}), (1, failure))
    result = run_module(monkeypatch, capsys, fake, module_args(project))
    assert result["failed"] is True and result["changed"] is False
    assert result["stage"] == "sync" and result["log_tail"] == failure["log_tail"]
    assert "No solution found" in result["msg"]
    assert f"the previous venv (.venv -> {project / '.venvs' / BUILD1}) is still in place" in result["msg"]


def test_probe_failure_is_reported(monkeypatch, capsys, project: Path) -> None:
    def broken(module, argv, environ_update=None, **kw):
        return 125, "", "docker: Error response from daemon: No such image: nope.\n"

    result = run_module(monkeypatch, capsys, broken, module_args(project))
    assert result["failed"] is True and "No such image" in result["msg"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"user": "spark"}, "numeric uid:gid"),
        ({"wheels": ["/nonexistent/x.tar.gz"]}, "is not a .whl file"),
        ({"wheels": ["/a/x.whl", "/b/x.whl"]}, "share the file name"),
        ({"venv_name": "a/b"}, "plain name"),
    ],
)
def test_bad_inputs_fail_before_docker(monkeypatch, capsys, project: Path, extra: dict, message: str) -> None:
    fake = FakeDocker({})
    result = run_module(monkeypatch, capsys, fake, module_args(project, **extra))
    assert result["failed"] is True and message in result["msg"] and fake.calls == []


def test_missing_pyproject_fails(monkeypatch, capsys, project: Path) -> None:
    (project / "pyproject.toml").unlink()
    result = run_module(monkeypatch, capsys, FakeDocker({}), module_args(project))
    assert result["failed"] is True and "has no pyproject.toml" in result["msg"]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("no-image", "is not present"),
        ("other-image", "not image_id"),
        ("no-project", "does not exist"),
        ("no-pyproject", "has no pyproject.toml"),
    ],
)
def test_unprobeable_host_is_a_pending_change_in_check_mode_and_an_error_otherwise(
    monkeypatch, capsys, project: Path, setup: str, reason: str
) -> None:
    def fake() -> FakeDocker:
        image_id = {"no-image": None, "other-image": "sha256:" + "2" * 64}.get(setup, IMAGE_ID)
        return FakeDocker(probe_result(project, None, exists=False), image_id=image_id)

    args = module_args(project)
    if setup == "no-project":
        args["project_dir"] = str(project / "not-yet")
    if setup == "no-pyproject":
        (project / "pyproject.toml").unlink()
    checking = fake()
    checked = run_module(monkeypatch, capsys, checking, args, check_mode=True, diff=True)
    assert checked["changed"] is True and checked["action"] == "create", checked
    assert any(reason in r for r in checked["reasons"]) and checking.calls == []
    assert checked["diff"]["after"]["image_id"] == IMAGE_ID
    running = fake()
    failed = run_module(monkeypatch, capsys, running, args)
    assert failed["failed"] is True and reason in failed["msg"] and running.calls == []


def test_missing_build_inputs_only_warn_in_check_mode(monkeypatch, capsys, project: Path) -> None:
    args = module_args(project, uv_binary="/not/yet/uv", wheels=["/not/yet/xformers-0.0.33-py3-none-any.whl"])
    fake = FakeDocker(probe_result(project, None, exists=False))
    checked = run_module(monkeypatch, capsys, fake, args, check_mode=True)
    assert checked["changed"] is True and checked["action"] == "create" and fake.commands() == ["probe"]
    assert "a build would need: uv_binary /not/yet/uv" in json.dumps(checked["warnings"])
    failed = run_module(monkeypatch, capsys, FakeDocker(probe_result(project, None, exists=False)), args)
    assert failed["failed"] is True and "uv_binary /not/yet/uv" in failed["msg"] and "does not exist" in failed["msg"]


def test_a_short_image_id_is_recorded_in_full(monkeypatch, capsys, project: Path) -> None:
    fake = FakeDocker(probe_result(project, None, exists=False))
    result = run_module(monkeypatch, capsys, fake, module_args(project, image_id=IMAGE_ID[7:19]), check_mode=True)
    assert result["stamp"]["image_id"] == IMAGE_ID


@pytest.mark.parametrize(
    ("actual", "given", "same"),
    [
        (IMAGE_ID, IMAGE_ID, True),
        (IMAGE_ID, IMAGE_ID[7:], True),
        (IMAGE_ID, IMAGE_ID[7:19], True),
        (IMAGE_ID, "sha256:" + IMAGE_ID[7:19], True),
        (IMAGE_ID, IMAGE_ID[7:18], False),  # too short to mean one image
        (IMAGE_ID, "sha256:" + "2" * 64, False),
        (IMAGE_ID, "", False),
    ],
)
def test_same_image_id(actual: str, given: str, same: bool) -> None:
    assert cv.same_image_id(actual, given) is same


def test_user_defaults_to_the_project_owner(monkeypatch, capsys, project: Path) -> None:
    os.chown(project, 65534, 65534)
    fake = FakeDocker(probe_result(project, CURRENT))
    run_module(monkeypatch, capsys, fake, module_args(project))
    argv = fake.calls[0][0]
    assert argv[argv.index("--user") + 1] == "65534:65534"


def test_a_root_owned_project_needs_an_explicit_user(monkeypatch, capsys, project: Path) -> None:
    os.chown(project, 0, 0)
    fake = FakeDocker(probe_result(project, CURRENT))
    result = run_module(monkeypatch, capsys, fake, module_args(project))
    assert result["failed"] is True and "non-root user" in result["msg"] and fake.calls == []


def test_container_paths_are_reported_as_host_paths(monkeypatch, capsys, project: Path) -> None:
    probe = probe_result(project, CURRENT)
    probe["venv"]["target"] = f"/workspace/.venvs/{BUILD1}"
    fake = FakeDocker(probe)
    result = run_module(monkeypatch, capsys, fake, module_args(project, container_project_dir="/workspace"))
    assert result["venv_target"] == str(project / ".venvs" / BUILD1)


def test_the_shipped_script_is_the_builder() -> None:
    source = cv.builder_source()
    assert source == Path(_venv_builder.__file__).read_bytes()
    assert b"def sanitize_arch_list" in source


@pytest.mark.parametrize(
    ("value", "password"),
    [
        ("http://alice:hunter2@proxy:3128", "hunter2"),
        ("alice:hunter2@proxy:3128", "hunter2"),
        ("http://proxy:3128", None),
        ("localhost,127.0.0.1", None),
        ("", None),
    ],
)
def test_url_password(value: str, password: str | None) -> None:
    assert cv.url_password(value) == password


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        # The notebook user's attack on the unit: a venv_id with a newline and an ExecStartPre.
        ({"venv_id": "x\nExecStartPre=/bin/sh -c 'id > /tmp/p'"}, "venv_id does not name the build"),
        ({"image_id": "sha256:1\n[Service]"}, "image_id is malformed"),
        ({"wheels": ["../../etc/passwd"]}, "wheels is malformed"),
    ],
)
def test_an_altered_stamp_is_drift_to_repair(monkeypatch, capsys, project: Path, tamper: dict, reason: str) -> None:
    probe = probe_result(project, CURRENT)
    probe["venv"]["stamp"] = {**probe["venv"]["stamp"], **tamper}
    fake = FakeDocker(probe)
    result = run_module(monkeypatch, capsys, fake, module_args(project), check_mode=True, diff=True)
    assert result["action"] == "recreate" and result["changed"] is True
    assert any(r.startswith("altered: ") and reason in r for r in result["reasons"]), result["reasons"]
    assert "ExecStartPre" not in json.dumps(result["diff"])


def test_a_venv_link_to_a_system_directory_is_drift_to_repair(monkeypatch, capsys, project: Path) -> None:
    probe = probe_result(project, CURRENT)
    (project / ".venv").unlink()
    (project / ".venv").symlink_to("/etc")
    fake = FakeDocker(probe)
    result = run_module(monkeypatch, capsys, fake, module_args(project), check_mode=True)
    assert result["action"] == "recreate" and result["venv_target"] is None
    assert any("venv_id does not name the build" in r for r in result["reasons"])
