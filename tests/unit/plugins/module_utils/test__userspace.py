"""_userspace: root reads user-owned files without following links and keeps only checked values."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from ansible_collections.sparkfleet.spark.plugins.module_utils import _userspace as us

BUILD = "venv-20250101T000000Z-0000aaaa"
GOOD = {
    "image_id": "sha256:" + "1" * 64,
    "repo_digest": "registry:5000/nvidia/pytorch@sha256:" + "2" * 64,
    "python_version": "3.12.3",
    "lock_hash": "sha256:" + "3" * 64,
    "wheels": ["xformers-0.0.33-cp312-cp312-linux_aarch64.whl"],
    "venv_id": BUILD,
    "built_at": "2025-01-01T00:00:00Z",
}


def test_reads_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello")
    assert us.read_file(str(tmp_path / "f"), 10) == b"hello"
    assert us.read_file(str(tmp_path / "missing"), 10) is None


@pytest.mark.parametrize("where", ["file", "parent"])
def test_never_follows_a_link(tmp_path: Path, where: str) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "f").write_text("root only")
    if where == "file":
        (tmp_path / "f").symlink_to(secret / "f")
        path = tmp_path / "f"
    else:
        (tmp_path / "d").symlink_to(secret)
        path = tmp_path / "d" / "f"
    with pytest.raises(us.UnsafePath, match="symbolic link"):
        us.read_file(str(path), 100)


def test_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 11)
    with pytest.raises(us.UnsafePath, match="larger than 10 bytes"):
        us.read_file(str(tmp_path / "big"), 10)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(us.UnsafePath, match="not a regular file"):
        us.read_file(str(tmp_path / "fifo"), 10)


@pytest.mark.parametrize("path", ["relative/path", "/a/../b", "/a//b", "/a/"])
def test_refuses_paths_that_are_not_normalized(path: str) -> None:
    with pytest.raises(us.UnsafePath, match="normalized absolute"):
        us.read_file(path, 10)


def test_read_link_and_lstat_do_not_follow(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to("/etc")
    assert us.read_link(str(tmp_path / ".venv")) == "/etc"
    st = us.lstat(str(tmp_path / ".venv"))
    assert st is not None and stat.S_ISLNK(st.st_mode)  # the link itself, not /etc
    assert us.read_link(str(tmp_path)) is None
    assert us.lstat(str(tmp_path / "nothing")) is None


@pytest.mark.parametrize(
    ("target", "build"),
    [
        (f".venvs/{BUILD}", BUILD),
        ("/etc", None),
        (f".venvs/{BUILD}/../../etc", None),
        (f".venvs/{BUILD}\nExecStartPre=/bin/sh", None),
        (f"/home/spark/p/.venvs/{BUILD}", None),
        (None, None),
    ],
)
def test_venv_id_only_from_the_builders_exact_link(target: str | None, build: str | None) -> None:
    assert us.venv_id_of_link(target) == build


def test_a_good_stamp_passes_whole() -> None:
    clean, problems = us.checked_stamp(GOOD, BUILD)
    assert problems == []
    assert clean == {key: GOOD[key] for key in clean}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("venv_id", "x\nExecStartPre=/bin/sh -c 'id > /tmp/p'"),
        ("venv_id", "venv-20250101T000000Z-0000bbbb"),
        ("image_id", "sha256:1 --privileged"),
        ("repo_digest", "r@sha256:abc"),
        ("python_version", "3.12\n"),
        ("lock_hash", 42),
        ("wheels", "xformers.whl"),
        ("wheels", ["../x.whl"]),
    ],
)
def test_each_malformed_field_is_a_problem_and_never_a_value(field: str, value: object) -> None:
    clean, problems = us.checked_stamp({**GOOD, field: value}, BUILD)
    assert len(problems) == 1 and field in problems[0]
    assert value not in clean.values()
    assert "ExecStartPre" not in json.dumps(clean)


def test_read_json_reports_why(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1]")
    (tmp_path / "bad.json").write_text("{")
    assert us.read_json(str(tmp_path / "list.json"), 100)[1].endswith("is not a JSON object")
    assert "is not JSON" in us.read_json(str(tmp_path / "bad.json"), 100)[1]
    assert us.read_json(str(tmp_path / "none.json"), 100) == (None, None)
