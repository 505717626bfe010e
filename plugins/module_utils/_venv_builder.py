# Copyright: sparkfleet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Build and check a uv project venv over an image's own torch.

A standalone script: standard library only, Python >= 3.9, no Ansible imports. The
container_venv module ships it into the NGC PyTorch image (bind-mounted read-only) and
runs it with the image's python3; it runs just as well on any machine whose Python has
torch (a GPU box outside Docker, a CI runner).

    python3 _venv_builder.py probe       --project DIR [--venv .venv]
    python3 _venv_builder.py build       --project DIR --uv PATH --stamp JSON [--venv .venv]
                                         [--wheel PATH ...] [--no-install-package NAME ...]
                                         [--verify-import MOD ...] [--allow-replace NAME ...]
    python3 _venv_builder.py build-wheel --source SRC --out DIR --arch-list LIST [--max-jobs N]

Each subcommand prints exactly one JSON object, on one line, on stdout; logs, and the
output of uv and pip, go to stderr. Exit status 0 on success, 1 on failure, when the JSON
is {"failed": true, "stage": ..., "msg": ..., "log_tail": [...]}.

Venv layout inside the project dir:

    DIR/.venvs/venv-<UTC time>-<random>/   one directory per build, never moved (a venv is
                                           not relocatable: its scripts hold absolute paths)
    DIR/.venv -> .venvs/venv-...           relative symlink to the live one

A build makes a new directory beside the live one, verifies it, then swaps the symlink with
os.replace (atomic). A failed build removes only its own new directory. A real `.venv`
directory found in the way is moved into `.venvs/` (never deleted). Directories this tool
created carry a marker file; only those are ever removed.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import fcntl
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from typing import Any

SCRIPT_VERSION = "1"
STAMP_FILE = "sparkfleet-stamp.json"
VENVS_DIR = ".venvs"
OWNER_MARKER = ".sparkfleet-venv"
LOCK_FILE = ".sparkfleet.lock"
BUILD_PREFIX = "venv-"
BUILD_NAME_RE = re.compile(r"^venv-\d{8}T\d{6}Z-[0-9a-f]{8}$")
LOG_TAIL_LINES = 40
INTERPRETER_TIMEOUT_S = 60

# Peak memory of one compile job when building xformers' CUDA kernels (its bundled
# flash-attention and CUTLASS templates). xformers' README only says "if the build OOMs,
# reduce MAX_JOBS"; flash-attention's setup.py sizes MAX_JOBS at 9 GB of free memory per
# job ("each JOB peak memory cost is ~8-9GB"), and we use the same figure.
GIB_PER_JOB = 9.0

# One TORCH_CUDA_ARCH_LIST entry as torch.utils.cpp_extension accepts it: MAJOR.MINOR,
# an optional arch-specific "a" (9.0a, 12.1a) and an optional "+PTX".
_ARCH_TOKEN_RE = re.compile(r"^(\d{1,2})\.(\d)(a?)(\+PTX)?$", re.IGNORECASE)


class BuilderError(Exception):
    """A failure with the stage it happened in and the tail of the log that explains it."""

    def __init__(self, stage: str, msg: str, log_tail: Iterable[str] = ()) -> None:
        super().__init__(msg)
        self.stage = stage
        self.msg = msg
        self.log_tail = list(log_tail)


def log(message: str) -> None:
    sys.stderr.write("[venv_builder] " + message + "\n")
    sys.stderr.flush()


def emit(result: dict[str, Any]) -> None:
    """The one JSON line on stdout the caller parses."""
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- pure functions


def sanitize_arch_list(value: str) -> str:
    """Return a TORCH_CUDA_ARCH_LIST value: space separated, de-duplicated, sorted.

    Accepts what ``nvidia-smi --query-gpu=compute_cap --format=csv,noheader`` prints (one
    line per GPU) and user values such as "12.1", "12.0 12.1", "12.0;12.1", "12.1+PTX".
    Separators: whitespace, ";" and ",". Only syntax is checked: MAJOR.MINOR with an optional
    "a" suffix and an optional "+PTX". "+PTX" is matched case-insensitively and written
    upper-case, as torch requires. An entry also listed with "+PTX" is kept only once, with
    it (torch compiles the same SASS either way). Architecture names ("Blackwell"), "sm_121",
    "12" or "12.1.3" raise ValueError naming the bad token.
    """
    if not isinstance(value, str):
        raise ValueError(f"arch list must be a string, got {type(value).__name__}")
    tokens = [t for t in re.split(r"[\s;,]+", value.strip()) if t]
    if not tokens:
        raise ValueError("arch list is empty: expected compute capabilities such as '12.1'")
    entries: dict[tuple[int, int, str], bool] = {}
    for token in tokens:
        match = _ARCH_TOKEN_RE.match(token)
        if match is None:
            hint = ""
            sm = re.match(r"^(?:sm_|compute_)(\d+)(\d)(a?)$", token, re.IGNORECASE)
            if sm:
                hint = f" (write {int(sm.group(1))}.{sm.group(2)}{sm.group(3).lower()})"
            raise ValueError(
                f"invalid CUDA arch {token!r} in arch list{hint}: expected MAJOR.MINOR, optionally "
                "followed by 'a' and/or '+PTX', e.g. '12.1' or '12.0+PTX'"
            )
        key = (int(match.group(1)), int(match.group(2)), match.group(3).lower())
        entries[key] = entries.get(key, False) or bool(match.group(4))
    return " ".join(
        f"{major}.{minor}{suffix}{'+PTX' if ptx else ''}" for (major, minor, suffix), ptx in sorted(entries.items())
    )


def max_jobs(mem_total_bytes: int, cpu_count: int, gib_per_job: float = GIB_PER_JOB) -> int:
    """MAX_JOBS for a CUDA extension build: one job per ``gib_per_job`` GiB, at least 1, at most cpu_count."""
    if gib_per_job <= 0:
        raise ValueError("gib_per_job must be positive")
    by_memory = int(max(0, mem_total_bytes) // int(gib_per_job * 1024**3))
    return max(1, min(max(1, cpu_count), by_memory))


def lock_hash_of(pyproject: bytes | None, uv_lock: bytes | None) -> str | None:
    """sha256 over pyproject.toml's and uv.lock's bytes; None without a pyproject.toml."""
    if pyproject is None:
        return None
    digest = hashlib.sha256()
    for name, data in (("pyproject.toml", pyproject), ("uv.lock", uv_lock)):
        if data is None:
            continue
        digest.update(b"%s\0%d\0" % (name.encode(), len(data)))
        digest.update(data)
    return "sha256:" + digest.hexdigest()


def lock_hash(project_dir: str, pyproject: bytes | None = None) -> str | None:
    """lock_hash_of the project's files; None when pyproject.toml is missing.

    `pyproject` replaces the file's content: the content a run is about to write.
    """
    contents: dict[str, bytes | None] = {"pyproject.toml": pyproject, "uv.lock": None}
    for name in contents:
        if contents[name] is not None:
            continue
        try:
            with open(os.path.join(project_dir, name), "rb") as handle:
                contents[name] = handle.read()
        except FileNotFoundError:
            continue
    return lock_hash_of(contents["pyproject.toml"], contents["uv.lock"])


def mem_total_bytes() -> int:
    """Physical memory, capped by a cgroup (v2 or v1) limit when the container has one."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as handle:
                raw = handle.read().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < total:
            total = int(raw)
    return total


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- probing


def system_torch() -> dict[str, Any]:
    """The torch this interpreter sees, found without importing it (an import takes seconds)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError) as exc:
        return {"version": None, "file": None, "error": str(exc)}
    if spec is None or not spec.origin:
        return {"version": None, "file": None, "error": "torch is not installed for " + sys.executable}
    version = None
    version_py = os.path.join(os.path.dirname(spec.origin), "version.py")
    try:
        with open(version_py, encoding="utf-8") as handle:
            match = re.search(r"^__version__\s*(?::\s*\w+\s*)?=\s*['\"]([^'\"]+)['\"]", handle.read(), re.M)
        version = match.group(1) if match else None
    except OSError:
        pass
    if version is None:
        try:
            from importlib import metadata

            version = metadata.version("torch")
        except Exception:  # any metadata failure means "unknown"
            version = None
    return {"version": version, "file": os.path.realpath(spec.origin)}


def read_stamp(venv_dir: str | None) -> dict[str, Any] | None:
    if not venv_dir:
        return None
    try:
        with open(os.path.join(venv_dir, STAMP_FILE), encoding="utf-8") as handle:
            stamp = json.load(handle)
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def _pyvenv_cfg(venv_dir: str) -> dict[str, str]:
    cfg: dict[str, str] = {}
    try:
        with open(os.path.join(venv_dir, "pyvenv.cfg"), encoding="utf-8") as handle:
            for line in handle:
                key, sep, value = line.partition("=")
                if sep:
                    cfg[key.strip().lower()] = value.strip()
    except OSError:
        pass
    return cfg


def check_interpreter(venv_dir: str) -> tuple[bool, str | None, str | None]:
    """(ok, python version, why not): bin/python runs, is this venv, and matches the venv's Python.

    A venv's bin/python is a symlink to the image's interpreter; after an image upgrade it
    may dangle, or point to another Python version that ignores lib/pythonX.Y.
    """
    python = os.path.join(venv_dir, "bin", "python")
    if not os.path.exists(python):
        return False, None, "venv interpreter bin/python is missing or a dangling link"
    code = "import platform, sys; print(platform.python_version()); print(sys.prefix)"
    try:
        proc = subprocess.run(
            [python, "-c", code],
            capture_output=True,
            text=True,
            timeout=INTERPRETER_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, None, f"venv interpreter does not run: {exc}"
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return False, None, f"venv interpreter does not run (exit {proc.returncode}): {tail}"
    lines = proc.stdout.split("\n")
    version, prefix = lines[0].strip(), (lines[1].strip() if len(lines) > 1 else "")
    if os.path.realpath(prefix) != os.path.realpath(venv_dir):
        return False, version, "venv interpreter does not run as a venv (sys.prefix is " + prefix + ")"
    made_for = _pyvenv_cfg(venv_dir).get("version_info") or _pyvenv_cfg(venv_dir).get("version") or ""
    if made_for and made_for.split(".")[:2] != version.split(".")[:2]:
        return False, version, f"venv interpreter is Python {version}, the venv was made for {made_for}"
    return True, version, None


def _is_managed(venvs_dir: str, path: str) -> bool:
    """A directory this tool built: its name has our pattern, it sits in .venvs, it holds our marker."""
    return (
        os.path.dirname(os.path.realpath(path)) == os.path.realpath(venvs_dir)
        and BUILD_NAME_RE.match(os.path.basename(path)) is not None
        and os.path.isfile(os.path.join(path, OWNER_MARKER))
    )


def canonical(name: str) -> str:
    """PEP 503's normalized name: runs of -, _ and . become -, lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _distributions(path: list[str] | None = None) -> dict[str, str]:
    """Canonical name -> version of the distributions on ``path`` (default sys.path), first copy wins."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions() if path is None else metadata.distributions(path=path):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonical(name), dist.version)
    return found


def image_distributions() -> dict[str, str]:
    """The image's distributions, as its system interpreter (this script's) sees them."""
    return _distributions()


def venv_site_packages(venv_dir: str) -> list[str]:
    lib = os.path.join(venv_dir, "lib")
    try:
        names = sorted(os.listdir(lib))
    except OSError:
        return []
    return [
        os.path.join(lib, name, "site-packages")
        for name in names
        if re.match(r"^python3\.\d+$", name) and os.path.isdir(os.path.join(lib, name, "site-packages"))
    ]


def shadowed_distributions(venv_dir: str, image: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """The image's distributions the venv installs a copy of: name -> {venv, image} versions.

    Reads the venv's metadata files as data; nothing of the venv runs.
    """
    image = image_distributions() if image is None else image
    own = _distributions(venv_site_packages(venv_dir))
    return {name: {"venv": own[name], "image": image[name]} for name in sorted(own) if name in image}


def probe(project: str, venv_name: str) -> dict[str, Any]:
    project = os.path.abspath(project)
    venv_path = os.path.join(project, venv_name)
    exists = os.path.isdir(venv_path)
    target = os.path.realpath(venv_path) if exists else None
    interpreter_ok, interpreter_version, interpreter_error = (
        check_interpreter(venv_path) if exists else (False, None, "venv does not exist")
    )
    return {
        "script_version": SCRIPT_VERSION,
        "python_version": platform.python_version(),
        "python_executable": sys.executable,
        "system_torch": system_torch(),
        "project": {
            "path": project,
            "exists": os.path.isdir(project),
            "pyproject": os.path.isfile(os.path.join(project, "pyproject.toml")),
            "uv_lock": os.path.isfile(os.path.join(project, "uv.lock")),
        },
        "venv": {
            "path": venv_path,
            "exists": exists,
            "is_symlink": os.path.islink(venv_path),
            "target": target,
            "managed": bool(target) and _is_managed(os.path.join(project, VENVS_DIR), target or ""),
            "interpreter_ok": interpreter_ok,
            "interpreter_version": interpreter_version,
            "interpreter_error": interpreter_error,
            "stamp": read_stamp(target),
            "shadowed": shadowed_distributions(target) if target and exists else {},
        },
        "lock_hash": lock_hash(project),
    }


# --------------------------------------------------------------------------- running tools


def _error_summary(lines: list[str]) -> str:
    """The part of a tool's output that says why it failed (uv: from 'error:' on)."""
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(("error:", "ERROR:", "\u00d7")):
            return " ".join(part.strip() for part in lines[index : index + 12] if part.strip())[:2000]
    return " ".join(part.strip() for part in lines[-5:] if part.strip())[:2000]


def _command_name(argv: list[str]) -> str:
    """'uv sync', 'uv pip install', 'python3 -m pip wheel': the command without paths and options."""
    words = [os.path.basename(argv[0])]
    rest = argv[1:]
    if rest[:1] == ["-m"]:
        words.append("-m")
        rest = rest[1:]
    for word in rest[:3]:
        if word.startswith("-") or "/" in word:
            break
        words.append(word)
    return " ".join(words)


def run_tool(argv: list[str], stage: str, env: dict[str, str] | None = None, cwd: str | None = None) -> list[str]:
    """Run a command, stream its output to stderr, return its last lines; BuilderError when it fails."""
    log("$ " + " ".join(argv))
    tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise BuilderError(stage, f"cannot run {argv[0]}: {exc}") from exc
    if proc.stdout is None:  # for the type checker: stdout=PIPE always gives a pipe
        raise BuilderError(stage, f"no output pipe from {argv[0]}")
    for line in proc.stdout:
        sys.stderr.write(line)
        tail.append(line.rstrip("\n"))
    returncode = proc.wait()
    if returncode != 0:
        lines = list(tail)
        what = _command_name(argv)
        raise BuilderError(stage, f"{what} failed (exit {returncode}): {_error_summary(lines)}", lines)
    return list(tail)


def _uv_env(new_venv: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env.update(
        {
            # The image's interpreter is the only one wanted; never fetch a managed Python.
            "UV_PYTHON_DOWNLOADS": "never",
            # The uv cache is another mount than the project: hard links would fail.
            "UV_LINK_MODE": "copy",
            "UV_NO_PROGRESS": "1",
        }
    )
    if new_venv:
        env["UV_PROJECT_ENVIRONMENT"] = new_venv
    return env


# Packages the image provides that a uv sync must never shadow inside the venv.
IMAGE_PACKAGES = ("torch", "triton", "torchvision", "torchaudio")

_VERIFY_CODE = r"""
import importlib, importlib.util, json, os, sys
result = {"prefix": sys.prefix, "imports": {}, "origins": {}}
for name in json.loads(sys.argv[2]):
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        spec = None
    result["origins"][name] = os.path.realpath(spec.origin) if spec is not None and spec.origin else None
try:
    import torch
    result["torch"] = {"version": str(torch.__version__), "file": os.path.realpath(torch.__file__)}
except Exception as exc:
    result["torch"] = {"error": "%s: %s" % (type(exc).__name__, exc)}
for name in json.loads(sys.argv[1]):
    try:
        module = importlib.import_module(name)
        result["imports"][name] = {"ok": True, "file": getattr(module, "__file__", None)}
    except BaseException as exc:
        result["imports"][name] = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
print(json.dumps(result))
"""


# Runs in the new venv: every requirement of the project and of the distributions the venv
# installed, checked against the copy `import` would load (the venv's, else the image's).
# packaging comes from the image (NGC ships it; pip vendors it everywhere).
_REQUIREMENTS_CODE = r"""
import json, os, re, sys
from importlib import metadata
try:
    from packaging.requirements import Requirement
    from packaging.version import InvalidVersion, Version
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.version import InvalidVersion, Version
prefix = os.path.realpath(sys.prefix) + os.sep
def where(dist):
    return "venv" if (os.path.realpath(str(dist.locate_file(""))) + os.sep).startswith(prefix) else "image"
def applies(req, extra):
    if req.marker is None:
        return extra == ""
    return req.marker.evaluate({"extra": extra}) and (extra == "" or not req.marker.evaluate({"extra": ""}))
todo = [("the project", text, "") for text in json.loads(sys.argv[1])]
for dist in metadata.distributions():
    if where(dist) == "venv":
        todo += [("%s %s" % (dist.metadata["Name"], dist.version), text, "") for text in dist.requires or []]
result = {"conflicts": [], "missing": []}
seen = set()
while todo:
    who, text, extra = todo.pop(0)
    if (who, text, extra) in seen:
        continue
    seen.add((who, text, extra))
    try:
        req = Requirement(text)
        if not applies(req, extra):
            continue
        dist = metadata.distribution(req.name)
    except metadata.PackageNotFoundError:
        result["missing"].append({"by": who, "requirement": text})
        continue
    except Exception:
        continue
    for wanted in sorted(req.extras):
        todo += [("%s %s" % (dist.metadata["Name"], dist.version), t, wanted) for t in dist.requires or []]
    try:
        Version(dist.version)
    except InvalidVersion:
        continue
    if not req.specifier.contains(dist.version, prereleases=True):
        name = dist.metadata["Name"]
        result["conflicts"].append(
            {"by": who, "requirement": str(req), "name": name, "version": dist.version, "from": where(dist)}
        )
print(json.dumps(result))
"""


def project_dependencies(project: str) -> list[str]:
    """[project].dependencies of pyproject.toml ([] when it cannot be read: Python < 3.11 has no tomllib)."""
    try:
        import tomllib
    except ImportError:
        return []
    try:
        with open(os.path.join(project, "pyproject.toml"), "rb") as handle:
            table = tomllib.load(handle).get("project", {})
    except (OSError, ValueError):
        return []
    deps = table.get("dependencies", []) if isinstance(table, dict) else []
    return [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []


def conflict_message(found: dict[str, Any]) -> str | None:
    """The sentence a build fails with when requirements and installed versions disagree."""
    conflicts = found.get("conflicts") or []
    if not conflicts:
        return None
    parts = []
    for item in conflicts[:10]:
        origin = "the image has" if item.get("from") == "image" else "the venv has"
        parts.append(f"{item['by']} requires {item['requirement']}, {origin} {item['name']} {item['version']}")
    more = f" (and {len(conflicts) - 10} more)" if len(conflicts) > 10 else ""
    names = sorted({canonical(item["name"]) for item in conflicts if item.get("from") == "image"})
    remedy = (
        f"allow the venv to install its own {', '.join(names)} (workspace_image_replace_packages), "
        "or change the pin that requires another version"
        if names
        else "change the pins so that they resolve together"
    )
    return (
        "the venv's requirements conflict with installed versions: " + "; ".join(parts) + more + ". Remedy: " + remedy
    )


def _run_in_venv(new_venv: str, code: str, args: list[str], stage: str, what: str) -> tuple[dict[str, Any], list[str]]:
    """(the JSON the code printed last, the tail of its stderr), run by the new venv's python from /."""
    proc = subprocess.run(
        [os.path.join(new_venv, "bin", "python"), "-c", code, *args],
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    lines = proc.stderr.splitlines()[-LOG_TAIL_LINES:]
    try:
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BuilderError(stage, f"{what} failed (exit {proc.returncode})", lines) from None
    if not isinstance(found, dict):
        raise BuilderError(stage, f"{what} printed no JSON object (exit {proc.returncode})", lines)
    return found, lines


def check_requirements(new_venv: str, project: str) -> dict[str, Any]:
    """Conflicts and missing requirements of the new venv over the image (run in the venv)."""
    found, lines = _run_in_venv(
        new_venv, _REQUIREMENTS_CODE, [json.dumps(project_dependencies(project))], "check", "the requirements check"
    )
    message = conflict_message(found)
    if message:
        raise BuilderError("check", message, lines)
    return found


def _system_has(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def verify_venv(
    new_venv: str, expected_torch: dict[str, Any], verify_imports: list[str], allow_replace: Iterable[str] = ()
) -> dict[str, Any]:
    cfg = _pyvenv_cfg(new_venv)
    if cfg.get("include-system-site-packages", "").lower() != "true":
        raise BuilderError("verify", "the new venv does not include the system site-packages (pyvenv.cfg)")
    ok, _version, why = check_interpreter(new_venv)
    if not ok:
        raise BuilderError("verify", why or "the new venv's interpreter does not run")
    found, lines = _run_in_venv(
        new_venv,
        _VERIFY_CODE,
        [json.dumps(verify_imports), json.dumps(list(IMAGE_PACKAGES))],
        "verify",
        "the verification run",
    )
    torch = found.get("torch", {})
    if "error" in torch:
        raise BuilderError("verify", "import torch fails in the new venv: " + torch["error"], lines)
    venv_real = os.path.realpath(new_venv) + os.sep
    if torch["file"].startswith(venv_real):
        raise BuilderError(
            "verify",
            f"torch resolves inside the new venv ({torch['file']}): uv installed its own torch; "
            "add torch to [tool.uv] override-dependencies",
            lines,
        )
    if expected_torch.get("file") and torch["file"] != expected_torch["file"]:
        raise BuilderError(
            "verify", f"torch resolves to {torch['file']}, not the system's {expected_torch['file']}", lines
        )
    if expected_torch.get("version") and torch["version"] != expected_torch["version"]:
        raise BuilderError(
            "verify", f"torch in the new venv is {torch['version']}, the system's is {expected_torch['version']}", lines
        )
    shadowed = [
        f"{name} ({origin})"
        for name, origin in sorted(found.get("origins", {}).items())
        if origin and origin.startswith(venv_real) and _system_has(name)
    ]
    if shadowed:
        raise BuilderError(
            "verify",
            "the new venv shadows the image's " + ", ".join(shadowed) + "; add them to [tool.uv] override-dependencies",
            lines,
        )
    allowed = {canonical(name) for name in allow_replace}
    found["shadowed"] = shadowed_distributions(new_venv)
    foreign = {name: v for name, v in found["shadowed"].items() if name not in allowed}
    if foreign:
        listed = ", ".join(f"{name} {v['venv']} over the image's {v['image']}" for name, v in foreign.items())
        raise BuilderError(
            "verify",
            f"the new venv shadows the image's distributions: {listed}. Add them to [tool.uv] override-dependencies, "
            "or allow the replacement (workspace_image_replace_packages)",
            lines,
        )
    failed = {name: res["error"] for name, res in found["imports"].items() if not res["ok"]}
    if failed:
        raise BuilderError(
            "verify", "import fails in the new venv: " + "; ".join(f"{k}: {v}" for k, v in failed.items()), lines
        )
    return found


# --------------------------------------------------------------------------- build


def _write_json_atomic(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def _utc_now() -> datetime.datetime:
    # datetime.UTC is Python >= 3.11; this script runs on 3.9 too.
    return datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017


def _swap(project: str, venv_name: str, venvs_dir: str, new_venv: str, actions: list[str]) -> str | None:
    """Point DIR/<venv_name> at new_venv atomically; return where a real directory in the way went."""
    venv_path = os.path.join(project, venv_name)
    moved_aside = None
    if os.path.lexists(venv_path) and not os.path.islink(venv_path):
        moved_aside = os.path.join(venvs_dir, f"preexisting-{_utc_now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}")
        os.rename(venv_path, moved_aside)
        actions.append(f"moved the existing {venv_name} aside to {moved_aside}")
    tmp_link = os.path.join(project, f".{venv_name}.sparkfleet-{uuid.uuid4().hex[:8]}")
    try:
        os.symlink(os.path.relpath(new_venv, project), tmp_link)
        os.replace(tmp_link, venv_path)
    except OSError:
        if os.path.lexists(tmp_link):
            os.unlink(tmp_link)
        if moved_aside and not os.path.lexists(venv_path):
            os.rename(moved_aside, venv_path)
        raise
    actions.append(f"switched {venv_name} to {os.path.relpath(new_venv, project)}")
    return moved_aside


def _remove_superseded(venvs_dir: str, keep: str, actions: list[str]) -> tuple[list[str], list[str]]:
    removed, errors = [], []
    for name in sorted(os.listdir(venvs_dir)):
        path = os.path.join(venvs_dir, name)
        if name == os.path.basename(keep) or os.path.islink(path) or not os.path.isdir(path):
            continue
        if not _is_managed(venvs_dir, path):
            continue
        try:
            shutil.rmtree(path)
        except OSError as exc:
            errors.append(f"{path}: {exc}")
            continue
        removed.append(path)
        actions.append(f"removed superseded venv {os.path.join(VENVS_DIR, name)}")
    return removed, errors


def build(
    project: str,
    venv_name: str,
    uv: str,
    stamp: dict[str, Any],
    wheels: list[str],
    no_install_packages: list[str],
    verify_imports: list[str],
    allow_replace: Iterable[str] = (),
) -> dict[str, Any]:
    project = os.path.abspath(project)
    # uv runs from the project directory: resolve the caller's relative paths first.
    uv = os.path.abspath(uv)
    wheels = [os.path.abspath(wheel) for wheel in wheels]
    stage = "prepare"
    if not os.path.isfile(os.path.join(project, "pyproject.toml")):
        raise BuilderError(stage, f"{project} has no pyproject.toml")
    if not (os.path.isfile(uv) and os.access(uv, os.X_OK)):
        raise BuilderError(stage, f"uv binary {uv} is missing or not executable")
    for wheel in wheels:
        if not os.path.isfile(wheel):
            raise BuilderError(stage, f"wheel {wheel} does not exist")
    if not system_torch().get("file"):
        raise BuilderError(stage, "no torch for the system interpreter: " + str(system_torch().get("error")))

    venvs_dir = os.path.join(project, VENVS_DIR)
    os.makedirs(venvs_dir, exist_ok=True)
    gitignore = os.path.join(venvs_dir, ".gitignore")
    if not os.path.exists(gitignore):
        with open(gitignore, "w", encoding="utf-8") as handle:
            handle.write("# created by sparkfleet: venvs are built here, never commit them\n*\n")
    # One build at a time per project: a second one would remove the first one's directory
    # as superseded. (A scheduled drift fix may meet a manual run.)
    with open(os.path.join(venvs_dir, LOCK_FILE), "a", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise BuilderError("lock", f"another venv build is running in {project}") from exc
        return _build_locked(
            project, venv_name, venvs_dir, uv, stamp, wheels, no_install_packages, verify_imports, list(allow_replace)
        )


def _build_locked(
    project: str,
    venv_name: str,
    venvs_dir: str,
    uv: str,
    stamp: dict[str, Any],
    wheels: list[str],
    no_install_packages: list[str],
    verify_imports: list[str],
    allow_replace: list[str],
) -> dict[str, Any]:
    expected_torch = system_torch()
    stage = "prepare"
    build_id = f"{BUILD_PREFIX}{_utc_now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    new_venv = os.path.join(venvs_dir, build_id)
    os.mkdir(new_venv)
    with open(os.path.join(new_venv, OWNER_MARKER), "w", encoding="utf-8") as handle:
        handle.write(build_id + "\n")
    actions = [f"building a new venv in {os.path.join(VENVS_DIR, build_id)}"]
    try:
        stage = "venv"
        run_tool(
            [uv, "venv", "--allow-existing", "--system-site-packages", "--python", sys.executable, new_venv],
            stage,
            env=_uv_env(),
            cwd=project,
        )
        new_python = os.path.join(new_venv, "bin", "python")
        stage = "sync"
        sync = [uv, "sync", "--python", new_python]
        for name in no_install_packages:
            sync += ["--no-install-package", name]
        run_tool(sync, stage, env=_uv_env(new_venv), cwd=project)
        actions.append(
            "uv sync" + (f" (not installing {', '.join(no_install_packages)})" if no_install_packages else "")
        )
        if wheels:
            stage = "wheels"
            run_tool(
                [uv, "pip", "install", "--python", new_python, "--no-deps", *wheels], stage, env=_uv_env(), cwd=project
            )
            actions.append("installed wheels " + ", ".join(os.path.basename(w) for w in wheels))
        stage = "check"
        checked = check_requirements(new_venv, project)
        actions.append("checked the venv's requirements against the image's versions: no conflict")
        stage = "verify"
        found = verify_venv(new_venv, expected_torch, verify_imports, allow_replace)
        actions.append(f"verified torch {found['torch']['version']} from {found['torch']['file']}")
        if verify_imports:
            actions.append("verified imports " + ", ".join(verify_imports))
        stage = "stamp"
        full_stamp = dict(stamp)
        full_stamp.update(
            {
                "python_version": platform.python_version(),
                # After sync: uv may have written or updated uv.lock.
                "lock_hash": lock_hash(project),
                "wheels": sorted(os.path.basename(w) for w in wheels),
                "venv_id": build_id,
                "built_at": _utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "torch": found["torch"],
                "script_version": SCRIPT_VERSION,
            }
        )
        _write_json_atomic(os.path.join(new_venv, STAMP_FILE), full_stamp)
        stage = "swap"
        moved_aside = _swap(project, venv_name, venvs_dir, new_venv, actions)
    except BuilderError:
        shutil.rmtree(new_venv, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(new_venv, ignore_errors=True)
        raise BuilderError(stage, f"{type(exc).__name__}: {exc}") from exc
    removed, cleanup_errors = _remove_superseded(venvs_dir, new_venv, actions)
    return {
        "changed": True,
        "venv": {"path": os.path.join(project, venv_name), "target": new_venv, "id": build_id},
        "stamp": full_stamp,
        "torch": found["torch"],
        "imports": found["imports"],
        "shadowed": found["shadowed"],
        "missing": checked.get("missing") or [],
        "moved_aside": moved_aside,
        "removed": removed,
        "cleanup_errors": cleanup_errors,
        "actions": actions,
    }


# --------------------------------------------------------------------------- build-wheel


def _has_nvcc() -> bool:
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
    return shutil.which("nvcc") is not None or os.path.isfile(os.path.join(cuda_home, "bin", "nvcc"))


GIT_ATTEMPTS = 3
GIT_RETRY_DELAY = 10.0


def split_git_source(source: str) -> tuple[str, str | None] | None:
    """('URL', 'REF' or None) for a pip VCS source `git+URL[@REF]`, else None."""
    if not source.startswith("git+"):
        return None
    url = source[len("git+") :]
    base, sep, ref = url.rpartition("@")
    # An @ before the path is a user (git+ssh://git@host/...), not a ref.
    if sep and "/" not in ref and base.count("/") >= 2 and ref:
        return base, ref
    return url, None


def clone_git_source(
    url: str, ref: str | None, dest: str, attempts: int = GIT_ATTEMPTS, delay: float = GIT_RETRY_DELAY
) -> None:
    """git clone at REF with its submodules, as pip would, retried a few times; the error names the URL.

    Blob-less (as pip clones), not shallow: a dumb-HTTP server cannot serve a shallow clone.
    """
    if url.startswith("-") or (ref or "").startswith("-"):
        raise BuilderError("arguments", f"git source {url!r} at {ref!r}: a URL or ref may not start with '-'")
    steps = [["git", "clone", "--quiet", "--filter=blob:none", "--", url, dest]]
    if ref:
        steps.append(["git", "-C", dest, "checkout", "--quiet", ref])
    steps.append(["git", "-C", dest, "submodule", "update", "--quiet", "--init", "--recursive"])
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    last: BuilderError | None = None
    for attempt in range(1, attempts + 1):
        shutil.rmtree(dest, ignore_errors=True)
        try:
            for argv in steps:
                run_tool(argv, "fetch-source", env=env)
            return
        except BuilderError as exc:
            last = exc
            if attempt < attempts:
                log(f"git clone of {url} failed (attempt {attempt} of {attempts}); retrying in {delay:g} s")
                time.sleep(delay)
    assert last is not None
    raise BuilderError(
        "fetch-source",
        f"git clone of {url}{' at ' + ref if ref else ''} failed after {attempts} attempts: {last.msg}",
        last.log_tail,
    )


def build_wheel(source: str, out: str, arch_list: str, jobs: int | None) -> dict[str, Any]:
    try:
        arch = sanitize_arch_list(arch_list)
    except ValueError as exc:
        raise BuilderError("arguments", str(exc)) from exc
    if jobs is not None and jobs < 1:
        raise BuilderError("arguments", "--max-jobs must be at least 1")
    jobs = jobs or max_jobs(mem_total_bytes(), cpu_count())
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".build-", dir=out)
    env = dict(os.environ)
    # Never the image's own list (it names every datacenter GPU and takes hours).
    env["TORCH_CUDA_ARCH_LIST"] = arch
    env["MAX_JOBS"] = str(jobs)
    # Building in a container without --gpus: torch.cuda.is_available() is False, and
    # xformers' setup.py would silently skip its CUDA kernels unless FORCE_CUDA=1.
    force_cuda = _has_nvcc()
    if force_cuda:
        env["FORCE_CUDA"] = "1"
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    try:
        git = split_git_source(source)
        if git is not None:
            # Fetched here, with bounded retries, so that a network failure is retried and named
            # (and never confused with a compile error, which is not retried); a fresh clone.
            source = os.path.join(tmp, "src")
            clone_git_source(git[0], git[1], source)
        elif os.path.isdir(source):
            # pip builds a local directory in place, and setuptools skips an extension whose
            # build/ output is newer than its sources, whatever the arch list: build a clean copy.
            copy = os.path.join(tmp, "src")
            shutil.copytree(source, copy, symlinks=True, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info"))
            source = copy
        run_tool(
            [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w", tmp, source],
            "build-wheel",
            env=env,
        )
        built = sorted(f for f in os.listdir(tmp) if f.endswith(".whl"))
        if len(built) != 1:
            raise BuilderError("build-wheel", f"expected one wheel from pip, found {built or 'none'}")
        wheel = os.path.join(os.path.abspath(out), built[0])
        os.replace(os.path.join(tmp, built[0]), wheel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"wheel": wheel, "arch_list": arch, "max_jobs": jobs, "force_cuda": force_cuda}


# --------------------------------------------------------------------------- CLI


def _venv_name(value: str) -> str:
    if not value or "/" in value or value in (".", "..", VENVS_DIR):
        raise argparse.ArgumentTypeError(f"invalid venv name {value!r}: a plain name such as .venv")
    return value


def _stamp_arg(value: str) -> dict[str, Any]:
    try:
        stamp = json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--stamp is not JSON: {exc}") from exc
    if not isinstance(stamp, dict):
        raise argparse.ArgumentTypeError("--stamp must be a JSON object")
    return stamp


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="venv_builder", description=(__doc__ or "").split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command")
    sub.required = True

    p_probe = sub.add_parser("probe", help="report interpreter, system torch, venv state and lock hash")
    p_probe.add_argument("--project", required=True)
    p_probe.add_argument("--venv", default=".venv", type=_venv_name)

    p_build = sub.add_parser("build", help="build a new venv beside the live one, verify, swap")
    p_build.add_argument("--project", required=True)
    p_build.add_argument("--venv", default=".venv", type=_venv_name)
    p_build.add_argument("--uv", required=True)
    p_build.add_argument("--stamp", required=True, type=_stamp_arg)
    p_build.add_argument("--wheel", action="append", default=[])
    p_build.add_argument("--no-install-package", action="append", default=[])
    p_build.add_argument("--verify-import", action="append", default=[])
    p_build.add_argument("--allow-replace", action="append", default=[])

    p_wheel = sub.add_parser("build-wheel", help="build one wheel against this interpreter's torch")
    p_wheel.add_argument("--source", required=True)
    p_wheel.add_argument("--out", required=True)
    p_wheel.add_argument("--arch-list", required=True)
    p_wheel.add_argument("--max-jobs", type=int)
    return parser.parse_args(argv)


def _fail(stage: str, msg: str, log_tail: list[str]) -> int:
    log(f"FAILED at {stage}: {msg}")
    emit({"failed": True, "stage": stage, "msg": msg, "log_tail": log_tail})
    return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "probe":
            result = probe(args.project, args.venv)
        elif args.command == "build":
            result = build(
                args.project,
                args.venv,
                args.uv,
                args.stamp,
                args.wheel,
                args.no_install_package,
                args.verify_import,
                args.allow_replace,
            )
        else:
            result = build_wheel(args.source, args.out, args.arch_list, args.max_jobs)
    except BuilderError as exc:
        return _fail(exc.stage, exc.msg, exc.log_tail)
    except Exception as exc:  # the caller needs JSON, not a traceback
        return _fail("internal", f"{type(exc).__name__}: {exc}", [])
    emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
