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

from benchlib import venv_recreation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--inventory", required=True)
    parser.add_argument("host")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--project", default="/home/spark/spark-project")
    parser.add_argument("--ca-bundle", default="/etc/ssl/sparkfleet-testbed-ca.pem")
    args = parser.parse_args()

    result = venv_recreation(args.inventory, args.host, args.runs, args.project, args.ca_bundle)
    print(f"{'venv recreation':<28}{'median s':>10}  runs")
    print(f"{'cold uv cache':<28}{result['cold_s']:>10.1f}  {result['cold_all']}")
    print(f"{'warm uv cache':<28}{result['warm_s']:>10.1f}  {result['warm_all']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
