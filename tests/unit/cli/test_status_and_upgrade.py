"""Status rows from the recorded status playbook; rolling-upgrade batching."""

from __future__ import annotations

import json

import pytest
from helpers import recorded

from sparkfleet import status, upgrade
from sparkfleet.errors import UsageError


def test_status_rows_from_set_stats():
    reported = status.reported(recorded("status")["events"])
    assert sorted(reported) == ["a", "b"]
    a = status.host_row("a", reported["a"])
    b = status.host_row("b", reported["b"])
    assert (a["tag"], a["digest_short"], a["venv"]) == ("pytorch:25.11-py3", "sha256:abcdef012345", "fresh")
    assert b["venv"] == "stale"
    # No such image on this machine: the versions are an error, with docker's reason.
    assert a["torch"] == "error"
    assert "No such image" in a["versions_error"]
    assert status.host_row("c", reported.get("c")) == {"host": "c", "reported": False}


def test_status_row_with_versions_and_jupyter():
    raw = {
        "state": json.dumps(
            {"ngc_image": {"reference": "nvcr.io/nvidia/pytorch@sha256:" + "f" * 64, "id": "sha256:1"}}
        ),
        "stamp": json.dumps({"image_id": "sha256:1"}),
        "versions_rc": 0,
        "versions": json.dumps({"torch": "2.9.0a0+nv25.11", "xformers": "0.0.33"}),
        "jupyter": "active",
        "jupyter_url": "http://127.0.0.1:8888/lab",
    }
    row = status.host_row("s", raw)
    assert (row["tag"], row["torch"], row["xformers"], row["venv"]) == ("pytorch", "2.9.0a0+nv25.11", "0.0.33", "fresh")
    assert row["jupyter_url"] == "http://127.0.0.1:8888/lab"
    assert status.host_row("s", {**raw, "jupyter": "inactive"})["jupyter_url"] is None


@pytest.mark.parametrize(
    ("reported", "lines"),
    [
        ({"tornado": {"venv": "6.5.2", "image": "6.4.1"}}, ["tornado 6.5.2 over 6.4.1"]),
        (
            {"numpy": {"venv": "2.3.5", "image": "1.26.4"}, "jupyterlab": {"venv": "4.6.6", "image": "2.3.2"}},
            ["jupyterlab 4.6.6 over 2.3.2", "numpy 2.3.5 over 1.26.4"],
        ),
        # The venv's interpreter wrote these: anything but the exact shape is dropped.
        ({"Numpy": {"venv": "2", "image": "1"}}, []),
        ({"numpy\x1b[31m": {"venv": "2", "image": "1"}}, []),
        ({"numpy": {"venv": "2 ; rm", "image": "1"}}, []),
        ({"numpy": {"venv": 2, "image": "1"}}, []),
        ({"numpy": "2"}, []),
        (["numpy"], []),
        (None, []),
    ],
)
def test_shadowed_lines(reported, lines):
    assert status.shadowed_lines(reported) == lines


def test_status_row_reports_shadowed_distributions():
    raw = {
        "state": json.dumps({"ngc_image": {"id": "sha256:1"}}),
        "stamp": json.dumps({"image_id": "sha256:1"}),
        "versions_rc": 0,
        "versions": json.dumps({"torch": "2.13", "shadowed": {"tornado": {"venv": "6.5.2", "image": "6.4.1"}}}),
    }
    assert status.host_row("s", raw)["shadowed"] == ["tornado 6.5.2 over 6.4.1"]
    assert status.host_row("s", {**raw, "versions_rc": 1})["shadowed"] == []


@pytest.mark.parametrize(
    ("state", "stamp", "expected"),
    [
        ({"ngc_image": {"id": "i1", "repo_digest": "d1"}}, {"image_id": "i1", "repo_digest": "d1"}, "fresh"),
        ({"ngc_image": {"id": "i2", "repo_digest": "d1"}}, {"image_id": "i1", "repo_digest": "d1"}, "stale"),
        ({"ngc_image": {"id": "i1", "repo_digest": "d2"}}, {"image_id": "i1", "repo_digest": "d1"}, "stale"),
        ({"ngc_image": {"id": "i1"}}, {"image_id": "i1", "repo_digest": "d1"}, "fresh"),
        ({"ngc_image": {"id": "i1"}}, {}, "missing"),
        ({}, {"image_id": "i1"}, "unknown"),
    ],
)
def test_venv_freshness(state, stamp, expected):
    assert status.venv_freshness(state, stamp) == expected


@pytest.mark.parametrize(
    ("text", "parsed"), [("1", (1, False)), ("3", (3, False)), ("25%", (25, True)), (" 100% ", (100, True))]
)
def test_batch_size(text, parsed):
    assert upgrade.parse_batch_size(text) == parsed


@pytest.mark.parametrize("text", ["0", "-1", "x", "101%", "0%", "", "2.5"])
def test_bad_batch_size(text):
    with pytest.raises(UsageError, match="--batch-size"):
        upgrade.parse_batch_size(text)


@pytest.mark.parametrize(
    ("hosts", "size", "percent", "plan"),
    [
        ("abcde", 2, False, [["a", "b"], ["c", "d"], ["e"]]),
        ("abcde", 1, False, [["a"], ["b"], ["c"], ["d"], ["e"]]),
        ("abcde", 10, False, [["a", "b", "c", "d", "e"]]),
        ("abcde", 50, True, [["a", "b", "c"], ["d", "e"]]),
        ("abcde", 1, True, [["a"], ["b"], ["c"], ["d"], ["e"]]),
        ("", 2, False, []),
    ],
)
def test_batches(hosts, size, percent, plan):
    assert upgrade.batches(list(hosts), size, percent) == plan


@pytest.mark.parametrize(
    ("failed", "size", "threshold", "stops"),
    [(0, 2, 0, False), (1, 2, 0, True), (1, 2, 50, False), (2, 3, 50, True), (1, 4, 25, False)],
)
def test_batch_stops(failed, size, threshold, stops):
    assert upgrade.batch_stops(failed, size, threshold) is stops


def _row(host: str, image: str | None, digest: str | None, reported: bool = True) -> dict[str, object]:
    return {"host": host, "reported": reported, "image": image, "digest": digest}


REF = "nvcr.io/nvidia/pytorch:25.11-py3"
D1, D2 = "nvcr.io/nvidia/pytorch@sha256:" + "1" * 64, "nvcr.io/nvidia/pytorch@sha256:" + "2" * 64


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([_row("a", REF, D1), _row("b", REF, D1)], []),
        # Different images by name are a rollout, not a split.
        ([_row("a", REF, D1), _row("b", "nvcr.io/nvidia/pytorch:25.10-py3", D2)], []),
        ([_row("a", REF, D1), _row("b", REF, D1), _row("c", REF, D2)], ["c"]),
        # Unreported hosts and unknown digests are left out.
        ([_row("a", REF, D1), _row("b", REF, None), _row("c", None, None, reported=False)], []),
    ],
)
def test_digest_splits_name_the_hosts_off_the_fleets_digest(rows, expected):
    lines = status.digest_splits(rows)
    assert [line.split(":", 1)[0] for line in lines] == expected
    if expected:
        assert "sha256:222222222222 there, not the fleet's sha256:111111111111 (2 hosts)" in lines[0]
        assert "pin ngc_image_reference by digest" in lines[0]


def _stats(data):
    return [{"event": "runner_on_ok"}, {"event": "playbook_on_stats", "event_data": {"artifact_data": data}}]


D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


@pytest.mark.parametrize(
    ("data", "batch", "expected"),
    [
        # The first host in batch order that reported a repo digest decides.
        ({"sparkfleet_image_digest": {"b": f"reg:5000/nvidia/pytorch@{D2}", "a": f"reg/x@{D1}"}}, ["a", "b"], D1),
        ({"sparkfleet_image_digest": {"a": "", "b": f"reg/x@{D2}"}}, ["a", "b"], D2),
        # A host outside the batch, a bare ID or nothing at all: no digest to carry.
        ({"sparkfleet_image_digest": {"c": f"reg/x@{D1}"}}, ["a", "b"], None),
        ({"sparkfleet_image_digest": {"a": D1.replace("sha256:", "")}}, ["a"], None),
        ({}, ["a"], None),
    ],
)
def test_rollout_digest_is_the_first_batch_hosts_repo_digest(data, batch, expected):
    assert upgrade.rollout_digest(_stats(data), batch) == expected


def test_stats_map_reads_only_mappings():
    assert upgrade.stats_map(_stats({"sparkfleet_image": ["a"]}), "sparkfleet_image") == {}
    assert upgrade.stats_map(_stats({"sparkfleet_image": {"a": "r:1"}}), "sparkfleet_image") == {"a": "r:1"}
    assert upgrade.stats_map([], "sparkfleet_image") == {}
