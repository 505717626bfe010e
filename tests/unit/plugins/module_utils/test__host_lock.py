"""The host lock: one holder at a time, a bounded wait, never through a link."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
from ansible_collections.sparkfleet.spark.plugins.module_utils._host_lock import LockTimeout, host_lock


def _hold(path: str, ready: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event) -> None:
    with host_lock(path, timeout=5):
        ready.set()
        release.wait(10)


def test_a_free_lock_is_taken_at_once(tmp_path: Path) -> None:
    path = tmp_path / "build.lock"
    with host_lock(str(path), timeout=0) as waited:
        assert waited < 1
    assert path.stat().st_mode & 0o777 == 0o600
    # Released with the descriptor: taken again at once.
    with host_lock(str(path), timeout=0) as waited:
        assert waited < 1


def test_a_held_lock_times_out_with_the_path_in_the_message(tmp_path: Path) -> None:
    path = str(tmp_path / "build.lock")
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        ticks = iter(range(100))
        held = host_lock(path, timeout=3, poll=0, clock=lambda: float(next(ticks)), sleep=lambda _: None)
        with pytest.raises(LockTimeout, match=r"build\.lock stayed locked for 3 s"), held:
            pytest.fail("the lock was taken while held")
    finally:
        release.set()
        holder.join(10)


def test_the_waiter_gets_the_lock_when_the_holder_ends(tmp_path: Path) -> None:
    path = str(tmp_path / "build.lock")
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(path, ready, release))
    holder.start()
    assert ready.wait(10)
    released_at = time.monotonic() + 0.3

    def sleep(seconds: float) -> None:
        if time.monotonic() >= released_at:
            release.set()
        time.sleep(seconds)

    with host_lock(path, timeout=10, poll=0.05, sleep=sleep) as waited:
        assert waited >= 0.3
    holder.join(10)


def test_a_link_is_never_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    link = tmp_path / "build.lock"
    link.symlink_to(target)
    with pytest.raises(OSError), host_lock(str(link), timeout=0):
        pass
    assert target.read_text() == "keep" and os.path.islink(link)
