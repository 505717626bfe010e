"""jupyter_service: the plan as a table, the unit's placeholders, and main() against files in tmp_path.

docker, systemctl and journalctl are answered by a table in this file (monkeypatched run_command),
and /api/status by a stand-in for api_answers; the files (unit, token, venv) are real.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.spark.plugins.filter import validators
from ansible_collections.sparkfleet.spark.plugins.module_utils import _path_policy
from ansible_collections.sparkfleet.spark.plugins.modules import jupyter_service as js
from module_harness import run_main

ROOT = Path(__file__).resolve().parents[4]
IMAGE = "sha256:" + "a" * 64
IMAGE2 = "sha256:" + "b" * 64
BUILD = "venv-20250101T000000Z-0000aaaa"
BUILD2 = "venv-20250202T000000Z-0000bbbb"
STAMP: dict[str, Any] = {
    "image_id": IMAGE,
    "repo_digest": None,
    "python_version": "3.12.3",
    "lock_hash": "sha256:" + "3" * 64,
    "wheels": [],
    "venv_id": BUILD,
}
TEMPLATE = (
    "[Service]\n"
    "Environment=SPARKFLEET_IMAGE_ID=@SPARKFLEET_IMAGE_ID@\n"
    "Environment=SPARKFLEET_VENV_ID=@SPARKFLEET_VENV_ID@\n"
    "ExecStart=/usr/bin/docker run \\\n"
    "    --env JUPYTERLAB_DIR=@SPARKFLEET_JUPYTERLAB_DIR@ \\\n"
    "    @SPARKFLEET_IMAGE_ID@ \\\n"
    "    -m jupyterlab\n"
)


def unit_for(image: str = IMAGE, venv: str = BUILD, lab_dir: str = "") -> str:
    return js.fill_unit(TEMPLATE, image, venv, lab_dir)


# ---------------------------------------------------------------------------------------------
# plan(): one row per situation
# ---------------------------------------------------------------------------------------------

UNIT = unit_for()
GOOD: dict[str, Any] = {
    "token_dir": "ok",
    "token": "ok",
    "unit": UNIT,
    "enabled": True,
    "active": True,
    "need_daemon_reload": False,
}
WANT: dict[str, Any] = {"unit": UNIT, "venv_pending": False}

PLAN_CASES = [
    ("all as wanted", {}, {}, []),
    (
        "a fresh host: no token directory, no unit, no service",
        {"token_dir": "missing", "token": "missing", "unit": None, "enabled": False, "active": False},
        {},
        ["token_dir", "write_token", "write_unit", "daemon_reload", "enable", "restart"],
    ),
    (
        "no unit yet, token kept",
        {"unit": None, "enabled": False, "active": False},
        {},
        ["write_unit", "daemon_reload", "enable", "restart"],
    ),
    ("the image changed", {}, {"unit": unit_for(image=IMAGE2)}, ["write_unit", "daemon_reload", "restart"]),
    ("the venv changed", {}, {"unit": unit_for(venv=BUILD2)}, ["write_unit", "daemon_reload", "restart"]),
    (
        "the assets directory changed",
        {},
        {"unit": unit_for(lab_dir="/usr/local/share/jupyter/lab")},
        ["write_unit", "daemon_reload", "restart"],
    ),
    ("the unit was edited by hand", {"unit": UNIT + "# edited\n"}, {}, ["write_unit", "daemon_reload", "restart"]),
    ("the token is missing", {"token": "missing"}, {}, ["write_token", "restart"]),
    ("the token file's mode is wrong", {"token": "wrong_mode"}, {}, ["fix_token_mode"]),
    ("the token directory's mode is wrong", {"token_dir": "wrong"}, {}, ["token_dir"]),
    (
        "the token directory is gone",
        {"token_dir": "missing", "token": "missing"},
        {},
        ["token_dir", "write_token", "restart"],
    ),
    ("the service is stopped", {"active": False}, {}, ["start"]),
    ("the service is disabled", {"enabled": False}, {}, ["enable"]),
    ("stopped and disabled", {"enabled": False, "active": False}, {}, ["enable", "start"]),
    (
        "stopped, and the unit changed: one restart, no start",
        {"active": False},
        {"unit": unit_for(image=IMAGE2)},
        ["write_unit", "daemon_reload", "restart"],
    ),
    ("systemd holds an old copy of the unit", {"need_daemon_reload": True}, {}, ["daemon_reload"]),
    (
        "new token and new unit: one restart",
        {"token": "missing"},
        {"unit": unit_for(image=IMAGE2)},
        ["write_token", "write_unit", "daemon_reload", "restart"],
    ),
    (
        "check mode, no image or venv yet: it would be set up",
        {"token_dir": "missing", "token": "missing", "unit": None, "enabled": False, "active": False},
        {"unit": None},
        ["token_dir", "write_token", "write_unit", "daemon_reload", "enable", "restart"],
    ),
    (
        "check mode, image not pulled yet on a running host",
        {},
        {"unit": None},
        ["write_unit", "daemon_reload", "restart"],
    ),
    (
        "check mode, the workspace role would build a new venv",
        {},
        {"venv_pending": True},
        ["write_unit", "daemon_reload", "restart"],
    ),
]


@pytest.mark.parametrize(
    ("current", "desired", "actions"),
    [pytest.param({**GOOD, **cur}, {**WANT, **des}, actions, id=name) for name, cur, des, actions in PLAN_CASES],
)
def test_plan(current: dict, desired: dict, actions: list[str]) -> None:
    assert js.plan(current, desired) == actions


def test_plan_is_pure() -> None:
    current, desired = dict(GOOD, token="missing"), dict(WANT)
    before = (dict(current), dict(desired))
    js.plan(current, desired)
    assert (current, desired) == before


# ---------------------------------------------------------------------------------------------
# The unit's placeholders, the probe's answer, systemd's state
# ---------------------------------------------------------------------------------------------


def test_fill_unit_drops_the_assets_line_when_there_is_none() -> None:
    text = js.fill_unit(TEMPLATE, IMAGE, BUILD, "")
    assert "JUPYTERLAB_DIR" not in text and "@SPARKFLEET" not in text
    assert text.count(IMAGE) == 2 and f"Environment=SPARKFLEET_VENV_ID={BUILD}\n" in text


def test_fill_unit_names_the_assets_directory() -> None:
    text = js.fill_unit(TEMPLATE, IMAGE, BUILD, "/usr/local/share/jupyter/lab")
    assert "    --env JUPYTERLAB_DIR=/usr/local/share/jupyter/lab \\\n" in text
    assert js.lab_dir_of_unit(text) == "/usr/local/share/jupyter/lab"


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        (TEMPLATE, ""),
        (TEMPLATE.replace("    @SPARKFLEET_IMAGE_ID@ \\\n", ""), "@SPARKFLEET_IMAGE_ID@ 1 times, not 2"),
        (TEMPLATE + "--label x=@SPARKFLEET_VENV_ID@\n", "@SPARKFLEET_VENV_ID@ 2 times, not 1"),
        (TEMPLATE.replace("@SPARKFLEET_JUPYTERLAB_DIR@", "/x"), "@SPARKFLEET_JUPYTERLAB_DIR@ 0 times, not 1"),
    ],
)
def test_placeholder_problem(template: str, problem: str) -> None:
    assert problem in js.placeholder_problem(template) if problem else js.placeholder_problem(template) == ""


def test_the_roles_placeholders_are_the_modules() -> None:
    role_vars = yaml.safe_load((ROOT / "roles/jupyter/vars/main.yml").read_text())
    assert set(role_vars["jupyter_unit_placeholders"].values()) == set(js.PLACEHOLDER_COUNTS)
    template = (ROOT / "roles/jupyter/templates/jupyter.service.j2").read_text()
    for var in role_vars["jupyter_unit_placeholders"]:
        assert "{{ " + var + " }}" in template


@pytest.mark.parametrize(
    ("unit", "runs"),
    [
        (UNIT, True),
        (unit_for(image=IMAGE2), False),
        (unit_for(venv=BUILD2), False),
        (None, False),
        (UNIT.replace(f"SPARKFLEET_VENV_ID={BUILD}", f"SPARKFLEET_VENV_ID={BUILD} x"), False),
    ],
)
def test_unit_runs(unit: str | None, runs: bool) -> None:
    assert js.unit_runs(unit, IMAGE, BUILD) is runs


@pytest.mark.parametrize(
    ("stdout", "lab_dir"),
    [
        ("4.6.6\n\n", ""),
        ("4.6.6\n/usr/local/share/jupyter/lab\n", "/usr/local/share/jupyter/lab"),
        ("3.0.0\n", ""),
        ("10.1\n/x\n", "/x"),
    ],
)
def test_probe_answer(stdout: str, lab_dir: str) -> None:
    assert js.probe_answer(stdout, "img") == lab_dir


@pytest.mark.parametrize(
    ("stdout", "found"),
    [
        ("2.3.2\n/usr/local/share/jupyter/lab\n", "finds JupyterLab 2.3.2, which predates Jupyter Server (3.0)"),
        ("\n\n", "finds no JupyterLab"),
        ("", "finds no JupyterLab"),
        ("0.35\n", "JupyterLab 0.35,"),
    ],
)
def test_probe_answer_refuses_an_old_jupyterlab(stdout: str, found: str) -> None:
    with pytest.raises(js.ServiceError) as err:
        js.probe_answer(stdout, "nvcr.io/nvidia/pytorch:25.11-py3")
    assert found in str(err.value) and "workspace_jupyter_dependencies" in str(err.value)


PATHS = [
    "/usr/local/share/jupyter/lab",
    "/home/spark/p/.venvs/venv-1/share/jupyter/lab",
    "",
    "relative/lab",
    "/usr/share/jupyter/lab\nExecStartPre=/bin/sh",
    "/a b",
    "/a/../b",
    "/a//b",
    "/a/",
    "/a/-rf",
    "/etc",
    "/usr/local",
    "/x%n",
    "/x$HOME",
    "/" + "a" * 5000,
    "/lost+found",
    "/a@b+c",
]


@pytest.mark.parametrize("path", PATHS)
def test_plain_path_ok_is_the_filters_any_file_rule(path: str) -> None:
    assert _path_policy.plain_path_ok(path) is (validators.path_problem(path, "X", "any_file") == "")


def test_the_system_directories_are_the_filters() -> None:
    assert validators.SYSTEM_DIRS == _path_policy.SYSTEM_DIRS


@pytest.mark.parametrize(
    ("show", "state"),
    [
        ("UnitFileState=enabled\nActiveState=active\nNeedDaemonReload=no\n", (True, True, False)),
        ("UnitFileState=disabled\nActiveState=inactive\nNeedDaemonReload=no\n", (False, False, False)),
        ("UnitFileState=\nActiveState=inactive\nNeedDaemonReload=no\n", (False, False, False)),
        ("UnitFileState=enabled\nActiveState=activating\nNeedDaemonReload=yes\n", (True, True, True)),
        ("UnitFileState=enabled\nActiveState=failed\n", (True, False, False)),
    ],
)
def test_systemd_state(show: str, state: tuple[bool, bool, bool]) -> None:
    got = js.systemd_state(show)
    assert (got["enabled"], got["active"], got["need_daemon_reload"]) == state


# ---------------------------------------------------------------------------------------------
# main(): files in tmp_path, commands answered by a table
# ---------------------------------------------------------------------------------------------


class Host:
    """What docker, systemctl and journalctl answer, and the commands the module ran."""

    def __init__(self, tmp_path: Path) -> None:
        self.image: str | None = IMAGE
        self.probe = "4.6.6\n\n"
        self.systemd = {"UnitFileState": "enabled", "ActiveState": "active", "NeedDaemonReload": "no"}
        self.answers = True
        self.ran: list[list[str]] = []
        self.socket = tmp_path / "docker.sock"
        self.socket.touch()
        self.docker = tmp_path / "docker"
        self.docker.touch()

    def run_command(self, argv: list[str], **_: Any) -> tuple[int, str, str]:
        self.ran.append(argv)
        if argv[0] == str(self.docker) and argv[1:3] == ["image", "inspect"]:
            return (0, self.image + "\n", "") if self.image else (1, "", "Error: No such image")
        if argv[0] == str(self.docker) and argv[1] == "run":
            return 0, self.probe, ""
        if argv[:2] == ["systemctl", "show"]:
            return 0, "".join(f"{k}={v}\n" for k, v in self.systemd.items()), ""
        if argv[0] == "systemctl":
            return 0, "", ""
        if argv[0] == "journalctl":
            return 0, "line one\nline two\n", ""
        raise AssertionError(f"unexpected command {argv}")

    def commands(self) -> list[str]:
        return [" ".join(argv[:2]) for argv in self.ran if argv[0] == "systemctl" and argv[1] != "show"]

    def probed(self) -> bool:
        return any(argv[1] == "run" for argv in self.ran if argv[0] == str(self.docker))


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    fake = Host(tmp_path)
    monkeypatch.setattr(AnsibleModule, "run_command", lambda module, argv, **kw: fake.run_command(argv, **kw))
    monkeypatch.setattr(js, "api_answers", lambda url, token: fake.answers)
    monkeypatch.setattr(js.time, "sleep", lambda seconds: None)
    return fake


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    build = project / ".venvs" / BUILD
    build.mkdir(parents=True)
    (build / "sparkfleet-stamp.json").write_text(json.dumps(STAMP))
    (project / ".venv").symlink_to(f".venvs/{BUILD}")
    return project


def args(tmp_path: Path, host: Host, project: Path, **more: Any) -> dict[str, Any]:
    return {
        "name": "sparkfleet-jupyter-p",
        "unit": TEMPLATE,
        "unit_path": str(tmp_path / "units" / "sparkfleet-jupyter-p.service"),
        "image": "nvcr.io/nvidia/pytorch:25.11-py3",
        "project_dir": str(project),
        "uid": 1000,
        "gid": 1000,
        "token_file": str(tmp_path / "tokens" / "p.env"),
        "docker": str(host.docker),
        "docker_socket": str(host.socket),
        "probe_url": "http://127.0.0.1:8888",
        "start_timeout": 1,
        **more,
    }


def run(capsys: pytest.CaptureFixture, tmp_path: Path, **a: Any) -> tuple[dict, str]:
    return run_main(js.main, capsys, tmp_path, **a)


def converged(tmp_path: Path, capsys: pytest.CaptureFixture, host: Host, project: Path) -> dict[str, Any]:
    (tmp_path / "units").mkdir(exist_ok=True)
    a = args(tmp_path, host, project)
    result, _ = run(capsys, tmp_path, **a)
    assert not result.get("failed"), result
    host.ran.clear()
    return a


def mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_fresh_host_gets_token_unit_and_a_running_service(tmp_path, capsys, host, project) -> None:
    (tmp_path / "units").mkdir()
    host.systemd = {"UnitFileState": "", "ActiveState": "inactive", "NeedDaemonReload": "no"}
    a = args(tmp_path, host, project)
    result, out = run(capsys, tmp_path, diff=True, **a)
    assert result["changed"] is True
    assert result["actions"] == ["token_dir", "write_token", "write_unit", "daemon_reload", "enable", "restart"]
    assert host.commands() == ["systemctl daemon-reload", "systemctl enable", "systemctl restart"]
    assert result["image_id"] == IMAGE and result["venv_id"] == BUILD and result["probed"] is True
    token = Path(a["token_file"]).read_text()
    assert token.startswith("JUPYTER_TOKEN=") and len(token) == len("JUPYTER_TOKEN=") + 64 + 1
    assert token.split("=", 1)[1].strip() not in out
    assert mode(a["token_file"]) == 0o600 and mode(str(tmp_path / "tokens")) == 0o700
    assert Path(a["unit_path"]).read_text() == unit_for() and mode(a["unit_path"]) == 0o644
    assert result["diff"]["before"] == "" and result["diff"]["after"] == unit_for()
    probe = next(argv for argv in host.ran if argv[1] == "run")
    assert probe[:12] == [
        str(host.docker),
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "1000:1000",
        "--env",
        "HOME=/tmp",
        "--mount",
        f"type=bind,source={project},target={project},readonly",
        "--entrypoint",
    ]
    assert probe[12:] == [f"{project}/.venv/bin/python", IMAGE, "-c", js.LAB_DIR_PROBE]


def test_a_no_op_changes_nothing_and_runs_no_probe(tmp_path, capsys, host, project) -> None:
    a = converged(tmp_path, capsys, host, project)
    token = Path(a["token_file"]).read_text()
    result, _ = run(capsys, tmp_path, **a)
    assert result["changed"] is False and result["actions"] == []
    assert host.commands() == [] and not host.probed()
    assert Path(a["token_file"]).read_text() == token


def test_check_mode_with_diff_on_a_new_image_writes_nothing(tmp_path, capsys, host, project) -> None:
    a = converged(tmp_path, capsys, host, project)
    host.image = IMAGE2
    result, _ = run(capsys, tmp_path, check_mode=True, diff=True, **a)
    assert result["changed"] is True and result["actions"] == ["write_unit", "daemon_reload", "restart"]
    assert IMAGE2 in result["diff"]["after"] and IMAGE in result["diff"]["before"]
    assert Path(a["unit_path"]).read_text() == unit_for() and host.commands() == []


def test_a_new_image_restarts_once(tmp_path, capsys, host, project) -> None:
    a = converged(tmp_path, capsys, host, project)
    host.image = IMAGE2
    result, _ = run(capsys, tmp_path, **a)
    assert result["actions"] == ["write_unit", "daemon_reload", "restart"] and result["probed"] is True
    assert host.commands() == ["systemctl daemon-reload", "systemctl restart"]
    assert Path(a["unit_path"]).read_text() == unit_for(image=IMAGE2)


def test_the_assets_directory_is_kept_from_the_unit_without_a_probe(tmp_path, capsys, host, project) -> None:
    host.probe = "4.6.6\n/usr/local/share/jupyter/lab\n"
    a = converged(tmp_path, capsys, host, project)
    result, _ = run(capsys, tmp_path, **a)
    assert result["changed"] is False and result["jupyterlab_dir"] == "/usr/local/share/jupyter/lab"
    assert not host.probed()


@pytest.mark.parametrize("answer", ["/tmp/x y", "/usr/share/lab \\\n--privileged", "/lab%h", "relative", "/etc"])
def test_a_probe_answer_that_is_not_a_plain_path_is_left_out(tmp_path, capsys, host, project, answer) -> None:
    (tmp_path / "units").mkdir()
    host.probe = f"4.6.6\n{answer}\n"
    a = args(tmp_path, host, project)
    result, _ = run(capsys, tmp_path, **a)
    assert result["jupyterlab_dir"] == "" and "JUPYTERLAB_DIR" not in Path(a["unit_path"]).read_text()


def test_an_old_jupyterlab_fails_naming_the_knob(tmp_path, capsys, host, project) -> None:
    (tmp_path / "units").mkdir()
    host.probe = "2.3.2\n/usr/local/share/jupyter/lab\n"
    a = args(tmp_path, host, project)
    result, _ = run(capsys, tmp_path, **a)
    assert result["failed"] and "JupyterLab 2.3.2, which predates Jupyter Server" in result["msg"]
    assert "workspace_jupyter_dependencies" in result["msg"] and not Path(a["unit_path"]).exists()


def test_a_stopped_service_is_started_without_a_restart(tmp_path, capsys, host, project) -> None:
    a = converged(tmp_path, capsys, host, project)
    host.systemd["ActiveState"] = "inactive"
    result, _ = run(capsys, tmp_path, **a)
    assert result["actions"] == ["start"] and host.commands() == ["systemctl start"]


def test_a_missing_token_is_made_and_restarts(tmp_path, capsys, host, project) -> None:
    a = converged(tmp_path, capsys, host, project)
    os.unlink(a["token_file"])
    result, out = run(capsys, tmp_path, **a)
    assert result["actions"] == ["write_token", "restart"] and host.commands() == ["systemctl restart"]
    assert Path(a["token_file"]).read_text().split("=", 1)[1].strip() not in out


def test_a_wider_token_mode_is_narrowed_without_a_restart(tmp_path, capsys, host, project) -> None:
    a = converged(tmp_path, capsys, host, project)
    token = Path(a["token_file"]).read_text()
    os.chmod(a["token_file"], 0o644)
    result, _ = run(capsys, tmp_path, **a)
    assert result["actions"] == ["fix_token_mode"] and host.commands() == []
    assert mode(a["token_file"]) == 0o600 and Path(a["token_file"]).read_text() == token


def test_a_token_link_is_replaced_not_followed(tmp_path, capsys, host, project) -> None:
    a = converged(tmp_path, capsys, host, project)
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    os.unlink(a["token_file"])
    os.symlink(victim, a["token_file"])
    result, _ = run(capsys, tmp_path, **a)
    assert result["actions"] == ["write_token", "restart"]
    assert victim.read_text() == "keep\n" and not os.path.islink(a["token_file"])


def test_check_mode_without_the_image_says_it_would_be_set_up(tmp_path, capsys, host, project) -> None:
    host.image = None
    host.systemd = {"UnitFileState": "", "ActiveState": "inactive", "NeedDaemonReload": "no"}
    a = args(tmp_path, host, project)
    result, _ = run(capsys, tmp_path, check_mode=True, diff=True, **a)
    assert result["changed"] is True and "would be set up once the image" in result["msg"]
    assert "token_dir" in result["actions"] and "restart" in result["actions"]
    assert not (tmp_path / "tokens").exists() and not (tmp_path / "units").exists() and host.commands() == []


def test_check_mode_without_the_docker_socket_asks_nothing(tmp_path, capsys, host, project) -> None:
    host.socket.unlink()
    a = args(tmp_path, host, project)
    result, _ = run(capsys, tmp_path, check_mode=True, **a)
    assert result["changed"] is True and "would be set up" in result["msg"]
    assert not any(argv[0] == str(host.docker) for argv in host.ran)


def test_without_the_venv_a_real_run_fails_and_says_why(tmp_path, capsys, host, project) -> None:
    (project / ".venv").unlink()
    (project / ".venv").symlink_to("/etc")
    a = args(tmp_path, host, project)
    result, _ = run(capsys, tmp_path, **a)
    assert result["failed"] and f"the venv {project}/.venv as the workspace role builds it: " in result["msg"]
    assert "links somewhere other than" in result["msg"]


def test_check_mode_reports_the_restart_a_pending_venv_would_cause(tmp_path, capsys, host, project) -> None:
    a = converged(tmp_path, capsys, host, project)
    result, _ = run(capsys, tmp_path, check_mode=True, venv_pending=True, **a)
    assert result["changed"] is True and result["actions"] == ["write_unit", "daemon_reload", "restart"]
    assert "would be restarted on the venv the workspace role would build" in result["msg"]
    result, _ = run(capsys, tmp_path, venv_pending=True, **a)
    assert result["changed"] is False


def test_an_unwritable_token_directory_fails_with_the_reason(tmp_path, capsys, host, project, monkeypatch) -> None:
    (tmp_path / "units").mkdir()
    (tmp_path / "tokens").mkdir(mode=0o700)

    def read_only(*_: Any, **__: Any) -> Any:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(js.tempfile, "mkstemp", read_only)
    a = args(tmp_path, host, project)
    result, out = run(capsys, tmp_path, **a)
    assert result["failed"]
    assert f"Writing the Jupyter token to {a['token_file']} failed: [Errno 30] Read-only file system" in result["msg"]
    assert "censored" not in out


def test_a_server_that_never_answers_fails_with_the_journal(tmp_path, capsys, host, project) -> None:
    a = converged(tmp_path, capsys, host, project)
    host.answers = False
    result, _ = run(capsys, tmp_path, **a)
    assert result["failed"]
    assert result["msg"].startswith("Jupyter did not answer on http://127.0.0.1:8888/api/status within 1 s.")
    assert "Last lines of `journalctl -u sparkfleet-jupyter-p`: ['line one', 'line two']" in result["msg"]
    assert ["journalctl", "--unit", "sparkfleet-jupyter-p", "--lines", "40", "--no-pager"] in host.ran


def test_a_unit_without_its_placeholders_is_refused(tmp_path, capsys, host, project) -> None:
    a = args(tmp_path, host, project, unit="[Service]\n")
    result, _ = run(capsys, tmp_path, **a)
    assert result["failed"] and "@SPARKFLEET_IMAGE_ID@ 0 times" in result["msg"]
