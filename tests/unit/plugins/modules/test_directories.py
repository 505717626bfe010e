"""directories, the module: on a real file system, as root where ownership is asserted."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.spark.plugins.modules import directories
from module_harness import run_main

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")

LINK = (
    "{} is a symbolic link; sparkfleet never follows a link in a directory it manages as root: "
    "replace it with a real directory (or point the variable at the real path)"
)


def foreign(path: Path | str, uid: int, gid: int, owner: str, wanted_uid: int, wanted_gid: int) -> str:
    return (
        f"{path} exists and belongs to uid {uid} (gid {gid}), not {owner} (uid {wanted_uid}): "
        f"sparkfleet only chowns directories it creates. Run `chown {wanted_uid}:{wanted_gid} {path}` "
        f"if it should belong to {owner}, or choose another path"
    )


def run(capsys: pytest.CaptureFixture, tmp_path: Path, **args: Any) -> dict:
    return run_main(directories.main, capsys, tmp_path, **args)[0]


def owner_mode(path: Path) -> tuple[int, int, str]:
    st = path.lstat()
    return st.st_uid, st.st_gid, f"{stat.S_IMODE(st.st_mode):04o}"


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Owner, group and mode of root and everything below it, links not followed."""
    return {str(p): owner_mode(p) for p in [root, *sorted(root.rglob("*"))]}


def nobody_dir(path: Path, mode: int) -> Path:
    path.mkdir()
    os.chown(path, NOBODY, NOBODY)
    path.chmod(mode)
    return path


ME = str(os.geteuid())
MY_GROUP = str(os.getegid())


# --- The decision, as a table. -------------------------------------------------------------------

U, G = 1000, 1001
DIR_OK = (U, G, 0o755, True, False)


@pytest.mark.parametrize(
    ("existing", "mode", "listed", "actions"),
    [
        pytest.param(None, 0o755, True, ["created /p"], id="absent listed: created"),
        pytest.param(None, None, False, ["created /p"], id="absent parent: created"),
        pytest.param(DIR_OK, 0o755, True, [], id="as wanted"),
        pytest.param((U, G, 0o700, True, False), 0o755, True, [], id="stricter mode kept"),
        pytest.param((U, G, 0o777, True, False), 0o755, True, ["mode of /p: 0777 -> 0755"], id="looser tightened"),
        pytest.param((U, G, 0o751, True, False), 0o715, True, ["mode of /p: 0751 -> 0711"], id="bits only removed"),
        pytest.param((U, G, 0o2775, True, False), 0o755, True, ["mode of /p: 2775 -> 0755"], id="setgid removed"),
        pytest.param((U, G, 0o777, True, False), None, True, [], id="no mode: kept"),
        pytest.param((U, 0, 0o755, True, False), 0o755, True, ["group of /p: 0 -> 1001"], id="group fixed"),
        pytest.param(
            (U, 0, 0o777, True, False),
            0o750,
            True,
            ["group of /p: 0 -> 1001", "mode of /p: 0777 -> 0750"],
            id="group and mode",
        ),
        pytest.param((0, 0, 0o777, True, False), 0o755, False, [], id="parent of another owner: traversed"),
        pytest.param((U, G, 0o777, True, False), 0o700, False, [], id="parent: mode untouched"),
    ],
)
def test_decide(existing, mode, listed, actions):
    assert directories.decide("/p", existing, U, G, mode, listed, "spark") == actions


@pytest.mark.parametrize(
    ("existing", "listed", "message"),
    [
        pytest.param((U, G, 0o777, False, True), True, LINK.format("/p"), id="listed link"),
        pytest.param((0, 0, 0o777, False, True), False, LINK.format("/p"), id="parent link, even root's"),
        pytest.param((U, G, 0o644, False, False), True, "/p exists and is not a directory; move it away", id="file"),
        pytest.param((U, G, 0o644, False, False), False, "/p exists and is not a directory", id="file as parent"),
        pytest.param((0, 0, 0o755, True, False), True, foreign("/p", 0, 0, "spark", U, G), id="root's"),
        pytest.param((U + 1, G, 0o700, True, False), True, foreign("/p", U + 1, G, "spark", U, G), id="other user's"),
    ],
)
def test_decide_refuses(existing, listed, message):
    with pytest.raises(ValueError) as caught:
        directories.decide("/p", existing, U, G, 0o755, listed, "spark")
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("existing", "mode", "listed", "after"),
    [
        (None, None, True, (U, G, 0o755, True, False)),
        (None, 0o700, False, (U, G, 0o700, True, False)),
        ((U, 0, 0o700, True, False), 0o755, True, (U, G, 0o700, True, False)),
        ((0, 0, 0o777, True, False), 0o755, False, (0, 0, 0o777, True, False)),
    ],
)
def test_outcome(existing, mode, listed, after):
    assert directories.outcome(existing, U, G, mode, listed) == after


# --- The module, on a real file system. ----------------------------------------------------------


@as_root
def test_creates_missing_directories_and_parents_with_owner_and_mode(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    wanted = [str(home / "project"), str(home / ".local/share/sparkfleet/jupyter")]
    old_umask = os.umask(0o077)
    try:
        result = run(capsys, tmp_path, paths=wanted, owner=str(NOBODY), group=str(NOBODY), mode="0750")
    finally:
        os.umask(old_umask)
    assert result["changed"] is True
    assert result["actions"] == [
        f"created {home}/project",
        f"created {home}/.local",
        f"created {home}/.local/share",
        f"created {home}/.local/share/sparkfleet",
        f"created {home}/.local/share/sparkfleet/jupyter",
    ]
    for path in [home / "project", home / ".local", home / ".local/share", home / ".local/share/sparkfleet/jupyter"]:
        assert owner_mode(path) == (NOBODY, NOBODY, "0750"), path
    # The root-owned directory it started from is not listed: walked through, left as it was.
    assert owner_mode(home)[0] == 0


def test_second_run_changes_nothing(tmp_path, capsys):
    args = {"paths": [str(tmp_path / "a"), {"path": str(tmp_path / "a/b"), "mode": "0700"}], "owner": ME}
    first = run(capsys, tmp_path, **args, group=MY_GROUP)
    second = run(capsys, tmp_path, **args, group=MY_GROUP)
    assert first["changed"] is True
    assert first["actions"] == [f"created {tmp_path}/a", f"created {tmp_path}/a/b"]
    assert second == {**second, "changed": False, "actions": []}
    assert owner_mode(tmp_path / "a/b")[2] == "0700"
    # Without a mode of its own, a new directory is 0755 whatever the umask.
    assert owner_mode(tmp_path / "a")[2] == "0755"


def test_a_listed_parent_created_for_a_child_gets_its_own_mode(tmp_path, capsys):
    paths = [{"path": str(tmp_path / "a/b"), "mode": "0700"}, {"path": str(tmp_path / "a"), "mode": "0751"}]
    checked = run(capsys, tmp_path, paths=paths, owner=ME, group=MY_GROUP, check_mode=True)
    result = run(capsys, tmp_path, paths=paths, owner=ME, group=MY_GROUP)
    assert checked["actions"] == result["actions"] == [f"created {tmp_path}/a", f"created {tmp_path}/a/b"]
    assert owner_mode(tmp_path / "a")[2] == "0751"
    assert owner_mode(tmp_path / "a/b")[2] == "0700"


@as_root
def test_sets_the_group_of_an_existing_directory_of_the_owner_and_keeps_its_contents(tmp_path, capsys):
    cache = tmp_path / ".cache"
    cache.mkdir(mode=0o700)
    os.chown(cache, NOBODY, 0)
    (cache / "model.bin").write_bytes(b"weights")
    result = run(capsys, tmp_path, paths=[str(cache)], owner=str(NOBODY), group=str(NOBODY), diff=True)
    assert result["actions"] == [f"group of {cache}: 0 -> {NOBODY}"]
    # No mode asked: the existing one stays.
    assert owner_mode(cache) == (NOBODY, NOBODY, "0700")
    assert (cache / "model.bin").read_bytes() == b"weights"
    assert result["diff"]["before"] == f"{cache}: directory {NOBODY}:0 0700\n"
    assert result["diff"]["after"] == f"{cache}: directory {NOBODY}:{NOBODY} 0700\n"


@as_root
def test_the_users_stricter_mode_is_kept(tmp_path, capsys):
    project = nobody_dir(tmp_path / "project", 0o700)
    result = run(capsys, tmp_path, paths=[str(project)], owner=str(NOBODY), group=str(NOBODY), mode="0755")
    assert result["changed"] is False
    assert result["actions"] == []
    assert owner_mode(project) == (NOBODY, NOBODY, "0700")


@as_root
def test_a_looser_mode_is_tightened_then_left_alone(tmp_path, capsys):
    project = nobody_dir(tmp_path / "project", 0o777)
    args = {"paths": [str(project)], "owner": str(NOBODY), "group": str(NOBODY), "mode": "0755", "diff": True}
    result = run(capsys, tmp_path, **args)
    assert result["actions"] == [f"mode of {project}: 0777 -> 0755"]
    assert owner_mode(project) == (NOBODY, NOBODY, "0755")
    assert result["diff"]["after"] == f"{project}: directory {NOBODY}:{NOBODY} 0755\n"
    assert run(capsys, tmp_path, **args)["changed"] is False


@as_root
def test_without_a_mode_an_existing_directory_keeps_its_own(tmp_path, capsys):
    project = nobody_dir(tmp_path / "project", 0o777)
    result = run(capsys, tmp_path, paths=[str(project)], owner=str(NOBODY), group=str(NOBODY))
    assert result["changed"] is False
    assert owner_mode(project)[2] == "0777"


@as_root
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_a_directory_of_another_owner_is_refused_and_left_alone(tmp_path, capsys, check_mode):
    cache = tmp_path / ".cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    os.chown(cache, 0, 0)
    # Listed before it: not created either, every path is checked before anything changes.
    new = tmp_path / "new"
    paths = [str(new), str(cache)]
    args = {"paths": paths, "owner": str(NOBODY), "group": str(NOBODY), "mode": "0755"}
    result = run(capsys, tmp_path, **args, check_mode=check_mode)
    assert result["failed"] is True
    assert result["msg"] == foreign(cache, 0, 0, "nobody", NOBODY, NOBODY)
    assert owner_mode(cache) == (0, 0, "0777")
    assert not new.exists()


@as_root
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_a_listed_directory_that_is_a_link_is_refused_and_its_target_untouched(tmp_path, capsys, check_mode):
    # The target even belongs to the owner: the link alone is the reason.
    etc = nobody_dir(tmp_path / "etc", 0o777)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").symlink_to(etc)
    before = snapshot(tmp_path)
    result = run(
        capsys, tmp_path, paths=[str(home / ".cache")], owner=str(NOBODY), group="0", mode="0700", check_mode=check_mode
    )
    assert result["failed"] is True
    assert result["msg"] == LINK.format(home / ".cache")
    assert snapshot(tmp_path) == before


@as_root
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_a_link_on_the_way_is_refused_and_nothing_is_made_in_its_target(tmp_path, capsys, check_mode):
    etc = tmp_path / "etc"
    etc.mkdir(mode=0o755)
    home = nobody_dir(tmp_path / "home", 0o755)
    (home / ".cache").symlink_to(etc)
    before = snapshot(tmp_path)
    # As the workspace role lists them; and with the link only a parent of the one listed path.
    for paths in ([str(home / ".cache/uv")], [str(home / "project"), str(home / ".cache"), str(home / ".cache/uv")]):
        result = run(capsys, tmp_path, paths=paths, owner=str(NOBODY), group=str(NOBODY), check_mode=check_mode)
        assert result["failed"] is True
        assert result["msg"] == LINK.format(home / ".cache")
        assert snapshot(tmp_path) == before
        assert list(etc.iterdir()) == []


def test_a_link_high_up_is_refused_too(tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "home").symlink_to(real)
    result = run(capsys, tmp_path, paths=[str(tmp_path / "home/spark/project")], owner=ME, group=MY_GROUP)
    assert result["msg"] == LINK.format(tmp_path / "home")
    assert list(real.iterdir()) == []


def test_a_dangling_link_is_refused_not_created_through(tmp_path, capsys):
    (tmp_path / "project").symlink_to(tmp_path / "elsewhere")
    result = run(capsys, tmp_path, paths=[str(tmp_path / "project")], owner=ME, group=MY_GROUP)
    assert result["msg"] == LINK.format(tmp_path / "project")
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_a_file_in_the_way_is_refused_not_replaced(tmp_path, capsys, check_mode):
    blocker = tmp_path / "project"
    blocker.write_text("user data")
    for path in (blocker, blocker / "sub"):
        result = run(capsys, tmp_path, paths=[str(path)], owner=ME, group=MY_GROUP, check_mode=check_mode)
        assert result["failed"] is True
        assert result["msg"] == f"{blocker} exists and is not a directory; move it away, sparkfleet never replaces it"
        assert blocker.read_text() == "user data"


@as_root
def test_check_mode_predicts_and_changes_nothing(tmp_path, capsys):
    existing = nobody_dir(tmp_path / "existing", 0o777)
    paths = [str(existing), str(tmp_path / "new/child")]
    result = run(capsys, tmp_path, paths=paths, owner=str(NOBODY), group="0", mode="0755", check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["actions"] == [
        f"group of {existing}: {NOBODY} -> 0",
        f"mode of {existing}: 0777 -> 0755",
        f"created {tmp_path}/new",
        f"created {tmp_path}/new/child",
    ]
    assert not (tmp_path / "new").exists()
    assert owner_mode(existing) == (NOBODY, NOBODY, "0777")
    assert result["diff"]["before"].splitlines() == [
        f"{existing}: directory {NOBODY}:{NOBODY} 0777",
        f"{tmp_path}/new/child: absent",
    ]
    assert result["diff"]["after"].splitlines() == [
        f"{existing}: directory {NOBODY}:0 0755",
        f"{tmp_path}/new/child: directory {NOBODY}:0 0755",
    ]
    # The real run does what check mode said.
    real = run(capsys, tmp_path, paths=paths, owner=str(NOBODY), group="0", mode="0755", diff=True)
    assert real["actions"] == result["actions"]
    assert real["diff"] == result["diff"]


@pytest.mark.parametrize(
    ("paths", "owner", "group", "mode", "message"),
    [
        (["relative/dir"], "0", "0", None, "'relative/dir' is not a normalized absolute path"),
        (["{tmp}/a/../b"], "0", "0", None, "'{tmp}/a/../b' is not a normalized absolute path"),
        (["{tmp}/a/./b"], "0", "0", None, "'{tmp}/a/./b' is not a normalized absolute path"),
        (["{tmp}//x"], "0", "0", None, "'{tmp}//x' is not a normalized absolute path"),
        (["{tmp}/x/"], "0", "0", None, "'{tmp}/x/' is not a normalized absolute path"),
        (["/{tmp}/x"], "0", "0", None, "'/{tmp}/x' is not a normalized absolute path"),
        ([{"mode": "0700"}], "0", "0", None, "{'mode': '0700'} is not a normalized absolute path"),
        (["/"], "0", "0", None, "'/' is the root directory; sparkfleet never manages it"),
        (["{tmp}/x", {"path": "{tmp}/x", "mode": "0700"}], "0", "0", "0755", "'{tmp}/x' is listed twice"),
        (["{tmp}/x"], "no-such-user-here", "0", None, "unknown user 'no-such-user-here'"),
        (["{tmp}/x"], "0", "no-such-group-here", None, "unknown group 'no-such-group-here'"),
        (["{tmp}/x"], "0", "0", "u+rwx", "mode 'u+rwx' is not an octal mode"),
    ],
)
def test_bad_arguments_fail_before_any_change(tmp_path, capsys, paths, owner, group, mode, message):
    def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [fill(item) for item in value]
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value.replace("{tmp}", str(tmp_path)) if isinstance(value, str) else value

    args = {"paths": fill(paths), "owner": owner, "group": group, **({"mode": mode} if mode else {})}
    result = run(capsys, tmp_path, **args)
    assert result["failed"] is True
    assert message.replace("{tmp}", str(tmp_path)) in result["msg"]
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


# --- Races: the user changes a directory between the check and the change. -----------------------


@as_root
def test_a_directory_swapped_for_a_link_after_the_plan_fails_the_apply(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir(mode=0o755)
    home = nobody_dir(tmp_path / "home", 0o755)
    cache = nobody_dir(home / ".cache", 0o777)
    entries = [(str(cache), 0o755), (str(cache / "uv"), 0o755)]
    planned = directories.plan(entries, NOBODY, NOBODY, "nobody")
    assert planned.actions == [f"mode of {cache}: 0777 -> 0755", f"created {cache}/uv"]

    cache.rmdir()
    cache.symlink_to(etc)
    before = snapshot(tmp_path)
    done: list[str] = []
    with pytest.raises(ValueError) as caught:
        directories.apply(entries, NOBODY, NOBODY, "nobody", done)
    assert str(caught.value) == LINK.format(cache)
    assert done == []
    assert snapshot(tmp_path) == before
    assert owner_mode(etc) == (0, 0, "0755")


@as_root
def test_a_new_directory_swapped_for_a_link_before_it_is_opened_is_not_followed(tmp_path, capsys, monkeypatch):
    etc = tmp_path / "etc"
    etc.mkdir(mode=0o755)
    home = nobody_dir(tmp_path / "home", 0o755)
    real_mkdir = os.mkdir

    def mkdir_then_swap(name: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        real_mkdir(name, mode, dir_fd=dir_fd)
        if name == ".cache":
            os.rmdir(home / ".cache")
            os.symlink(etc, home / ".cache")

    monkeypatch.setattr(os, "mkdir", mkdir_then_swap)
    result = run(capsys, tmp_path, paths=[str(home / ".cache/uv")], owner=str(NOBODY), group=str(NOBODY))
    assert result["failed"] is True
    assert result["msg"] == LINK.format(home / ".cache")
    assert owner_mode(etc) == (0, 0, "0755")
    assert list(etc.iterdir()) == []


@as_root
def test_a_new_directory_swapped_for_someone_elses_is_not_chowned(tmp_path, capsys, monkeypatch):
    home = nobody_dir(tmp_path / "home", 0o755)
    theirs = tmp_path / "root-owned"
    theirs.mkdir(mode=0o700)
    (theirs / "secret").write_text("root's")
    real_mkdir = os.mkdir

    def mkdir_then_swap(name: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        real_mkdir(name, mode, dir_fd=dir_fd)
        if name == "project":
            os.rmdir(home / "project")
            os.rename(theirs, home / "project")

    monkeypatch.setattr(os, "mkdir", mkdir_then_swap)
    result = run(capsys, tmp_path, paths=[str(home / "project")], owner=str(NOBODY), group=str(NOBODY))
    assert result["failed"] is True
    assert result["msg"] == foreign(home / "project", 0, 0, "nobody", NOBODY, NOBODY)
    assert owner_mode(home / "project") == (0, 0, "0700")


def test_a_directory_made_by_someone_else_meanwhile_is_taken_as_existing(tmp_path, capsys, monkeypatch):
    real_mkdir = os.mkdir

    def made_meanwhile(name: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        real_mkdir(name, 0o777, dir_fd=dir_fd)
        os.chmod(name, 0o777, dir_fd=dir_fd)
        raise FileExistsError(17, "File exists", name)

    monkeypatch.setattr(os, "mkdir", made_meanwhile)
    project = tmp_path / "project"
    result = run(capsys, tmp_path, paths=[str(project)], owner=ME, group=MY_GROUP, mode="0750")
    assert result["changed"] is True
    assert result["actions"] == [f"mode of {project}: 0777 -> 0750"]
    assert owner_mode(project)[2] == "0750"


def test_the_documentation_is_yaml():
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(directories.DOCUMENTATION)
    assert set(doc["options"]) == {"paths", "owner", "group", "mode"}
    assert any("symbolic link" in note.lower() for note in doc["notes"])
    yaml.safe_load(directories.EXAMPLES)
    yaml.safe_load(directories.RETURN)
