"""directories, the module: on a real file system, as root where ownership is asserted."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.sparkfleet.spark.plugins.modules import directories

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def run(capsys: pytest.CaptureFixture, tmp_path: Path, **args: Any) -> dict:
    internal = {"_ansible_remote_tmp": str(tmp_path / "remote-tmp")}
    for flag in ("check_mode", "diff"):
        if flag in args:
            internal[f"_ansible_{flag}"] = args.pop(flag)
    with patch_module_args({**args, **internal}), pytest.raises(SystemExit):
        directories.main()
    return json.loads(capsys.readouterr().out)


def owner_mode(path: Path) -> tuple[int, int, str]:
    st = path.stat()
    return st.st_uid, st.st_gid, f"{stat.S_IMODE(st.st_mode):04o}"


@as_root
def test_creates_missing_directories_and_parents_with_owner_and_mode(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    wanted = [str(home / "project"), str(home / ".local/share/sparkfleet/jupyter")]
    result = run(capsys, tmp_path, paths=wanted, owner=str(NOBODY), group=str(NOBODY), mode="0750")
    assert result["changed"] is True
    assert f"created {home}/.local" in result["actions"]
    for path in [home / "project", home / ".local", home / ".local/share", home / ".local/share/sparkfleet/jupyter"]:
        assert owner_mode(path) == (NOBODY, NOBODY, "0750"), path
    # The directory it started from is not the module's: left as it was.
    assert owner_mode(home)[0] == 0


@as_root
def test_second_run_changes_nothing(tmp_path, capsys):
    args = {"paths": [str(tmp_path / "a"), {"path": str(tmp_path / "a/b"), "mode": "0700"}], "owner": "0", "group": "0"}
    first = run(capsys, tmp_path, **args)
    second = run(capsys, tmp_path, **args)
    assert first["changed"] is True
    assert second == {**second, "changed": False, "actions": []}
    assert owner_mode(tmp_path / "a/b")[2] == "0700"
    # Without a mode of its own, a new directory is 0755 whatever the umask.
    assert owner_mode(tmp_path / "a")[2] == "0755"


@as_root
def test_fixes_owner_of_an_existing_directory_and_keeps_its_contents(tmp_path, capsys):
    cache = tmp_path / ".cache"
    cache.mkdir(mode=0o700)
    (cache / "model.bin").write_bytes(b"weights")
    result = run(capsys, tmp_path, paths=[str(cache)], owner=str(NOBODY), group=str(NOBODY), diff=True)
    assert result["actions"] == [f"owner of {cache}: 0 -> {NOBODY}", f"group of {cache}: 0 -> {NOBODY}"]
    # No mode asked: the existing one stays.
    assert owner_mode(cache) == (NOBODY, NOBODY, "0700")
    assert (cache / "model.bin").read_bytes() == b"weights"
    assert result["diff"]["before"] == f"{cache}: directory 0:0 0700\n"
    assert result["diff"]["after"] == f"{cache}: directory {NOBODY}:{NOBODY} 0700\n"


@as_root
def test_check_mode_predicts_and_changes_nothing(tmp_path, capsys):
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    paths = [str(existing), str(tmp_path / "new/child")]
    result = run(capsys, tmp_path, paths=paths, owner=str(NOBODY), group="0", mode="0755", check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["actions"] == [
        f"owner of {existing}: 0 -> {NOBODY}",
        f"created {tmp_path}/new",
        f"created {tmp_path}/new/child",
    ]
    assert not (tmp_path / "new").exists()
    assert owner_mode(existing)[0] == 0
    assert result["diff"]["after"].splitlines() == [
        f"{existing}: directory {NOBODY}:0 0755",
        f"{tmp_path}/new/child: directory {NOBODY}:0 0755",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"paths": ["relative/dir"], "owner": "0", "group": "0"}, "'relative/dir' is not an absolute path"),
        ({"paths": ["{tmp}/x"], "owner": "no-such-user-here", "group": "0"}, "unknown user 'no-such-user-here'"),
        ({"paths": ["{tmp}/x"], "owner": "0", "group": "no-such-group-here"}, "unknown group 'no-such-group-here'"),
        ({"paths": ["{tmp}/x"], "owner": "0", "group": "0", "mode": "u+rwx"}, "mode 'u+rwx' is not an octal mode"),
        ({"paths": [{"mode": "0700"}], "owner": "0", "group": "0"}, "is not an absolute path"),
    ],
)
def test_bad_arguments_fail_before_any_change(tmp_path, capsys, args, message):
    result = run(capsys, tmp_path, **args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert not Path("{tmp}/x").exists() or Path("{tmp}/x").is_dir()


def test_a_file_in_the_way_is_refused_not_replaced(tmp_path, capsys):
    blocker = tmp_path / "project"
    blocker.write_text("user data")
    result = run(capsys, tmp_path, paths=[str(blocker)], owner=str(os.getuid()), group=str(os.getgid()))
    assert result["failed"] is True
    assert "exists and is not a directory" in result["msg"]
    assert blocker.read_text() == "user data"
