"""The live view and the final tables."""

from __future__ import annotations

import io

from helpers import recorded

from sparkfleet import table
from sparkfleet.progress import ProgressView


def test_plain_progress_prints_one_line_per_result():
    stream = io.StringIO()
    view = ProgressView(stream, ["a", "b", "c"], tty=False)
    for event in recorded("drift_check")["events"]:
        view(event)
    lines = stream.getvalue().splitlines()
    assert "c  [UNREACHABLE]  demo : Write the demo config" in lines
    assert "a  [3 ok, 3 changed]  demo : Write the demo options" in lines
    assert "b  [3 ok, 0 changed]  demo : Write the demo options" in lines
    assert "\x1b" not in stream.getvalue()


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
