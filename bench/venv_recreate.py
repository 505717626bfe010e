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
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def ansible(inventory: str, host: str, module: str, args: str) -> dict[str, Any]:
    """One ad-hoc module run; its result for HOST, read from the JSON callback."""
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    done = subprocess.run(
        ["ansible", "-i", inventory, host, "-m", module, "-a", args],
        cwd=REPO,
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


def recreate(inventory: str, host: str, project: str, inputs: dict[str, str]) -> float:
    args = (
        f"project_dir={project} image={inputs['image_id']} image_id={inputs['image_id']} "
        f"repo_digest={inputs['repo_digest']} uv_binary={inputs['uv_binary']} "
        f"uv_cache_dir={inputs['uv_cache']} network=host force=true ca_bundle={inputs['ca_bundle']} "
        f"no_install_packages=xformers wheels={inputs['wheel']} verify_imports=xformers"
    )
    started = time.monotonic()
    result = ansible(inventory, host, "sparkfleet.spark.container_venv", args)
    elapsed = time.monotonic() - started
    if not result.get("changed") or result.get("failed"):
        sys.exit(f"recreation failed: {result.get('msg', result)}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--inventory", required=True)
    parser.add_argument("host")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--project", default="/home/spark/spark-project")
    parser.add_argument("--ca-bundle", default="/etc/ssl/sparkfleet-testbed-ca.pem")
    args = parser.parse_args()

    shell = "ansible.builtin.shell"
    stamp = json.loads(
        ansible(args.inventory, args.host, shell, f"cat {args.project}/.venv/sparkfleet-stamp.json")["stdout"]
    )
    inputs = {
        "image_id": stamp["image_id"],
        "repo_digest": stamp.get("repo_digest") or "",
        "uv_binary": ansible(args.inventory, args.host, shell, "ls /opt/sparkfleet/uv/*/uv-*/uv")["stdout"].strip(),
        "wheel": ansible(args.inventory, args.host, shell, "ls /var/cache/sparkfleet/wheels/*/xformers-*.whl")[
            "stdout"
        ].split()[0],
        "uv_cache": "/home/spark/.cache/uv",
        "ca_bundle": args.ca_bundle,
    }
    cold, warm = [], []
    for _ in range(args.runs):
        ansible(args.inventory, args.host, shell, f"rm -rf {inputs['uv_cache']}/*")
        cold.append(recreate(args.inventory, args.host, args.project, inputs))
        warm.append(recreate(args.inventory, args.host, args.project, inputs))
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
