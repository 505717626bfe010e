# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Shared logic of the container_venv and container_wheel modules: stamps, plan, docker argv.

Private to this collection. Nothing here runs a process, so every decision the modules
make is unit-tested as a table of cases. The builder script itself is _venv_builder.py;
importing it here makes AnsiballZ ship it with any module that imports this file.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.sparkfleet.spark.plugins.module_utils import _venv_builder

# What a venv's stamp must agree on with the desired state; anything else in the stamp
# (venv_id, built_at, torch, script_version) is information, not a reason to rebuild.
STAMP_KEYS = ("image_id", "repo_digest", "python_version", "lock_hash", "wheels")

# Where things appear inside the container. All are bind mounts; all but the project dir
# and the uv cache are read-only.
CONTAINER_BASE = "/opt/sparkfleet"
CONTAINER_SCRIPT = CONTAINER_BASE + "/venv_builder.py"
CONTAINER_UV = CONTAINER_BASE + "/bin/uv"
CONTAINER_UV_CACHE = CONTAINER_BASE + "/uv-cache"
CONTAINER_WHEELS = CONTAINER_BASE + "/wheels"
CONTAINER_CA_BUNDLE = CONTAINER_BASE + "/ca-bundle.crt"
# Every client that may fetch over HTTPS inside: uv (SSL_CERT_FILE), requests, pip, git.
CA_ENV_NAMES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "GIT_SSL_CAINFO")
CONTAINER_LABEL = "io.sparkfleet.tool=container_venv"

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER_RE = re.compile(r"^\d+(:\d+)?$")


def builder_source() -> bytes:
    """The builder script's source, read through its loader (works from a file and from AnsiballZ's zip)."""
    loader = getattr(_venv_builder, "__loader__", None)
    get_data = getattr(loader, "get_data", None)
    if get_data is not None and getattr(_venv_builder, "__file__", None):
        return get_data(_venv_builder.__file__)
    return inspect.getsource(_venv_builder).encode("utf-8")


def url_password(value: str) -> str | None:
    """The password of a proxy URL such as http://user:password@proxy:3128, if it has one."""
    try:
        return urlsplit(value if "://" in value else "//" + value).password
    except ValueError:
        return None


def same_image_id(actual: str, given: str) -> bool:
    """Whether image_id names the inspected image: full or short (12+ hex digits), with or without sha256:."""
    actual_hex, given_hex = (x[len("sha256:") :] if x.startswith("sha256:") else x for x in (actual, given))
    return len(given_hex) >= 12 and actual_hex.startswith(given_hex)


def stamp_subset(stamp: Mapping[str, Any] | None) -> dict[str, Any]:
    """The compared keys of a stamp ({} for no stamp); wheels as a sorted list."""
    if not stamp:
        return {}
    subset = {key: stamp.get(key) for key in STAMP_KEYS}
    subset["wheels"] = sorted(subset["wheels"] or [])
    return subset


def desired_stamp(
    image_id: str, repo_digest: str | None, wheels: Iterable[str], probe: Mapping[str, Any]
) -> dict[str, Any]:
    """The stamp a venv built now would carry (python and lock hash as the probe sees them)."""
    return {
        "image_id": image_id,
        "repo_digest": repo_digest or None,
        "python_version": probe.get("python_version"),
        "lock_hash": probe.get("lock_hash"),
        "wheels": sorted(os.path.basename(w) for w in wheels),
    }


def _show(value: Any) -> str:
    if value is None or value == []:
        return "(none)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def stamp_differences(desired: Mapping[str, Any], current: Mapping[str, Any] | None) -> list[str]:
    """Human-readable reasons, one per compared key that differs: 'image_id changed: a → b'."""
    if not current:
        return []
    want, have = stamp_subset(desired), stamp_subset(current)
    return [
        f"{key} changed: {_show(have[key])} \u2192 {_show(want[key])}" for key in STAMP_KEYS if have[key] != want[key]
    ]


def plan(
    desired_stamp: Mapping[str, Any],
    probe: Mapping[str, Any],
    force: bool = False,
    altered: Iterable[str] = (),
) -> dict[str, Any]:
    """Decide what to do with the venv.

    create:   there is no venv.
    recreate: the venv's stamp differs from the desired one, it has no stamp (not built by
              us), it was altered (`altered`: the user-owned link or stamp failed the checks
              of _userspace), or force is set. Reasons list every difference, a broken
              interpreter too.
    repair:   the stamp is current but the venv's interpreter does not run in the image.
    none:     stamp current and interpreter runs.
    """
    venv = probe.get("venv") or {}
    name = os.path.basename(str(venv.get("path") or ".venv"))
    if not venv.get("exists"):
        return {"action": "create", "reasons": [f"venv {name} does not exist"]}
    reasons: list[str] = []
    stamp = venv.get("stamp")
    if stamp:
        reasons.extend(stamp_differences(desired_stamp, stamp))
    else:
        reasons.append(f"venv {name} has no sparkfleet stamp (not built by this module)")
    reasons.extend(f"altered: {problem}" for problem in altered)
    if force:
        reasons.append("force is set")
    stale = bool(reasons)
    if not venv.get("interpreter_ok"):
        reasons.append(str(venv.get("interpreter_error") or "venv interpreter does not run"))
    if stale:
        return {"action": "recreate", "reasons": reasons}
    if reasons:
        return {"action": "repair", "reasons": reasons}
    return {"action": "none", "reasons": []}


def _mount(source: str, target: str, readonly: bool) -> str:
    """A --mount value; fields with a comma or a quote are CSV-quoted, as docker parses them."""
    fields = ["type=bind", f"source={source}", f"target={target}"]
    quoted = ['"' + f.replace('"', '""') + '"' if ("," in f or '"' in f) else f for f in fields]
    return ",".join(quoted + (["readonly"] if readonly else []))


def container_wheel_path(wheel: str) -> str:
    return f"{CONTAINER_WHEELS}/{os.path.basename(wheel)}"


def docker_run_argv(
    docker: str,
    image: str,
    *,
    user: str,
    project_dir: str,
    script: str,
    args: Iterable[str],
    container_project_dir: str | None = None,
    uv_binary: str | None = None,
    uv_cache_dir: str | None = None,
    wheels: Iterable[str] = (),
    ca_bundle: str | None = None,
    pass_env: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    network: str | None = None,
    python: str = "python3",
) -> list[str]:
    """argv for `docker run --rm` of the builder script in the image.

    `env` holds fixed, non-secret values set with -e NAME=VALUE. `pass_env` holds names only
    (-e NAME): docker copies their values from its own environment, so proxy URLs, which may
    carry credentials, never appear on a command line; give the values through the
    environment of the docker process (AnsibleModule.run_command's environ_update).
    Bind mounts use --mount, which fails on a missing source instead of creating it as root.
    """
    if not _USER_RE.match(user):
        raise ValueError(f"user must be numeric uid or uid:gid, got {user!r}")
    cpd = container_project_dir or project_dir
    argv = [docker, "run", "--rm", "--pull=never", "--label", CONTAINER_LABEL, "--user", user]
    if network:
        argv += ["--network", network]
    fixed = {"HOME": "/tmp", "PYTHONUNBUFFERED": "1"}
    mounts = [_mount(project_dir, cpd, readonly=False), _mount(script, CONTAINER_SCRIPT, readonly=True)]
    if uv_binary:
        mounts.append(_mount(uv_binary, CONTAINER_UV, readonly=True))
    if uv_cache_dir:
        mounts.append(_mount(uv_cache_dir, CONTAINER_UV_CACHE, readonly=False))
        fixed["UV_CACHE_DIR"] = CONTAINER_UV_CACHE
    seen: set[str] = set()
    for wheel in wheels:
        name = os.path.basename(wheel)
        if name in seen:
            raise ValueError(f"two wheels share the file name {name}")
        seen.add(name)
        mounts.append(_mount(wheel, container_wheel_path(wheel), readonly=True))
    if ca_bundle:
        mounts.append(_mount(ca_bundle, CONTAINER_CA_BUNDLE, readonly=True))
        fixed.update(dict.fromkeys(CA_ENV_NAMES, CONTAINER_CA_BUNDLE))
    fixed.update(env or {})
    for name, value in fixed.items():
        argv += ["-e", f"{name}={value}"]
    for name in pass_env:
        if not _ENV_NAME_RE.match(name):
            raise ValueError(f"invalid environment variable name {name!r}")
        argv += ["-e", name]
    for mount in mounts:
        argv += ["--mount", mount]
    argv += [image, python, CONTAINER_SCRIPT, *args]
    return argv


def probe_args(container_project_dir: str, venv_name: str) -> list[str]:
    return ["probe", "--project", container_project_dir, "--venv", venv_name]


def build_args(
    container_project_dir: str,
    venv_name: str,
    stamp: Mapping[str, Any],
    wheels: Iterable[str] = (),
    no_install_packages: Iterable[str] = (),
    verify_imports: Iterable[str] = (),
    allow_replace: Iterable[str] = (),
) -> list[str]:
    args = ["build", "--project", container_project_dir, "--venv", venv_name, "--uv", CONTAINER_UV]
    args += ["--stamp", json.dumps(dict(stamp), sort_keys=True)]
    for wheel in wheels:
        args += ["--wheel", container_wheel_path(wheel)]
    for name in no_install_packages:
        args += ["--no-install-package", name]
    for name in verify_imports:
        args += ["--verify-import", name]
    for name in allow_replace:
        args += ["--allow-replace", name]
    return args


_DIST_NAME = re.compile(r"^([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])$")
_DIST_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,127}$")


def checked_shadowed(value: Any, limit: int = 2000) -> dict[str, dict[str, str]]:
    """The builder's report of shadowed image distributions, keeping only entries of its exact shape.

    The report comes from a container that read the user's venv: canonical names and plain
    versions pass, anything else is dropped.
    """
    if not isinstance(value, Mapping):
        return {}
    kept: dict[str, dict[str, str]] = {}
    for name, versions in list(value.items())[:limit]:
        if not (isinstance(name, str) and _DIST_NAME.fullmatch(name) and isinstance(versions, Mapping)):
            continue
        venv, image = versions.get("venv"), versions.get("image")
        if (
            isinstance(venv, str)
            and isinstance(image, str)
            and _DIST_VERSION.fullmatch(venv)
            and _DIST_VERSION.fullmatch(image)
        ):
            kept[name] = {"venv": venv, "image": image}
    return dict(sorted(kept.items()))


def parse_result(stdout: str) -> dict[str, Any] | None:
    """The builder's JSON: the last stdout line that is a JSON object.

    NGC images print a banner through their entrypoint before the command runs.
    """
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except ValueError:
                continue
            if isinstance(result, dict):
                return result
    return None
