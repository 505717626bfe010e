"""Helpers shared by the benchmarks in bench/: ad-hoc module runs, the venv recreation timing,
measured subprocesses (wall time, rusage, sampled memory of the process tree) and formatting.

Standard library only, so that `python3 bench/<name>.py --help` works outside the dev venv.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
# The collection's shared names (plugins/module_utils/_names.py, standard library only), through
# the checkout's .collections link, as the unit tests import them.
if str(REPO / ".collections") not in sys.path:
    sys.path.insert(0, str(REPO / ".collections"))
from ansible_collections.sparkfleet.spark.plugins.module_utils import _names  # noqa: E402

VENV_PYTHON = REPO / ".venv" / "bin" / "python"
TESTBED_STATE_ENV = "SPARKFLEET_TESTBED_STATE"


# --- tools and environment ---------------------------------------------------------------------


def tool(name: str) -> str:
    """An executable from this interpreter's environment (the dev venv), else from PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: run the benchmark with {VENV_PYTHON}")
    return found


def testbed_state() -> Path:
    """Where the test bed keeps its state, as testbed.py computes it."""
    return Path(os.environ.get(TESTBED_STATE_ENV, REPO / ".testbed")).resolve()


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every measured command: the venv's tools first on PATH (ansible-runner
    looks up ansible-playbook there), the test bed's state for its group_vars."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env[TESTBED_STATE_ENV] = str(testbed_state())
    env.update(extra)
    return env


def utc_stamp() -> str:
    """Now, as an RFC 3339 UTC time with microseconds (what `docker logs --since` takes)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- ad-hoc module runs and the venv recreation ------------------------------------------------


def ansible(inventory: str, host: str, module: str, args: str, cwd: Path = REPO) -> dict[str, Any]:
    """One ad-hoc module run (the collection of CWD's ansible.cfg); its result for HOST, from the JSON callback."""
    env = bench_env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    done = subprocess.run(
        [tool("ansible"), "-i", inventory, host, "-m", module, "-a", args],
        cwd=cwd,
        text=True,
        capture_output=True,
        check=False,
        env=env,
    )
    try:
        result: dict[str, Any] = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"][host]
    except (ValueError, KeyError, IndexError):
        sys.exit(f"ansible {module} on {host} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return result


def venv_inputs(inventory: str, host: str, project: str, ca_bundle: str, cwd: Path = REPO) -> dict[str, str]:
    """What container_venv needs to rebuild HOST's live venv as the workspace role would."""
    shell = "ansible.builtin.shell"
    stamp = json.loads(ansible(inventory, host, shell, f"cat {_names.stamp_path(project)}", cwd)["stdout"])
    wheels = ansible(inventory, host, shell, "ls /var/cache/sparkfleet/wheels/*/xformers-*.whl", cwd)["stdout"]
    return {
        "image_id": stamp["image_id"],
        "repo_digest": stamp.get("repo_digest") or "",
        "uv_binary": ansible(inventory, host, shell, "ls /opt/sparkfleet/uv/*/uv-*/uv", cwd)["stdout"].strip(),
        "wheel": wheels.split()[0],
        "uv_cache": "/home/spark/.cache/uv",
        "ca_bundle": ca_bundle,
    }


def role_default(role: str, name: str) -> Any:
    """A role's default for NAME, read from its defaults/main.yml (a plain value, not a template)."""
    value = yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())[name]
    if isinstance(value, str) and "{{" in value:
        sys.exit(f"{role}'s default {name} is a template; bench needs a plain value")
    return value


def recreate(inventory: str, host: str, project: str, inputs: Mapping[str, str], cwd: Path = REPO) -> float:
    """Seconds of one forced venv recreation (container_venv force=true)."""
    args = {
        "project_dir": project,
        "image": inputs["image_id"],
        "image_id": inputs["image_id"],
        "repo_digest": inputs["repo_digest"],
        "uv_binary": inputs["uv_binary"],
        "uv_cache_dir": inputs["uv_cache"],
        "network": "host",
        "force": True,
        "ca_bundle": inputs["ca_bundle"],
        "no_install_packages": ["xformers"],
        "wheels": [inputs["wheel"]],
        "verify_imports": ["xformers"],
        # What the workspace role allows the venv to install over the image (its default).
        "image_replace_allowed": role_default("workspace", "workspace_image_replace_packages"),
    }
    started = time.monotonic()
    result = ansible(inventory, host, "sparkfleet.spark.container_venv", json.dumps(args), cwd)
    elapsed = time.monotonic() - started
    if not result.get("changed") or result.get("failed"):
        sys.exit(f"recreation failed: {result.get('msg', result)}")
    return elapsed


def venv_recreation(
    inventory: str,
    host: str,
    runs: int,
    project: str = "/home/spark/spark-project",
    ca_bundle: str = "/etc/ssl/sparkfleet-testbed-ca.pem",
    cwd: Path = REPO,
) -> dict[str, Any]:
    """Median seconds of a venv recreation after emptying the user's uv cache (cold), then again (warm)."""
    inputs = venv_inputs(inventory, host, project, ca_bundle, cwd)
    cold, warm = [], []
    for _ in range(runs):
        ansible(inventory, host, "ansible.builtin.shell", f"rm -rf {inputs['uv_cache']}/*", cwd)
        cold.append(recreate(inventory, host, project, inputs, cwd))
        warm.append(recreate(inventory, host, project, inputs, cwd))
    return {
        "host": host,
        "runs": runs,
        "cold_s": statistics.median(cold),
        "warm_s": statistics.median(warm),
        "cold_all": [round(x, 1) for x in cold],
        "warm_all": [round(x, 1) for x in warm],
    }


# --- measured subprocesses ---------------------------------------------------------------------


def _process_tree(root: int) -> list[int]:
    """ROOT and its descendants, from the parent IDs in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                # The command name (2nd field) may hold spaces: the fields after its ')' are fixed.
                ppid = int(handle.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _pss_kib(pid: int) -> int:
    """Proportional set size of PID in KiB (shared pages split between the processes sharing them)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class TreeMemorySampler(threading.Thread):
    """Samples the summed PSS of a process tree every INTERVAL seconds; keeps the peak."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_kib = 0
        self.peak_processes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            tree = _process_tree(self.root)
            self.peak_kib = max(self.peak_kib, sum(_pss_kib(pid) for pid in tree))
            self.peak_processes = max(self.peak_processes, len(tree))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass
class Measured:
    """One measured command: wall seconds, exit code, output and memory.

    maxrss_kib is the kernel's ru_maxrss of the command as returned by wait4(): the largest
    resident set of any single process in its tree (the command and the descendants it reaped).
    tree_pss_peak_kib is the peak of the summed PSS of the whole tree, sampled every 0.5 s.
    since/until bracket the run in UTC, for `docker logs --since/--until`.
    """

    argv: list[str]
    wall_s: float
    rc: int
    stdout: str
    stderr: str
    maxrss_kib: int
    tree_pss_peak_kib: int
    tree_processes_peak: int
    since: str
    until: str


def measure(argv: Sequence[str], env: Mapping[str, str], cwd: Path = REPO) -> Measured:
    """Run ARGV to completion and measure it (see Measured)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        since = utc_stamp()
        started = time.monotonic()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdout=out, stderr=err, text=True)
        sampler = TreeMemorySampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        until = utc_stamp()
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            argv=list(argv),
            wall_s=wall,
            rc=proc.returncode,
            stdout=out.read(),
            stderr=err.read(),
            maxrss_kib=int(usage.ru_maxrss),
            tree_pss_peak_kib=sampler.peak_kib,
            tree_processes_peak=sampler.peak_processes,
            since=since,
            until=until,
        )


# --- formatting --------------------------------------------------------------------------------


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'; exact bytes below 1 KiB."""
    if count < 1024:
        return f"{int(count)} B"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def ratio(value: float | None, base: float | None) -> str:
    """'x1.84' for VALUE / BASE, '' when either is missing or BASE is 0."""
    if value is None or not base:
        return ""
    return f"x{value / base:.2f}"


def median_or_none(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None
