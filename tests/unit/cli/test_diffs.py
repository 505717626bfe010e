"""Short diffs from every shape a task result's `diff` takes."""

from __future__ import annotations

import pytest

from sparkfleet.diffs import diff_lines, result_diff_lines, shorten


@pytest.mark.parametrize(
    ("diff", "lines"),
    [
        ({"before": "a\nb\n", "after": "a\nc\n"}, ["-b", "+c"]),
        ([{"before": "", "after": "x\n"}, {"before": "y\n", "after": ""}], ["+x", "-y"]),
        (
            {"before": {"state": "absent", "path": "/p"}, "after": {"state": "directory", "path": "/p"}},
            ["-state: absent", "+state: directory"],
        ),
        (
            {"before": {"mode": "0644"}, "after": {"mode": "0600", "owner": 1000}},
            ["-mode: 0644", "+mode: 0600", "+owner: 1000"],
        ),
        ({"prepared": "\x1b[0;31m-old\x1b[0m\n\x1b[0;32m+new\x1b[0m\n"}, ["-old", "+new"]),
        ({"before_header": "x"}, []),
        ({"before": None, "after": "new\n"}, ["+new"]),
        (None, []),
        ("not a diff", []),
        ([], []),
    ],
)
def test_diff_lines(diff, lines):
    assert diff_lines(diff) == lines


def test_loop_items_contribute_their_diffs():
    res = {
        "changed": True,
        "results": [
            {"changed": True, "diff": [{"before": "", "after": "a\n"}]},
            {"changed": False, "diff": [{"before": "same\n", "after": "other\n"}]},
            "not a mapping",
            {"changed": True, "diff": {"before": "b\n", "after": "c\n"}},
        ],
    }
    assert result_diff_lines(res) == ["+a", "-b", "+c"]


@pytest.mark.parametrize(
    ("count", "limit", "expected_tail"),
    [(3, 6, "+2"), (6, 6, "+5"), (7, 6, "… 1 more lines"), (20, 2, "… 18 more lines")],
)
def test_shorten(count, limit, expected_tail):
    lines = [f"+{i}" for i in range(count)]
    short = shorten(lines, limit)
    assert short[-1] == expected_tail
    assert len(short) == min(count, limit + 1)
