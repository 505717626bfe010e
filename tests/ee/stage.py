#!/usr/bin/env python3
"""The EE stage: build sparkfleet's execution environment and run the collection through it,
the way AWX runs a job (issue: AWX-ready, proven).

1. tools/ee_context.py assembles the build directory (the definition, ee/, the collection
   tarballs); ansible-builder builds it on the test bed's Debian base (images/ee-base), the
   published UBI 9 base being unreachable here. Base, package manager and Python are build
   arguments; the definition is the published one.
2. A fresh simulated Spark, reached as a lab reaches it: SSH as `admin`, sudo to root.
3. `ansible-navigator run site.yml --eei <the EE> --mode stdout --pull-policy never` from the
   checkout (its ansible-navigator.yml), then again (0 changed), then playbooks/verify.yml.
   The NGC key reaches the EE as an AWX credential type injects it: an environment variable
   (SPARKFLEET_NGC_API_KEY, passed by name) that an extra-vars file reads with a lookup. The
   key is never in the image, the build context or any output.

Prints one [timing] line per step; exits non-zero with the reason on the first failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("SPARKFLEET_TESTBED_STATE", ROOT / ".testbed")).resolve()
BIN = Path(sys.executable).parent
TESTBED = [sys.executable, str(ROOT / "tests" / "testbed" / "testbed.py")]
SPARK = "sparkfleet-ee-1"
NETWORK = "sparkfleet-testbed"
EE_BASE = "sparkfleet-testbed/ee-base:latest"
WORK = STATE / "ee"
# The build arguments that move the published definition onto the Debian base.
BUILD_ARGS = {
    "EE_BASE_IMAGE": EE_BASE,
    "PKGMGR": "/usr/bin/apt-get",
    "PYPKG": "python3.11",
    "PYCMD": "/opt/ee-python/bin/python3.11",
}
# An AWX custom credential type's injectors, as a file: the env var holds the secret, the
# extra var reads it (see README, "Outgrowing one control node").
CREDENTIAL_VARS = "ngc_image_api_key: \"{{ lookup('ansible.builtin.env', 'SPARKFLEET_NGC_API_KEY') }}\"\n"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
TIMINGS: dict[str, float] = {}


def step(name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> str:
    started = time.monotonic()
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    TIMINGS[name] = round(time.monotonic() - started, 1)
    print(f"[timing] ee {name}: {TIMINGS[name]} s", flush=True)
    if proc.returncode != 0:
        sys.exit(f"[ee] {name} failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc.stdout


def recap(output: str) -> dict[str, dict[str, int]]:
    found = {
        m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]), "failed": int(m[5])}
        for m in RECAP.finditer(output)
    }
    if SPARK not in found:
        sys.exit(f"[ee] no PLAY RECAP line for {SPARK} in:\n{output[-3000:]}")
    return found


def main() -> None:
    started = time.monotonic()
    api_key = Path(json.loads((STATE / "testbed.json").read_text())["api_key_file"]).read_text().strip()
    version = re.search(r"^version:\s*(\S+)", (ROOT / "galaxy.yml").read_text(), re.M)
    assert version, "galaxy.yml has no version"
    tag = f"sparkfleet-ee:{version[1]}"
    build_dir = WORK / "build"

    step("context", [sys.executable, str(ROOT / "tools" / "ee_context.py"), "--output", str(build_dir)])
    build_args = [f"--build-arg={k}={v}" for k, v in BUILD_ARGS.items()]
    # The legacy builder: BuildKit's frontend image would be pulled from a registry we cannot reach.
    step(
        "build",
        [str(BIN / "ansible-builder"), "build", "--container-runtime", "docker", "--tag", tag, *build_args],
        env={"DOCKER_BUILDKIT": "0"},
        cwd=build_dir,
    )
    history = step("inspect", ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", tag])
    context_text = b"".join(p.read_bytes() for p in (build_dir / "context").rglob("*") if p.is_file())
    if api_key in history or api_key.encode() in context_text:
        sys.exit("[ee] the NGC API key is in the EE's build context or history")
    labels = json.loads(step("labels", ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag]))
    if (labels or {}).get("ansible-execution-environment") != "true":
        sys.exit(f"[ee] {tag} lacks ansible-builder's label: {labels}")

    step("spark down", [*TESTBED, "spark", "down", SPARK])
    step("spark up", [*TESTBED, "spark", "up", SPARK])
    inventory = WORK / "inventory" / "hosts.yml"
    step("inventory", [*TESTBED, "inventory", "--ssh", "--output", str(inventory), SPARK])
    credential = WORK / "credential_vars.yml"
    credential.write_text(CREDENTIAL_VARS)

    # The playbook comes first: --senv takes every value that follows it.
    options = [
        "--eei",
        tag,
        "--mode",
        "stdout",
        "--pull-policy",
        "never",
        "--ce",
        "docker",
        # The test bed's network, where the Sparks and the registry are (a lab's EE reaches its
        # Sparks by their addresses the same way).
        f"--co=--network={NETWORK}",
        # Set, not passed: the checkout's ansible-navigator.yml passes the credential variables
        # (SPARKFLEET_NGC_API_KEY), and a --penv here would replace its list.
        "--senv",
        f"SPARKFLEET_TESTBED_STATE={STATE}",
    ]
    env = {"SPARKFLEET_NGC_API_KEY": api_key, "SPARKFLEET_TESTBED_STATE": str(STATE)}
    args = ["-i", str(inventory), "-e", f"@{credential}"]

    def navigator(playbook: str) -> list[str]:
        return [str(BIN / "ansible-navigator"), "run", playbook, *options, *args]

    outputs = []
    first = step("converge", navigator("site.yml"), env=env)
    outputs.append(first)
    converged = recap(first)[SPARK]
    if converged["changed"] == 0 or converged["failed"] or converged["unreachable"]:
        sys.exit(f"[ee] the first run of site.yml through the EE should change a fresh Spark: {converged}")
    second = step("idempotence", navigator("site.yml"), env=env)
    outputs.append(second)
    again = recap(second)[SPARK]
    if again["changed"] != 0:
        sys.exit(f"[ee] a second run of site.yml through the EE changed {again['changed']} tasks:\n{second[-4000:]}")
    verified = step("verify", navigator("playbooks/verify.yml"), env=env)
    outputs.append(verified)
    if recap(verified)[SPARK]["failed"]:
        sys.exit(f"[ee] verify.yml failed through the EE:\n{verified[-4000:]}")
    if any(api_key in text for text in outputs):
        sys.exit("[ee] the NGC API key appears in ansible-navigator's output")

    step("cleanup", [*TESTBED, "spark", "down", SPARK])
    summary = {"image": tag, "first_run": converged, "second_run": again, "seconds": TIMINGS}
    (WORK / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"[ee] {tag} converged {SPARK} over SSH (changed={converged['changed']}), re-run changed=0, verify passed")
    print(f"[timing] ee stage: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
