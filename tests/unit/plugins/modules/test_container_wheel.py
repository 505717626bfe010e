"""container_wheel, the module: when it builds, predicts or skips, with `docker` replaced by a
recording TEST DOUBLE (FakeDocker below: it stands in for `docker run` of the in-image builder,
which needs the NGC image and, for xformers, a CUDA compile)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sparkfleet.spark.plugins.modules import container_wheel

SOURCE = "git+http://testbed/xformers.git@v0.0.33"
WHEEL = "xformers-0.0.33+standin-cp311-cp311-linux_x86_64.whl"
SECRET = "hunter2"


class FakeDocker:
    """TEST DOUBLE for `docker run … build-wheel`: writes a wheel (or not) and prints builder JSON."""

    def __init__(self, out_dir: Path, rc: int = 0, result: dict[str, Any] | None = None, write: bool = True) -> None:
        self.out_dir = out_dir
        self.rc = rc
        self.result = (
            result if result is not None else {"wheel": str(out_dir / WHEEL), "arch_list": "12.1", "max_jobs": 3}
        )
        self.write = write
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, module: AnsibleModule, argv: list[str], environ_update: dict | None = None, **kw: Any):
        self.calls.append((list(argv), dict(environ_update or {})))
        if self.write:
            (self.out_dir / WHEEL).write_bytes(b"PK wheel bytes")
        return self.rc, json.dumps(self.result) + "\n", "[venv_builder] building\n[venv_builder] done\n"


def run(monkeypatch, capsys, tmp_path: Path, fake: FakeDocker | None, check_mode: bool = False, **extra: Any) -> dict:
    def run_command(module: AnsibleModule, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
        assert fake is not None, f"docker ran although it must not: {argv}"
        return fake(module, argv, **kwargs)

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/docker")
    monkeypatch.setattr(container_wheel, "LOCK_FILE", str(tmp_path / "wheel-build.lock"))
    args = {
        "image": "sparkfleet-registry:5000/nvidia/pytorch:25.11-py3",
        "source": SOURCE,
        "arch_list": "12.1",
        "out_dir": str(tmp_path / "wheels" / "xformers-key"),
        "_ansible_remote_tmp": str(tmp_path / "remote-tmp"),
        "_ansible_check_mode": check_mode,
        **extra,
    }
    with patch_module_args(args), pytest.raises(SystemExit):
        container_wheel.main()
    return json.loads(capsys.readouterr().out)


def test_an_existing_wheel_is_kept(monkeypatch, capsys, tmp_path: Path) -> None:
    out = tmp_path / "wheels" / "xformers-key"
    out.mkdir(parents=True)
    (out / WHEEL).write_bytes(b"old")
    result = run(monkeypatch, capsys, tmp_path, None)
    assert result["changed"] is False and result["wheel"] == str(out / WHEEL)
    assert (out / WHEEL).read_bytes() == b"old"


def test_check_mode_predicts_a_build_and_writes_nothing(monkeypatch, capsys, tmp_path: Path) -> None:
    result = run(monkeypatch, capsys, tmp_path, None, check_mode=True)
    assert result["changed"] is True and result["wheel"] == ""
    assert not (tmp_path / "wheels").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"arch_list": "sm_121"}, "arch_list: "),
        ({"max_jobs": -1}, "max_jobs must be 0"),
    ],
)
def test_bad_input_fails_before_docker(monkeypatch, capsys, tmp_path: Path, extra: dict, message: str) -> None:
    result = run(monkeypatch, capsys, tmp_path, None, **extra)
    assert result["failed"] is True and result["msg"].startswith(message)
    assert not (tmp_path / "wheels").exists()


def test_a_build_records_what_it_made(monkeypatch, capsys, tmp_path: Path) -> None:
    out = tmp_path / "wheels" / "xformers-key"
    fake = FakeDocker(out)
    proxy = {"HTTPS_PROXY": f"http://alice:{SECRET}@proxy.lab:3128"}
    result = run(monkeypatch, capsys, tmp_path, fake, proxy_env=proxy, max_jobs=3)
    assert result["changed"] is True and result["wheel"] == str(out / WHEEL)
    info = json.loads((out / "build-info.json").read_text())
    assert info["source"] == SOURCE and info["arch_list"] == "12.1" and info["max_jobs"] == 3
    assert info["wheel"] == WHEEL and len(info["sha256"]) == 64
    assert result["build_info"] == info and result["lock_wait_s"] == 0.0
    ((argv, env),) = fake.calls
    assert argv[argv.index("--source") + 1] == SOURCE and argv[argv.index("--arch-list") + 1] == "12.1"
    # The proxy reaches docker through its environment, never the command line; its password is hidden.
    assert env == proxy and SECRET not in " ".join(argv)
    assert SECRET not in json.dumps(result)


@pytest.mark.parametrize(
    ("rc", "result", "write", "message"),
    [
        # A clone that failed after its retries: the builder's message, naming the URL, is passed on.
        (
            1,
            {"msg": "git clone of http://testbed/xformers.git at v0.0.33 failed after 3 attempts: exit 128"},
            False,
            "failed: git clone of http://testbed/xformers.git at v0.0.33 failed after 3 attempts",
        ),
        (0, {}, False, "failed: see build_log"),
        # The container's output is not trusted to name a path outside out_dir.
        (0, {"wheel": "/etc/xformers-0.0.33-py3-none-any.whl"}, True, "the build reported a wheel outside"),
        (0, {"wheel": "WHEELDIR/../evil.whl"}, True, "the build reported a wheel outside"),
    ],
)
def test_a_failed_build_says_why(
    monkeypatch, capsys, tmp_path: Path, rc: int, result: dict, write: bool, message: str
) -> None:
    out = tmp_path / "wheels" / "xformers-key"
    if "wheel" in result:
        result = {"wheel": result["wheel"].replace("WHEELDIR", str(out))}
    reported = run(monkeypatch, capsys, tmp_path, FakeDocker(out, rc=rc, result=result, write=write))
    assert reported["failed"] is True and message in reported["msg"], reported["msg"]
    assert not (out / "build-info.json").exists()


def test_a_build_held_by_another_run_times_out_without_building(monkeypatch, capsys, tmp_path: Path) -> None:
    lock = tmp_path / "wheel-build.lock"
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = run(monkeypatch, capsys, tmp_path, None, lock_timeout=1)
    finally:
        os.close(fd)
    assert result["failed"] is True
    assert result["msg"].startswith(f"building {SOURCE}: ") and result["msg"].endswith("nothing was built")
