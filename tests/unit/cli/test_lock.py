"""One provision, drift or upgrade per inventory: the lock, its message and its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEMO_PROJECT, demo_inventory

from sparkfleet import lock
from sparkfleet.cli import main
from sparkfleet.lock import EXIT_LOCKED, FleetLock, Locked, lock_path


@pytest.fixture(autouse=True)
def demo_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARKFLEET_PLAYBOOK_DIR", str(DEMO_PROJECT))


def test_one_name_per_set_of_inventories(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    assert lock_path([str(a), str(b)], tmp_path) == lock_path([str(b), str(a)], tmp_path)
    assert lock_path([str(a)], tmp_path) != lock_path([str(b)], tmp_path)
    # The same file named through a link is the same inventory.
    (tmp_path / "link.yml").symlink_to(a)
    assert lock_path([str(tmp_path / "link.yml")], tmp_path) == lock_path([str(a)], tmp_path)
    assert lock_path([str(a)], tmp_path).parent == tmp_path


def test_lock_dir_prefers_the_variable_then_run_lock(tmp_path: Path) -> None:
    assert lock.lock_dir({"SPARKFLEET_LOCK_DIR": str(tmp_path)}) == tmp_path
    expected = Path("/run/lock") if os.access("/run/lock", os.W_OK | os.X_OK) else Path(lock.tempfile.gettempdir())
    assert lock.lock_dir({}) == expected


def test_a_held_lock_names_its_holder_and_exits_75(tmp_path: Path) -> None:
    path = tmp_path / "fleet.lock"
    with FleetLock(path, "sparkfleet upgrade").acquire():
        assert json.loads(path.read_text())["command"] == "sparkfleet upgrade"
        assert path.stat().st_mode & 0o777 == 0o644
        with pytest.raises(Locked) as caught:
            FleetLock(path, "sparkfleet drift --fix").acquire()
        assert caught.value.exit_code == EXIT_LOCKED == 75
        message = str(caught.value)
        assert message.startswith("skipped: pid ") and "sparkfleet upgrade" in message and str(path) in message
        assert "--wait SECONDS" in message
    # Released: the next run takes it.
    with FleetLock(path, "sparkfleet drift").acquire() as held:
        assert held.fd is not None


def test_the_wait_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "fleet.lock"
    ticks = iter(range(1000))
    slept: list[float] = []
    with FleetLock(path, "sparkfleet provision").acquire(), pytest.raises(Locked, match=r"after waiting 5 s"):
        FleetLock(path, "x").acquire(5, poll=1, clock=lambda: float(next(ticks)), sleep=slept.append)
    assert 4 <= len(slept) <= 6


def test_a_link_as_the_lock_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep")
    (tmp_path / "fleet.lock").symlink_to(target)
    with pytest.raises(lock.SparkfleetError, match="is a symbolic link: remove it"):
        FleetLock(tmp_path / "fleet.lock", "x").acquire()
    assert target.read_text() == "keep"


def _hold_in_another_process(path: Path) -> subprocess.Popen[str]:
    code = (
        "import sys, time; from pathlib import Path; from sparkfleet.lock import FleetLock;"
        f"FleetLock(Path({str(path)!r}), 'sparkfleet provision').acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_the_cli_skips_while_another_run_holds_the_inventory(
    tmp_path: Path, private_lock_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = str(demo_inventory(tmp_path))
    history_file = tmp_path / "drift.jsonl"
    holder = _hold_in_another_process(lock_path([inventory], private_lock_dir))
    try:
        for argv in (
            ["provision", "-i", inventory],
            ["upgrade", "--image", "example/x:1", "-i", inventory],
            ["drift", "--fix", "-i", inventory, "--history", str(history_file)],
        ):
            assert main(argv) == EXIT_LOCKED
            err = capsys.readouterr().err
            assert err.startswith("sparkfleet: skipped: pid ") and "sparkfleet provision" in err, err
            assert "error" not in err
        # The timer's skipped run leaves a line in the history.
        record = json.loads(history_file.read_text().splitlines()[-1])
        assert record["exit_code"] == EXIT_LOCKED and record["error"].startswith("skipped:")
    finally:
        holder.kill()
        holder.wait()


def test_status_does_not_take_the_lock(tmp_path: Path) -> None:
    parser = __import__("sparkfleet.cli", fromlist=["build_parser"]).build_parser()
    assert not hasattr(parser.parse_args(["status"]), "wait")
    assert parser.parse_args(["provision", "--wait", "30"]).wait == 30.0
    with pytest.raises(lock.SparkfleetError, match="not a number of seconds"):
        parser.parse_args(["drift", "--wait", "-1"])
