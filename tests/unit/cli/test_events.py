"""Per-host results, drift verdicts and exit codes from recorded ansible-runner events."""

from __future__ import annotations

import pytest
from helpers import recorded

from sparkfleet import drift
from sparkfleet.events import host_results, not_run, problem_hosts


def results_of(name: str, hosts: tuple[str, ...] = ()):
    run = recorded(name)
    return host_results(run["events"], run["stats"], hosts), run


@pytest.mark.parametrize(
    ("scenario", "host", "ok", "changed", "failed", "unreachable", "tasks"),
    [
        (
            "drift_check",
            "a",
            3,
            3,
            0,
            0,
            ["demo : Write the demo config", "demo : Create the demo data directory", "demo : Write the demo options"],
        ),
        ("drift_check", "b", 3, 0, 0, 0, []),
        ("drift_check", "c", 0, 0, 0, 1, []),
        ("failed_check", "b", 3, 0, 1, 0, []),
        ("clean_check", "a", 3, 0, 0, 0, []),
        (
            "converge",
            "a",
            3,
            3,
            0,
            0,
            ["demo : Write the demo config", "demo : Create the demo data directory", "demo : Write the demo options"],
        ),
    ],
)
def test_host_counts_come_from_stats_and_changes_from_events(scenario, host, ok, changed, failed, unreachable, tasks):
    results, _ = results_of(scenario)
    result = results[host]
    assert (result.ok, result.changed, result.failed, result.unreachable) == (ok, changed, failed, unreachable)
    assert [c.label for c in result.changes] == tasks


@pytest.mark.parametrize(
    ("host", "task", "diff"),
    [
        ("a", "Write the demo config", ["-port = 80", "+port = 8080"]),
        ("a", "Create the demo data directory", ["-state: absent", "+state: directory"]),
        # A loop: each changed item's diff, in order.
        ("a", "Write the demo options", ["+alpha", "+beta"]),
    ],
)
def test_drift_diffs_are_short_and_name_the_line(host, task, diff):
    results, _ = results_of("drift_check")
    change = next(c for c in results[host].changes if c.task == task)
    assert change.role == "demo"
    assert change.diff == diff


def test_errors_say_why():
    results, _ = results_of("drift_check")
    assert results["c"].errors == [
        "unreachable: Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 1: Connection refused"
    ]
    failed, _ = results_of("failed_check")
    assert failed["b"].errors == ["Fail where the inventory asks to: demo failure on b"]


def test_inventory_order_and_hosts_that_never_ran():
    results, run = results_of("converge", hosts=("b", "a"))
    assert list(results) == ["b", "a"]
    assert not_run(results, run["stats"]) == ["b"]


def test_time_per_host_is_measured_from_the_events():
    results, _ = results_of("drift_check")
    assert results["a"].seconds > 0
    assert results["c"].seconds < results["a"].seconds


@pytest.mark.parametrize(
    ("scenario", "states", "code", "failed", "unreachable"),
    [
        ("drift_check", {"a": "drift", "b": "clean", "c": "unreachable"}, 1, [], ["c"]),
        ("failed_check", {"a": "drift", "b": "failed"}, 1, ["b"], []),
        ("clean_check", {"a": "clean", "b": "clean"}, 0, [], []),
        ("converge", {"a": "drift"}, 2, [], []),
    ],
)
def test_drift_verdicts_and_exit_codes(scenario, states, code, failed, unreachable):
    results, run = results_of(scenario)
    verdicts = drift.assess(results, not_run(results, run["stats"]))
    assert {v.host: v.state for v in verdicts} == states
    assert drift.exit_code(verdicts) == code
    assert problem_hosts(results) == (failed, unreachable)


def test_fix_marks_hosts_fixed_with_what_was_corrected():
    check, _ = results_of("failed_check")
    converge, _ = results_of("converge")
    assert drift.drifted_hosts(check) == ["a"]
    verdicts = drift.assess({"a": check["a"]}, fix=converge)
    assert [(v.host, v.state) for v in verdicts] == [("a", "fixed")]
    assert verdicts[0].corrected[0].task == "Write the demo config"
    assert drift.exit_code(verdicts) == 2
    assert drift.summary(verdicts) == "Fixed drift on 1 of 1 hosts (a)."


def test_fix_that_fails_is_a_failure():
    check, _ = results_of("drift_check")
    failed, _ = results_of("failed_check")
    # a drifted; pretend the converge of a failed the way b failed.
    verdicts = drift.assess({"a": check["a"]}, fix={"a": failed["b"]})
    assert verdicts[0].state == "failed"
    assert verdicts[0].errors == ["Fail where the inventory asks to: demo failure on b"]
    assert drift.exit_code(verdicts) == 1


def test_drift_text_report():
    results, run = results_of("drift_check", hosts=("a", "b", "c"))
    verdicts = drift.assess(results, not_run(results, run["stats"]))
    text = drift.render_text(verdicts)
    assert text.splitlines()[:4] == [
        "a  drift (3 tasks would change)",
        "    demo : Write the demo config",
        "      -port = 80",
        "      +port = 8080",
    ]
    assert "b  clean" in text
    assert "c  unreachable" in text
    assert drift.summary(verdicts) == "Drift on 1 of 3 hosts (a); unreachable: c."


def test_jupyter_access_from_the_jupyter_roles_last_message():
    from sparkfleet.events import jupyter_access

    msg = [
        "Jupyter Lab of /home/spark/spark-project on spark-01 (sparkfleet-jupyter-spark-project.service)",
        "tunnel: ssh -N -L 8888:127.0.0.1:8888 spark@192.0.2.11",
        "then:   http://localhost:8888/lab",
        "direct: none (bound to 127.0.0.1 only)",
        "token:  sudo cat /etc/sparkfleet/jupyter/spark-project.env on the Spark (JUPYTER_TOKEN=...)",
    ]
    events = [
        {
            "event": "runner_on_ok",
            "event_data": {"host": "spark-01", "task": "Show how to reach Jupyter", "res": {"msg": msg}},
        },
        {"event": "runner_on_ok", "event_data": {"host": "spark-02", "task": "Other", "res": {"msg": msg}}},
    ]
    assert jupyter_access(events) == {
        "spark-01": {
            "tunnel": "ssh -N -L 8888:127.0.0.1:8888 spark@192.0.2.11",
            "url": "http://localhost:8888/lab",
            "direct": "none (bound to 127.0.0.1 only)",
        }
    }
