#!/usr/bin/env python3
"""Benchmark site.yml, a no-op converge and `sparkfleet drift` on fleets of simulated Sparks.

    .venv/bin/python bench/fleet.py [--sizes 1,4,8] [--runs 3] [--profile] [--out FILE] [--keep]

For each fleet size N it starts N fresh simulated Sparks on the test bed (sparkfleet-bench-1..N,
`testbed.py spark up`), writes its own inventory (.testbed/bench/inventory/hosts.yml: the test
bed's group_vars, and a wheel cache on the control node of its own, emptied for every N so that
the first converge builds the xformers wheel as a fresh control node would) and measures:

  first converge   site.yml through sparkfleet.runner.run_playbook, once (fresh Sparks)
  no-op converge   the same again, --runs times (median)
  drift            `sparkfleet drift -i INV --json` as a user runs it, --runs times (median)
  venv recreation  bench/venv_recreate.py's measurement (cold, then warm uv cache) on
                   sparkfleet-bench-1, --runs times, for the sizes of --venv-sizes

From the runner events of each converge: tasks ok (changed included, as Ansible counts them),
changed and skipped per host; venvs built (container_venv changed, by its `action`); xformers
wheels built (container_wheel changed) against the distinct wheel keys of the run. From the
test bed registry's access log (`docker logs sparkfleet-registry`, combined log format, only
requests from the bench Sparks' addresses, inside the run's time window): blob bytes served
(image bytes pulled), by client (`UpstreamClient(...)`: ansible-community.docker is the pull,
ansible-httpget the digest probe, which reads the image's config blob on every run).

Wall time of a converge is the run_playbook call, timed inside a worker process; drift is timed
around the CLI process. Memory: each measured command is a subprocess of this script. For a
converge, `ansible_maxrss` is the worker's getrusage(RUSAGE_CHILDREN).ru_maxrss (the largest
resident set of ansible-playbook, its forks and their children: a maximum over processes, not a
sum) and `runner_maxrss` its own RUSAGE_SELF (ansible-runner holding the events); for drift,
`maxrss` is the wait4() rusage of the sparkfleet process (the largest process of its tree,
the CLI included). `tree_pss_peak` is the summed PSS of the whole tree, sampled every 0.5 s:
what the control node pays for the forks together.

The collection is measured as it stood when the benchmark started: its files (ansible.cfg,
site.yml, galaxy.yml, meta/, playbooks/, plugins/, roles/) are copied to .testbed/bench/tree/
and every run uses that copy ($SPARKFLEET_PLAYBOOK_DIR), so that edits in the working tree during
a long benchmark neither break nor skew it; --no-snapshot measures the live checkout. The git
HEAD and the files that differed from it are recorded.

Ratios are N-host / 1-host (or / the smallest size when 1 is not measured). Results go to a JSON
file (default .testbed/bench/fleet-<UTC time>.json); the bench Sparks are removed at the end
unless --keep.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from benchlib import (
    REPO,
    VENV_PYTHON,
    Measured,
    bench_env,
    human_bytes,
    measure,
    median_or_none,
    ratio,
    testbed_state,
    tool,
    venv_recreation,
)

SIM_PREFIX = "sparkfleet-bench-"
SIM_NAME = re.compile(rf"^{re.escape(SIM_PREFIX)}\d+$")
REGISTRY = "sparkfleet-registry"
TESTBED_NETWORK = "sparkfleet-testbed"
WORKER = "_converge"
VENV_BUILD_ACTIONS = ("create", "recreate", "repair")
PROFILE_KEEP = 25
SNAPSHOT_PATHS = ("ansible.cfg", "galaxy.yml", "site.yml", "meta", "playbooks", "plugins", "roles")


# --- registry access log -------------------------------------------------------------------------

# distribution 2.8 writes gorilla's combined log format on stdout, one line per request:
#   172.18.0.6 - - [25/Nov/2026:19:04:53 +0000] "GET /v2/nvidia/pytorch/blobs/sha256:… HTTP/1.1" 200 46700757
#   "" "docker/20.10.24+dfsg1 go/go1.19.8 … UpstreamClient(ansible-community.docker)"
# (the bytes are http.response.written; logrus lines with that field only come at level info).
ACCESS_LINE = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "[^"]*" "(?P<agent>[^"]*)"'
)
UPSTREAM_CLIENT = re.compile(r"UpstreamClient\(([^)]+)\)")


@dataclass(frozen=True)
class AccessRecord:
    ip: str
    method: str
    path: str
    status: int
    bytes: int
    client: str

    @property
    def kind(self) -> str:
        """blob, manifest or other, from the /v2/<name>/<kind>/<reference> path."""
        parts = self.path.split("?", 1)[0].rstrip("/").split("/")
        if len(parts) >= 4 and parts[1] == "v2" and parts[-2] in ("blobs", "manifests"):
            return parts[-2].removesuffix("s")
        return "other"


def parse_access_line(line: str) -> AccessRecord | None:
    """One access log line, or None for anything else (the registry's own logrus lines)."""
    match = ACCESS_LINE.match(line.strip())
    if not match:
        return None
    client = UPSTREAM_CLIENT.search(match["agent"])
    return AccessRecord(
        ip=match["ip"],
        method=match["method"],
        path=match["path"],
        status=int(match["status"]),
        bytes=0 if match["bytes"] == "-" else int(match["bytes"]),
        client=client.group(1) if client else (match["agent"].split(" ", 1)[0] or "-"),
    )


def registry_traffic(lines: Iterable[str], ips: Iterable[str]) -> dict[str, Any]:
    """What the registry served to IPS: blob bytes (image bytes pulled) and requests, by client."""
    wanted = set(ips)
    traffic: dict[str, Any] = {
        "blob_bytes": 0,
        "blob_gets": 0,
        "manifest_bytes": 0,
        "requests": 0,
        "blob_bytes_by_client": {},
        "requests_by_client": {},
    }
    for line in lines:
        record = parse_access_line(line)
        if record is None or record.ip not in wanted:
            continue
        traffic["requests"] += 1
        by_client = traffic["requests_by_client"]
        by_client[record.client] = by_client.get(record.client, 0) + 1
        if record.method != "GET" or record.status not in (200, 206):
            continue
        if record.kind == "blob":
            traffic["blob_bytes"] += record.bytes
            traffic["blob_gets"] += 1
            blobs = traffic["blob_bytes_by_client"]
            blobs[record.client] = blobs.get(record.client, 0) + record.bytes
        elif record.kind == "manifest":
            traffic["manifest_bytes"] += record.bytes
    return traffic


def registry_log(since: str, until: str) -> list[str]:
    """The registry's log lines (stdout and stderr) between two RFC 3339 times."""
    done = subprocess.run(
        ["docker", "logs", "--since", since, "--until", until, REGISTRY],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"[bench] docker logs {REGISTRY} failed: {done.stderr.strip()}", file=sys.stderr)
    return (done.stdout + done.stderr).splitlines()


def container_ips(names: Sequence[str]) -> dict[str, str]:
    template = f'{{{{ (index .NetworkSettings.Networks "{TESTBED_NETWORK}").IPAddress }}}}'
    return {
        name: subprocess.run(
            ["docker", "inspect", "--format", template, name], capture_output=True, text=True, check=True
        ).stdout.strip()
        for name in names
    }


# --- runner events -----------------------------------------------------------------------------


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _action(data: Mapping[str, Any]) -> str:
    return str(data.get("resolved_action") or data.get("task_action") or "")


def _is_module(data: Mapping[str, Any], name: str) -> bool:
    action = _action(data)
    return action == name or action.endswith(f".{name}")


def host_counts(stats: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Per host: ok (changed included, as Ansible counts them), changed, skipped, failed, unreachable."""
    hosts = sorted(
        {h for key in ("ok", "changed", "skipped", "failures", "dark", "processed") for h in stats.get(key) or {}}
    )
    return {
        host: {
            "ok": int((stats.get("ok") or {}).get(host, 0)),
            "changed": int((stats.get("changed") or {}).get(host, 0)),
            "skipped": int((stats.get("skipped") or {}).get(host, 0)),
            "failed": int((stats.get("failures") or {}).get(host, 0)),
            "unreachable": int((stats.get("dark") or {}).get(host, 0)),
        }
        for host in hosts
    }


def module_counts(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Venvs built and xformers wheels built, from the container_venv / container_wheel results,
    with the distinct wheel keys the hosts named (one build each is the ideal)."""
    venv_builds: Counter[str] = Counter()
    venv_hosts: dict[str, str] = {}
    wheel_hosts: list[str] = []
    keys: set[str] = set()
    for event in events:
        if event.get("event") != "runner_on_ok":
            continue
        data = event.get("event_data") or {}
        res = data.get("res") or {}
        host = str(data.get("host") or "")
        key = (res.get("ansible_facts") or {}).get("workspace_wheel_key")
        if key:
            keys.add(str(key).strip())
        if _is_module(data, "container_venv") and res.get("changed"):
            action = str(res.get("action") or "")
            if action in VENV_BUILD_ACTIONS:
                venv_builds[action] += 1
                venv_hosts[host] = action
        elif _is_module(data, "container_wheel") and res.get("changed"):
            wheel_hosts.append(host)
    return {
        "venv_builds": sum(venv_builds.values()),
        "venv_builds_by_action": dict(venv_builds),
        "venv_build_hosts": venv_hosts,
        "wheel_builds": len(wheel_hosts),
        "wheel_build_hosts": wheel_hosts,
        "wheel_keys": sorted(keys),
    }


def changed_tasks(events: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Per host, the tasks that reported a change ("role : task")."""
    changed: dict[str, list[str]] = {}
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and (data.get("res") or {}).get("changed"):
            role, task = str(data.get("role") or ""), str(data.get("task") or "")
            changed.setdefault(str(data.get("host")), []).append(f"{role} : {task}" if role else task)
    return changed


@dataclass
class TaskTiming:
    """One task of a run: from the first host's start to the last host's end (hosts run it together)."""

    role: str
    task: str
    action: str
    path: str
    span_s: float
    hosts: int
    host_seconds: float

    @property
    def label(self) -> str:
        return f"{self.role} : {self.task}" if self.role else self.task


def task_timings(events: Iterable[Mapping[str, Any]]) -> list[TaskTiming]:
    """Every task that ran on a host, slowest first, from the start/end of the runner_on_* results."""
    spans: dict[str, TaskTiming] = {}
    bounds: dict[str, tuple[float, float]] = {}
    for event in events:
        kind = str(event.get("event") or "")
        if not kind.startswith("runner_on_") or kind == "runner_on_start":
            continue
        data = event.get("event_data") or {}
        start, end = _time(data.get("start")), _time(data.get("end"))
        uuid = str(data.get("task_uuid") or "")
        if start is None or end is None or not uuid:
            continue
        if uuid not in spans:
            spans[uuid] = TaskTiming(
                role=str(data.get("role") or ""),
                task=str(data.get("task") or ""),
                action=_action(data),
                path=str(data.get("task_path") or ""),
                span_s=0.0,
                hosts=0,
                host_seconds=0.0,
            )
            bounds[uuid] = (start, end)
        low, high = bounds[uuid]
        bounds[uuid] = (min(low, start), max(high, end))
        timing = spans[uuid]
        timing.hosts += 1
        timing.host_seconds += end - start
        timing.span_s = bounds[uuid][1] - bounds[uuid][0]
    return sorted(spans.values(), key=lambda t: t.span_s, reverse=True)


def time_breakdown(events: Sequence[Mapping[str, Any]], started: float, ended: float) -> dict[str, Any]:
    """Where a run's wall time went: start-up before the first event, task spans (by role and by
    module), the rest between and after tasks."""
    timings = task_timings(events)
    created = [t for t in (_time(e.get("created")) for e in events) if t is not None]
    first_event = min(created) if created else started
    in_tasks = sum(t.span_s for t in timings)
    by_role: dict[str, float] = {}
    by_action: dict[str, float] = {}
    for timing in timings:
        by_role[timing.role or "(play)"] = by_role.get(timing.role or "(play)", 0.0) + timing.span_s
        by_action[timing.action] = by_action.get(timing.action, 0.0) + timing.span_s
    wall = ended - started
    return {
        "wall_s": round(wall, 3),
        "startup_s": round(max(0.0, first_event - started), 3),
        "tasks": len(timings),
        "in_tasks_s": round(in_tasks, 3),
        "median_task_s": round(statistics.median([t.span_s for t in timings]), 3) if timings else 0.0,
        "outside_tasks_s": round(max(0.0, wall - max(0.0, first_event - started) - in_tasks), 3),
        "by_role_s": {k: round(v, 2) for k, v in sorted(by_role.items(), key=lambda kv: -kv[1])},
        "by_action_s": {k: round(v, 2) for k, v in sorted(by_action.items(), key=lambda kv: -kv[1])},
        "slowest": [{**asdict(t), "span_s": round(t.span_s, 3)} for t in timings[:PROFILE_KEEP]],
    }


def slim_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of an event this benchmark reads (for --events-dir and test fixtures)."""
    data = event.get("event_data") or {}
    res = data.get("res") or {}
    keep_res = {k: res[k] for k in ("changed", "action", "actions", "failed", "skipped") if k in res}
    key = (res.get("ansible_facts") or {}).get("workspace_wheel_key")
    if key:
        keep_res["ansible_facts"] = {"workspace_wheel_key": key}
    keep_data = {
        k: data[k]
        for k in ("host", "task", "role", "task_uuid", "task_action", "resolved_action", "task_path", "start", "end")
        if k in data
    }
    if keep_res:
        keep_data["res"] = keep_res
    return {"event": event.get("event"), "created": event.get("created"), "event_data": keep_data}


def recording(
    events: Iterable[Mapping[str, Any]], stats: Mapping[str, Any], started: float, ended: float
) -> dict[str, Any]:
    """A converge as --events-dir saves it (and tests/unit/bench/fixtures hold it): the run's
    bounds, its stats and the slimmed events this benchmark reads (results and the first event)."""
    kept = [
        slim_event(e)
        for i, e in enumerate(events)
        if i == 0 or (str(e.get("event", "")).startswith("runner_on_") and e.get("event") != "runner_on_start")
    ]
    return {"started": started, "ended": ended, "stats": dict(stats), "events": kept}


def run_summary(
    events: Sequence[Mapping[str, Any]], stats: Mapping[str, Mapping[str, int]], started: float, ended: float
) -> dict[str, Any]:
    """Everything the benchmark keeps of one converge."""
    return {
        "hosts": host_counts(stats),
        "changed_tasks": changed_tasks(events),
        **module_counts(events),
        "profile": time_breakdown(events, started, ended),
    }


# --- the converge worker (a subprocess, so that its rusage is the run's own) ---------------------


def worker(argv: Sequence[str]) -> None:
    """fleet.py _converge INVENTORY OUT_JSON [EVENTS_JSON]: run site.yml once, write the summary."""
    import resource

    from sparkfleet.runner import find_project, run_playbook

    inventory, out = argv[0], Path(argv[1])
    project = find_project()
    started = time.time()
    outcome = run_playbook(project, project.site_playbook, [inventory])
    ended = time.time()
    summary = {
        "status": outcome.status,
        "rc": outcome.rc,
        "wall_s": ended - started,
        "started": started,
        "ansible_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "runner_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "stats": outcome.stats,
        **run_summary(outcome.events, outcome.stats, started, ended),
    }
    if outcome.rc != 0 or outcome.status != "successful":
        summary["error"] = outcome.fatal_message() if not outcome.stats.get("processed") else "a host failed"
        summary["failures"] = [
            f"{(e.get('event_data') or {}).get('host')}: {(e.get('event_data') or {}).get('task')}: "
            f"{str(((e.get('event_data') or {}).get('res') or {}).get('msg', ''))[:300]}"
            for e in outcome.events
            if e.get("event") in ("runner_on_failed", "runner_on_unreachable")
            and not (e.get("event_data") or {}).get("ignore_errors")
        ]
    out.write_text(json.dumps(summary, indent=1) + "\n")
    if len(argv) > 2:
        Path(argv[2]).write_text(json.dumps(recording(outcome.events, outcome.stats, started, ended)) + "\n")


# --- the test bed --------------------------------------------------------------------------------


def load_testbed() -> ModuleType:
    """tests/testbed/testbed.py as a module (its STATE honours $SPARKFLEET_TESTBED_STATE)."""
    os.environ.setdefault("SPARKFLEET_TESTBED_STATE", str(testbed_state()))
    path = str(REPO / "tests" / "testbed")
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module("testbed")


def existing_sims() -> list[str]:
    names = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name={SIM_PREFIX}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(n for n in names if SIM_NAME.match(n))


def write_inventory(testbed: ModuleType, names: Sequence[str], directory: Path, wheel_cache: Path) -> Path:
    """testbed.py's `inventory` (community.docker connection, the test bed's group_vars), written
    to a file of the benchmark's own, with a control-node wheel cache of its own."""
    directory.mkdir(parents=True, exist_ok=True)
    group_vars = directory / "group_vars"
    if not group_vars.exists():
        group_vars.symlink_to(testbed.HERE / "inventory" / "group_vars")
    hosts = {
        name: {
            "ansible_connection": "community.docker.docker",
            "sparkfleet_testbed_state": str(testbed.STATE),
            "workspace_wheel_controller_cache": str(wheel_cache),
        }
        for name in names
    }
    path = directory / "hosts.yml"
    path.write_text(json.dumps({"sparks": {"hosts": hosts}}, indent=2) + "\n")
    return path


def snapshot_tree(dest: Path) -> dict[str, Any]:
    """Copy the collection's files to DEST (a checkout-shaped project find_project accepts)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in SNAPSHOT_PATHS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            shutil.copy2(source, dest / name)
    link = dest / ".collections" / "ansible_collections" / "sparkfleet" / "spark"
    link.parent.mkdir(parents=True)
    link.symlink_to(Path("..") / ".." / "..")

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "path": str(dest),
        "git_head": git("rev-parse", "HEAD"),
        "modified": git("status", "--porcelain", "--", *SNAPSHOT_PATHS).splitlines(),
    }


# --- the measurements ----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def converge(inventory: Path, ips: Sequence[str], events_file: Path | None) -> dict[str, Any]:
    out = inventory.parent / "converge.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), WORKER, str(inventory), str(out)]
    if events_file is not None:
        argv.append(str(events_file))
    measured = measure(argv, bench_env())
    if not out.is_file():
        sys.exit(f"[bench] the converge worker failed (rc {measured.rc}):\n{measured.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    result.update(_process_figures(measured))
    result["registry"] = registry_traffic(registry_log(measured.since, measured.until), ips)
    if result.get("error"):
        failures = "\n".join(result.get("failures") or [])
        sys.exit(f"[bench] site.yml failed: {result['error']}\n{failures}")
    return result


def _process_figures(measured: Measured) -> dict[str, Any]:
    return {
        "process_wall_s": round(measured.wall_s, 3),
        "maxrss_kib": measured.maxrss_kib,
        "tree_pss_peak_kib": measured.tree_pss_peak_kib,
        "tree_processes_peak": measured.tree_processes_peak,
    }


def drift(inventory: Path, ips: Sequence[str], history: Path) -> dict[str, Any]:
    argv = [tool("sparkfleet"), "drift", "-i", str(inventory), "--json"]
    measured = measure(argv, bench_env(SPARKFLEET_DRIFT_HISTORY=str(history)))
    if measured.rc not in (0, 2):
        sys.exit(f"[bench] sparkfleet drift exited {measured.rc}:\n{measured.stdout[-2000:]}{measured.stderr[-2000:]}")
    try:
        report = json.loads(measured.stdout)
    except ValueError:
        report = {}
    states = {str(h.get("host")): str(h.get("state")) for h in report.get("hosts") or []}
    return {
        "wall_s": round(measured.wall_s, 3),
        "rc": measured.rc,
        "host_states": states,
        "drifted": sorted(h for h, s in states.items() if s != "clean"),
        **_process_figures(measured),
        "registry": registry_traffic(registry_log(measured.since, measured.until), ips),
    }


def bench_size(
    testbed: ModuleType, n: int, args: argparse.Namespace, work: Path, root: Path, with_venv: bool
) -> dict[str, Any]:
    names = [f"{SIM_PREFIX}{i}" for i in range(1, n + 1)]
    old = existing_sims()
    if old:
        testbed.spark_down(old)
    started = time.monotonic()
    testbed.spark_up(names)
    sims_up = time.monotonic() - started
    wheel_cache = work / "wheels"
    shutil.rmtree(wheel_cache, ignore_errors=True)
    inventory = write_inventory(testbed, names, work / "inventory", wheel_cache)
    ips = list(container_ips(names).values())
    events_dir: Path | None = Path(args.events_dir) if args.events_dir else None
    if events_dir:
        events_dir.mkdir(parents=True, exist_ok=True)

    def events_file(label: str) -> Path | None:
        return events_dir / f"n{n}-{label}.json" if events_dir else None

    log(f"N={n}: first converge of {', '.join(names)}")
    first = converge(inventory, ips, events_file("first"))
    log(f"N={n}: first converge {first['wall_s']:.1f} s")
    noop = []
    for run in range(1, args.runs + 1):
        noop.append(converge(inventory, ips, events_file(f"noop{run}")))
        log(f"N={n}: no-op converge {run}/{args.runs} {noop[-1]['wall_s']:.1f} s")
    drifts = []
    for run in range(1, args.runs + 1):
        drifts.append(drift(inventory, ips, work / "drift-history.jsonl"))
        log(f"N={n}: drift {run}/{args.runs} {drifts[-1]['wall_s']:.1f} s (exit {drifts[-1]['rc']})")
    venv = None
    if with_venv:
        log(f"N={n}: venv recreation on {names[0]} (cold, then warm uv cache) x{args.runs}")
        venv = venv_recreation(str(inventory), names[0], args.runs, cwd=root)
    return {
        "n": n,
        "hosts": names,
        "sims_up_s": round(sims_up, 1),
        "first": first,
        "noop": noop,
        "drift": drifts,
        "venv_recreation": venv,
        "summary": summarize(first, noop, drifts, venv),
    }


# --- summary and table ---------------------------------------------------------------------------


def _median(values: Iterable[float]) -> float | None:
    return median_or_none([float(v) for v in values])


def _min_max(values: Iterable[int]) -> list[int] | None:
    seen = list(values)
    return [min(seen), max(seen)] if seen else None


def summarize(
    first: Mapping[str, Any],
    noop: Sequence[Mapping[str, Any]],
    drifts: Sequence[Mapping[str, Any]],
    venv: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The figures of one fleet size: medians over runs, min/max over hosts and runs."""
    noop_hosts = [counts for run in noop for counts in run["hosts"].values()]
    return {
        "first_s": first["wall_s"],
        "noop_s": _median(r["wall_s"] for r in noop),
        "drift_s": _median(r["wall_s"] for r in drifts),
        "noop_ok_per_host": _min_max(c["ok"] for c in noop_hosts),
        "noop_changed_per_host": _min_max(c["changed"] for c in noop_hosts),
        "noop_skipped_per_host": _min_max(c["skipped"] for c in noop_hosts),
        "first_blob_bytes": first["registry"]["blob_bytes"],
        "noop_blob_bytes": _median(r["registry"]["blob_bytes"] for r in noop),
        "noop_registry_requests": _median(r["registry"]["requests"] for r in noop),
        "drift_blob_bytes": _median(r["registry"]["blob_bytes"] for r in drifts),
        "first_venv_builds": first["venv_builds"],
        "noop_venv_builds": max((r["venv_builds"] for r in noop), default=None),
        "first_wheel_builds": first["wheel_builds"],
        "first_wheel_keys": len(first["wheel_keys"]),
        "noop_wheel_builds": max((r["wheel_builds"] for r in noop), default=None),
        "drift_exit_codes": sorted({r["rc"] for r in drifts}),
        "first_ansible_maxrss_kib": first["ansible_maxrss_kib"],
        "noop_ansible_maxrss_kib": _median(r["ansible_maxrss_kib"] for r in noop),
        "drift_maxrss_kib": _median(r["maxrss_kib"] for r in drifts),
        "first_tree_pss_kib": first["tree_pss_peak_kib"],
        "noop_tree_pss_kib": _median(r["tree_pss_peak_kib"] for r in noop),
        "drift_tree_pss_kib": _median(r["tree_pss_peak_kib"] for r in drifts),
        "venv_cold_s": venv["cold_s"] if venv else None,
        "venv_warm_s": venv["warm_s"] if venv else None,
    }


def _seconds(value: float | None, base: float | None, show_ratio: bool) -> str:
    if value is None:
        return "-"
    text = f"{value:.1f}"
    return f"{text} ({ratio(value, base)})" if show_ratio and ratio(value, base) else text


def _range(pair: Sequence[int] | None) -> str:
    if not pair:
        return "-"
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}-{pair[1]}"


def _mib(kib: float | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f}"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render_table(summaries: Mapping[int, Mapping[str, Any]], runs: int) -> str:
    """Metrics as rows, fleet sizes as columns; wall times with their ratio to the base size."""
    sizes = sorted(summaries)
    base_n = 1 if 1 in summaries else sizes[0]
    base = summaries[base_n]

    def seconds(key: str) -> list[str]:
        return [_seconds(summaries[n][key], base[key], n != base_n) for n in sizes]

    def each(render: Any, key: str) -> list[str]:
        return [render(summaries[n][key]) for n in sizes]

    med = f"median of {runs}"
    rows: list[tuple[str, list[str]]] = [
        ("first converge, s", seconds("first_s")),
        (f"no-op converge, s ({med})", seconds("noop_s")),
        (f"sparkfleet drift, s ({med})", seconds("drift_s")),
        ("no-op tasks ok/host (changed incl.)", each(_range, "noop_ok_per_host")),
        ("no-op tasks changed/host", each(_range, "noop_changed_per_host")),
        ("no-op tasks skipped/host", each(_range, "noop_skipped_per_host")),
        ("image bytes pulled, first", each(lambda v: human_bytes(v), "first_blob_bytes")),
        ("image bytes pulled, no-op", each(lambda v: "-" if v is None else human_bytes(v), "noop_blob_bytes")),
        ("registry requests, no-op", each(_count, "noop_registry_requests")),
        ("venvs built, first", each(_count, "first_venv_builds")),
        ("venvs built, no-op", each(_count, "noop_venv_builds")),
        (
            "xformers wheels built, first (keys)",
            [f"{summaries[n]['first_wheel_builds']} ({summaries[n]['first_wheel_keys']})" for n in sizes],
        ),
        ("xformers wheels built, no-op", each(_count, "noop_wheel_builds")),
        ("drift exit codes", [",".join(str(c) for c in summaries[n]["drift_exit_codes"]) or "-" for n in sizes]),
        ("ansible max RSS MiB, first", each(_mib, "first_ansible_maxrss_kib")),
        ("ansible max RSS MiB, no-op", each(_mib, "noop_ansible_maxrss_kib")),
        ("drift max RSS MiB", each(_mib, "drift_maxrss_kib")),
        ("control tree PSS peak MiB, first", each(_mib, "first_tree_pss_kib")),
        ("control tree PSS peak MiB, no-op", each(_mib, "noop_tree_pss_kib")),
        ("control tree PSS peak MiB, drift", each(_mib, "drift_tree_pss_kib")),
        ("venv recreate, cold uv cache, s", [_seconds(summaries[n]["venv_cold_s"], None, False) for n in sizes]),
        ("venv recreate, warm uv cache, s", [_seconds(summaries[n]["venv_warm_s"], None, False) for n in sizes]),
    ]
    headers = ["metric", *[f"N={n}" for n in sizes]]
    cells = [headers, *[[label, *values] for label, values in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0]), *[cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def render_profile(n: int, run: Mapping[str, Any], top: int = 10) -> str:
    """Where the time of a no-op converge went, and its slowest tasks."""
    prof = run["profile"]
    lines = [
        f"No-op converge, N={n}: {prof['wall_s']:.1f} s",
        f"  start-up until the first event   {prof['startup_s']:6.1f} s",
        f"  {prof['tasks']:>3} tasks, summed spans         {prof['in_tasks_s']:6.1f} s"
        f"  (median task {prof['median_task_s']:.2f} s)",
        f"  between and after tasks          {prof['outside_tasks_s']:6.1f} s",
        "  by role:   " + ", ".join(f"{k} {v:.1f}" for k, v in list(prof["by_role_s"].items())[:8]),
        "  by module: "
        + ", ".join(f"{k.rsplit('.', 1)[-1]} {v:.1f}" for k, v in list(prof["by_action_s"].items())[:8]),
        f"  slowest {top} tasks (span over hosts, s):",
    ]
    for task in prof["slowest"][:top]:
        label = f"{task['role']} : {task['task']}" if task["role"] else task["task"]
        lines.append(f"    {task['span_s']:6.2f}  {label}  [{task['action'].rsplit('.', 1)[-1]}]")
    return "\n".join(lines)


def median_run(runs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The run whose wall time is the (lower) median."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    return ordered[(len(ordered) - 1) // 2]


# --- command line --------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes {text!r}: give fleet sizes such as 1,4,8") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"--sizes {text!r}: give fleet sizes such as 1,4,8")
    return sizes


def venv_sizes(text: str | None, sizes: Sequence[int]) -> list[int]:
    """--venv-sizes: a list, 'all', 'none'; default the smallest size."""
    if text is None:
        return [sizes[0]]
    if text == "all":
        return list(sizes)
    if text == "none":
        return []
    return [n for n in parse_sizes(text) if n in sizes]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/fleet.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=parse_sizes, default=[1, 4, 8], help="fleet sizes (default 1,4,8)")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of the no-op, drift and venv measurements (default 3)"
    )
    parser.add_argument("--out", help="JSON results file (default .testbed/bench/fleet-<UTC time>.json)")
    parser.add_argument("--profile", action="store_true", help="print where the no-op converge's time goes")
    parser.add_argument("--keep", action="store_true", help="keep the last fleet's simulated Sparks")
    parser.add_argument(
        "--venv-sizes", metavar="LIST|all|none", help="sizes that time the venv recreation (default: the smallest)"
    )
    parser.add_argument("--events-dir", metavar="DIR", help="also save each converge's (slimmed) runner events here")
    parser.add_argument("--no-up", action="store_true", help="skip `testbed.py up` (the test bed is already up)")
    parser.add_argument(
        "--no-snapshot", action="store_true", help="run the live checkout's roles, not a copy taken at the start"
    )
    return parser


def ensure_venv_python() -> None:
    """Re-run under the dev venv when this interpreter lacks the sparkfleet package."""
    try:
        import ansible_runner  # noqa: F401

        import sparkfleet  # noqa: F401
    except ImportError:
        if VENV_PYTHON.is_file() and Path(sys.executable).resolve() != VENV_PYTHON.resolve():
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
        sys.exit(f"[bench] the sparkfleet package is not importable: run with {VENV_PYTHON} (make provision)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == WORKER:
        worker(sys.argv[2:])
        return
    args = build_parser().parse_args()
    if args.runs < 1:
        sys.exit("--runs must be at least 1")
    ensure_venv_python()
    work = testbed_state() / "bench"
    work.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    out = Path(args.out) if args.out else work / f"fleet-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    if not args.no_up:
        log("testbed.py up")
        subprocess.run(
            [sys.executable, str(REPO / "tests" / "testbed" / "testbed.py"), "up"], check=True, env=bench_env()
        )
    testbed = load_testbed()
    root = REPO
    tree: dict[str, Any] = {"path": str(REPO), "snapshot": False}
    if not args.no_snapshot:
        tree = {**snapshot_tree(work / "tree"), "snapshot": True}
        root = Path(tree["path"])
        # find_project (the converge worker, the sparkfleet CLI) takes the playbooks from here.
        os.environ["SPARKFLEET_PLAYBOOK_DIR"] = str(root)
        log(
            f"measuring a copy of the collection in {root} (git HEAD {tree['git_head'][:12]}, "
            f"{len(tree['modified'])} files changed from it)"
        )
    with_venv = venv_sizes(args.venv_sizes, args.sizes)
    results: dict[str, Any] = {
        "date": now.isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
        "args": {k: v for k, v in vars(args).items()},
        "tree": tree,
        "sizes": {},
    }
    summaries: dict[int, dict[str, Any]] = {}
    try:
        for n in args.sizes:
            size = bench_size(testbed, n, args, work, root, n in with_venv)
            results["sizes"][str(n)] = size
            summaries[n] = size["summary"]
            results["machine"]["loadavg_end"] = os.getloadavg()
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1) + "\n")
    finally:
        if not args.keep:
            leftovers = existing_sims()
            if leftovers:
                testbed.spark_down(leftovers)
                log(f"removed {', '.join(leftovers)}")
    print(render_table(summaries, args.runs))
    if args.profile:
        for n in args.sizes:
            print()
            print(render_profile(n, median_run(results["sizes"][str(n)]["noop"])))
    print(f"\nResults: {out}")


if __name__ == "__main__":
    main()
