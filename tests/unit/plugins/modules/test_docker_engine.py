"""docker_engine: the plan as a table, the small readers, and main() against a daemon.json in tmp_path.

apt-get, dpkg-query, systemctl, gpasswd and `dockerd --validate` are answered by the Host class in this
file (a TEST DOUBLE: monkeypatched run_command); the docker group and the passwd database by stand-ins
for group_members and user_exists. daemon.json itself is a real file.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.spark.plugins.module_utils import _daemon_json
from ansible_collections.sparkfleet.spark.plugins.modules import docker_engine as de
from module_harness import run_main

ROOT = Path(__file__).resolve().parents[4]
# The module writes daemon.json as root:root and refuses a file root does not own.
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="daemon.json is owned by root")

NVIDIA = {"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
NVIDIA_CTK_TEXT = (
    '{\n  "runtimes": {\n    "nvidia": {\n      "path": "nvidia-container-runtime",\n      "args": []\n    }\n  }\n}'
)
REFUSED = "the following directives don't match any configuration option: no-such-key"
MIRROR = "http://ports.ubuntu.com/ubuntu-ports/pool/universe/d/docker.io/docker.io_27.5.1.deb"

# ---------------------------------------------------------------------------------------------
# plan(): one row per situation
# ---------------------------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "engine_present": True,
    "enabled": True,
    "active": True,
    "python_missing": [],
    "daemon_changes": [],
    "members": ["spark"],
}
WANT: dict[str, Any] = {"enabled": True, "state": "started", "users": ["spark"]}
FRESH: dict[str, Any] = {
    "engine_present": False,
    "enabled": False,
    "active": False,
    "python_missing": ["python3-requests"],
    "members": None,
}
CHANGED = ['set "log-opts"."max-size": "50m"']

PLAN_CASES = [
    ("all as wanted (DGX OS, converged)", {}, {}, []),
    (
        "a fresh host: engine, libraries, service and user",
        FRESH,
        {},
        ["install_engine", "install_python_libs", "enable", "start", "add_user:spark"],
    ),
    (
        "a fresh host with daemon options: the package started the engine, so it restarts",
        {**FRESH, "daemon_changes": CHANGED},
        {},
        [
            "install_engine",
            "install_python_libs",
            "write_daemon_json",
            "enable",
            "reset_failed",
            "restart",
            "add_user:spark",
        ],
    ),
    (
        "check mode without an engine: the same actions, no group and no unit asked about",
        {**FRESH, "python_missing": []},
        {"users": ["spark", "alice"]},
        ["install_engine", "enable", "start", "add_user:spark", "add_user:alice"],
    ),
    (
        "engine present (never installed again), python libraries missing",
        {"python_missing": ["python3-requests"]},
        {},
        ["install_python_libs"],
    ),
    (
        "daemon.json changed while the engine runs",
        {"daemon_changes": CHANGED},
        {},
        ["write_daemon_json", "reset_failed", "restart"],
    ),
    (
        "daemon.json changed while the engine is stopped: start only",
        {"daemon_changes": CHANGED, "active": False},
        {},
        ["write_daemon_json", "start"],
    ),
    ("the engine is stopped (or failed)", {"active": False}, {}, ["start"]),
    ("the service is disabled", {"enabled": False}, {}, ["enable"]),
    ("stopped and disabled", {"enabled": False, "active": False}, {}, ["enable", "start"]),
    ("stopped wanted, running", {}, {"state": "stopped"}, ["stop"]),
    ("stopped wanted, stopped", {"active": False}, {"state": "stopped"}, []),
    (
        "stopped wanted, daemon.json changed: written, no restart",
        {"daemon_changes": CHANGED},
        {"state": "stopped"},
        ["write_daemon_json", "stop"],
    ),
    (
        "stopped wanted on a fresh install (the package starts it)",
        {**FRESH, "python_missing": []},
        {"state": "stopped", "users": []},
        ["install_engine", "enable", "stop"],
    ),
    ("disabled wanted, enabled", {}, {"enabled": False}, ["disable"]),
    ("disabled wanted, disabled", {"enabled": False}, {"enabled": False}, []),
    (
        "disabled wanted on a fresh install (the package enables it)",
        {**FRESH, "python_missing": []},
        {"enabled": False, "users": []},
        ["install_engine", "disable", "start"],
    ),
    ("users missing from the group", {}, {"users": ["spark", "alice", "bob"]}, ["add_user:alice", "add_user:bob"]),
    ("an engine without a docker group yet", {"members": None}, {}, ["add_user:spark"]),
    ("a user listed twice is added once", {"members": []}, {"users": ["alice", "alice"]}, ["add_user:alice"]),
    ("no users wanted", {"members": None}, {"users": []}, []),
    (
        "everything at once, in order",
        {
            "enabled": False,
            "active": True,
            "python_missing": ["python3-requests"],
            "daemon_changes": CHANGED,
            "members": [],
        },
        {},
        ["install_python_libs", "write_daemon_json", "enable", "reset_failed", "restart", "add_user:spark"],
    ),
]


@pytest.mark.parametrize(
    ("current", "desired", "actions"),
    [pytest.param({**GOOD, **cur}, {**WANT, **des}, actions, id=name) for name, cur, des, actions in PLAN_CASES],
)
def test_plan(current: dict, desired: dict, actions: list[str]) -> None:
    assert de.plan(current, desired) == actions


def test_plan_is_pure() -> None:
    current, desired = {**GOOD, **FRESH, "daemon_changes": list(CHANGED)}, {**WANT, "users": ["a", "b"]}
    before = json.dumps([current, desired], sort_keys=True)
    de.plan(current, desired)
    assert json.dumps([current, desired], sort_keys=True) == before


# ---------------------------------------------------------------------------------------------
# The readers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("show", "state"),
    [
        ("UnitFileState=enabled\nActiveState=active\n", (True, True)),
        ("UnitFileState=disabled\nActiveState=inactive\n", (False, False)),
        ("UnitFileState=\nActiveState=inactive\n", (False, False)),
        ("UnitFileState=enabled\nActiveState=failed\n", (True, False)),
        ("UnitFileState=static\nActiveState=activating\n", (True, True)),
    ],
)
def test_systemd_state(show: str, state: tuple[bool, bool]) -> None:
    got = de.systemd_state(show)
    assert (got["enabled"], got["active"]) == state


def test_installed_packages_reads_dpkg_querys_lines() -> None:
    out = "python3-requests installed\npython3-docker not-installed\ndocker.io config-files\nodd line here x\n"
    assert de.installed_packages(out) == {"python3-requests"}


@pytest.mark.parametrize(
    ("spec", "name"),
    [("python3-requests", "python3-requests"), ("docker.io:arm64", "docker.io"), ("docker-ce=5:28.0.1-1", "docker-ce")],
)
def test_package_name(spec: str, name: str) -> None:
    assert de.package_name(spec) == name


def test_an_apt_failure_names_the_mirror() -> None:
    msg = de.apt_failure("apt-get install docker.io", 100, "", f"E: Failed to fetch {MIRROR}  404  Not Found\n")
    assert msg.startswith("apt-get install docker.io failed 3 times (last exit 100): E: Failed to fetch")
    assert f"apt could not use {MIRROR}: check that mirror" in msg


def test_an_apt_failure_without_a_url_points_at_the_sources() -> None:
    msg = de.apt_failure("apt-get update", 100, "", "E: Could not get lock /var/lib/dpkg/lock-frontend\n")
    assert "Could not get lock" in msg and "/etc/apt/sources.list.d" in msg


def test_check_mode_message_is_the_roles_old_wording() -> None:
    assert de.check_mode_message({"state": "started", "enabled": True}, ["spark", "alice"]) == (
        "docker.service would be started and enabled once the engine is installed, "
        "and spark, alice added to the docker group."
    )
    assert de.check_mode_message({"state": "stopped", "enabled": False}, []) == (
        "docker.service would be stopped once the engine is installed."
    )


# ---------------------------------------------------------------------------------------------
# The role passes every knob; the module's defaults are the role's
# ---------------------------------------------------------------------------------------------


def test_the_role_passes_every_knob_to_the_module() -> None:
    specs = yaml.safe_load((ROOT / "roles/docker/meta/argument_specs.yml").read_text())["argument_specs"]["main"]
    tasks = yaml.safe_load((ROOT / "roles/docker/tasks/main.yml").read_text())
    [task] = [t for t in tasks if "sparkfleet.spark.docker_engine" in t]
    passed = {
        re.sub(r"^\{\{ (\w+) \}\}$", r"\1", value): option
        for option, value in task["sparkfleet.spark.docker_engine"].items()
    }
    assert set(passed) == set(specs["options"])
    documented = yaml.safe_load(de.DOCUMENTATION)["options"]
    defaults = yaml.safe_load((ROOT / "roles/docker/defaults/main.yml").read_text())
    for var, option in passed.items():
        assert documented[option]["default"] == defaults[var] == specs["options"][var]["default"], var


# ---------------------------------------------------------------------------------------------
# main(): daemon.json in tmp_path, commands answered by the Host TEST DOUBLE
# ---------------------------------------------------------------------------------------------


class Host:
    """TEST DOUBLE of the host's commands: what apt-get, dpkg-query, systemctl, gpasswd and dockerd answer,
    and the commands the module ran (with apt's environment)."""

    def __init__(self, tmp_path: Path) -> None:
        self.dockerd = tmp_path / "bin" / "dockerd"
        self.dockerd.parent.mkdir()
        self.engine = True
        self.installed = {"python3-requests"}
        self.systemd = {"UnitFileState": "enabled", "ActiveState": "active"}
        self.members: list[str] | None = ["spark"]
        self.users = {"spark", "alice", "bob"}
        self.apt_answers: list[tuple[int, str, str]] = []
        self.ran: list[list[str]] = []
        self.env: list[dict[str, str]] = []
        self.validated: list[tuple[str, dict]] = []
        self.slept: list[float] = []

    @property
    def engine(self) -> bool:
        return self.dockerd.exists()

    @engine.setter
    def engine(self, present: bool) -> None:
        if present:
            self.dockerd.write_text("#!/bin/sh\n# TEST DOUBLE: never run, Host answers for it\nexit 99\n")
            self.dockerd.chmod(0o755)
        elif self.dockerd.exists():
            self.dockerd.unlink()

    def run_command(self, argv: list[str], **kw: Any) -> tuple[int, str, str]:
        self.ran.append(list(argv))
        if argv[0] == "apt-get":
            self.env.append(kw.get("environ_update") or {})
            rc, out, err = self.apt_answers.pop(0) if self.apt_answers else (0, "", "")
            if rc == 0 and "install" in argv and "docker.io" in argv:
                self.engine = True  # the package brings dockerd
            if rc == 0 and "install" in argv:
                self.installed.update(argv[argv.index("install") + 1 :])
            return rc, out, err
        if argv[0] == "dpkg-query":
            names = argv[3:]
            lines = "".join(f"{name} installed\n" for name in names if name in self.installed)
            return (0 if all(n in self.installed for n in names) else 1), lines, ""
        if argv[:2] == ["systemctl", "show"]:
            assert argv[2] == "docker.service"
            return 0, "".join(f"{k}={v}\n" for k, v in self.systemd.items()), ""
        if argv[0] in ("systemctl", "gpasswd"):
            return 0, "", ""
        if argv[0] == str(self.dockerd) and argv[1:3] == ["--validate", "--config-file"]:
            config = json.loads(Path(argv[3]).read_text())
            self.validated.append((argv[3], config))
            if "no-such-key" in config:
                return 1, "", f"unable to configure the Docker daemon with file {argv[3]}: {REFUSED}\n"
            return 0, "", "configuration OK\n"
        raise AssertionError(f"unexpected command {argv}")

    def changes(self) -> list[str]:
        """The commands that change the host, as one string each."""
        reads = (["dpkg-query"], ["systemctl", "show"], [str(self.dockerd)])
        return [" ".join(argv) for argv in self.ran if not any(argv[: len(r)] == r for r in reads)]


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    fake = Host(tmp_path)
    monkeypatch.setattr(AnsibleModule, "run_command", lambda module, argv, **kw: fake.run_command(argv, **kw))
    monkeypatch.setattr(de, "group_members", lambda name: None if fake.members is None else list(fake.members))
    monkeypatch.setattr(de, "user_exists", lambda name: name in fake.users)
    monkeypatch.setattr(de.time, "sleep", fake.slept.append)
    return fake


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "etc-docker").mkdir()
    return tmp_path / "etc-docker" / "daemon.json"


def args(host: Host, config: Path, **more: Any) -> dict[str, Any]:
    return {"dockerd": str(host.dockerd), "daemon_config_path": str(config), "users": ["spark"], **more}


def run(capsys: pytest.CaptureFixture, tmp_path: Path, **a: Any) -> dict:
    return run_main(de.main, capsys, tmp_path, **a)[0]


def warnings(result: dict) -> list[str]:
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


APT_INSTALL = "apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install"


@as_root
def test_a_converged_dgx_host_changes_nothing(tmp_path, capsys, host, config) -> None:
    config.write_text(NVIDIA_CTK_TEXT)
    before = config.stat()
    result = run(capsys, tmp_path, **args(host, config, daemon_options={"runtimes": {"nvidia": {"args": []}}}))
    assert result["changed"] is False and result["actions"] == [] and result["users_added"] == []
    assert result["engine_present"] is True and result["daemon_config"] == NVIDIA and result["daemon_changes"] == []
    assert host.changes() == [] and host.validated == []
    assert (config.stat().st_ino, config.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@as_root
def test_a_fresh_host_runs_exactly_the_planned_commands_in_order(tmp_path, capsys, host, config) -> None:
    host.engine, host.installed, host.members = False, set(), None
    host.systemd = {"UnitFileState": "", "ActiveState": "inactive"}
    options = {"log-opts": {"max-size": "50m"}}
    result = run(capsys, tmp_path, **args(host, config, daemon_options=options, users=["spark", "alice"]))
    assert result["changed"] is True and result["engine_present"] is False
    assert result["actions"] == [
        "install_engine",
        "install_python_libs",
        "write_daemon_json",
        "enable",
        "reset_failed",
        "restart",
        "add_user:spark",
        "add_user:alice",
    ]
    assert host.changes() == [
        "apt-get -q update",
        f"{APT_INSTALL} docker.io",
        f"{APT_INSTALL} python3-requests",
        "systemctl enable docker.service",
        "systemctl reset-failed docker.service",
        "systemctl restart docker.service",
        "gpasswd -a spark docker",
        "gpasswd -a alice docker",
    ]
    # One update, then each install, all noninteractive; dockerd (installed by the run) checked the file.
    assert host.env == [{"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}] * 3
    assert [checked for _, checked in host.validated] == [options]
    assert json.loads(config.read_text()) == options and config.read_text() == _daemon_json.render(options)
    assert result["users_added"] == ["spark", "alice"]


@as_root
def test_a_daemon_change_while_running_restarts_and_keeps_foreign_keys(tmp_path, capsys, host, config) -> None:
    config.write_text(NVIDIA_CTK_TEXT)
    options = {"log-opts": {"max-size": "50m"}}
    result = run(capsys, tmp_path, **args(host, config, daemon_options=options))
    assert result["actions"] == ["write_daemon_json", "reset_failed", "restart"]
    assert host.changes() == ["systemctl reset-failed docker.service", "systemctl restart docker.service"]
    assert json.loads(config.read_text()) == {**NVIDIA, **options} == result["daemon_config"]
    assert result["daemon_changes"] == ['set "log-opts": {"max-size": "50m"}']
    # Checked once, before any change, as a candidate outside /etc/docker that is gone now.
    [(candidate, checked)] = host.validated
    assert checked == {**NVIDIA, **options} and Path(candidate).parent != config.parent
    assert not Path(candidate).exists() and sorted(p.name for p in config.parent.iterdir()) == ["daemon.json"]
    again = run(capsys, tmp_path, **args(host, config, daemon_options=options))
    assert again["changed"] is False


@as_root
def test_a_daemon_change_while_stopped_starts_only(tmp_path, capsys, host, config) -> None:
    host.systemd["ActiveState"] = "failed"
    result = run(capsys, tmp_path, **args(host, config, daemon_options={"debug": True}))
    assert result["actions"] == ["write_daemon_json", "start"]
    assert host.changes() == ["systemctl start docker.service"]
    assert json.loads(config.read_text()) == {"debug": True}


@as_root
def test_check_mode_with_diff_writes_nothing_and_shows_daemon_json(tmp_path, capsys, host, config) -> None:
    config.write_text(NVIDIA_CTK_TEXT)
    host.installed, host.members = set(), []
    options = {"log-opts": {"max-size": "50m"}}
    a = args(host, config, daemon_options=options, users=["spark", "bob"])
    result = run(capsys, tmp_path, check_mode=True, diff=True, **a)
    assert result["changed"] is True
    assert result["actions"] == [
        "install_python_libs",
        "write_daemon_json",
        "reset_failed",
        "restart",
        "add_user:spark",
        "add_user:bob",
    ]
    assert result["diff"] == {
        "before": NVIDIA_CTK_TEXT,
        "after": _daemon_json.render({**NVIDIA, **options}),
        "before_header": str(config),
        "after_header": str(config),
    }
    assert config.read_text() == NVIDIA_CTK_TEXT and host.changes() == [] and "msg" not in result
    # dockerd judged the merged file even in check mode, from the module's temporary directory.
    [(candidate, _)] = host.validated
    assert not Path(candidate).exists() and Path(candidate).parent != config.parent


@as_root
def test_check_mode_without_an_engine_reports_the_install_and_never_fails(tmp_path, capsys, host, config) -> None:
    host.engine, host.members = False, None
    config.parent.rmdir()  # no /etc/docker before the package
    a = args(host, config, daemon_options={"debug": True}, users=["spark", "alice"])
    result = run(capsys, tmp_path, check_mode=True, diff=True, **a)
    assert "failed" not in result and result["changed"] is True and result["engine_present"] is False
    assert result["actions"] == [
        "install_engine",
        "write_daemon_json",
        "enable",
        "reset_failed",
        "restart",
        "add_user:spark",
        "add_user:alice",
    ]
    assert result["msg"] == (
        "docker.service would be started and enabled once the engine is installed, "
        "and spark, alice added to the docker group."
    )
    assert result["diff"]["before"] == "" and json.loads(result["diff"]["after"]) == {"debug": True}
    # No systemctl show for a unit that does not exist yet, no apt, nothing written.
    assert not any(argv[0] == "systemctl" for argv in host.ran) and host.changes() == []
    assert not config.parent.exists()
    assert any("could not be validated" in w for w in warnings(result))


@as_root
def test_stopped_wanted_stops_the_engine(tmp_path, capsys, host, config) -> None:
    result = run(capsys, tmp_path, **args(host, config, service_state="stopped", service_enabled=False))
    assert result["actions"] == ["disable", "stop"]
    assert host.changes() == ["systemctl disable docker.service", "systemctl stop docker.service"]


@as_root
def test_only_missing_users_are_added(tmp_path, capsys, host, config) -> None:
    result = run(capsys, tmp_path, **args(host, config, users=["spark", "alice", "bob"]))
    assert result["actions"] == ["add_user:alice", "add_user:bob"] and result["users_added"] == ["alice", "bob"]
    assert [argv for argv in host.ran if argv[0] == "gpasswd"] == [
        ["gpasswd", "-a", "alice", "docker"],
        ["gpasswd", "-a", "bob", "docker"],
    ]


@as_root
def test_missing_python_libraries_are_installed_on_an_engine_that_is_kept(tmp_path, capsys, host, config) -> None:
    host.installed = set()
    result = run(capsys, tmp_path, **args(host, config, python_packages=["python3-requests", "python3-docker"]))
    assert result["actions"] == ["install_python_libs"]
    assert host.changes() == ["apt-get -q update", f"{APT_INSTALL} python3-requests python3-docker"]
    assert not any("docker.io" in argv for argv in host.ran)


@as_root
def test_an_apt_failure_retries_then_names_the_mirror(tmp_path, capsys, host, config) -> None:
    host.engine, host.members = False, None
    host.apt_answers = [(0, "", "")] + [(100, "", f"E: Failed to fetch {MIRROR}  Connection timed out\n")] * 3
    result = run(capsys, tmp_path, **args(host, config))
    assert result["failed"] is True and result["done"] == []
    assert result["msg"].startswith("apt-get install docker.io failed 3 times (last exit 100): E: Failed to fetch")
    assert f"apt could not use {MIRROR}" in result["msg"]
    assert host.changes() == ["apt-get -q update"] + [f"{APT_INSTALL} docker.io"] * 3
    assert host.slept == [de.APT_DELAY, de.APT_DELAY]


@as_root
def test_an_apt_failure_that_recovers_goes_on(tmp_path, capsys, host, config) -> None:
    host.installed = set()
    host.apt_answers = [(100, "", "E: Could not get lock /var/lib/apt/lists/lock\n"), (0, "", ""), (0, "", "")]
    result = run(capsys, tmp_path, **args(host, config))
    assert result["changed"] is True and "failed" not in result
    assert host.changes() == ["apt-get -q update", "apt-get -q update", f"{APT_INSTALL} python3-requests"]


@as_root
def test_a_refused_daemon_key_fails_before_any_change(tmp_path, capsys, host, config) -> None:
    config.write_text(NVIDIA_CTK_TEXT)
    host.installed, host.members = set(), []
    result = run(capsys, tmp_path, **args(host, config, daemon_options={"no-such-key": 1}))
    assert result["failed"] is True and result["changed"] is False and result["done"] == []
    assert result["msg"] == (
        f"docker_daemon_options would make dockerd refuse {config}: {REFUSED} \u2014 daemon.json was left as it was"
    )
    assert host.changes() == [] and config.read_text() == NVIDIA_CTK_TEXT


@as_root
def test_without_validation_dockerd_is_not_asked_and_a_warning_says_so(tmp_path, capsys, host, config) -> None:
    result = run(capsys, tmp_path, **args(host, config, daemon_options={"no-such-key": 1}, daemon_validate=False))
    assert result["actions"] == ["write_daemon_json", "reset_failed", "restart"]
    assert "daemon.json written without validation" in warnings(result)
    assert host.validated == [] and json.loads(config.read_text()) == {"no-such-key": 1}


@as_root
def test_a_symlinked_daemon_json_is_refused(tmp_path, capsys, host, config) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    config.symlink_to(target)
    result = run(capsys, tmp_path, **args(host, config, daemon_options={"debug": True}))
    assert result["failed"] is True and "is a symlink" in result["msg"]
    assert host.changes() == [] and target.read_text() == "{}"


def test_an_unknown_user_fails_before_anything_runs(tmp_path, capsys, host, config) -> None:
    result = run(capsys, tmp_path, **args(host, config, users=["spark", "mallory"]))
    assert result["failed"] is True and "do not exist on this host: mallory" in result["msg"]
    assert host.ran == []


@pytest.mark.parametrize(
    ("more", "problem"),
    [
        ({"packages": []}, "packages must name at least one package"),
        ({"packages": ["docker.io; rm -rf /"]}, "is not a Debian package name"),
        ({"python_packages": ["-o=APT::Get::Trivial-Only=1"]}, "is not a Debian package name"),
        ({"users": ["-r"]}, "is not a user name"),
        ({"users": ["a b"]}, "is not a user name"),
    ],
)
def test_values_no_program_would_accept_are_refused(tmp_path, capsys, host, config, more, problem) -> None:
    result = run(capsys, tmp_path, **args(host, config, **more))
    assert result["failed"] is True and problem in result["msg"] and host.ran == []


@as_root
def test_a_failing_systemctl_reports_what_was_done(tmp_path, capsys, host, config, monkeypatch) -> None:
    host.systemd["ActiveState"] = "inactive"
    host.members = []

    def refuse_start(argv: list[str], **kw: Any) -> tuple[int, str, str]:
        if argv[:2] == ["systemctl", "start"]:
            host.ran.append(argv)
            return 1, "", "Job for docker.service failed because the control process exited with error code."
        return host.run_command(argv, **kw)

    monkeypatch.setattr(AnsibleModule, "run_command", lambda module, argv, **kw: refuse_start(argv, **kw))
    result = run(capsys, tmp_path, **args(host, config))
    assert result["failed"] is True and result["changed"] is False and result["done"] == []
    assert result["msg"].startswith("systemctl start docker.service failed (exit 1): Job for docker.service failed")
    assert not any(argv[0] == "gpasswd" for argv in host.ran)
