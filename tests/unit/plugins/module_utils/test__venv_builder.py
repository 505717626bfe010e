"""The builder script: pure functions as tables, then whole runs against a stand-in torch and uv.

The whole runs execute the script as a subprocess, as the container does, with a fake uv
(stdlib venv + a scripted `sync`) and a fake system torch on PYTHONPATH: they prove the
layout, the swap, the verification and the failure handling without Docker or a network.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.spark.plugins.module_utils import _venv_builder as vb

SCRIPT = vb.__file__
GIB = 1024**3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.1", "12.1"),
        ("12.1\n", "12.1"),
        ("12.1\n12.1\n", "12.1"),  # nvidia-smi, two GPUs of one kind
        ("8.6\n12.1\n", "8.6 12.1"),  # nvidia-smi, mixed GPUs
        ("12.1 12.0", "12.0 12.1"),
        ("12.0;12.1", "12.0 12.1"),
        ("12.0, 12.1", "12.0 12.1"),
        ("12.1+PTX", "12.1+PTX"),
        ("12.1+ptx", "12.1+PTX"),  # torch only knows the upper-case suffix
        ("12.1 12.1+PTX", "12.1+PTX"),  # same SASS; PTX added once
        ("12.1a", "12.1a"),
        ("12.1A+PTX", "12.1a+PTX"),
        ("12.0 12.0a", "12.0 12.0a"),
        ("8.0 8.6 9.0 10.0 11.0 12.0+PTX", "8.0 8.6 9.0 10.0 11.0 12.0+PTX"),  # the image's list: valid syntax
        ("10.0 9.0 8.0", "8.0 9.0 10.0"),  # numeric, not lexical, order
        ("  12.1  ", "12.1"),
    ],
)
def test_sanitize_arch_list_accepts(value: str, expected: str) -> None:
    assert vb.sanitize_arch_list(value) == expected


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("sm_121", "'sm_121'"),
        ("12", "'12'"),
        ("12.1.3", "'12.1.3'"),
        ("abc", "'abc'"),
        ("12.1 abc", "'abc'"),
        ("Blackwell", "'Blackwell'"),
        ("12.1+SASS", "'12.1+SASS'"),
        ("12.1f", "'12.1f'"),
        ("[N/A]", "'[N/A]'"),  # nvidia-smi without a readable GPU
        ("12.10", "'12.10'"),
        ("-12.1", "'-12.1'"),
    ],
)
def test_sanitize_arch_list_rejects_naming_the_token(value: str, named: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        vb.sanitize_arch_list(value)
    assert named in str(excinfo.value)


def test_sanitize_arch_list_hints_at_the_dotted_form() -> None:
    with pytest.raises(ValueError, match=r"write 12\.1"):
        vb.sanitize_arch_list("sm_121")


@pytest.mark.parametrize(
    ("mem", "cpus", "gib_per_job", "expected"),
    [
        (128 * GIB, 20, vb.GIB_PER_JOB, 14),  # DGX Spark: memory bounds it below the 20 cores
        (119 * GIB, 20, vb.GIB_PER_JOB, 13),  # what a Spark reports as usable
        (512 * GIB, 16, vb.GIB_PER_JOB, 16),  # capped at cpu_count
        (8 * GIB, 4, vb.GIB_PER_JOB, 1),  # at least one
        (0, 4, vb.GIB_PER_JOB, 1),
        (64 * GIB, 0, vb.GIB_PER_JOB, 1),  # a bogus cpu count still gives a job
        (64 * GIB, 32, 4, 16),
        (64 * GIB, 32, 4.5, 14),
    ],
)
def test_max_jobs(mem: int, cpus: int, gib_per_job: float, expected: int) -> None:
    assert vb.max_jobs(mem, cpus, gib_per_job=gib_per_job) == expected


def test_max_jobs_rejects_nonpositive_gib_per_job() -> None:
    with pytest.raises(ValueError):
        vb.max_jobs(GIB, 1, gib_per_job=0)


def test_lock_hash(tmp_path: Path) -> None:
    assert vb.lock_hash(str(tmp_path)) is None
    (tmp_path / "pyproject.toml").write_text("[project]\nname='a'\n")
    only_pyproject = vb.lock_hash(str(tmp_path))
    assert only_pyproject is not None and only_pyproject.startswith("sha256:")
    assert vb.lock_hash(str(tmp_path)) == only_pyproject  # stable
    (tmp_path / "uv.lock").write_text("version = 1\n")
    with_lock = vb.lock_hash(str(tmp_path))
    assert with_lock != only_pyproject
    (tmp_path / "uv.lock").write_text("version = 2\n")
    assert vb.lock_hash(str(tmp_path)) not in (with_lock, only_pyproject)
    (tmp_path / "notebook.ipynb").write_text("{}")
    assert vb.lock_hash(str(tmp_path)) == vb.lock_hash(str(tmp_path))


def test_lock_hash_does_not_depend_on_the_directory(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "pyproject.toml").write_text("[project]\nname='a'\n")
    assert vb.lock_hash(str(tmp_path / "a")) == vb.lock_hash(str(tmp_path / "b"))


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [
                "Using CPython 3.11.2",
                "error: No solution found when resolving dependencies",
                "  cause: Because nonexistent-package-xyz was not found in the package registry",
            ],
            "error: No solution found when resolving dependencies cause: Because nonexistent-package-xyz was not "
            "found in the package registry",
        ),
        (["a", "b", "c", "d", "e", "f"], "b c d e f"),
        (
            ["  \u00d7 No solution found", "  \u2570\u2500\u25b6 Because x"],
            "\u00d7 No solution found \u2570\u2500\u25b6 Because x",
        ),
    ],
)
def test_error_summary(lines: list[str], expected: str) -> None:
    assert vb._error_summary(lines) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/opt/sparkfleet/bin/uv", "sync", "--python", "/p/bin/python"], "uv sync"),
        (["/opt/sparkfleet/bin/uv", "pip", "install", "--python", "x"], "uv pip install"),
        (["/opt/sparkfleet/bin/uv", "venv", "--allow-existing"], "uv venv"),
        (["/usr/bin/python3", "-m", "pip", "wheel", "--no-deps"], "python3 -m pip wheel"),
    ],
)
def test_command_name(argv: list[str], expected: str) -> None:
    assert vb._command_name(argv) == expected


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", ".venvs"])
def test_venv_name_must_be_plain(name: str) -> None:
    with pytest.raises(SystemExit):
        vb.parse_args(["probe", "--project", "/p", "--venv", name])


# --------------------------------------------------------------------------- whole runs

FAKE_UV = r'''#!PYTHON
"""Stand-in for uv: `venv` via the stdlib, `sync` scripted by FAKE_UV_SYNC, `pip install` records."""
import os, subprocess, sys
args = sys.argv[1:]
if args[0] == "venv":
    python = args[args.index("--python") + 1]
    subprocess.check_call([python, "-m", "venv", "--system-site-packages", "--without-pip", args[-1]])
elif args[0] == "sync":
    mode = os.environ.get("FAKE_UV_SYNC", "ok")
    if mode == "fail":
        print("Resolved 3 packages")
        print("error: No solution found when resolving dependencies")
        print("  cause: Because nonexistent-package-xyz was not found in the package registry")
        sys.exit(1)
    target = os.environ["UV_PROJECT_ENVIRONMENT"]
    if mode == "shadow-torch":
        code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        site = subprocess.check_output([target + "/bin/python", "-c", code], text=True).strip()
        os.makedirs(os.path.join(site, "torch"))
        with open(os.path.join(site, "torch", "__init__.py"), "w") as f:
            f.write("__version__ = '2.5.1'\n")
    if not os.path.exists("uv.lock"):
        with open("uv.lock", "w") as f:
            f.write("version = 1\n")
elif args[0] == "pip":
    with open(os.path.join(os.environ.get("FAKE_UV_LOG_DIR", "."), "pip-install.log"), "a") as f:
        f.write(" ".join(args) + "\n")
'''


@pytest.fixture
def fake_env(tmp_path: Path) -> dict[str, str]:
    """A project, a fake uv and a fake system torch; returns the environment for the script."""
    site = tmp_path / "system-site"
    (site / "torch").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text("from .version import __version__\n")
    (site / "torch" / "version.py").write_text("__version__ = '2.13.0+cpu.nv25.11'\n")
    (site / "sparkfleet_probe_mod.py").write_text("VALUE = 1\n")
    uv = tmp_path / "uv"
    uv.write_text(FAKE_UV.replace("PYTHON", sys.executable, 1))
    uv.chmod(0o755)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '0'\n")
    (project / "notebook.ipynb").write_text("{}")
    # The fake system torch must come AFTER a venv's own site-packages on sys.path, as the
    # image's dist-packages do: sitecustomize runs after site setup and appends it.
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(f"import sys\nsys.path.append({str(site)!r})\n")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PYTHONPATH=str(hooks), FAKE_UV_LOG_DIR=str(tmp_path))
    return env


def run_script(env: dict[str, str], *args: str, **extra_env: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, SCRIPT, *args],
        capture_output=True,
        text=True,
        env={**env, **extra_env},
        timeout=120,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be one JSON line:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.returncode, json.loads(lines[0])


def build(env: dict[str, str], project: Path, *extra: str, **extra_env: str) -> tuple[int, dict]:
    uv = str(project.parent / "uv")
    stamp = json.dumps({"image_id": "sha256:aaa", "repo_digest": None, "wheels": []})
    return run_script(env, "build", "--project", str(project), "--uv", uv, "--stamp", stamp, *extra, **extra_env)


def built_venvs(project: Path) -> list[str]:
    return sorted(name for name in os.listdir(project / ".venvs") if name.startswith("venv-"))


def test_probe_without_venv(fake_env: dict[str, str], tmp_path: Path) -> None:
    rc, result = run_script(fake_env, "probe", "--project", str(tmp_path / "project"))
    assert rc == 0
    assert result["python_version"] == vb.platform.python_version()
    assert result["system_torch"] == {
        "version": "2.13.0+cpu.nv25.11",
        "file": str((tmp_path / "system-site" / "torch" / "__init__.py").resolve()),
    }
    assert result["venv"]["exists"] is False
    assert result["venv"]["interpreter_ok"] is False
    assert result["venv"]["stamp"] is None
    assert result["lock_hash"] == vb.lock_hash(str(tmp_path / "project"))


def test_build_swap_probe_repair_and_failure(fake_env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "project"
    rc, first = build(fake_env, project, "--verify-import", "sparkfleet_probe_mod", "--no-install-package", "xformers")
    assert rc == 0, first
    link = project / ".venv"
    assert link.is_symlink() and os.readlink(link) == os.path.join(".venvs", first["venv"]["id"])
    assert first["stamp"]["image_id"] == "sha256:aaa"
    assert first["stamp"]["torch"]["version"] == "2.13.0+cpu.nv25.11"
    # uv sync wrote uv.lock: the stamp holds the hash after sync, so the next probe agrees.
    assert (project / "uv.lock").exists()
    rc, probe = run_script(fake_env, "probe", "--project", str(project))
    assert probe["venv"]["interpreter_ok"] is True and probe["venv"]["managed"] is True
    assert probe["venv"]["stamp"]["lock_hash"] == probe["lock_hash"]

    # A second build supersedes the first, whose directory goes.
    rc, second = build(fake_env, project)
    assert rc == 0, second
    assert not Path(first["venv"]["target"]).exists()
    assert second["removed"] == [first["venv"]["target"]]

    # Break the interpreter: the probe says so.
    (Path(second["venv"]["target"]) / "bin" / "python").unlink()
    rc, probe = run_script(fake_env, "probe", "--project", str(project))
    assert probe["venv"]["interpreter_ok"] is False
    assert "missing or a dangling link" in probe["venv"]["interpreter_error"]

    # A failed build leaves .venv as it was and removes its own directory only.
    before = sorted(os.listdir(project / ".venvs"))
    assert built_venvs(project) == [second["venv"]["id"]]
    rc, failed = build(fake_env, project, FAKE_UV_SYNC="fail")
    assert rc == 1
    assert failed["failed"] is True and failed["stage"] == "sync"
    assert "nonexistent-package-xyz was not found" in failed["msg"]
    assert failed["log_tail"][-1].strip().startswith("cause:")
    assert os.readlink(link) == os.path.join(".venvs", second["venv"]["id"])
    assert sorted(os.listdir(project / ".venvs")) == before
    assert (project / "notebook.ipynb").read_text() == "{}"


def test_build_moves_a_real_venv_directory_aside(fake_env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / ".venv" / "lib" / "precious.txt").write_text("keep me")
    rc, result = build(fake_env, project)
    assert rc == 0, result
    moved = Path(result["moved_aside"])
    assert moved.parent == project / ".venvs" and (moved / "lib" / "precious.txt").read_text() == "keep me"
    # Not ours: a later build's cleanup keeps it.
    rc, again = build(fake_env, project)
    assert rc == 0 and moved.exists() and str(moved) not in again["removed"]


def test_build_installs_wheels_without_deps(fake_env: dict[str, str], tmp_path: Path) -> None:
    wheel = tmp_path / "xformers-0.0.33-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"PK")
    rc, result = build(fake_env, tmp_path / "project", "--wheel", str(wheel))
    assert rc == 0, result
    assert result["stamp"]["wheels"] == [wheel.name]
    log = (tmp_path / "pip-install.log").read_text()
    assert "--no-deps" in log and str(wheel) in log


@pytest.mark.parametrize(
    ("extra", "extra_env", "stage", "message"),
    [
        ((), {"FAKE_UV_SYNC": "shadow-torch"}, "verify", "torch resolves inside the new venv"),
        (("--verify-import", "xformers_missing"), {}, "verify", "xformers_missing"),
        (("--wheel", "/nonexistent/x.whl"), {}, "prepare", "does not exist"),
    ],
)
def test_build_failures_keep_the_old_venv(
    fake_env: dict[str, str],
    tmp_path: Path,
    extra: tuple[str, ...],
    extra_env: dict[str, str],
    stage: str,
    message: str,
) -> None:
    project = tmp_path / "project"
    rc, good = build(fake_env, project)
    assert rc == 0, good
    rc, failed = build(fake_env, project, *extra, **extra_env)
    assert rc == 1 and failed["stage"] == stage and message in failed["msg"], failed
    assert os.readlink(project / ".venv") == os.path.join(".venvs", good["venv"]["id"])
    assert built_venvs(project) == [good["venv"]["id"]]


def test_one_build_at_a_time(fake_env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".venvs").mkdir()
    with open(project / ".venvs" / vb.LOCK_FILE, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        rc, result = build(fake_env, project)
    assert rc == 1 and result["stage"] == "lock" and "another venv build is running" in result["msg"]
    assert built_venvs(project) == [] and not (project / ".venv").exists()
    rc, result = build(fake_env, project)
    assert rc == 0, result


def test_build_wheel_rejects_a_bad_arch_list(fake_env: dict[str, str], tmp_path: Path) -> None:
    rc, result = run_script(
        fake_env, "build-wheel", "--source", str(tmp_path), "--out", str(tmp_path / "out"), "--arch-list", "sm_121"
    )
    assert rc == 1 and result["stage"] == "arguments" and "'sm_121'" in result["msg"]


IN_TREE_BACKEND = """
import json, os, zipfile

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(SEEN, "w") as handle:
        json.dump({k: os.environ.get(k) for k in ("TORCH_CUDA_ARCH_LIST", "MAX_JOBS")}, handle)
    name = "probe_ext-0.1-py3-none-any.whl"
    info = "probe_ext-0.1.dist-info/"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as whl:
        whl.writestr(info + "METADATA", "Metadata-Version: 2.1\\nName: probe_ext\\nVersion: 0.1\\n")
        whl.writestr(info + "WHEEL", "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
        whl.writestr(info + "RECORD", "")
    return name
"""


def probe_project(path: Path, seen: Path) -> Path:
    """A project whose in-tree PEP 517 backend records, in `seen`, the environment of its build."""
    path.mkdir()
    (path / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        '[project]\nname = "probe_ext"\nversion = "0.1"\n'
    )
    (path / "backend.py").write_text(f"SEEN = {str(seen)!r}\n" + IN_TREE_BACKEND)
    return path


def test_build_wheel_sets_arch_list_and_max_jobs(fake_env: dict[str, str], tmp_path: Path) -> None:
    """A source tree with an in-tree PEP 517 backend that records the environment of its build."""
    src = probe_project(tmp_path / "src", tmp_path / "seen.json")
    env = {**fake_env, "TORCH_CUDA_ARCH_LIST": "8.0 8.6 9.0 10.0 11.0 12.0+PTX", "PIP_NO_INDEX": "1"}
    rc, result = run_script(
        env, "build-wheel", "--source", str(src), "--out", str(tmp_path / "out"), "--arch-list", "12.1\n12.1\n"
    )
    if rc == 1 and "No module named pip" in json.dumps(result):
        pytest.skip("pip is not available to this interpreter")
    assert rc == 0, result
    assert result["arch_list"] == "12.1" and result["max_jobs"] >= 1
    assert Path(result["wheel"]).is_file() and Path(result["wheel"]).parent == tmp_path / "out"
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen == {"TORCH_CUDA_ARCH_LIST": "12.1", "MAX_JOBS": str(result["max_jobs"])}
    assert os.listdir(tmp_path / "out") == [Path(result["wheel"]).name]


def test_build_wheel_honours_max_jobs(fake_env: dict[str, str], tmp_path: Path) -> None:
    rc, result = run_script(
        fake_env,
        "build-wheel",
        "--source",
        str(tmp_path / "missing"),
        "--out",
        str(tmp_path / "out"),
        "--arch-list",
        "12.1",
        "--max-jobs",
        "0",
    )
    assert rc == 1 and result["stage"] == "arguments" and "--max-jobs" in result["msg"]


@pytest.mark.parametrize(
    ("on_disk", "about_to_write", "lock"),
    [
        ('dependencies = ["six==1.16.0"]\n', 'dependencies = ["six==1.17.0"]\n', None),
        ('dependencies = ["six==1.16.0"]\n', 'dependencies = ["six==1.17.0"]\n', "version = 1\n"),
        ("same\n", "same\n", "version = 1\n"),
    ],
)
def test_lock_hash_of_content_about_to_be_written(
    tmp_path: Path, on_disk: str, about_to_write: str, lock: str | None
) -> None:
    """Check mode hashes what the template will write; it must equal the hash once written."""
    (tmp_path / "pyproject.toml").write_text(on_disk)
    if lock is not None:
        (tmp_path / "uv.lock").write_text(lock)
    predicted = vb.lock_hash(str(tmp_path), about_to_write.encode())
    (tmp_path / "pyproject.toml").write_text(about_to_write)
    assert predicted == vb.lock_hash(str(tmp_path))
    assert (predicted == vb.lock_hash(str(tmp_path), on_disk.encode())) == (on_disk == about_to_write)


# --- the git source: fetched with bounded retries, the failing URL named --------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "git+https://github.com/facebookresearch/xformers.git@v0.0.33",
            ("https://github.com/facebookresearch/xformers.git", "v0.0.33"),
        ),
        (
            "git+https://github.com/facebookresearch/xformers.git",
            ("https://github.com/facebookresearch/xformers.git", None),
        ),
        ("git+ssh://git@github.com/org/repo.git@abc123", ("ssh://git@github.com/org/repo.git", "abc123")),
        ("git+ssh://git@github.com/org/repo.git", ("ssh://git@github.com/org/repo.git", None)),
        ("git+http://testbed:8080/xformers.git@v0.0.33", ("http://testbed:8080/xformers.git", "v0.0.33")),
        ("/srv/xformers", None),
        ("xformers==0.0.33", None),
    ],
)
def test_split_git_source(source: str, expected: tuple[str, str | None] | None) -> None:
    assert vb.split_git_source(source) == expected


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def probe_repo(tmp_path: Path) -> Path:
    """A git repo of the in-tree-backend project, tagged v0.1, with a later commit on top."""
    repo = probe_project(tmp_path / "repo", tmp_path / "seen.json")
    (repo / "marker.txt").write_text("tagged\n")
    _git("init", "-q", cwd=repo)
    _git("add", ".", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one", cwd=repo)
    _git("tag", "v0.1", cwd=repo)
    (repo / "marker.txt").write_text("later\n")
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two", cwd=repo)
    return repo


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_clone_git_source_checks_out_the_ref(probe_repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "clone"
    vb.clone_git_source(f"file://{probe_repo}", "v0.1", str(dest), delay=0)
    assert (dest / "marker.txt").read_text() == "tagged\n"


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_clone_git_source_retries_then_names_the_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"file://{tmp_path}/no-such-repo.git"
    with pytest.raises(vb.BuilderError) as failure:
        vb.clone_git_source(url, "v1", str(tmp_path / "clone"), attempts=3, delay=0)
    assert failure.value.stage == "fetch-source"
    assert failure.value.msg.startswith(f"git clone of {url} at v1 failed after 3 attempts: ")
    assert capsys.readouterr().err.count("retrying in 0 s") == 2
    assert not (tmp_path / "clone").exists()


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_build_wheel_from_a_git_source(fake_env: dict[str, str], probe_repo: Path, tmp_path: Path) -> None:
    env = {**fake_env, "PIP_NO_INDEX": "1"}
    rc, result = run_script(
        env,
        "build-wheel",
        "--source",
        f"git+file://{probe_repo}@v0.1",
        "--out",
        str(tmp_path / "out"),
        "--arch-list",
        "12.1",
    )
    if rc == 1 and "No module named pip" in json.dumps(result):
        pytest.skip("pip is not available to this interpreter")
    assert rc == 0, result
    assert Path(result["wheel"]).name == "probe_ext-0.1-py3-none-any.whl"
    assert os.listdir(tmp_path / "out") == [Path(result["wheel"]).name]


@pytest.mark.parametrize(("url", "ref"), [("--upload-pack=touch /tmp/x", None), ("file:///srv/x.git", "--orphan")])
def test_clone_git_source_refuses_what_git_would_read_as_an_option(tmp_path: Path, url: str, ref: str | None) -> None:
    with pytest.raises(vb.BuilderError) as failure:
        vb.clone_git_source(url, ref, str(tmp_path / "clone"), delay=0)
    assert failure.value.stage == "arguments" and "may not start with '-'" in failure.value.msg
    assert not (tmp_path / "clone").exists()


# --- the image's distributions: what the venv shadows, what its requirements say ------------


def dist_info(site: Path, name: str, version: str, *requires: str, metadata_name: str | None = "") -> Path:
    """A NAME-VERSION.dist-info with a METADATA file; metadata_name None leaves Name: out."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1"]
    if metadata_name is not None:
        lines.append(f"Name: {metadata_name or name}")
    lines.append(f"Version: {version}")
    lines += [f"Requires-Dist: {req}" for req in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    return info


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Jupyter_Server", "jupyter-server"),
        ("jupyter-server", "jupyter-server"),
        ("zope.interface", "zope-interface"),
        ("A__B--C..d", "a-b-c-d"),
        ("torch", "torch"),
    ],
)
def test_canonical(name: str, expected: str) -> None:
    assert vb.canonical(name) == expected


def test_distributions_of_a_path(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist_info(site, "Jupyter_Server", "2.4.0")
    dist_info(site, "numpy", "2.1.0")
    dist_info(site, "nameless", "1.0", metadata_name=None)
    later = tmp_path / "later"
    dist_info(later, "NumPy", "1.26.4")  # a second copy further down the path
    dist_info(later, "tornado", "6.4.1")
    assert vb._distributions([str(site), str(later)]) == {
        "jupyter-server": "2.4.0",
        "numpy": "2.1.0",
        "tornado": "6.4.1",
    }
    assert vb._distributions([]) == {}
    assert vb._distributions([str(tmp_path / "missing")]) == {}


def test_venv_site_packages(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    for name in ("python3.11", "python3.12", "python2.7", "python3.11x", "python3"):
        (venv / "lib" / name / "site-packages").mkdir(parents=True)
    (venv / "lib" / "python3.13").mkdir()  # no site-packages
    (venv / "lib" / "python3.14").write_text("")  # a file
    assert vb.venv_site_packages(str(venv)) == [
        str(venv / "lib" / "python3.11" / "site-packages"),
        str(venv / "lib" / "python3.12" / "site-packages"),
    ]
    assert vb.venv_site_packages(str(tmp_path / "missing")) == []
    (tmp_path / "no-lib").mkdir()
    assert vb.venv_site_packages(str(tmp_path / "no-lib")) == []


IMAGE_DISTS = {"jupyter-server": "2.3.2", "numpy": "1.26.4", "torch": "2.9.0a0+145a3a7.nv25.10", "tornado": "6.4.1"}


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        pytest.param([], {}, id="empty-venv"),
        pytest.param([("requests", "2.32.0"), ("pandas", "2.2.0")], {}, id="nothing-of-the-image"),
        pytest.param(
            [("tornado", "6.5.2"), ("Jupyter_Server", "2.4.0"), ("requests", "2.32.0"), ("NumPy", "2.1.0")],
            {
                "jupyter-server": {"venv": "2.4.0", "image": "2.3.2"},
                "numpy": {"venv": "2.1.0", "image": "1.26.4"},
                "tornado": {"venv": "6.5.2", "image": "6.4.1"},
            },
            id="shadowed-canonical-sorted",
        ),
        pytest.param(
            [("numpy", "1.26.4")], {"numpy": {"venv": "1.26.4", "image": "1.26.4"}}, id="same-version-still-shadows"
        ),
    ],
)
def test_shadowed_distributions(
    tmp_path: Path, installed: list[tuple[str, str]], expected: dict[str, dict[str, str]]
) -> None:
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    for name, version in installed:
        dist_info(site, name, version)
    found = vb.shadowed_distributions(str(tmp_path / "venv"), dict(IMAGE_DISTS))
    assert found == expected and list(found) == sorted(found)


def test_shadowed_distributions_of_no_venv(tmp_path: Path) -> None:
    assert vb.shadowed_distributions(str(tmp_path / "missing"), dict(IMAGE_DISTS)) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '[project]\nname = "p"\ndependencies = ["numpy>=1.26", "torch", "jupyterlab; python_version >= \'3.9\'"]\n',
            ["numpy>=1.26", "torch", "jupyterlab; python_version >= '3.9'"],
            id="dependencies",
        ),
        pytest.param('[project]\nname = "p"\ndependencies = []\n', [], id="none"),
        pytest.param('[project]\nname = "p"\n', [], id="no-dependencies-key"),
        pytest.param('[tool.uv]\noverride-dependencies = ["numpy"]\n', [], id="no-project-table"),
        pytest.param('[project]\ndependencies = "numpy"\n', [], id="not-a-list"),
        pytest.param('[project]\ndependencies = ["numpy", 1, {a = 1}, "torch"]\n', ["numpy", "torch"], id="mixed"),
        pytest.param("[project\ndependencies = [", [], id="invalid-toml"),
        pytest.param("", [], id="empty"),
    ],
)
def test_project_dependencies(tmp_path: Path, text: str, expected: list[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    assert vb.project_dependencies(str(tmp_path)) == expected


def test_project_dependencies_of_an_unreadable_pyproject(tmp_path: Path) -> None:
    assert vb.project_dependencies(str(tmp_path)) == []  # no file
    assert vb.project_dependencies(str(tmp_path / "missing")) == []
    (tmp_path / "pyproject.toml").write_bytes(b'[project]\ndependencies = ["\xff"]\n')  # not UTF-8
    assert vb.project_dependencies(str(tmp_path)) == []
    (tmp_path / "pyproject.toml").unlink()
    (tmp_path / "pyproject.toml").mkdir()
    assert vb.project_dependencies(str(tmp_path)) == []


def test_project_dependencies_of_a_project_that_is_not_a_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('project = "x"\n')
    assert vb.project_dependencies(str(tmp_path)) == []


def conflict(by: str, requirement: str, name: str, version: str, origin: str) -> dict[str, str]:
    return {"by": by, "requirement": requirement, "name": name, "version": version, "from": origin}


@pytest.mark.parametrize(
    "found",
    [{}, {"conflicts": []}, {"conflicts": None, "missing": [{"by": "the project", "requirement": "x"}]}],
)
def test_conflict_message_without_conflicts(found: dict[str, Any]) -> None:
    assert vb.conflict_message(found) is None


@pytest.mark.parametrize(
    ("conflicts", "expected"),
    [
        pytest.param(
            [conflict("X 1.0", "numpy>=2", "numpy", "1.26.4", "image")],
            "the venv's requirements conflict with installed versions: X 1.0 requires numpy>=2, the image has "
            "numpy 1.26.4. Remedy: allow the venv to install its own numpy (workspace_image_replace_packages), "
            "or change the pin that requires another version",
            id="image",
        ),
        pytest.param(
            [
                conflict("the project", "jupyter-server>=2.5", "Jupyter_Server", "2.3.2", "image"),
                conflict("X 1.0", "numpy>=2", "NumPy", "1.26.4", "image"),
                conflict("Y 2.0", "numpy<3,>=2.1", "numpy", "1.26.4", "image"),
                conflict("Z 3.0", "requests>=3", "requests", "2.32.0", "venv"),
            ],
            "the venv's requirements conflict with installed versions: the project requires jupyter-server>=2.5, "
            "the image has Jupyter_Server 2.3.2; X 1.0 requires numpy>=2, the image has NumPy 1.26.4; "
            "Y 2.0 requires numpy<3,>=2.1, the image has numpy 1.26.4; Z 3.0 requires requests>=3, the venv has "
            "requests 2.32.0. Remedy: allow the venv to install its own jupyter-server, numpy "
            "(workspace_image_replace_packages), or change the pin that requires another version",
            id="image-names-canonical-unique-venv-left-out",
        ),
        pytest.param(
            [conflict("Z 3.0", "requests>=3", "requests", "2.32.0", "venv")],
            "the venv's requirements conflict with installed versions: Z 3.0 requires requests>=3, the venv has "
            "requests 2.32.0. Remedy: change the pins so that they resolve together",
            id="venv-only",
        ),
    ],
)
def test_conflict_message(conflicts: list[dict[str, str]], expected: str) -> None:
    assert vb.conflict_message({"conflicts": conflicts, "missing": []}) == expected


def test_conflict_message_names_ten_and_counts_the_rest() -> None:
    conflicts = [conflict(f"P{i} 1.0", f"dep{i}>=2", f"Dep_{i}", "1.0", "image") for i in range(13)]
    message = vb.conflict_message({"conflicts": conflicts})
    assert message is not None
    assert "P9 1.0 requires dep9>=2, the image has Dep_9 1.0 (and 3 more). Remedy: " in message
    assert "P10 1.0" not in message and message.count(", the image has ") == 10
    # The remedy names every replaceable distribution, the ones past the tenth too.
    assert "dep-12" in message and "dep-0, dep-1, dep-10, dep-11, dep-12, dep-2" in message


# --- check_requirements in a real venv over this interpreter's site-packages (the "image") -----


def _packaging_version(python: str) -> str | None:
    """The version of packaging the check will use from the image, or None when it cannot import one."""
    code = (
        "import importlib.metadata as m\n"
        "try:\n    import packaging.requirements\nexcept ImportError:\n    import pip._vendor.packaging.requirements\n"
        "print(m.version('packaging'))"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    return proc.stdout.strip() if proc.returncode == 0 else None


class CheckVenv:
    """A venv made by the stdlib over the interpreter's system site-packages, and its site-packages."""

    def __init__(self, root: Path) -> None:
        self.path = root / "venv"
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(self.path)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.python = str(self.path / "bin" / "python")
        purelib = subprocess.run(
            [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
        self.site = Path(purelib)
        self.project = root / "project"
        self.project.mkdir()

    def install(self, name: str, version: str, *requires: str) -> None:
        dist_info(self.site, name, version, *requires)

    def pyproject(self, *dependencies: str) -> None:
        deps = ", ".join(json.dumps(dep) for dep in dependencies)
        (self.project / "pyproject.toml").write_text(f'[project]\nname = "p"\ndependencies = [{deps}]\n')

    def check(self) -> dict[str, Any]:
        return vb.check_requirements(str(self.path), str(self.project))


@pytest.fixture
def check_venv(tmp_path: Path) -> tuple[CheckVenv, str]:
    """The venv and the image's packaging version (packaging stands for an image distribution)."""
    venv = CheckVenv(tmp_path)
    image_packaging = _packaging_version(venv.python)
    if image_packaging is None:
        pytest.skip("the interpreter's site-packages have neither packaging nor pip's vendored copy")
    return venv, image_packaging


def test_check_requirements_of_a_clean_venv(check_venv: tuple[CheckVenv, str]) -> None:
    venv, packaging = check_venv
    venv.install("plain", "1.0", "packaging", f"packaging=={packaging}", "not a requirement !!!")
    venv.pyproject("packaging>=1")
    assert venv.check() == {"conflicts": [], "missing": []}


def test_check_requirements_conflict_with_the_image(check_venv: tuple[CheckVenv, str]) -> None:
    venv, packaging = check_venv
    venv.install("needs_new_packaging", "1.0", "packaging>=999")
    with pytest.raises(vb.BuilderError) as failure:
        venv.check()
    assert failure.value.stage == "check"
    msg = failure.value.msg
    assert f"needs_new_packaging 1.0 requires packaging>=999, the image has packaging {packaging}" in msg, msg
    assert "allow the venv to install its own packaging (workspace_image_replace_packages)" in msg


def test_check_requirements_of_the_project(check_venv: tuple[CheckVenv, str]) -> None:
    venv, packaging = check_venv
    venv.pyproject("packaging>=999", "packaging<1; python_version < '3'")
    with pytest.raises(vb.BuilderError) as failure:
        venv.check()
    assert failure.value.stage == "check"
    assert f"the project requires packaging>=999, the image has packaging {packaging}" in failure.value.msg
    assert failure.value.msg.count(", the image has ") == 1  # the false marker's pin is not checked


def test_check_requirements_reports_missing_without_failing(check_venv: tuple[CheckVenv, str]) -> None:
    venv, _ = check_venv
    venv.install("wants_ghost", "1.0", "sparkfleet-no-such-dist-xyz>=1")
    venv.pyproject("sparkfleet-other-ghost")
    found = venv.check()
    assert found["conflicts"] == []
    assert sorted(found["missing"], key=lambda item: item["by"]) == [
        {"by": "the project", "requirement": "sparkfleet-other-ghost"},
        {"by": "wants_ghost 1.0", "requirement": "sparkfleet-no-such-dist-xyz>=1"},
    ]


@pytest.mark.parametrize(
    "requirement",
    [
        "packaging>=999; python_version < '3'",
        "packaging>=999; sys_platform == 'nonexistent-os'",
        'packaging>=999; extra == "never-asked"',
        "sparkfleet-no-such-dist-xyz; python_version < '3'",
    ],
)
def test_check_requirements_ignores_a_false_marker(check_venv: tuple[CheckVenv, str], requirement: str) -> None:
    venv, _ = check_venv
    venv.install("marked", "1.0", requirement)
    assert venv.check() == {"conflicts": [], "missing": []}


def test_check_requirements_follows_extras(check_venv: tuple[CheckVenv, str]) -> None:
    venv, packaging = check_venv
    venv.install("otherpkg", "1.0", 'packaging>=999; extra == "extra1"', "sparkfleet-ghost-dep; extra == 'extra2'")
    venv.install("wants_plain", "1.0", "otherpkg")
    assert venv.check() == {"conflicts": [], "missing": []}  # nobody asks for extra1
    venv.install("wants_extra", "1.0", "otherpkg[extra1]")
    with pytest.raises(vb.BuilderError) as failure:
        venv.check()
    assert failure.value.stage == "check"
    assert f'otherpkg 1.0 requires packaging>=999; extra == "extra1", the image has packaging {packaging}' in (
        failure.value.msg
    ), failure.value.msg


def test_check_requirements_conflict_inside_the_venv(check_venv: tuple[CheckVenv, str]) -> None:
    venv, _ = check_venv
    venv.install("needs_b", "1.0", "b-dist>=2")
    venv.install("b_dist", "1.0")
    with pytest.raises(vb.BuilderError) as failure:
        venv.check()
    assert "needs_b 1.0 requires b-dist>=2, the venv has b_dist 1.0" in failure.value.msg
    assert failure.value.msg.endswith("Remedy: change the pins so that they resolve together")


def test_check_requirements_allows_prereleases_and_skips_invalid_versions(check_venv: tuple[CheckVenv, str]) -> None:
    venv, _ = check_venv
    venv.install("fake_torch", "2.9.0a0+145a3a7.nv25.10")
    venv.install("odd", "not.a.version-")
    venv.install("user", "1.0", "fake-torch>=2.8", "odd>=1")
    assert venv.check() == {"conflicts": [], "missing": []}


def test_check_requirements_when_the_check_itself_fails(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\necho 'boom: no interpreter' >&2\nexit 3\n")
    (venv / "bin" / "python").chmod(0o755)
    with pytest.raises(vb.BuilderError) as failure:
        vb.check_requirements(str(venv), str(tmp_path))
    assert failure.value.stage == "check"
    assert failure.value.msg == "the requirements check failed (exit 3)"
    assert failure.value.log_tail == ["boom: no interpreter"]
