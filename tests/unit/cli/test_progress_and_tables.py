"""The live view and the final tables."""

from __future__ import annotations

import io
import re

import pytest
from helpers import recorded
from rich.console import Console

from sparkfleet import table
from sparkfleet.progress import ProgressView


def test_plain_progress_prints_one_line_per_host_and_role():
    stream = io.StringIO()
    view = ProgressView(stream, ["a", "b", "c"], tty=False)
    for event in recorded("drift_check")["events"]:
        view(event)
    lines = stream.getvalue().splitlines()
    # Not one line per task: a line when a host's role ends (at the end here), and at once for
    # an unreachable host.
    assert lines == [
        "c  UNREACHABLE at demo : Write the demo config",
        "b  demo: 3 ok, 0 changed",
        "a  demo: 3 ok, 3 changed",
    ]
    assert "\x1b" not in stream.getvalue()


def test_plain_progress_ends_a_role_when_the_host_starts_the_next():
    stream = io.StringIO()
    view = ProgressView(stream, ["spark-01"], tty=False)

    def ok(role: str, task: str, changed: bool = False) -> dict[str, object]:
        data = {"host": "spark-01", "role": role, "task": task, "res": {"changed": changed}}
        return {"event": "runner_on_ok", "event_data": data}

    for event in (ok("docker", "a"), ok("docker", "b", True), ok("jupyter", "c")):
        view(event)
    assert stream.getvalue().splitlines() == ["spark-01  docker: 2 ok, 1 changed"]
    view({"event": "runner_on_failed", "event_data": {"host": "spark-01", "role": "jupyter", "task": "d", "res": {}}})
    view({"event": "playbook_on_stats", "event_data": {}})
    assert stream.getvalue().splitlines()[-1] == "spark-01  jupyter: 1 ok, 0 changed, 1 failed"


def test_terminal_progress_is_a_live_table(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    stream = io.StringIO()
    with ProgressView(stream, ["a", "b"], tty=True) as view:
        for event in recorded("failed_check")["events"]:
            view(event)
    out = stream.getvalue()
    assert "\x1b[1A\x1b[2K" in out  # redrawn in place: cursor up over the previous table
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.rsplit("\x1b[2K", 1)[1])
    assert [" ".join(line.split()) for line in last.splitlines()] == [
        "host role ok changed failed current task",
        "a demo 3 3 0 Fail where the inventory asks to",
        "b demo 3 0 1 Fail where the inventory asks to",
    ]


def test_terminal_table_names_the_unreachable_hosts_task():
    view = ProgressView(io.StringIO(), ["a", "b", "c"], tty=True)
    for event in recorded("drift_check")["events"]:
        view(event)
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(view.table())
    rows = [" ".join(line.split()) for line in console.file.getvalue().splitlines()]
    assert rows[1] == "a demo 3 3 0 Fail where the inventory asks to"
    assert rows[3] == "c demo 0 0 0 UNREACHABLE at Write the demo config"


def test_a_role_is_shown_by_its_short_name():
    view = ProgressView(io.StringIO(), ["spark-01"], tty=True)
    data = {"host": "spark-01", "role": "sparkfleet.spark.docker", "task": "Install Docker", "res": {"changed": True}}
    view({"event": "runner_on_ok", "event_data": data})
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(view.table())
    assert console.file.getvalue().splitlines()[1].split() == ["spark-01", "docker", "1", "1", "0", "Install", "Docker"]


def test_a_terminal_view_closes_its_live_table_on_an_error():
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt), ProgressView(stream, ["a"], tty=True):
        raise KeyboardInterrupt
    assert stream.getvalue().endswith("\x1b[?25h")  # the cursor is shown again


def test_table_aligns_columns_and_right_aligns_numbers():
    text = table.render(("host", "ok", "time"), [("spark-01", 12, "3.0s"), ("b", 3, "10.5s")])
    assert text.splitlines() == [
        "host      ok  time",
        "spark-01  12  3.0s",
        "b          3  10.5s",
    ]
