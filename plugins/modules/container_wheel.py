#!/usr/bin/python
# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# Ansible's module shape puts the imports after DOCUMENTATION, EXAMPLES and RETURN.
# ruff: noqa: E402

from __future__ import annotations

DOCUMENTATION = r"""
---
module: container_wheel
short_description: Build a wheel from source inside a container image, for one set of CUDA architectures
version_added: 0.1.0
description:
  - Builds a wheel (typically C(xformers)) with C(pip wheel --no-build-isolation) inside an image (the NGC
    PyTorch image), so that it compiles against the image's own C(torch).
  - C(TORCH_CUDA_ARCH_LIST) is set to the sanitized O(arch_list) — never the image's own list — and
    C(MAX_JOBS) to O(max_jobs), or to a value sized from the host's memory.
  - O(out_dir) is the wheel's cache entry; when it already holds a C(.whl) nothing is built. Name it after
    everything the wheel depends on (image ID, source, architectures).
author:
  - sparkfleet maintainers (@sparkfleet)
requirements:
  - The C(docker) CLI on the managed host.
  - In the image, C(python3) with C(pip), C(setuptools) and C(torch) installed system-wide.
attributes:
  check_mode:
    support: full
    description: Reports whether a build would run, without running it.
  diff_mode:
    support: none
    description: Nothing to show beyond the wheel's path.
  idempotent:
    support: full
    description: A wheel already in O(out_dir) is kept and reported unchanged.
options:
  image:
    description: Image (reference or ID) to build in; it must be present, it is never pulled.
    type: str
    required: true
  source:
    description:
      - What C(pip wheel) builds, for example C(git+https://github.com/facebookresearch/xformers.git@v0.0.33)
        or a path inside the image.
    type: str
    required: true
  arch_list:
    description:
      - CUDA compute capabilities to compile for, such as C(12.1) (DGX Spark) or C(12.0 12.1+PTX).
      - Malformed values are refused before anything runs.
    type: str
    required: true
  max_jobs:
    description: Parallel compile jobs; C(0) sizes them from the host's memory and CPUs.
    type: int
    default: 0
  lock_timeout:
    description:
      - Seconds to wait for another build on this host. One build runs at a time per host, whoever
        started it (an flock on C(/run/lock/sparkfleet-wheel-build.lock)).
      - When the other build made the wanted wheel meanwhile, nothing is built.
    type: int
    default: 3600
  out_dir:
    description: Host directory that receives the wheel (created when missing).
    type: path
    required: true
  network:
    description: Docker network of the build container (C(host) reaches a proxy on the host's loopback).
    type: str
  ca_bundle:
    description: CA bundle on the host for HTTPS in the container; mounted read-only.
    type: path
  proxy_env:
    description:
      - Proxy variables for the container; their values reach docker through its environment, never argv.
    type: dict
    default: {}
  python:
    description: Interpreter inside the image that builds the wheel.
    type: str
    default: python3
"""

EXAMPLES = r"""
- name: Build xformers for the DGX Spark's GPU, once per image
  sparkfleet.spark.container_wheel:
    image: "{{ ngc_image_id }}"
    source: git+https://github.com/facebookresearch/xformers.git@v0.0.33
    arch_list: "12.1"
    out_dir: /var/cache/sparkfleet/wheels/xformers-0123456789abcdef
  register: xformers_wheel
"""

RETURN = r"""
wheel:
  description: Path of the wheel on the host (empty in check mode when a build would run).
  returned: always
  type: str
  sample: /var/cache/sparkfleet/wheels/xformers-0123456789abcdef/xformers-0.0.33-cp312-cp312-linux_aarch64.whl
arch_list:
  description: The sanitized architecture list the build used.
  returned: always
  type: str
  sample: "12.1"
max_jobs:
  description: C(MAX_JOBS) of the build (0 when nothing was built).
  returned: always
  type: int
  sample: 8
build_info:
  description:
    - What the build was, as written to C(build-info.json) beside the wheel on the host that built it
      (hosts that received a copy have the wheel only). Empty when nothing was built.
  returned: always
  type: dict
  sample: {"source": "git+https://github.com/facebookresearch/xformers.git@v0.0.33", "arch_list": "12.1",
           "max_jobs": 8, "image": "sha256:0123...", "built_at": "2026-11-25T19:01:19Z",
           "wheel": "xformers-0.0.33-cp312-cp312-linux_aarch64.whl", "sha256": "4f2c..."}
build_log:
  description: The last lines of the build's output.
  returned: when a build ran
  type: list
  elements: str
lock_wait_s:
  description: Seconds this run waited for another build on the host.
  returned: when the host lock was taken
  type: float
  sample: 0.0
"""

import hashlib
import json
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sparkfleet.spark.plugins.module_utils._container_venv import (
    builder_source,
    docker_run_argv,
    parse_result,
    url_password,
)
from ansible_collections.sparkfleet.spark.plugins.module_utils._host_lock import LockTimeout, host_lock
from ansible_collections.sparkfleet.spark.plugins.module_utils._userspace import WHEEL_NAME_RE
from ansible_collections.sparkfleet.spark.plugins.module_utils._venv_builder import (
    cpu_count,
    max_jobs,
    mem_total_bytes,
    sanitize_arch_list,
)


def existing_wheel(out_dir: str) -> str | None:
    if not os.path.isdir(out_dir):
        return None
    wheels = sorted(name for name in os.listdir(out_dir) if name.endswith(".whl"))
    return os.path.join(out_dir, wheels[0]) if wheels else None


BUILD_INFO_FILE = "build-info.json"
LOCK_FILE = "/run/lock/sparkfleet-wheel-build.lock"


def write_build_info(out_dir: str, info: dict) -> None:
    """Record what was built, beside the wheel: an admin (and the fleet test) can tell where and how."""
    path = os.path.join(out_dir, BUILD_INFO_FILE)
    with open(path + ".new", "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(path + ".new", 0o644)
    os.replace(path + ".new", path)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "image": {"type": "str", "required": True},
            "source": {"type": "str", "required": True},
            "arch_list": {"type": "str", "required": True},
            "max_jobs": {"type": "int", "default": 0},
            "out_dir": {"type": "path", "required": True},
            "network": {"type": "str"},
            "ca_bundle": {"type": "path"},
            "proxy_env": {"type": "dict", "default": {}},
            "python": {"type": "str", "default": "python3"},
            "lock_timeout": {"type": "int", "default": 3600},
        },
        supports_check_mode=True,
    )
    params = module.params
    for value in params["proxy_env"].values():
        secret = url_password(str(value))
        if secret:
            module.no_log_values.add(secret)
    try:
        arch_list = sanitize_arch_list(params["arch_list"])
    except ValueError as error:
        module.fail_json(msg=f"arch_list: {error}")
    if params["max_jobs"] < 0:
        module.fail_json(msg="max_jobs must be 0 (sized from memory) or more")
    jobs = params["max_jobs"] or max_jobs(mem_total_bytes(), cpu_count())
    out_dir = params["out_dir"]

    found = existing_wheel(out_dir)
    if found:
        module.exit_json(changed=False, wheel=found, arch_list=arch_list, max_jobs=0, build_info={})
    if module.check_mode:
        module.exit_json(changed=True, wheel="", arch_list=arch_list, max_jobs=jobs, build_info={})

    docker = module.get_bin_path("docker", required=True)
    try:
        with host_lock(LOCK_FILE, params["lock_timeout"]) as waited:
            found = existing_wheel(out_dir)
            if found:
                # Built by the run that held the lock.
                module.exit_json(
                    changed=False,
                    wheel=found,
                    arch_list=arch_list,
                    max_jobs=0,
                    build_info={},
                    lock_wait_s=round(waited, 1),
                )
            build(module, docker, arch_list, jobs, waited)
    except LockTimeout as error:
        module.fail_json(msg=f"building {params['source']}: {error}; nothing was built")


def build(module: AnsibleModule, docker: str, arch_list: str, jobs: int, waited: float) -> None:
    params = module.params
    out_dir = params["out_dir"]
    os.makedirs(out_dir, mode=0o755, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sparkfleet-wheel-") as work:
        script = os.path.join(work, "venv_builder.py")
        with open(script, "wb") as handle:
            handle.write(builder_source())
        os.chmod(work, 0o755)
        os.chmod(script, 0o644)
        argv = docker_run_argv(
            docker,
            params["image"],
            user="0:0",
            project_dir=out_dir,
            script=script,
            args=[
                "build-wheel",
                "--source",
                params["source"],
                "--out",
                out_dir,
                "--arch-list",
                arch_list,
                "--max-jobs",
                str(jobs),
            ],
            ca_bundle=params["ca_bundle"],
            pass_env=sorted(params["proxy_env"]),
            network=params["network"],
            python=params["python"],
        )
        rc, stdout, stderr = module.run_command(
            argv, environ_update={k: str(v) for k, v in params["proxy_env"].items()}
        )
    result = parse_result(stdout) or {}
    log_tail = (stderr or "").strip().splitlines()[-20:]
    # The path comes from the container's output: only a wheel name directly in out_dir is used.
    name = os.path.basename(str(result.get("wheel") or ""))
    if result.get("wheel") and (
        not WHEEL_NAME_RE.match(name) or os.path.normpath(str(result["wheel"])) != os.path.join(out_dir, name)
    ):
        module.fail_json(msg=f"the build reported a wheel outside {out_dir}: {str(result['wheel'])[:200]!r}", rc=rc)
    if rc != 0 or not result.get("wheel"):
        module.fail_json(
            msg=f"building {params['source']} in {params['image']} failed: {result.get('msg') or 'see build_log'}",
            build_log=result.get("log_tail") or log_tail,
            rc=rc,
        )
    info = {
        "source": params["source"],
        "image": params["image"],
        "arch_list": result.get("arch_list", arch_list),
        "max_jobs": result.get("max_jobs", jobs),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wheel": os.path.basename(result["wheel"]),
        "sha256": sha256_file(result["wheel"]),
    }
    write_build_info(out_dir, info)
    module.exit_json(
        changed=True,
        wheel=result["wheel"],
        arch_list=info["arch_list"],
        max_jobs=info["max_jobs"],
        build_info=info,
        build_log=log_tail,
        lock_wait_s=round(waited, 1),
    )


if __name__ == "__main__":
    main()
