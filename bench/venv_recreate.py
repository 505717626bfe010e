#!/usr/bin/env python3
"""Time a venv recreation on a converged Spark, with a cold and with a warm uv cache.

    python3 bench/venv_recreate.py -i INVENTORY HOST [--runs 3]

Runs the collection's container_venv module with force=true on HOST (the workspace role's
settings: the project of the test bed's `spark` user), first after emptying the user's uv
cache, then with the cache the first run filled. Prints a table and one JSON line. It
changes the venv (a new one is swapped in); nothing else in the project is touched.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def ansible(inventory: str, host: str, module: str, args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ansible", "-i", inventory, host, "-m", module, "-a", args, "-o"],
        cwd=REPO,
        text=True,
        capture_output=True,
        check=False,
    )


def recreate(inventory: str, host: str, project: str, stamp: dict[str, str]) -> float:
    args = (
        f"project_dir={project} image={stamp['image_id']} image_id={stamp['image_id']} "
        f"repo_digest={stamp.get('repo_digest', '')} uv_binary={stamp['uv_binary']} "
        f"uv_cache_dir={stamp['uv_cache']} network=host force=true "
        f"ca_bundle={stamp['ca_bundle']} no_install_packages=xformers "
        f"wheels={stamp['wheel']} verify_imports=xformers"
    )
    started = time.monotonic()
    result = ansible(inventory, host, "sparkfleet.spark.container_venv", args)
    elapsed = time.monotonic() - started
    if "CHANGED" not in result.stdout:
        sys.exit(f"recreation failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--inventory", required=True)
    parser.add_argument("host")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--project", default="/home/spark/spark-project")
    parser.add_argument("--ca-bundle", default="/etc/ssl/sparkfleet-testbed-ca.pem")
    args = parser.parse_args()

    probe = ansible(
        args.inventory,
        args.host,
        "ansible.builtin.shell",
        f"cat {args.project}/.venv/sparkfleet-stamp.json; echo; "
        "ls /opt/sparkfleet/uv/*/uv-*/uv; ls /var/cache/sparkfleet/wheels/*/xformers-*.whl",
    )
    lines = probe.stdout.split(" (stdout) ", 1)[-1].split("\\n")
    stamp = json.loads(lines[0])
    stamp.update(
        uv_binary=lines[2].strip(), wheel=lines[3].strip(), uv_cache="/home/spark/.cache/uv", ca_bundle=args.ca_bundle
    )
    cold, warm = [], []
    for _ in range(args.runs):
        ansible(args.inventory, args.host, "ansible.builtin.shell", f"rm -rf {stamp['uv_cache']}/*")
        cold.append(recreate(args.inventory, args.host, args.project, stamp))
        warm.append(recreate(args.inventory, args.host, args.project, stamp))
    result = {
        "host": args.host,
        "runs": args.runs,
        "cold_s": statistics.median(cold),
        "warm_s": statistics.median(warm),
        "cold_all": [round(x, 1) for x in cold],
        "warm_all": [round(x, 1) for x in warm],
    }
    print(f"{'venv recreation':<28}{'median s':>10}  runs")
    print(f"{'cold uv cache':<28}{result['cold_s']:>10.1f}  {result['cold_all']}")
    print(f"{'warm uv cache':<28}{result['warm_s']:>10.1f}  {result['warm_all']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
