"""venv_info: what root may use of a user's venv link, stamp and kernelspec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.spark.plugins.modules import venv_info
from module_harness import run_main

BUILD = "venv-20250101T000000Z-0000aaaa"
STAMP: dict[str, Any] = {
    "image_id": "sha256:" + "1" * 64,
    "repo_digest": None,
    "python_version": "3.12.3",
    "lock_hash": "sha256:" + "3" * 64,
    "wheels": [],
    "venv_id": BUILD,
}


def run(capsys: pytest.CaptureFixture, tmp_path: Path, **args: Any) -> dict:
    return run_main(venv_info.main, capsys, tmp_path, **args)[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    build = project / ".venvs" / BUILD
    kernel = build / "share" / "jupyter" / "kernels" / "proj"
    kernel.mkdir(parents=True)
    (build / "sparkfleet-stamp.json").write_text(json.dumps(STAMP))
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    str(project / ".venv" / "bin" / "python"),
                    "-Xfrozen_modules=off",
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "Python (proj)",
                "language": "python",
                "metadata": {"debugger": True},
            }
        )
    )
    (project / ".venv").symlink_to(f".venvs/{BUILD}")
    return project


def kernel_args(project: Path) -> dict:
    return {"project_dir": str(project), "kernel_name": "proj", "kernel_display_name": "Python (proj)"}


def test_a_venv_as_the_builder_left_it(capsys, tmp_path: Path, project: Path) -> None:
    result = run(capsys, tmp_path, **kernel_args(project))
    assert result["changed"] is False and result["problems"] == []
    assert result["venv"] == {"exists": True, "link_ok": True, "id": BUILD, "target": str(project / ".venvs" / BUILD)}
    assert result["stamp_ok"] is True and result["stamp"]["venv_id"] == BUILD
    assert result["kernelspec"] == {"exists": True, "ok": True}


def test_the_stamp_exploit_yields_no_value(capsys, tmp_path: Path, project: Path) -> None:
    hostile = {**STAMP, "venv_id": "x\nExecStartPre=/bin/sh -c 'id > /tmp/p'"}
    (project / ".venvs" / BUILD / "sparkfleet-stamp.json").write_text(json.dumps(hostile))
    result = run(capsys, tmp_path, **kernel_args(project))
    assert result["stamp_ok"] is False and "venv_id" not in result["stamp"]
    assert result["venv"]["id"] == BUILD
    assert "ExecStartPre" not in json.dumps(result)


def test_a_link_to_etc_is_reported_and_not_followed(capsys, tmp_path: Path, project: Path) -> None:
    (project / ".venv").unlink()
    (project / ".venv").symlink_to("/etc")
    result = run(capsys, tmp_path, **kernel_args(project))
    assert result["venv"]["link_ok"] is False and result["venv"]["id"] is None
    assert result["stamp"] == {} and result["kernelspec"] == {"exists": False, "ok": False}
    assert any("links somewhere other than" in p for p in result["problems"])


@pytest.mark.parametrize(
    "change",
    [
        {"argv": ["/bin/sh", "-c", "id", "-m", "ipykernel_launcher", "-f", "{connection_file}"]},
        {"env": {"LD_PRELOAD": "/tmp/x.so"}},
        {"display_name": "Python (other)"},
    ],
)
def test_an_altered_kernelspec_is_reported(capsys, tmp_path: Path, project: Path, change: dict) -> None:
    path = project / ".venvs" / BUILD / "share" / "jupyter" / "kernels" / "proj" / "kernel.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    result = run(capsys, tmp_path, **kernel_args(project))
    assert result["kernelspec"] == {"exists": True, "ok": False}
    assert result["problems"] == ["the kernelspec proj is not the one sparkfleet installs"]


def test_a_kernelspec_linked_elsewhere_is_not_read(capsys, tmp_path: Path, project: Path) -> None:
    path = project / ".venvs" / BUILD / "share" / "jupyter" / "kernels" / "proj" / "kernel.json"
    path.unlink()
    path.symlink_to("/etc/passwd")
    result = run(capsys, tmp_path, **kernel_args(project))
    assert result["kernelspec"]["ok"] is False and "symbolic link" in result["problems"][0]


def test_no_venv_at_all(capsys, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run(capsys, tmp_path, project_dir=str(tmp_path / "empty"))
    assert result["venv"]["exists"] is False and result["problems"] == [] and result["stamp_ok"] is False
