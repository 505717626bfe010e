"""The live view and the final tables."""

from __future__ import annotations

import io

from helpers import recorded

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


def test_terminal_progress_redraws_one_line_per_host():
    stream = io.StringIO()
    view = ProgressView(stream, ["a", "b"], tty=True)
    for event in recorded("failed_check")["events"]:
        view(event)
    out = stream.getvalue()
    assert "\x1b[2A" in out  # cursor back up over the two host lines
    last = out.rsplit("\x1b[2A", 1)[1]
    assert [line.replace("\r\x1b[2K", "") for line in last.split("\n") if line] == [
        "a  [3 ok, 3 changed]  demo : Fail where the inventory asks to",
        "b  [3 ok, 0 changed, 1 failed]  demo : Fail where the inventory asks to",
    ]


def test_table_aligns_columns_and_right_aligns_numbers():
    text = table.render(("host", "ok", "time"), [("spark-01", 12, "3.0s"), ("b", 3, "10.5s")])
    assert text.splitlines() == [
        "host      ok  time",
        "spark-01  12  3.0s",
        "b          3  10.5s",
    ]
