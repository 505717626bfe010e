"""Each command's report from plain data and recorded runs: its exit code, JSON and text; how cli prints it."""

from __future__ import annotations

import io
import json
import re

import pytest
from helpers import recorded

from sparkfleet import drift
from sparkfleet.cli import emit
from sparkfleet.commands import problem_lines
from sparkfleet.commands.drift import DriftReport
from sparkfleet.commands.provision import ProvisionReport
from sparkfleet.commands.status import StatusReport
from sparkfleet.commands.upgrade import UpgradeReport
from sparkfleet.events import HostResult, TaskChange, host_results, jupyter_access, not_run
from sparkfleet.table import Table, plain_text

UNREACHABLE_C = (
    "unreachable: Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 1: Connection refused"
)
TUNNEL = "ssh -N -L 8888:127.0.0.1:8888 spark@192.0.2.11"
URL = "http://localhost:8888/lab"


def results_of(name: str, hosts: tuple[str, ...]) -> tuple[dict[str, HostResult], list[str]]:
    run = recorded(name)
    results = host_results(run["events"], run["stats"], hosts)
    return results, not_run(results, run["stats"])


# --- provision ---------------------------------------------------------------------------------


def test_provision_report_from_a_run_with_an_unreachable_host():
    results, _ = results_of("drift_check", ("a", "b", "c"))
    report = ProvisionReport(results)
    assert report.exit_code == 1
    assert report.render_text().splitlines() == [
        "host  ok  changed  failed  unreachable  time",
        "a      3        3       0            0  3.0s",
        "b      3        0       0            0  3.0s",
        "c      0        0       0            1  0.0s",
        f"c: {UNREACHABLE_C}",
        "Converged 2 of 3 hosts.",
    ]
    document = report.to_json()
    assert (document["command"], document["exit_code"]) == ("provision", 1)
    assert [(h["host"], h["state"], h["changed"]) for h in document["hosts"]] == [
        ("a", "changed", 3),
        ("b", "ok", 0),
        ("c", "unreachable", 0),
    ]
    assert document["hosts"][0] == results["a"].as_dict()
    assert "jupyter" not in document["hosts"][0]


def test_provision_report_names_the_hosts_the_play_stopped_before():
    results, missing = results_of("converge", ("a", "b"))
    report = ProvisionReport(results, missing)
    assert report.exit_code == 1
    assert report.render_text().splitlines()[-2:] == [
        "b: not run (the play stopped before it)",
        "Converged 1 of 2 hosts.",
    ]


def test_provision_report_shows_each_hosts_jupyter_tunnel_and_url():
    results = {
        "spark-01": HostResult("spark-01", ok=80, seconds=24.8),
        "spark-02": HostResult("spark-02", ok=81, changed=1, seconds=25.0),
    }
    access = {
        "spark-01": {"tunnel": TUNNEL, "url": URL, "direct": "none (bound to 127.0.0.1 only)"},
        "spark-02": {"tunnel": "ssh -N -L 8888:127.0.0.1:8888 spark@192.0.2.12", "url": URL},
    }
    report = ProvisionReport(results, jupyter=access)
    assert report.exit_code == 0
    assert report.render_text().splitlines() == [
        "host      ok  changed  failed  unreachable  time",
        "spark-01  80        0       0            0  24.8s",
        "spark-02  81        1       0            0  25.0s",
        "",
        "host      tunnel (run on your laptop)                     then open",
        f"spark-01  {TUNNEL}  {URL}",
        f"spark-02  ssh -N -L 8888:127.0.0.1:8888 spark@192.0.2.12  {URL}",
        "Converged 2 of 2 hosts.",
    ]
    hosts = report.to_json()["hosts"]
    assert [h["jupyter"] for h in hosts] == [access["spark-01"], access["spark-02"]]


def test_provision_report_reads_jupyter_access_from_the_events():
    message = ["Jupyter Lab of ...", f"tunnel: {TUNNEL}", f"then:   {URL}", "direct: none (bound to 127.0.0.1 only)"]
    events = [
        {
            "event": "runner_on_ok",
            "event_data": {"host": "a", "task": "Show how to reach Jupyter", "res": {"msg": message}},
        }
    ]
    report = ProvisionReport({"a": HostResult("a", ok=1), "b": HostResult("b", ok=1)}, jupyter=jupyter_access(events))
    assert report.render_text().splitlines()[-3:] == [
        "host  tunnel (run on your laptop)                     then open",
        f"a     {TUNNEL}  {URL}",
        "Converged 2 of 2 hosts.",
    ]
    assert [("jupyter" in h) for h in report.to_json()["hosts"]] == [True, False]


# --- drift -------------------------------------------------------------------------------------


def test_drift_report_text_and_json_from_a_check_run():
    results, missing = results_of("drift_check", ("a", "b", "c"))
    report = DriftReport(False, drift.assess(results, missing))
    assert report.exit_code == 1
    text = report.render_text()
    assert text == drift.render_text(report.verdicts) + "\n" + drift.summary(report.verdicts)
    assert text.splitlines()[-1] == "Drift on 1 of 3 hosts (a); unreachable: c."
    document = report.to_json()
    assert {k: document[k] for k in ("command", "fix", "exit_code")} == {
        "command": "drift",
        "fix": False,
        "exit_code": 1,
    }
    assert [(h["host"], h["state"]) for h in document["hosts"]] == [
        ("a", "drift"),
        ("b", "clean"),
        ("c", "unreachable"),
    ]
    assert document["hosts"][0]["changes"][0] == {
        "role": "demo",
        "task": "Write the demo config",
        "diff": ["-port = 80", "+port = 8080"],
    }


def test_drift_report_history_lists_tasks_without_diffs():
    change = TaskChange("sparkfleet.spark.jupyter", "Start Jupyter", ["-inactive", "+active"])
    verdicts = [
        drift.HostDrift("a", drift.FIXED, changes=[change], corrected=[change]),
        drift.HostDrift("b", drift.UNREACHABLE, errors=["unreachable: no route"]),
    ]
    report = DriftReport(True, verdicts)
    assert report.exit_code == 1
    assert report.to_json()["fix"] is True
    task = {"role": "sparkfleet.spark.jupyter", "task": "Start Jupyter"}
    assert report.history_hosts() == {
        "a": {"state": "fixed", "changes": [task], "corrected": [task], "errors": []},
        "b": {"state": "unreachable", "changes": [], "corrected": [], "errors": ["unreachable: no route"]},
    }
    assert report.render_text().splitlines() == [
        "a  fixed (1 task corrected)",
        "    sparkfleet.spark.jupyter : Start Jupyter",
        "      -inactive",
        "      +active",
        "b  unreachable",
        "    ! unreachable: no route",
        "Fixed drift on 1 of 2 hosts (a); unreachable: b.",
    ]


@pytest.mark.parametrize(
    ("states", "code", "summary"),
    [
        ((drift.CLEAN, drift.CLEAN), 0, "No drift: 2 hosts clean."),
        ((drift.CLEAN, drift.DRIFT), 2, "Drift on 1 of 2 hosts (h1)."),
        ((drift.FIXED, drift.CLEAN), 2, "Fixed drift on 1 of 2 hosts (h0)."),
        ((drift.DRIFT, drift.FAILED), 1, "Drift on 1 of 2 hosts (h0); failed: h1."),
    ],
)
def test_drift_report_exit_codes(states, code, summary):
    report = DriftReport(False, [drift.HostDrift(f"h{i}", state) for i, state in enumerate(states)])
    assert report.exit_code == code
    assert report.to_json()["exit_code"] == code
    assert report.render_text().splitlines()[-1] == summary


# --- status ------------------------------------------------------------------------------------

DIGEST_1, DIGEST_2 = "r/x@sha256:" + "1" * 64, "r/x@sha256:" + "2" * 64


def status_row(host: str, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "host": host,
        "reported": True,
        "image": "r/x:25.11-py3",
        "tag": "x:25.11-py3",
        "digest": DIGEST_1,
        "digest_short": "sha256:111111111111",
        "venv": "fresh",
        "torch": "2.9.0",
        "xformers": "0.0.33",
        "shadowed": [],
        "versions_error": None,
        "jupyter": "active",
        "jupyter_url": "http://127.0.0.1:8888/lab",
    }
    row.update(fields)
    return row


def test_status_report_of_a_healthy_fleet():
    rows = [status_row("spark-01"), status_row("spark-02", jupyter="inactive", jupyter_url=None, venv="stale")]
    report = StatusReport(rows, {r["host"]: HostResult(str(r["host"]), ok=5) for r in rows})
    assert report.exit_code == 0
    assert report.render_text().splitlines() == [
        "host      image        digest               venv   torch  xformers  jupyter   url",
        "spark-01  x:25.11-py3  sha256:111111111111  fresh  2.9.0  0.0.33    active    http://127.0.0.1:8888/lab",
        "spark-02  x:25.11-py3  sha256:111111111111  stale  2.9.0  0.0.33    inactive  -",
    ]
    assert report.to_json() == {
        "command": "status",
        "exit_code": 0,
        "hosts": rows,
        "unreachable": [],
        "failed": [],
        "digest_splits": [],
    }


def test_status_report_names_problems_splits_shadowed_and_venv_errors():
    rows = [
        status_row("a", shadowed=["tornado 6.5.2 over 6.4.1"]),
        status_row(
            "b", digest=DIGEST_2, digest_short="sha256:222222222222", torch="error", versions_error="No  such\nimage"
        ),
        status_row("c", digest=DIGEST_1),
        {"host": "d", "reported": False},
        {"host": "e", "reported": False},
    ]
    results = {
        "a": HostResult("a", ok=5),
        "b": HostResult("b", ok=5),
        "c": HostResult("c", ok=4, failed=1, errors=["Read the stamp: denied"]),
        "d": HostResult("d", unreachable=1, errors=["unreachable: timed out"]),
        "e": HostResult("e", ok=3),
    }
    report = StatusReport(rows, results)
    assert report.exit_code == 1
    lines = report.render_text().splitlines()
    assert lines[0].split() == ["host", "image", "digest", "venv", "torch", "xformers", "jupyter", "url"]
    assert [line.split() for line in lines[4:6]] == [["d", "unreachable"], ["e", "no", "report"]]
    assert lines[6:] == [
        "d: unreachable: timed out",
        "c: Read the stamp: denied",
        "b: r/x:25.11-py3 is sha256:222222222222 there, not the fleet's sha256:111111111111 (2 hosts);"
        " the tag moved: pin ngc_image_reference by digest, or run `sparkfleet upgrade` to align them",
        "a: the venv shadows the image's tornado 6.5.2 over 6.4.1",
        "b: venv check failed: No such image",
    ]
    document = report.to_json()
    assert (document["unreachable"], document["failed"]) == (["d"], ["c"])
    assert document["digest_splits"] == [lines[8]]


def test_status_report_a_reachable_host_without_a_report_fails():
    report = StatusReport([{"host": "a", "reported": False}], {"a": HostResult("a", ok=2)})
    assert report.exit_code == 1
    assert report.silent == ["a"]


# --- upgrade -----------------------------------------------------------------------------------

IMAGE = "nvcr.io/nvidia/pytorch:25.12-py3"
DIGEST = "sha256:" + "a" * 64


def test_upgrade_report_of_a_stopped_rollout():
    report = UpgradeReport(
        IMAGE,
        [["a"], ["b"], ["c"]],
        {"a": "upgraded", "b": "failed", "c": "untouched"},
        digest=DIGEST,
        batch_of={"a": 1, "b": 2},
        results={
            "a": HostResult("a", ok=90, changed=8, seconds=43.6),
            "b": HostResult("b", ok=12, failed=1, seconds=5.0, errors=["Pull: manifest unknown"]),
        },
        stopped=(2, ["b"]),
    )
    assert report.exit_code == 1
    assert report.render_text().splitlines() == [
        "host  result     batch  changed  time",
        "a     upgraded   1      8        43.6s",
        "b     failed     2      0        5.0s",
        "c     untouched  -      -        -",
        "b: Pull: manifest unknown",
        f"Upgraded 1 of 3 hosts to {IMAGE} ({DIGEST}); batch 2/3 failed on b: rollout stopped"
        " (over --max-fail-percentage 0); untouched, still on their old image: c.",
    ]
    assert report.to_json() == {
        "command": "upgrade",
        "image": IMAGE,
        "digest": DIGEST,
        "exit_code": 1,
        "batches": [["a"], ["b"], ["c"]],
        "stopped_at_batch": 2,
        "hosts": [
            {"host": "a", "result": "upgraded", "batch": 1, "errors": []},
            {"host": "b", "result": "failed", "batch": 2, "errors": ["Pull: manifest unknown"]},
            {"host": "c", "result": "untouched", "batch": None},
        ],
    }


def test_upgrade_report_of_a_finished_rollout():
    report = UpgradeReport(
        IMAGE,
        [["a", "b"]],
        {"a": "upgraded", "b": "upgraded"},
        batch_of={"a": 1, "b": 1},
        results={"a": HostResult("a", changed=8, seconds=40.0), "b": HostResult("b", changed=7, seconds=41.0)},
        max_fail_percentage=50,
    )
    assert report.exit_code == 0
    assert report.render_text().splitlines() == [
        "host  result    batch  changed  time",
        "a     upgraded      1        8  40.0s",
        "b     upgraded      1        7  41.0s",
        f"Upgraded 2 of 2 hosts to {IMAGE}.",
    ]
    assert report.to_json()["stopped_at_batch"] is None


def test_upgrade_report_an_unreachable_host_fails_the_rollout():
    report = UpgradeReport(
        IMAGE,
        [["a"]],
        {"a": "unreachable"},
        batch_of={"a": 1},
        results={"a": HostResult("a", unreachable=1, errors=["unreachable: no route"])},
        stopped=(1, ["a"]),
        max_fail_percentage=12.5,
    )
    assert report.exit_code == 1
    assert report.render_text().splitlines()[-2:] == [
        "a: unreachable: no route",
        f"Upgraded 0 of 1 hosts to {IMAGE}; batch 1/1 failed on a: rollout stopped (over --max-fail-percentage 12.5).",
    ]


# --- the blocks and how cli prints them --------------------------------------------------------


def test_problem_lines():
    results = {"a": HostResult("a", errors=["x: one", "y: two"]), "b": HostResult("b")}
    assert problem_lines(results, ["c"]) == ["a: x: one", "a: y: two", "c: not run (the play stopped before it)"]


def test_plain_text_keeps_empty_and_multi_line_blocks():
    blocks = ["", Table(("host", "n"), [("a", 1)]), "one\ntwo"]
    assert plain_text(blocks) == "\nhost  n\na     1\none\ntwo"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def lines(self) -> list[str]:
        """What the terminal shows, without its styles."""
        return [re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip() for line in self.getvalue().splitlines()]


def provision_report() -> ProvisionReport:
    return ProvisionReport(
        {"spark-01": HostResult("spark-01", ok=80, seconds=24.8)},
        jupyter={"spark-01": {"tunnel": TUNNEL, "url": URL}},
    )


def test_emit_json_is_the_reports_document():
    out = io.StringIO()
    emit(provision_report(), out, as_json=True)
    assert json.loads(out.getvalue()) == provision_report().to_json()
    assert out.getvalue().startswith('{\n  "command": "provision",')


def test_emit_in_a_pipe_is_the_plain_text():
    out = io.StringIO()
    emit(provision_report(), out, as_json=False)
    assert out.getvalue() == provision_report().render_text() + "\n"
    assert "\x1b" not in out.getvalue()


def test_emit_on_a_terminal_draws_tables_that_fit(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    out = Terminal()
    emit(provision_report(), out, as_json=False)
    lines = out.lines()
    assert lines[0].split() == ["host", "ok", "changed", "failed", "unreachable", "time"]
    assert set(lines[1]) == {"─"}
    assert f"spark-01   {TUNNEL}   {URL}" in lines
    assert lines[-1] == "Converged 1 of 1 hosts."


def test_emit_on_a_narrow_terminal_prints_a_wide_table_plain(monkeypatch):
    """A tunnel command cut short or folded by rich could not be pasted."""
    monkeypatch.setenv("COLUMNS", "60")
    out = Terminal()
    emit(provision_report(), out, as_json=False)
    lines = out.lines()
    assert set(lines[1]) == {"─"}  # the host table fits
    assert f"spark-01  {TUNNEL}  {URL}" in lines  # the Jupyter table does not: plain, whole
