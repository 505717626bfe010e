"""nvidia_runtime: the plan as a table, and main() against files in tmp_path.

systemctl, docker and nvidia-ctk are answered by a table in this file (monkeypatched run_command);
the stand-in nvidia-ctk edits daemon.json as the real one does. daemon.json and the smoke record
are real files.
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
from ansible_collections.sparkfleet.spark.plugins.modules import nvidia_runtime as nr
from module_harness import run_main

ROOT = Path(__file__).resolve().parents[4]
IMAGE = "nvcr.io/nvidia/pytorch:25.11-py3"
IMAGE_ID = "sha256:" + "a" * 64
COMMAND = ["nvidia-smi", "-L"]
PACKAGES = {"nvidia-container-toolkit": "1.18.0-1", "nvidia-container-toolkit-base": "1.18.0-1"}
RECORD = {"image": IMAGE, "command": COMMAND, "packages": PACKAGES}
NVIDIA = {"args": [], "path": "nvidia-container-runtime"}

# ---------------------------------------------------------------------------------------------
# plan(): one row per situation
# ---------------------------------------------------------------------------------------------

GOOD: dict[str, Any] = {"runtime_present": True, "default_runtime": None, "docker_active": True, "record": RECORD}
WANT: dict[str, Any] = {
    "set_as_default": False,
    "installed_changed": False,
    "smoke_enabled": True,
    "smoke_every_run": False,
    "record": RECORD,
}
RESTART = ["reset_failed", "restart_docker"]

PLAN_CASES = [
    ("all as wanted", {}, {}, []),
    (
        "a fresh host: no runtime, no record",
        {"runtime_present": False, "record": None},
        {"installed_changed": True},
        ["configure_runtime", *RESTART, "smoke", "record"],
    ),
    ("the runtime was removed", {"runtime_present": False}, {}, ["configure_runtime", *RESTART, "smoke"]),
    (
        "the runtime was removed, Docker stopped: the restart starts it",
        {"runtime_present": False, "docker_active": False},
        {},
        ["configure_runtime", *RESTART, "smoke"],
    ),
    ("no record yet", {"record": None}, {}, ["smoke", "record"]),
    ("another image", {}, {"record": {**RECORD, "image": IMAGE_ID}}, ["smoke", "record"]),
    ("another command", {}, {"record": {**RECORD, "command": ["python3", "-c", "1"]}}, ["smoke", "record"]),
    (
        "other toolkit versions on the host",
        {},
        {"record": {**RECORD, "packages": {**PACKAGES, "nvidia-container-toolkit": "1.18.1-1"}}},
        ["smoke", "record"],
    ),
    ("the toolkit installed in this run, Docker runs", {}, {"installed_changed": True}, [*RESTART, "smoke"]),
    (
        "the toolkit installed in this run, Docker stopped",
        {"docker_active": False},
        {"installed_changed": True},
        ["smoke"],
    ),
    ("every run, record current: only the check", {}, {"smoke_every_run": True}, ["smoke"]),
    ("every run, no record yet", {"record": None}, {"smoke_every_run": True}, ["smoke", "record"]),
    ("smoke disabled, all else as wanted", {"record": None}, {"smoke_enabled": False}, []),
    (
        "smoke disabled, the runtime removed",
        {"runtime_present": False},
        {"smoke_enabled": False},
        ["configure_runtime", *RESTART],
    ),
    (
        "smoke disabled, the toolkit installed",
        {},
        {"smoke_enabled": False, "installed_changed": True},
        RESTART,
    ),
    (
        "nvidia wanted as the default runtime, not yet",
        {},
        {"set_as_default": True},
        ["configure_runtime", *RESTART, "smoke"],
    ),
    (
        "nvidia wanted as the default runtime, another one is",
        {"default_runtime": "runc"},
        {"set_as_default": True},
        ["configure_runtime", *RESTART, "smoke"],
    ),
    ("nvidia already the default runtime", {"default_runtime": "nvidia"}, {"set_as_default": True}, []),
    ("nvidia the default, not asked for: left alone", {"default_runtime": "nvidia"}, {}, []),
    (
        "runtime removed and a new image: one restart, one check",
        {"runtime_present": False},
        {"record": {**RECORD, "image": IMAGE_ID}},
        ["configure_runtime", *RESTART, "smoke", "record"],
    ),
]


@pytest.mark.parametrize(
    ("current", "desired", "actions"),
    [pytest.param({**GOOD, **cur}, {**WANT, **des}, actions, id=name) for name, cur, des, actions in PLAN_CASES],
)
def test_plan(current: dict, desired: dict, actions: list[str]) -> None:
    assert nr.plan(current, desired) == actions


def test_plan_is_pure() -> None:
    current, desired = dict(GOOD, runtime_present=False), dict(WANT, installed_changed=True)
    before = (json.dumps(current), json.dumps(desired))
    nr.plan(current, desired)
    assert (json.dumps(current), json.dumps(desired)) == before


def test_the_smoke_message_is_the_roles_old_assert() -> None:
    # tasks/smoke.yml's fail_msg (a folded scalar), rendered for these values.
    assert nr.smoke_message(IMAGE, COMMAND, 125, "  could not select device driver\n", "/etc/docker/daemon.json") == (
        f"`docker run --gpus all {IMAGE} nvidia-smi -L` failed (rc 125): could not select device driver. "
        "Check the driver (nvidia-smi on the host) and the runtime in /etc/docker/daemon.json; "
        "set nvidia_toolkit_smoke_enabled=false to skip this check."
    )


@pytest.mark.parametrize(
    ("show", "active"),
    [("ActiveState=active\n", True), ("ActiveState=activating\n", True), ("ActiveState=failed\n", False), ("", False)],
)
def test_active_state(show: str, active: bool) -> None:
    assert nr.active_state(show) is active


def test_the_role_passes_only_options_the_module_has() -> None:
    tasks = yaml.safe_load((ROOT / "roles/nvidia_toolkit/tasks/main.yml").read_text())
    task = next(t for t in tasks if "sparkfleet.spark.nvidia_runtime" in t)
    options = yaml.safe_load(nr.DOCUMENTATION)["options"]
    assert set(task["sparkfleet.spark.nvidia_runtime"]) <= set(options)


# ---------------------------------------------------------------------------------------------
# main(): files in tmp_path, commands answered by a table
# ---------------------------------------------------------------------------------------------


class Host:
    """What systemctl, docker and nvidia-ctk answer, and the commands the module ran."""

    def __init__(self, tmp_path: Path) -> None:
        self.active = "active"
        self.smoke = (0, "GPU 0: NVIDIA GB10 (UUID: GPU-1)\n", "")
        self.info_failures = 0
        self.ran: list[list[str]] = []
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        self.docker, self.ctk = bin_dir / "docker", bin_dir / "nvidia-ctk"
        for tool in (self.docker, self.ctk):
            tool.touch(mode=0o755)

    def run_command(self, argv: list[str], **_: Any) -> tuple[int, str, str]:
        self.ran.append(argv)
        if argv[:2] == ["systemctl", "show"]:
            return 0, f"ActiveState={self.active}\n", ""
        if argv[0] == "systemctl":
            return 0, "", ""
        if argv[0] == str(self.ctk):
            config = next(a.split("=", 1)[1] for a in argv if a.startswith("--config="))
            data = json.loads(Path(config).read_text()) if os.path.exists(config) else {}
            data.setdefault("runtimes", {})["nvidia"] = NVIDIA
            if "--set-as-default" in argv:
                data["default-runtime"] = "nvidia"
            Path(config).write_text(json.dumps(data, indent=4))
            return 0, "", "INFO[0000] Wrote updated config\n"
        if argv[:2] == [str(self.docker), "info"]:
            if self.info_failures > 0:
                self.info_failures -= 1
                return 1, "", "Cannot connect to the Docker daemon"
            return 0, "Server Version: 28.0\n", ""
        if argv[:2] == [str(self.docker), "run"]:
            return self.smoke
        raise AssertionError(f"unexpected command {argv}")

    def commands(self) -> list[str]:
        """What ran, the read step's `systemctl show` left out; tools by their base name."""
        return [
            " ".join([os.path.basename(argv[0]), *argv[1:3]]) for argv in self.ran if argv[:2] != ["systemctl", "show"]
        ]


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    fake = Host(tmp_path)
    monkeypatch.setattr(AnsibleModule, "run_command", lambda module, argv, **kw: fake.run_command(argv, **kw))
    monkeypatch.setattr(nr.time, "sleep", lambda seconds: None)
    return fake


def args(tmp_path: Path, host: Host, **more: Any) -> dict[str, Any]:
    return {
        "config_path": str(tmp_path / "docker" / "daemon.json"),
        "packages": PACKAGES,
        "smoke_image": IMAGE,
        "smoke_command": COMMAND,
        "record_path": str(tmp_path / "state" / "gpu-smoke.json"),
        "docker": str(host.docker),
        "nvidia_ctk": str(host.ctk),
        "restart_timeout": 5,
        **more,
    }


def daemon(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "docker" / "daemon.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=4))
    return path


def record(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "state" / "gpu-smoke.json"
    path.parent.mkdir(mode=0o755, exist_ok=True)
    path.write_text(text)
    return path


def run(capsys: pytest.CaptureFixture, tmp_path: Path, **a: Any) -> dict[str, Any]:
    return run_main(nr.main, capsys, tmp_path, **a)[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def converged(tmp_path: Path) -> None:
    daemon(tmp_path, {"log-driver": "json-file", "runtimes": {"nvidia": NVIDIA}})
    record(tmp_path, json.dumps(RECORD, sort_keys=True) + "\n")


def test_a_no_op_runs_no_command(tmp_path, capsys, host) -> None:
    converged(tmp_path)
    result = run(capsys, tmp_path, diff=True, **args(tmp_path, host))
    assert result["changed"] is False and result["actions"] == []
    assert result["runtime_present"] is True and result["smoke_ran"] is False and result["smoke_rc"] is None
    assert host.commands() == []
    assert "diff" not in result


def test_the_roles_old_record_is_still_current(tmp_path, capsys, host) -> None:
    # to_json(sort_keys=true) wrote it with its own separators: the record is compared as data.
    converged(tmp_path)
    record(tmp_path, json.dumps(RECORD, sort_keys=True, separators=(", ", ": ")) + "\n")
    result = run(capsys, tmp_path, **args(tmp_path, host))
    assert result["actions"] == [] and host.commands() == []


def test_a_missing_runtime_is_configured_then_docker_restarted_then_smoked_and_recorded(tmp_path, capsys, host) -> None:
    daemon(tmp_path, {"log-driver": "json-file"})
    host.info_failures = 2
    result = run(capsys, tmp_path, diff=True, **args(tmp_path, host))
    assert result["changed"] is True and result["runtime_present"] is False
    assert result["actions"] == ["configure_runtime", "reset_failed", "restart_docker", "smoke", "record"]
    assert host.commands() == [
        "nvidia-ctk runtime configure",
        "systemctl reset-failed docker.service",
        "systemctl restart docker.service",
        "docker info",
        "docker info",
        "docker info",
        "docker run --rm",
    ]
    ctk = next(argv for argv in host.ran if argv[0] == str(host.ctk))
    assert ctk[1:] == ["runtime", "configure", "--runtime=docker", f"--config={tmp_path}/docker/daemon.json"]
    smoke = next(argv for argv in host.ran if argv[1:2] == ["run"])
    assert smoke[1:] == ["run", "--rm", "--gpus", "all", IMAGE, *COMMAND]
    assert result["smoke_ran"] is True and result["smoke_rc"] == 0
    written = tmp_path / "state" / "gpu-smoke.json"
    assert written.read_text() == json.dumps(RECORD, sort_keys=True) + "\n"
    assert mode(written) == 0o644 and mode(written.parent) == 0o755
    assert os.lstat(written).st_uid == 0 and os.lstat(written.parent).st_uid == 0
    runtimes, smoke_record = result["diff"]
    assert "nvidia" not in json.loads(runtimes["before"])["runtimes"]
    assert json.loads(runtimes["after"])["runtimes"]["nvidia"] == NVIDIA
    assert smoke_record["before"] == "" and json.loads(smoke_record["after"]) == RECORD
    # Converged: the next run does nothing.
    host.ran.clear()
    again = run(capsys, tmp_path, **args(tmp_path, host))
    assert again["actions"] == [] and host.commands() == []


def test_set_as_default_is_passed_to_nvidia_ctk(tmp_path, capsys, host) -> None:
    converged(tmp_path)
    result = run(capsys, tmp_path, set_as_default=True, **args(tmp_path, host))
    assert result["actions"] == ["configure_runtime", "reset_failed", "restart_docker", "smoke"]
    assert next(argv for argv in host.ran if argv[0] == str(host.ctk))[-1] == "--set-as-default"
    assert json.loads((tmp_path / "docker" / "daemon.json").read_text())["default-runtime"] == "nvidia"


def test_a_failed_smoke_check_fails_with_the_roles_message(tmp_path, capsys, host) -> None:
    converged(tmp_path)
    host.smoke = (125, "", 'docker: Error response from daemon: could not select device driver "" with capabilities\n')
    a = args(tmp_path, host, smoke_image=IMAGE_ID)
    result = run(capsys, tmp_path, **a)
    assert result["failed"] is True
    assert result["msg"] == (
        f"`docker run --gpus all {IMAGE_ID} nvidia-smi -L` failed (rc 125): "
        'docker: Error response from daemon: could not select device driver "" with capabilities. '
        f"Check the driver (nvidia-smi on the host) and the runtime in {a['config_path']}; "
        "set nvidia_toolkit_smoke_enabled=false to skip this check."
    )
    # The last pass stays recorded: the check runs again next time.
    assert json.loads((tmp_path / "state" / "gpu-smoke.json").read_text()) == RECORD


def test_check_mode_writes_nothing_and_runs_no_container(tmp_path, capsys, host) -> None:
    path = daemon(tmp_path, {"log-driver": "json-file"})
    before = path.read_text()
    host.ctk.unlink()  # the toolkit packages are still pending
    result = run(capsys, tmp_path, check_mode=True, diff=True, installed_changed=True, **args(tmp_path, host))
    assert result["changed"] is True and not result.get("failed")
    assert result["actions"] == ["configure_runtime", "reset_failed", "restart_docker", "smoke", "record"]
    assert "nvidia-ctk runtime configure would add it" in result["msg"]
    assert "is not installed yet" in result["msg"] and f"would run {IMAGE}" in result["msg"]
    assert host.commands() == [] and result["smoke_ran"] is False
    assert path.read_text() == before and not (tmp_path / "state").exists()
    runtimes, smoke_record = result["diff"]
    assert json.loads(runtimes["after"])["runtimes"] == {"nvidia": NVIDIA}
    assert json.loads(smoke_record["after"]) == RECORD


def test_check_mode_on_a_host_without_docker_yet(tmp_path, capsys, host) -> None:
    host.active = "inactive"
    result = run(capsys, tmp_path, check_mode=True, **args(tmp_path, host))
    assert result["changed"] is True and result["actions"][0] == "configure_runtime"
    assert host.commands() == [] and not (tmp_path / "docker").exists()


def test_a_symlinked_record_is_not_followed(tmp_path, capsys, host) -> None:
    converged(tmp_path)
    victim = tmp_path / "victim.json"
    victim.write_text(json.dumps(RECORD, sort_keys=True) + "\n")
    link = tmp_path / "state" / "gpu-smoke.json"
    link.unlink()
    link.symlink_to(victim)
    result = run(capsys, tmp_path, **args(tmp_path, host))
    # The link's target is not read (it matches, yet the check runs) and not written through.
    assert result["actions"] == ["smoke", "record"] and result["smoke_ran"] is True
    assert not link.is_symlink() and json.loads(link.read_text()) == RECORD
    assert victim.read_text() == json.dumps(RECORD, sort_keys=True) + "\n"


def test_a_record_in_a_directory_others_can_write_is_not_trusted(tmp_path, capsys, host) -> None:
    converged(tmp_path)
    os.chmod(tmp_path / "state", 0o777)
    result = run(capsys, tmp_path, **args(tmp_path, host))
    assert result["actions"] == ["smoke", "record"]


@pytest.mark.parametrize("text", ["", "{not json", "[]", '{"image": "other"}'])
def test_a_corrupt_or_other_record_makes_the_check_due(tmp_path, capsys, host, text) -> None:
    converged(tmp_path)
    record(tmp_path, text)
    result = run(capsys, tmp_path, **args(tmp_path, host))
    assert result["actions"] == ["smoke", "record"] and host.commands() == ["docker run --rm"]
    assert json.loads((tmp_path / "state" / "gpu-smoke.json").read_text()) == RECORD


def test_a_toolkit_install_restarts_a_running_docker_and_smokes(tmp_path, capsys, host) -> None:
    converged(tmp_path)
    result = run(capsys, tmp_path, installed_changed=True, **args(tmp_path, host))
    assert result["actions"] == ["reset_failed", "restart_docker", "smoke"] and result["changed"] is True
    assert host.commands()[:2] == ["systemctl reset-failed docker.service", "systemctl restart docker.service"]


def test_a_toolkit_install_leaves_a_stopped_docker_stopped(tmp_path, capsys, host) -> None:
    converged(tmp_path)
    host.active = "inactive"
    result = run(capsys, tmp_path, installed_changed=True, **args(tmp_path, host))
    assert result["actions"] == ["smoke"] and host.commands() == ["docker run --rm"]


def test_every_run_smokes_without_reporting_a_change(tmp_path, capsys, host) -> None:
    converged(tmp_path)
    result = run(capsys, tmp_path, smoke_every_run=True, **args(tmp_path, host))
    assert result["actions"] == ["smoke"] and result["changed"] is False and result["smoke_rc"] == 0


def test_smoke_disabled_runs_no_container_and_needs_no_image(tmp_path, capsys, host) -> None:
    daemon(tmp_path, {})
    a = args(tmp_path, host, smoke_enabled=False)
    del a["smoke_image"]
    result = run(capsys, tmp_path, **a)
    assert result["actions"] == ["configure_runtime", "reset_failed", "restart_docker"]
    assert not any(argv[1:2] == ["run"] for argv in host.ran) and not (tmp_path / "state").exists()


def test_docker_that_never_answers_fails_the_task(tmp_path, capsys, host) -> None:
    daemon(tmp_path, {})
    host.info_failures = 10**6
    result = run(capsys, tmp_path, **args(tmp_path, host, restart_timeout=0))
    assert result["failed"] is True
    assert result["msg"].startswith("Docker did not answer `docker info` within 0 s of its restart")
    assert not any(argv[1:2] == ["run"] for argv in host.ran)


def test_a_missing_nvidia_ctk_fails_a_real_run(tmp_path, capsys, host) -> None:
    daemon(tmp_path, {})
    host.ctk.unlink()
    result = run(capsys, tmp_path, **args(tmp_path, host))
    assert result["failed"] is True and "the nvidia-container-toolkit package installs it" in result["msg"]
    assert host.commands() == []


def test_a_daemon_json_that_is_not_json_fails(tmp_path, capsys, host) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "daemon.json").write_text("{")
    result = run(capsys, tmp_path, check_mode=True, **args(tmp_path, host))
    assert result["failed"] is True and "is not JSON" in result["msg"]
