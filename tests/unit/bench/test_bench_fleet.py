"""bench/fleet.py's pure parts, on recorded output of a real run against the test bed
(sparkfleet-bench-1 at 172.18.0.6; 172.18.0.4 is another engineer's simulated Spark pulling in
the same window, which the benchmark must not count)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from benchlib import human_bytes, ratio, role_default
from fleet import (
    host_counts,
    median_run,
    module_counts,
    parse_access_line,
    parse_sizes,
    recording,
    registry_traffic,
    render_profile,
    render_table,
    run_summary,
    slim_event,
    summarize,
    task_timings,
    time_breakdown,
    venv_sizes,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BENCH_IP = "172.18.0.6"
OTHER_IP = "172.18.0.4"
# The image's blobs as the pull fetched them (config twice: probe + pull), from the log.
PULL_BLOBS = [4506, 46700757, 3230, 5712667, 983, 615181, 104, 138531920, 314659075]
PROBE_BLOBS = [4506]


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def log_lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


# --- registry access log -----------------------------------------------------------------------


def test_parse_access_line_reads_a_blob_get() -> None:
    line = next(line for line in log_lines("registry_first_converge.log") if "314659075" in line)
    record = parse_access_line(line)
    assert record is not None
    assert (record.ip, record.method, record.status, record.bytes) == (BENCH_IP, "GET", 200, 314659075)
    assert record.kind == "blob"
    assert record.client == "ansible-community.docker"


def test_parse_access_line_skips_logrus_lines_and_classifies_paths() -> None:
    lines = log_lines("registry_first_converge.log")
    assert parse_access_line(next(line for line in lines if line.startswith("time="))) is None
    records = [r for r in map(parse_access_line, lines) if r is not None]
    kinds = {(r.method, r.path.split("/")[-2] if r.path.count("/") > 2 else r.path, r.kind) for r in records}
    assert ("HEAD", "manifests", "manifest") in kinds
    assert ("GET", "/v2/", "other") in kinds
    assert parse_access_line('1.2.3.4 - - [x] "GET /v2/ HTTP/1.1" 401 - "" ""') is not None


def test_registry_traffic_counts_only_the_bench_hosts() -> None:
    traffic = registry_traffic(log_lines("registry_first_converge.log"), [BENCH_IP])
    assert traffic["blob_bytes"] == sum(PULL_BLOBS) + sum(PROBE_BLOBS)
    assert traffic["blob_gets"] == len(PULL_BLOBS) + len(PROBE_BLOBS)
    assert traffic["blob_bytes_by_client"] == {
        "ansible-community.docker": sum(PULL_BLOBS),
        "ansible-httpget": sum(PROBE_BLOBS),
    }
    assert traffic["manifest_bytes"] == 2 * 1998  # the HEADs (probe, pull) send no body; 2 GETs do
    assert traffic["requests"] == 18
    other = registry_traffic(log_lines("registry_first_converge.log"), [OTHER_IP])
    assert other["blob_bytes"] == 4506 and other["requests"] == 4
    assert registry_traffic(log_lines("registry_first_converge.log"), [])["requests"] == 0


def test_registry_traffic_of_a_no_op_is_the_digest_probe() -> None:
    traffic = registry_traffic(log_lines("registry_noop.log"), [BENCH_IP])
    assert traffic["blob_bytes"] == 4506  # the image config blob, read by the digest probe
    assert traffic["blob_bytes_by_client"] == {"ansible-httpget": 4506}
    assert traffic["requests"] == 4


# --- runner events -----------------------------------------------------------------------------


def test_host_counts_from_stats() -> None:
    first, noop = recorded("events_first_converge_n1.json"), recorded("events_noop_n1.json")
    assert host_counts(first["stats"]) == {
        "sparkfleet-bench-1": {"ok": 139, "changed": 27, "skipped": 10, "failed": 0, "unreachable": 0}
    }
    assert host_counts(noop["stats"])["sparkfleet-bench-1"]["changed"] == 0
    assert host_counts({"ok": {}, "dark": {"x": 1}})["x"] == {
        "ok": 0,
        "changed": 0,
        "skipped": 0,
        "failed": 0,
        "unreachable": 1,
    }


def test_module_counts_of_a_first_converge_and_a_no_op() -> None:
    first = module_counts(recorded("events_first_converge_n1.json")["events"])
    assert first["venv_builds"] == 1
    assert first["venv_builds_by_action"] == {"create": 1}
    assert first["wheel_builds"] == 1
    assert first["wheel_build_hosts"] == ["sparkfleet-bench-1"]
    assert first["wheel_keys"] == ["51d2662e76af8b9f"]
    noop = module_counts(recorded("events_noop_n1.json")["events"])
    assert (noop["venv_builds"], noop["wheel_builds"], noop["wheel_keys"]) == (0, 0, ["51d2662e76af8b9f"])


def test_module_counts_of_a_two_host_first_converge_build_one_wheel() -> None:
    first = recorded("events_first_converge_n2.json")
    counts = module_counts(first["events"])
    assert counts["wheel_keys"] == ["51d2662e76af8b9f"]
    assert counts["wheel_builds"] == 1 and counts["wheel_build_hosts"] == ["sparkfleet-bench-1"]
    assert counts["venv_build_hosts"] == {"sparkfleet-bench-1": "create", "sparkfleet-bench-2": "create"}
    pull = next(t for t in task_timings(first["events"]) if t.task.startswith("Pull "))
    assert pull.hosts == 2 and pull.host_seconds > pull.span_s  # the two pulls overlapped
    summary = run_summary(first["events"], first["stats"], first["started"], first["ended"])
    assert set(summary["hosts"]) == {"sparkfleet-bench-1", "sparkfleet-bench-2"}
    assert summary["profile"]["wall_s"] == pytest.approx(216.8, abs=0.1)


def test_recording_keeps_results_and_the_first_event() -> None:
    events = [
        {"event": "playbook_on_start", "created": "2026-01-01T00:00:00+00:00", "event_data": {}},
        {"event": "playbook_on_task_start", "event_data": {"task": "t"}},
        {"event": "runner_on_start", "event_data": {"host": "a"}},
        _result("a", "sparkfleet.spark.container_wheel", {"changed": True, "build_log": ["..."]}),
    ]
    rec = recording(events, {"ok": {"a": 1}}, 1.0, 2.0)
    assert [e["event"] for e in rec["events"]] == ["playbook_on_start", "runner_on_ok"]
    assert rec["events"][1]["event_data"]["res"] == {"changed": True}
    assert (rec["started"], rec["ended"], rec["stats"]) == (1.0, 2.0, {"ok": {"a": 1}})


def _result(host: str, action: str, res: dict[str, Any]) -> dict[str, Any]:
    return {"event": "runner_on_ok", "event_data": {"host": host, "resolved_action": action, "res": res}}


def test_module_counts_of_a_fleet_building_one_wheel() -> None:
    events = [
        _result("a", "ansible.builtin.set_fact", {"ansible_facts": {"workspace_wheel_key": "k1"}}),
        _result("b", "ansible.builtin.set_fact", {"ansible_facts": {"workspace_wheel_key": "k1"}}),
        _result("a", "sparkfleet.spark.container_wheel", {"changed": True, "wheel": "/w.whl"}),
        _result("b", "sparkfleet.spark.container_wheel", {"changed": False}),
        _result("a", "sparkfleet.spark.container_venv", {"changed": True, "action": "create"}),
        _result("b", "sparkfleet.spark.container_venv", {"changed": True, "action": "recreate"}),
        # check mode reports the pending action with changed; `none` is no build
        _result("c", "sparkfleet.spark.container_venv", {"changed": False, "action": "none"}),
        {"event": "runner_on_skipped", "event_data": {"host": "c", "resolved_action": "container_wheel"}},
    ]
    counts = module_counts(events)
    assert counts["wheel_builds"] == 1 and counts["wheel_keys"] == ["k1"]
    assert counts["venv_builds"] == 2
    assert counts["venv_build_hosts"] == {"a": "create", "b": "recreate"}


def test_task_timings_and_breakdown_of_a_no_op() -> None:
    noop = recorded("events_noop_n1.json")
    timings = task_timings(noop["events"])
    assert len(timings) == 140
    slowest = timings[0]
    assert slowest.label.startswith("jupyter : Create the Hugging Face cache")
    assert slowest.span_s == pytest.approx(2.82, abs=0.01)
    assert slowest.hosts == 1
    assert all(a.span_s >= b.span_s for a, b in itertools.pairwise(timings))
    breakdown = time_breakdown(noop["events"], noop["started"], noop["ended"])
    assert breakdown["wall_s"] == pytest.approx(42.85, abs=0.01)
    assert breakdown["in_tasks_s"] == pytest.approx(40.19, abs=0.01)
    assert breakdown["startup_s"] == pytest.approx(0.75, abs=0.01)
    total = breakdown["startup_s"] + breakdown["in_tasks_s"] + breakdown["outside_tasks_s"]
    assert total == pytest.approx(breakdown["wall_s"], abs=0.01)
    assert set(breakdown["by_role_s"]) >= {"docker", "ngc_image", "nvidia_toolkit", "workspace", "jupyter"}


def test_task_timings_span_hosts_running_a_task_together() -> None:
    def ran(host: str, start: str, end: str) -> dict[str, Any]:
        data = {"host": host, "task": "T", "role": "r", "task_uuid": "u1", "start": start, "end": end}
        return {"event": "runner_on_ok", "event_data": data}

    (timing,) = task_timings(
        [
            ran("a", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:02+00:00"),
            ran("b", "2026-01-01T00:00:01+00:00", "2026-01-01T00:00:04+00:00"),
            {"event": "runner_on_start", "event_data": {"task_uuid": "u1", "host": "a"}},
        ]
    )
    assert (timing.span_s, timing.hosts, timing.host_seconds) == (4.0, 2, 5.0)


def test_slim_event_keeps_what_the_bench_reads() -> None:
    event = {
        "event": "runner_on_ok",
        "created": "2026-01-01T00:00:00+00:00",
        "stdout": "ok: [a]",
        "event_data": {
            "host": "a",
            "task": "t",
            "resolved_action": "sparkfleet.spark.container_venv",
            "res": {"changed": True, "action": "create", "stamp": {"big": 1}, "invocation": {}},
        },
    }
    slim = slim_event(event)
    assert slim["event_data"]["res"] == {"changed": True, "action": "create"}
    assert "stdout" not in slim
    assert module_counts([slim])["venv_builds"] == 1


# --- summary, table and profile ------------------------------------------------------------------


def _converge(name: str, registry: dict[str, Any], wall: float | None = None) -> dict[str, Any]:
    data = recorded(name)
    summary = run_summary(data["events"], data["stats"], data["started"], data["ended"])
    wall_s = data["ended"] - data["started"] if wall is None else wall
    return {
        **summary,
        "wall_s": wall_s,
        "ansible_maxrss_kib": 64000,
        "tree_pss_peak_kib": 150 * 1024,
        "registry": registry,
    }


def _drift(wall: float, rc: int = 0) -> dict[str, Any]:
    registry = {"blob_bytes": 4506}
    return {"wall_s": wall, "rc": rc, "maxrss_kib": 70000, "tree_pss_peak_kib": 160 * 1024, "registry": registry}


def _sizes() -> dict[int, dict[str, Any]]:
    first_registry = registry_traffic(log_lines("registry_first_converge.log"), [BENCH_IP])
    noop_registry = registry_traffic(log_lines("registry_noop.log"), [BENCH_IP])
    first = _converge("events_first_converge_n1.json", first_registry)
    noops = [_converge("events_noop_n1.json", noop_registry, wall) for wall in (40.0, 42.0, 50.0)]
    one = summarize(first, noops, [_drift(30.0), _drift(31.0), _drift(29.0)], {"cold_s": 20.0, "warm_s": 8.0})
    four = dict(one, first_s=one["first_s"] * 2, noop_s=84.0, drift_s=45.0, venv_cold_s=None, venv_warm_s=None)
    return {1: one, 4: four}


def test_summarize_takes_medians_and_host_ranges() -> None:
    one = _sizes()[1]
    assert one["noop_s"] == 42.0 and one["drift_s"] == 30.0
    assert one["noop_ok_per_host"] == [127, 127]
    assert one["noop_changed_per_host"] == [0, 0]
    assert one["first_venv_builds"] == 1 and one["noop_venv_builds"] == 0
    assert (one["first_wheel_builds"], one["first_wheel_keys"], one["noop_wheel_builds"]) == (1, 1, 0)
    assert one["noop_blob_bytes"] == 4506
    assert one["drift_exit_codes"] == [0]


def test_render_table_prints_ratios_to_the_one_host_fleet() -> None:
    table = render_table(_sizes(), runs=3).splitlines()
    assert table[0].split() == ["metric", "N=1", "N=4"]
    noop = next(line for line in table if line.startswith("no-op converge"))
    assert noop.split()[-3:] == ["42.0", "84.0", "(x2.00)"]
    drift = next(line for line in table if line.startswith("sparkfleet drift"))
    assert "median of 3" in drift and drift.split()[-3:] == ["30.0", "45.0", "(x1.50)"]
    pulled = next(line for line in table if line.startswith("image bytes pulled, first"))
    assert "482.8 MiB" in pulled
    wheels = next(line for line in table if line.startswith("xformers wheels built, first"))
    assert wheels.split()[-4:] == ["1", "(1)", "1", "(1)"]
    venv = next(line for line in table if line.startswith("venv recreate, cold"))
    assert venv.split()[-2:] == ["20.0", "-"]
    # columns are aligned: every row is as wide as the header row, or narrower by a trailing blank
    assert max(len(line) for line in table) == len(table[0])


def test_render_table_without_a_one_host_fleet_compares_to_the_smallest() -> None:
    sizes = _sizes()
    table = render_table({2: sizes[1], 4: sizes[4]}, runs=3)
    assert "84.0 (x2.00)" in table


def test_render_profile_lists_the_slowest_tasks() -> None:
    noop = recorded("events_noop_n1.json")
    run = {"profile": time_breakdown(noop["events"], noop["started"], noop["ended"])}
    text = render_profile(1, run).splitlines()
    assert text[0] == "No-op converge, N=1: 42.9 s"
    assert "140 tasks" in text[2]
    tasks = [line for line in text if line.startswith("    ")]
    assert len(tasks) == 10
    assert tasks[0].split()[0] == "2.82" and tasks[0].endswith("[file]")


def test_median_run_picks_the_middle_wall_time() -> None:
    runs = [{"wall_s": 50.0, "i": 0}, {"wall_s": 40.0, "i": 1}, {"wall_s": 42.0, "i": 2}]
    assert median_run(runs)["i"] == 2
    assert median_run(runs[:2])["i"] == 1


# --- small helpers -----------------------------------------------------------------------------


def test_parse_sizes_and_venv_sizes() -> None:
    assert parse_sizes("8,1,4,4") == [1, 4, 8]
    for bad in ("", "0,1", "a"):
        with pytest.raises(Exception, match="--sizes"):
            parse_sizes(bad)
    assert venv_sizes(None, [1, 4]) == [1]
    assert venv_sizes("all", [1, 4]) == [1, 4]
    assert venv_sizes("none", [1, 4]) == []
    assert venv_sizes("4,8", [1, 4]) == [4]


def test_human_bytes_and_ratio() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(sum(PULL_BLOBS)) == "482.8 MiB"
    assert ratio(84.0, 42.0) == "x2.00"
    assert ratio(None, 1.0) == "" and ratio(1.0, 0.0) == ""


def test_the_venv_recreation_allows_what_the_workspace_role_allows() -> None:
    # The recreation runs container_venv as the role does: without the role's allow-list, the
    # venv's own Jupyter stack would fail verification as shadowing the image's.
    allowed = role_default("workspace", "workspace_image_replace_packages")
    assert "jupyterlab" in allowed and "ipykernel" in allowed
    with pytest.raises(SystemExit, match="template"):
        role_default("workspace", "workspace_image")
